package proxy

import (
	"errors"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/keys"
	"github.com/s3seal/s3seal/s3err"
)

// keyError maps key-provider failures to what S3 answers for SSE-KMS objects; nil if err is not
// one.
func keyError(err error) *s3err.Error {
	switch {
	case errors.Is(err, keys.ErrKeyNotFound):
		return s3err.New("KMS.NotFoundException", "The key that protects this object was not found.")
	case errors.Is(err, keys.ErrKeyDisabled):
		return s3err.New("KMS.DisabledException", "The key that protects this object is disabled.")
	case errors.Is(err, keys.ErrAccessDenied):
		return s3err.New("AccessDenied", "The gateway may not use the key that protects this object.")
	case errors.Is(err, keys.ErrInvalidCiphertext):
		// The wrapped data key does not open under its key and context: metadata was altered,
		// or the object was moved to another bucket in the backend.
		return s3err.New("InternalError", "The object's key envelope failed authentication.")
	case errors.Is(err, keys.ErrUnavailable):
		return s3err.New("ServiceUnavailable", "The key provider is unreachable.")
	}
	return nil
}

// formatError maps format failures; nil if err is not one. Authentication failures are the
// "tamper" kind (logged apart from I/O errors by the caller).
func formatError(err error) *s3err.Error {
	switch {
	case errors.Is(err, format.ErrAuth):
		return s3err.New("InternalError", "The stored object failed authentication: it was modified, truncated or moved in the backend.")
	case errors.Is(err, format.ErrMalformed), errors.Is(err, format.ErrVersion):
		return s3err.New("InternalError", "The stored object is not in a format this gateway can read.")
	case errors.Is(err, format.ErrSize):
		return s3err.New("IncompleteBody", "")
	}
	return nil
}

// openKey unwraps the object key of a stored object read as q's bucket and key (one "read" key
// use): with the customer's key for SSE-C objects, with the key provider otherwise.
func (g *Gateway) openKey(q *request, o *storedObject) (*format.ObjectKey, error) {
	env := o.env
	ck, e := g.readCustomerKey(q)
	if e != nil {
		return nil, e
	}
	if env.Wrap == format.WrapCustomerKey {
		if ck == nil {
			return nil, s3err.New("InvalidRequest", "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.")
		}
		ok, err := env.Open(ck.key, q.bucket, q.key)
		if err != nil {
			if errors.Is(err, format.ErrAuth) {
				return nil, s3err.New("AccessDenied", "The SSE-C key does not match the key the object was stored with.")
			}
			return nil, err
		}
		g.keyUse(q, "read", "sse-c", nil)
		return ok, nil
	}
	if ck != nil {
		return nil, s3err.New("InvalidRequest", "The encryption parameters are not applicable to this object.")
	}
	extra, err := format.DecodeStoredContext(o.header.Get(metaCtx))
	if err != nil {
		return nil, err // ErrMalformed, or ErrAuth for a reserved key: answered as tampered
	}
	encCtx, err := format.KMSContext(q.bucket, extra)
	if err != nil {
		return nil, err
	}
	dk, err := g.cfg.Keys.DecryptKey(q.ctx(), env.KeyID, env.WrappedKey, encCtx)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	ok, err := env.Open(dk, q.bucket, q.key)
	if err != nil {
		return nil, err
	}
	g.keyUse(q, "read", env.KeyID, env.WrappedKey)
	return ok, nil
}

// customerKeyCheck is the SSE-C check of a read that shows an object's attributes (HEAD,
// GetObjectAttributes), as on S3: an SSE-C object needs its key (400 InvalidRequest without,
// 403 AccessDenied with another), and SSE-C headers on another object are InvalidRequest. key
// is the object key stat returned (nil on a cache hit), already opened with the request's key.
func (g *Gateway) customerKeyCheck(q *request, o *storedObject, key *format.ObjectKey) error {
	if o.env != nil && o.env.Wrap == format.WrapCustomerKey {
		if key != nil {
			return nil
		}
		k, err := g.openKey(q, o)
		k.Zero()
		return err
	}
	ck, e := g.readCustomerKey(q)
	if e != nil {
		return e
	}
	if ck != nil {
		return s3err.New("InvalidRequest", "The encryption parameters are not applicable to this object.")
	}
	return nil
}

// readCustomerKey returns the SSE-C key presented for reading q's object, if any.
func (g *Gateway) readCustomerKey(q *request) (*customerKey, *s3err.Error) {
	if !q.ssecParsed {
		ck, e := g.requestCustomerKey(q, ssecHeaders)
		if e != nil {
			return nil, e
		}
		q.ssec, q.ssecParsed = ck, true
	}
	return q.ssec, nil
}

// keyUse reports one use of a data key on q's object to the audit trail.
func (g *Gateway) keyUse(q *request, action, keyID string, wrapped []byte) {
	g.obs.KeyUse(KeyUse{
		Time: g.cfg.Now().UTC(), RequestID: q.id, Action: action, AccessKey: q.cred.AccessKeyID,
		Bucket: q.bucket, Object: q.key, KeyID: keyID, WrappedKeyDigest: wrappedDigest(wrapped),
	})
}
