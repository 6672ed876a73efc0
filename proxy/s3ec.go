package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/s3ec"
	"github.com/s3seal/s3seal/s3err"
)

// Objects written by the AWS S3 Encryption Client (v2 format) are decrypted transparently on
// GET. Their GCM tag covers the whole object, so every read streams the whole stored object
// once to verify it, then reads the requested bytes again (package s3ec).

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
	if o.backendETag != "" {
		g.objects.Add(factsKey(q.bucket, q.key, o.backendETag), f)
	}
	return f, nil
}

// s3ecReader verifies the whole S3EC object o, then returns a reader of its plaintext
// [off, off+length).
func (g *Gateway) s3ecReader(q *request, o *storedObject, off, length int64) (io.ReadCloser, error) {
	if ck, e := g.readCustomerKey(q); e != nil || ck != nil {
		if e == nil {
			e = s3err.New("InvalidRequest", "The encryption parameters are not applicable to this object.")
		}
		return nil, e
	}
	dk, err := g.cfg.Keys.DecryptKey(q.ctx(), "", o.s3ec.WrappedKey, o.s3ec.Context)
	if err != nil {
		return nil, err
	}
	whole, err := g.readStored(q, o, 0, o.storedSize)
	if err != nil {
		clear(dk)
		return nil, err
	}
	err = o.s3ec.Verify(dk, whole, o.storedSize)
	whole.Close()
	if err != nil {
		clear(dk)
		return nil, fmt.Errorf("%w: S3 Encryption Client object: %v", format.ErrAuth, err)
	}
	g.keyUse(q, "read", "s3ec", o.s3ec.WrappedKey)
	if length == 0 {
		clear(dk)
		return io.NopCloser(http.NoBody), nil
	}
	rc, err := g.readStored(q, o, off, length)
	if err != nil {
		clear(dk)
		return nil, err
	}
	r, err := o.s3ec.NewReader(dk, rc, off)
	clear(dk) // the cipher keeps its own expanded key
	if err != nil {
		rc.Close()
		return nil, err
	}
	return readCloser{r, rc}, nil
}
