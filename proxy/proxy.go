// Package proxy is the gateway's S3 front end: one http.Handler (Gateway) that authenticates a
// client request (package sigv4), decides what the S3 operation is, encrypts object bodies on
// the way in and decrypts them on the way out (package format, keys from package cache), and
// forwards everything to the backend re-signed with the gateway's own credentials
// (aws-sdk-go-v2's SigV4 signer).
//
// Operations that carry object bytes are handled here; every other operation is forwarded
// unchanged after authentication, unless forwarding could let plaintext reach the backend, in
// which case it is refused with NotImplemented. A failure after the first response byte aborts
// the connection (http.ErrAbortHandler), so a client never mistakes a short or altered body for
// a good one.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/s3seal/s3seal/cache"
	"github.com/s3seal/s3seal/keys"
	"github.com/s3seal/s3seal/s3err"
	"github.com/s3seal/s3seal/sigv4"
)

// ETag modes (see Config.ETag).
const (
	ETagPlaintext = "plaintext"
	ETagBackend   = "backend"
)

// KeyCache hands out data keys; *cache.Cache implements it.
type KeyCache interface {
	EncryptKey(ctx context.Context, keyID string, encCtx map[string]string, bytes int64) (*cache.DataKey, error)
	DecryptKey(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error)
}

// Credential is one client access key and what it may do.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
	// Buckets this credential may use; empty = every bucket.
	Buckets []string
	// ReadOnly refuses every write.
	ReadOnly bool
	// KMSKeyIDs are the keys this credential may name with SSE-KMS ("*" = any) besides the
	// defaults.
	KMSKeyIDs []string
	// Admin may change bucket configuration and access control (policy, ACLs, lifecycle,
	// versioning, object lock, replication, ...; see bucketSubresources in routes.go).
	Admin bool
}

// Config is everything a Gateway needs. The zero value of optional fields is a sane default.
type Config struct {
	// Region is the region clients sign for.
	Region string
	// Credentials the gateway accepts from clients.
	Credentials []Credential
	// Backend is where objects are stored.
	Backend Backend
	// Keys provides data keys (normally the data-key cache in front of a key provider).
	Keys KeyCache
	// KeyID is the key provider's key for new objects.
	KeyID string
	// BucketKeyIDs overrides KeyID per bucket.
	BucketKeyIDs map[string]string
	// SSECAllowHTTP accepts SSE-C keys over plain HTTP (a loopback sidecar).
	SSECAllowHTTP bool
	// BackendSSE asks the backend for its own encryption too ("AES256" or "aws:kms"; "" none),
	// with BackendSSEKeyID for aws:kms.
	BackendSSE, BackendSSEKeyID string
	// ETag is ETagPlaintext (MD5 of the plaintext, as S3) or ETagBackend.
	ETag string
	// BackendMaxCopySize is the largest copy source (plaintext bytes) CopyObject and
	// UploadPartCopy accept (0 = S3's 5 GiB); larger sources are refused with InvalidRequest.
	BackendMaxCopySize int64
	// AllowUnencrypted are the scopes ("bucket", "bucket/prefix", "*") where objects without
	// an envelope are served as they are stored; elsewhere they are refused (see plaintext.go).
	AllowUnencrypted []string
	// S3ECBuckets are the buckets whose S3 Encryption Client v2 objects are verified and
	// decrypted ("*": all); elsewhere such objects are objects without an envelope.
	S3ECBuckets []string
	// S3ECSpoolDir holds S3EC objects' ciphertext between verification and decryption
	// ("" = os.TempDir()); S3ECSpoolMaxBytes bounds it across requests (0 = 1 GiB).
	S3ECSpoolDir      string
	S3ECSpoolMaxBytes int64
	// ReservedBuckets are bucket names refused (InvalidBucketName) besides those S3's naming
	// rules refuse: names the backend serves its own APIs under on the S3 port (nil =
	// DefaultReservedBuckets: MinIO's "minio", Ceph RGW's default admin entry "admin").
	ReservedBuckets []string
	// SigV2 accepts legacy SigV2 client signatures.
	SigV2 bool
	// BaseDomains for virtual-hosted-style requests (bucket.<domain>).
	BaseDomains []string
	// TrustForwardedHeaders verifies signatures against X-Forwarded-Host/-Proto (behind a
	// trusted load balancer only).
	TrustForwardedHeaders bool
	// Logger receives access-log and error lines; nil = discard.
	Logger *slog.Logger
	// Observer receives metrics and audit events; nil = none.
	Observer Observer
	// MaxHeaderBytes refuses requests whose request line and headers are larger, with S3's
	// RequestHeaderSectionTooLarge (0 = no limit here; the HTTP server has its own, larger one).
	MaxHeaderBytes int
	// Now is the clock (tests); nil = time.Now.
	Now func() time.Time
}

// Gateway is the S3 handler.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	obs      Observer
	verifier *sigv4.Verifier
	backend  *backend
	creds    map[string]Credential
	objects  *factsCache  // plaintext facts of the last version seen of each object (facts.go)
	listings *listMemo    // answers to listing documents seen again unchanged (listmemo.go)
	s3ec     *s3ecReading // S3 Encryption Client objects (s3ec.go)
}

// New checks cfg and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Keys == nil {
		return nil, errors.New("proxy: Keys is required")
	}
	if cfg.ETag == "" {
		cfg.ETag = ETagPlaintext
	}
	if cfg.ETag != ETagPlaintext && cfg.ETag != ETagBackend {
		return nil, fmt.Errorf("proxy: unknown ETag mode %q", cfg.ETag)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	be, err := newBackend(cfg.Backend)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	be.names = newBucketNames(cfg.ReservedBuckets)
	creds := make(map[string]Credential, len(cfg.Credentials))
	for _, c := range cfg.Credentials {
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return nil, errors.New("proxy: a credential needs an access key id and a secret")
		}
		creds[c.AccessKeyID] = c
	}
	facts, err := newFactsCache(100_000)
	if err != nil {
		return nil, err
	}
	listings, err := newListMemo()
	if err != nil {
		return nil, err
	}
	obs := cfg.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	g := &Gateway{cfg: cfg, log: log, obs: obs, backend: be, creds: creds, objects: facts, listings: listings, s3ec: newS3ECReading(cfg)}
	g.verifier = sigv4.NewVerifier(sigv4.Config{
		Region:                cfg.Region,
		Service:               "s3",
		Secrets:               secretStore(creds),
		Now:                   cfg.Now,
		SigV2:                 cfg.SigV2,
		BaseDomains:           cfg.BaseDomains,
		TrustForwardedHeaders: cfg.TrustForwardedHeaders,
	})
	return g, nil
}

// secretStore adapts the credential map to sigv4.SecretStore.
type secretStore map[string]Credential

func (s secretStore) Secret(id string) (string, bool) {
	c, ok := s[id]
	return c.SecretAccessKey, ok
}

// request is one client request in flight.
type request struct {
	w      *responseWriter
	r      *http.Request
	id     string
	op     string
	bucket string
	key    string
	auth   *sigv4.Auth
	cred   Credential
	// ssec is the SSE-C key presented for reading q's object (set for copy sources; for the
	// request's own object it is parsed on first use).
	ssec       *customerKey
	ssecParsed bool
	// query is the parameters of q's operation (opParams) from the client's URL: after
	// authentication they are the URL's whole query, so no handler sees another parameter.
	query url.Values
	// Body bytes: from the client, to the backend, from the backend (the client's share is
	// counted by the responseWriter). storedIn and storedOut are atomic: the reads of one request
	// may run in parallel (the part-boundary check of a multipart GET).
	plainIn             int64
	storedOut, storedIn atomic.Int64
}

// ctx returns the request's context.
func (q *request) ctx() context.Context { return q.r.Context() }

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.ContentLength == 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		// net/http sends 100 Continue only for requests with a body. botocore (aws-cli, boto3)
		// asks for it on every PutObject, and when a final response comes without it, keeps
		// that response's status line for the next request on the connection and misparses
		// it (then waits for its read timeout, 60 s, and retries). Answer as for any body.
		w.WriteHeader(http.StatusContinue)
	}
	rw := &responseWriter{ResponseWriter: w}
	q := &request{w: rw, r: r, id: newRequestID()}
	rw.Header().Set("X-Amz-Request-Id", q.id)
	rw.Header().Set("Server", "s3seal")
	g.obs.RequestStarted()
	defer func() {
		// Access log and metrics; a panic (ErrAbortHandler mid-stream) is logged and re-raised.
		p := recover()
		status := rw.status
		if p != nil {
			status = 0
		}
		g.obs.RequestDone(RequestInfo{
			RequestID: q.id, Op: q.op, Status: status, Duration: time.Since(start),
			PlainIn: q.plainIn, PlainOut: rw.written, StoredOut: q.storedOut.Load(), StoredIn: q.storedIn.Load(),
		})
		g.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", q.id), slog.String("op", q.op),
			slog.String("method", r.Method), slog.String("bucket", q.bucket), slog.String("key", q.key),
			slog.Int("status", status), slog.Int64("bytes_out", rw.written),
			slog.Duration("duration", time.Since(start)), slog.String("access_key", q.cred.AccessKeyID),
			slog.Bool("aborted", p != nil))
		if p != nil {
			panic(p)
		}
	}()
	if err := g.serve(q); err != nil {
		g.answerError(q, err)
	}
}

// serve routes, authenticates and authorizes q and runs its handler. Handlers return their
// failure; answerError turns it into the client's answer.
func (g *Gateway) serve(q *request) error {
	r := q.r
	if g.cfg.MaxHeaderBytes > 0 && headerBytes(r) > g.cfg.MaxHeaderBytes {
		q.op = "Unknown"
		return s3err.New("RequestHeaderSectionTooLarge", fmt.Sprintf("Your request header section exceeds the maximum allowed size (%d bytes).", g.cfg.MaxHeaderBytes))
	}
	var err *s3err.Error
	q.bucket, q.key, err = g.route(r)
	if err != nil {
		q.op = "Unknown"
		return err
	}
	if err = g.checkNames(q); err != nil {
		q.op = "Unknown"
		return err
	}
	h := g.classify(q)
	auth, aerr := g.verifier.Authenticate(r)
	if aerr != nil {
		e := g.toS3Error(q, aerr)
		g.obs.AuthFailure(q.op, e.Code)
		return e
	}
	q.auth = auth
	q.cred = g.creds[auth.AccessKeyID]
	q.r.URL = withQuery(q.r.URL, q.query)
	if e := g.authorize(q, h); e != nil {
		g.obs.AuthFailure(q.op, e.Code)
		return e
	}
	if e := reservedAccess(q); e != nil {
		return e
	}
	var before http.Header
	if h.reread {
		before = q.w.Header().Clone()
	}
	herr := h.fn(q)
	for n := 1; h.reread && n <= maxRereads && !q.w.wroteHeader && isPreconditionFailed(herr) && !hasReadConditions(r.Header); n++ {
		g.log.Debug("object replaced while being read: reading it again", "request_id", q.id, "bucket", q.bucket, "key", q.key)
		hdr := q.w.Header()
		clear(hdr)
		for k, v := range before {
			hdr[k] = v
		}
		herr = h.fn(q)
	}
	return herr
}

// maxRereads bounds how often a read is run again because the object kept changing under it.
const maxRereads = 2

// hasReadConditions reports whether the client made its read conditional: then a 412 is the
// answer to its own condition.
func hasReadConditions(h http.Header) bool {
	for _, name := range []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if h.Get(name) != "" {
			return true
		}
	}
	return false
}

// headerBytes is the size of r's request line and header section as sent.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len("Host: ") + len(r.Host) + 2
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// authorize applies the credential's bucket list and read-only and admin flags.
func (g *Gateway) authorize(q *request, h handler) *s3err.Error {
	if q.cred.ReadOnly && h.write {
		return s3err.New("AccessDenied", "This credential is read-only.")
	}
	if !q.cred.Admin && (h.admin || h.write && setsAccessControl(q.r.Header)) {
		return s3err.New("AccessDenied", "Changing bucket configuration or access control needs an admin credential.")
	}
	if q.bucket != "" && !g.bucketAllowed(q.cred, q.bucket) {
		return s3err.New("AccessDenied", "")
	}
	return nil
}

// setsAccessControl reports whether h sets an ACL other than the default (x-amz-acl other
// than private, x-amz-grant-*), object ownership or object lock on a new bucket: headers of
// CreateBucket, PutObject, CopyObject and CreateMultipartUpload that the backend applies like
// PutBucketAcl, PutObjectAcl or PutObjectLockConfiguration; or whether it bypasses an object's
// governance-mode retention (x-amz-bypass-governance-retention on DeleteObject, DeleteObjects
// and PutObjectRetention, which S3 allows only with s3:BypassGovernanceRetention): without an
// admin credential, object lock must hold.
func setsAccessControl(h http.Header) bool {
	for name, vals := range h {
		switch n := strings.ToLower(name); {
		case n == "x-amz-acl":
			for _, v := range vals {
				if !strings.EqualFold(strings.TrimSpace(v), "private") {
					return true
				}
			}
		case strings.HasPrefix(n, "x-amz-grant-"), n == "x-amz-object-ownership":
			return true
		case n == "x-amz-bucket-object-lock-enabled", n == "x-amz-bypass-governance-retention":
			for _, v := range vals {
				if !strings.EqualFold(strings.TrimSpace(v), "false") {
					return true
				}
			}
		}
	}
	return false
}

func (g *Gateway) bucketAllowed(c Credential, bucket string) bool {
	if len(c.Buckets) == 0 {
		return true
	}
	for _, b := range c.Buckets {
		if b == bucket || b == "*" {
			return true
		}
	}
	return false
}

// checkNames refuses a bucket name S3 refuses or the backend keeps for itself
// (InvalidBucketName), and an object key S3 refuses, before the request is classified; a
// copy source's names are checked with it.
func (g *Gateway) checkNames(q *request) *s3err.Error {
	if q.bucket != "" {
		if e := g.backend.names.check(q.bucket); e != nil {
			return e
		}
	}
	if e := checkKey(q.key); e != nil {
		return e
	}
	if cs := q.r.Header.Get("X-Amz-Copy-Source"); cs != "" && q.key != "" {
		bucket, key, _, e := copySource(cs)
		if e != nil {
			return e
		}
		if e := g.backend.names.check(bucket); e != nil {
			return e
		}
		if e := checkKey(key); e != nil {
			return e
		}
	}
	return nil
}

// withQuery returns a copy of u whose query is v (encoded as the backend client encodes it).
func withQuery(u *url.URL, v url.Values) *url.URL {
	c := *u
	c.RawQuery = encodeQuery(v)
	c.ForceQuery = false
	return &c
}

// route extracts bucket and key from a path-style or virtual-hosted-style request (a Host
// bucket.<base domain>, X-Forwarded-Host when trusted; see sigv4.Verifier.HostBucket).
func (g *Gateway) route(r *http.Request) (bucket, key string, e *s3err.Error) {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/") {
		return "", "", s3err.New("InvalidRequest", "request path must start with /")
	}
	// The verifier's HostBucket: the bucket is found as SigV2's canonical resource finds it.
	if b := g.verifier.HostBucket(r); b != "" {
		return b, p[1:], nil
	}
	if p == "/WriteGetObjectResponse" {
		return "", "", nil // S3 Object Lambda's operation, not a bucket (refused by classify)
	}
	rest := p[1:]
	bucket, key, _ = strings.Cut(rest, "/")
	return bucket, key, nil
}

// answerError is the one place a failed request is answered: the S3 error for err (see
// toS3Error), or, once the response has started, an aborted connection, so that the client
// sees a failed transfer and never a short or wrong body presented as complete.
func (g *Gateway) answerError(q *request, err error) {
	e := g.toS3Error(q, err)
	if e.Resource == "" {
		e.Resource = q.r.URL.Path
	}
	if q.w.wroteHeader {
		g.log.Warn("aborting response after headers", "request_id", q.id, "code", e.Code, "msg", e.Message)
		panic(http.ErrAbortHandler)
	}
	s3err.Write(q.w, q.r, e, q.id)
}

// toS3Error converts any error from the layers below into the S3 error a client should see:
// S3 and signature errors as they are, key-provider and format errors by kind (tampering
// logged as such), a canceled request as RequestTimeout, an unreachable or timed-out backend
// as ServiceUnavailable, anything else as InternalError (logged here; the client sees no
// detail).
func (g *Gateway) toS3Error(q *request, err error) *s3err.Error {
	var se *s3err.Error
	if errors.As(err, &se) {
		return se
	}
	var ve *sigv4.Error
	if errors.As(err, &ve) {
		return s3err.New(ve.Code, ve.Message)
	}
	if e := keyError(err); e != nil {
		if errors.Is(err, keys.ErrInvalidCiphertext) {
			// The wrapped data key does not open under its key and the bucket's context:
			// an authentication failure like a bad tag, logged with the same kind.
			g.obs.Tamper(q.op)
			g.log.Error("object failed authentication", "kind", "tamper", "request_id", q.id,
				"bucket", q.bucket, "key", q.key, "err", err)
			return e
		}
		g.log.Warn("key provider", "request_id", q.id, "bucket", q.bucket, "key", q.key, "err", err)
		return e
	}
	if e := formatError(err); e != nil {
		g.obs.Tamper(q.op)
		g.log.Error("object failed authentication", "kind", "tamper", "request_id", q.id,
			"bucket", q.bucket, "key", q.key, "err", err)
		return e
	}
	if errors.Is(err, context.Canceled) {
		return s3err.New("RequestTimeout", "the request was canceled")
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) {
		g.obs.BackendError(q.op)
		g.log.Warn("backend unreachable", "kind", "io", "request_id", q.id, "op", q.op, "err", err)
		return s3err.New("ServiceUnavailable", "The storage backend is unreachable.")
	}
	g.log.Error("internal error", "kind", "io", "request_id", q.id, "op", q.op, "bucket", q.bucket, "key", q.key, "err", err)
	return s3err.New("InternalError", "")
}

// responseWriter records what was sent, for the access log and for the choice between an S3
// error and an aborted connection.
type responseWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	written     int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.status = code
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

// Flush passes through to the underlying writer when it can flush.
func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
