package proxy

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/s3err"
)

// Per-request key choice with S3's own headers, applied by the gateway's encryption:
//   - no header or "x-amz-server-side-encryption: AES256": the bucket's default key;
//   - "aws:kms" (+ key id and encryption context headers): that key, if the credential may
//     use it;
//   - SSE-C (customer algorithm, key, key MD5): the customer's key seals the object key
//     (FORMAT.md wrap 2); it is never stored, and reads must present it again.

// Metadata the gateway keeps beside the envelope (reserved prefix): the SSE mode the client
// asked for (response headers only) and the client's KMS encryption context (bound by KMS:
// a changed context does not unwrap). The names are format's.
const (
	metaSSE = format.MetaSSE
	metaCtx = format.MetaContext
)

const (
	sseS3  = "AES256"
	sseKMS = "aws:kms"
)

// ssecHeaders and copySourceSSECHeaders are the prefixes of the SSE-C header triples.
const (
	ssecHeaders           = "X-Amz-Server-Side-Encryption-Customer-"
	copySourceSSECHeaders = "X-Amz-Copy-Source-Server-Side-Encryption-Customer-"
)

// customerKey is an SSE-C key presented with a request.
type customerKey struct {
	key    []byte
	md5b64 string
}

func (c *customerKey) zero() {
	if c != nil {
		clear(c.key)
	}
}

// parseCustomerKey reads the SSE-C triple with the given header prefix; nil if absent.
func parseCustomerKey(h http.Header, prefix string) (*customerKey, *s3err.Error) {
	alg, key, sum := h.Get(prefix+"Algorithm"), h.Get(prefix+"Key"), h.Get(prefix+"Key-Md5")
	if alg == "" && key == "" && sum == "" {
		return nil, nil
	}
	if alg == "" || key == "" {
		return nil, s3err.New("InvalidArgument", "Requests specifying Server Side Encryption with Customer provided keys must provide both the encryption algorithm and the key.")
	}
	if alg != "AES256" {
		return nil, s3err.New("InvalidEncryptionAlgorithmError", "The Encryption request you specified is not valid. Supported value: AES256.")
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(raw) != 32 {
		clear(raw)
		return nil, s3err.New("InvalidArgument", "The secret key was invalid for the specified algorithm.")
	}
	got := md5.Sum(raw)
	want := base64.StdEncoding.EncodeToString(got[:])
	if sum != "" && subtle.ConstantTimeCompare([]byte(sum), []byte(want)) != 1 {
		clear(raw)
		return nil, s3err.New("InvalidArgument", "The calculated MD5 hash of the key did not match the hash that was provided.")
	}
	return &customerKey{key: raw, md5b64: want}, nil
}

// secureTransport reports whether the client's request came over TLS (directly, or through a
// trusted load balancer that says so).
func (g *Gateway) secureTransport(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return g.cfg.TrustForwardedHeaders && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// requestCustomerKey parses the SSE-C key of q (prefix: ssecHeaders or copySourceSSECHeaders)
// and refuses it over plain HTTP unless configured otherwise.
func (g *Gateway) requestCustomerKey(q *request, prefix string) (*customerKey, *s3err.Error) {
	ck, e := parseCustomerKey(q.r.Header, prefix)
	if e != nil || ck == nil {
		return nil, e
	}
	if !g.secureTransport(q.r) && !g.cfg.SSECAllowHTTP {
		ck.zero()
		return nil, s3err.New("InvalidRequest", "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.")
	}
	return ck, nil
}

// encryptionChoice is how a new object is to be protected.
type encryptionChoice struct {
	mode     string            // sseS3, sseKMS, or "" for SSE-C
	keyID    string            // key provider key (provider modes)
	extraCtx map[string]string // client's KMS encryption context (sseKMS)
	ssec     *customerKey
}

// defaultKeyID is the key protecting bucket's objects when the client names none.
func (g *Gateway) defaultKeyID(bucket string) string {
	if k := g.cfg.BucketKeyIDs[bucket]; k != "" {
		return k
	}
	return g.cfg.KeyID
}

// mayUseKey reports whether q's credential may protect objects with keyID.
func (g *Gateway) mayUseKey(q *request, keyID string) bool {
	if keyID == g.cfg.KeyID || keyID == g.defaultKeyID(q.bucket) {
		return true
	}
	return slices.Contains(q.cred.KMSKeyIDs, "*") || slices.Contains(q.cred.KMSKeyIDs, keyID)
}

// chooseEncryption reads the SSE headers of a write (PutObject, CreateMultipartUpload,
// CopyObject's destination).
func (g *Gateway) chooseEncryption(q *request) (*encryptionChoice, *s3err.Error) {
	h := q.r.Header
	ck, e := g.requestCustomerKey(q, ssecHeaders)
	if e != nil {
		return nil, e
	}
	sse := h.Get("X-Amz-Server-Side-Encryption")
	if ck != nil {
		if sse != "" {
			ck.zero()
			return nil, s3err.New("InvalidArgument", "Server Side Encryption with Customer provided key is incompatible with the encryption method specified")
		}
		return &encryptionChoice{ssec: ck}, nil
	}
	switch sse {
	case "", sseS3:
		if h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id") != "" {
			return nil, s3err.New("InvalidArgument", "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
		}
		return &encryptionChoice{mode: sseS3, keyID: g.defaultKeyID(q.bucket)}, nil
	case sseKMS, "aws:kms:dsse":
		c := &encryptionChoice{mode: sseKMS, keyID: h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id")}
		if c.keyID == "" {
			c.keyID = g.defaultKeyID(q.bucket)
		}
		if !g.mayUseKey(q, c.keyID) {
			return nil, s3err.New("AccessDenied", "The credential may not use that KMS key.")
		}
		if v := h.Get("X-Amz-Server-Side-Encryption-Context"); v != "" {
			ctx, err := format.ParseClientContext(v)
			if err != nil {
				return nil, clientContextError(err)
			}
			c.extraCtx = ctx
		}
		return c, nil
	}
	return nil, s3err.Newf("InvalidArgument", "The encryption method specified is not supported: %q", sse)
}

// newObjectChoice checks what a request that creates an object may set (the gateway's reserved
// metadata names are refused) and returns its encryption choice.
func (g *Gateway) newObjectChoice(q *request) (*encryptionChoice, error) {
	if hasReservedMeta(q.r.Header) {
		return nil, s3err.New("InvalidArgument", "Metadata names starting with x-amz-meta-s3seal- are reserved.")
	}
	c, e := g.chooseEncryption(q)
	if e != nil {
		return nil, e
	}
	return c, nil
}

// clientContextError is the S3 error for a refused x-amz-server-side-encryption-context
// (format.ParseClientContext): the reserved keys may not be set by clients.
func clientContextError(err error) *s3err.Error {
	var rk *format.ReservedContextKeyError
	if errors.As(err, &rk) {
		return s3err.Newf("InvalidArgument", "The encryption context key %q is reserved by the gateway.", rk.Key)
	}
	return s3err.New("InvalidArgument", "The x-amz-server-side-encryption-context header is not a base64-encoded JSON object of strings.")
}

// sealed is a new object key and its envelope, and what to record about them.
type sealed struct {
	key     *format.ObjectKey
	env     *format.Envelope
	meta    http.Header // the envelope and the gateway's other metadata
	keyID   string      // for the audit trail ("sse-c" for customer keys)
	wrapped []byte
}

// seal protects ok (a new random key when nil) for q's bucket and key as c says. bytes is the
// plaintext size for the data-key cache's byte limit (0 if unknown).
func (g *Gateway) seal(q *request, c *encryptionChoice, kind format.Kind, ok *format.ObjectKey, bytes int64) (*sealed, error) {
	if ok == nil {
		var err error
		if ok, err = format.NewObjectKey(); err != nil {
			return nil, err
		}
	}
	s := &sealed{key: ok, meta: http.Header{}}
	if c.ssec != nil {
		env, err := format.SealEnvelope(ok, c.ssec.key, format.SealParams{
			Kind: kind, Wrap: format.WrapCustomerKey, Bucket: q.bucket, Object: q.key})
		if err != nil {
			return nil, err
		}
		s.env, s.keyID = env, "sse-c"
	} else {
		encCtx, err := format.KMSContext(q.bucket, c.extraCtx)
		if err != nil {
			return nil, err
		}
		dk, err := g.cfg.Keys.EncryptKey(q.ctx(), c.keyID, encCtx, bytes)
		if err != nil {
			return nil, err
		}
		env, err := format.SealEnvelope(ok, dk.Plaintext, format.SealParams{
			Kind: kind, Wrap: format.WrapProvider, KeyID: dk.KeyID, WrappedKey: dk.Wrapped,
			Bucket: q.bucket, Object: q.key,
		})
		s.keyID, s.wrapped = dk.KeyID, dk.Wrapped
		dk.Zero()
		if err != nil {
			return nil, err
		}
		s.env = env
		if c.mode == sseKMS {
			s.meta.Set(metaSSE, sseKMS)
		}
		if v := format.EncodeStoredContext(c.extraCtx); v != "" {
			s.meta.Set(metaCtx, v)
		}
	}
	s.meta.Set(format.MetaEnvelope, s.env.Encode())
	return s, nil
}

// setSSEHeaders writes the response headers S3 sends for an object protected as described by
// env and its stored headers (stored may be nil for a new object: then c says).
func setSSEHeaders(w http.Header, env *format.Envelope, stored http.Header, ck *customerKey) {
	if env.Wrap == format.WrapCustomerKey {
		w.Set("X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256")
		if ck != nil {
			w.Set("X-Amz-Server-Side-Encryption-Customer-Key-Md5", ck.md5b64)
		}
		return
	}
	if stored.Get(metaSSE) == sseKMS {
		w.Set("X-Amz-Server-Side-Encryption", sseKMS)
		w.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", env.KeyID)
		if v := stored.Get(metaCtx); v != "" {
			w.Set("X-Amz-Server-Side-Encryption-Context", v)
		}
		return
	}
	w.Set("X-Amz-Server-Side-Encryption", sseS3)
}

// storedHeaders prepares the backend headers h of a new stored object protected by s: the
// backend's own encryption as configured, the envelope and the gateway's other metadata.
func (g *Gateway) storedHeaders(h http.Header, s *sealed) {
	g.backendSSE(h)
	for name, vs := range s.meta {
		h[name] = vs
	}
}

// backendSSE adds the configured backend-side encryption (double encryption) to h.
func (g *Gateway) backendSSE(h http.Header) {
	h.Del("X-Amz-Server-Side-Encryption")
	h.Del("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id")
	h.Del("X-Amz-Server-Side-Encryption-Context")
	h.Del("X-Amz-Server-Side-Encryption-Bucket-Key-Enabled")
	for name := range h {
		if strings.HasPrefix(name, ssecHeaders) || strings.HasPrefix(name, copySourceSSECHeaders) {
			h.Del(name)
		}
	}
	if g.cfg.BackendSSE != "" {
		h.Set("X-Amz-Server-Side-Encryption", g.cfg.BackendSSE)
		if g.cfg.BackendSSEKeyID != "" {
			h.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", g.cfg.BackendSSEKeyID)
		}
	}
}
