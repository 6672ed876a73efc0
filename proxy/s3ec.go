package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/s3ec"
	"github.com/s3seal/s3seal/s3err"
)

// Objects written by the AWS S3 Encryption Client (v2 format) are decrypted on GET in the
// buckets Config.S3ECBuckets names (elsewhere they are objects without an envelope like any
// other). Their GCM tag covers the whole object, so every read, whole or ranged, reads the whole
// stored object from the backend once, spooling its ciphertext to a bounded local temp area
// while the tag is computed, and decrypts the requested bytes from that spool only after the
// tag verified (s3ec.Open): what is released is exactly what was verified.

// s3ecReading is the S3EC configuration of a gateway.
type s3ecReading struct {
	all     bool
	buckets map[string]bool
	spool   *spoolArea
}

// Spool defaults.
const defaultS3ECSpoolMaxBytes = 1 << 30

func newS3ECReading(cfg Config) *s3ecReading {
	r := &s3ecReading{buckets: map[string]bool{}, spool: &spoolArea{dir: cfg.S3ECSpoolDir, max: cfg.S3ECSpoolMaxBytes}}
	for _, b := range cfg.S3ECBuckets {
		if b == "*" {
			r.all = true
		}
		r.buckets[b] = true
	}
	if r.spool.dir == "" {
		r.spool.dir = os.TempDir()
	}
	if r.spool.max <= 0 {
		r.spool.max = defaultS3ECSpoolMaxBytes
	}
	return r
}

func (r *s3ecReading) enabled(bucket string) bool { return r.all || r.buckets[bucket] }

// detectS3EC sets o.s3ec when o carries S3 Encryption Client v2 metadata and q's bucket reads
// such objects; in other buckets the metadata is not looked at.
func (g *Gateway) detectS3EC(q *request, o *storedObject) error {
	if o.s3ec != nil || o.env != nil || !g.s3ec.enabled(q.bucket) {
		return nil
	}
	ec, err := parseS3EC(o.header)
	if err != nil {
		return fmt.Errorf("%w: %v", format.ErrMalformed, err)
	}
	o.s3ec = ec
	return nil
}

// s3ecMetaNames are the S3 Encryption Client's metadata headers that facts are derived from
// (part of metaNames, the facts cache's identity of a version).
var s3ecMetaNames = []string{"X-Amz-Meta-" + s3ec.MetaKey, "X-Amz-Meta-" + s3ec.MetaIV, "X-Amz-Meta-" + s3ec.MetaCEKAlg,
	"X-Amz-Meta-" + s3ec.MetaWrapAlg, "X-Amz-Meta-" + s3ec.MetaMatDesc, "X-Amz-Meta-" + s3ec.MetaTagLen,
	"X-Amz-Meta-" + s3ec.MetaPlainSize}

// parseS3EC reads S3 Encryption Client v2 metadata from a backend response's headers.
func parseS3EC(h http.Header) (*s3ec.Object, error) {
	return s3ec.Parse(func(name string) string { return h.Get("X-Amz-Meta-" + name) })
}

// isS3ECMeta reports the user-metadata headers that describe an S3EC object's encryption (not
// shown to clients, who get the plaintext).
func isS3ECMeta(canonical string) bool {
	name, ok := strings.CutPrefix(strings.ToLower(canonical), "x-amz-meta-")
	if !ok {
		return false
	}
	switch name {
	case s3ec.MetaKey, s3ec.MetaIV, s3ec.MetaCEKAlg, s3ec.MetaWrapAlg, s3ec.MetaMatDesc, s3ec.MetaTagLen, s3ec.MetaPlainSize:
		return true
	}
	return false
}

// s3ecFacts are an S3EC object's facts: its plaintext size and the backend's ETag (the S3
// Encryption Client's objects never had a plaintext ETag).
func (g *Gateway) s3ecFacts(q *request, o *storedObject) (objectFacts, error) {
	plain, err := o.s3ec.PlainSizeOf(o.storedSize)
	if err != nil {
		return objectFacts{}, err
	}
	f := objectFacts{encrypted: true, plainSize: plain, etag: o.backendETag}
	return f, nil
}

// s3ecReader reads the whole S3EC object o from the backend once into a spool, verifies it,
// and returns a reader of its plaintext [off, off+length) decrypted from the spool. Closing
// the reader gives the spool space back.
func (g *Gateway) s3ecReader(q *request, o *storedObject, off, length int64) (io.ReadCloser, error) {
	if ck, e := g.readCustomerKey(q); e != nil || ck != nil {
		if e == nil {
			e = s3err.New("InvalidRequest", "The encryption parameters are not applicable to this object.")
		}
		return nil, e
	}
	plain, err := o.s3ec.PlainSizeOf(o.storedSize)
	if err != nil {
		return nil, fmt.Errorf("%w: S3 Encryption Client object: %v", format.ErrAuth, err)
	}
	sp, err := g.s3ec.spool.reserve(plain)
	switch {
	case errors.Is(err, errSpoolBusy):
		return nil, s3err.New("SlowDown", "The gateway's space for verifying S3 Encryption Client objects is in use; please retry.")
	case errors.Is(err, errSpoolTooLarge):
		return nil, s3err.Newf("NotImplemented", "The object was written by the S3 Encryption Client and is larger than the gateway can verify (%d bytes, encryption.s3ec_spool_max_bytes).", g.s3ec.spool.max)
	case err != nil:
		return nil, err
	}
	r, err := g.s3ecOpen(q, o, sp, off, length)
	if err != nil {
		sp.Close()
		return nil, err
	}
	return readCloser{r, sp}, nil
}

// s3ecOpen unwraps o's data key, reads the whole stored object once into sp and verifies it.
func (g *Gateway) s3ecOpen(q *request, o *storedObject, sp *spoolFile, off, length int64) (io.Reader, error) {
	dk, err := g.cfg.Keys.DecryptKey(q.ctx(), "", o.s3ec.WrappedKey, o.s3ec.Context)
	if err != nil {
		return nil, err
	}
	defer clear(dk) // the cipher keeps its own expanded key
	whole, err := g.readStored(q, o, 0, o.storedSize)
	if err != nil {
		return nil, err
	}
	defer whole.Close()
	r, err := o.s3ec.Open(dk, whole, o.storedSize, sp, off, length)
	switch {
	case err == nil:
		g.keyUse(q, "read", "s3ec", o.s3ec.WrappedKey)
		return r, nil
	case q.ctx().Err() != nil:
		return nil, q.ctx().Err() // the client went away: not the object's fault
	case errors.Is(err, s3ec.ErrAuth):
		return nil, fmt.Errorf("%w: S3 Encryption Client object: %v", format.ErrAuth, err)
	}
	return nil, err
}
