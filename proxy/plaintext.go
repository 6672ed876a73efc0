package proxy

import (
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/s3err"
)

// Objects without an s3seal envelope ("plaintext objects") are whatever the backend holds: the
// gateway cannot tell data stored before it from plaintext an attacker with write access to
// the backend put where an encrypted object was. They are served only inside the configured
// scopes (Config.AllowUnencrypted), and never to a request that asks for encryption.

// plaintextAllowed reports whether an object without an envelope at bucket/key may be served.
func (g *Gateway) plaintextAllowed(bucket, key string) bool {
	for _, sc := range g.cfg.AllowUnencrypted {
		if sc == "*" {
			return true
		}
		b, prefix, _ := strings.Cut(sc, "/")
		if b == bucket && strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// plaintextBucket reports whether any object of bucket may be served without an envelope.
func (g *Gateway) plaintextBucket(bucket string) bool {
	for _, sc := range g.cfg.AllowUnencrypted {
		if b, _, _ := strings.Cut(sc, "/"); sc == "*" || b == bucket {
			return true
		}
	}
	return false
}

// asksForEncryption reports whether q's read carries SSE-C headers (for a copy source: the
// copy-source SSE-C key) or SSE-KMS headers, which only make sense for an encrypted object.
func asksForEncryption(q *request) bool {
	if q.ssecParsed && q.ssec != nil {
		return true
	}
	for name := range q.r.Header {
		cn := http.CanonicalHeaderKey(name)
		if strings.HasPrefix(cn, "X-Amz-Server-Side-Encryption") {
			return true
		}
	}
	return false
}

// checkPlaintext decides whether q may be served the object without an envelope it addresses:
// nil to serve it as stored. Outside the allowed scopes: AccessDenied. With SSE-C or SSE-KMS
// headers: S3's answer for encryption parameters given for an object not stored with them,
// even inside a scope, so that a client that asked for its object encrypted never takes
// substituted plaintext for it.
func (g *Gateway) checkPlaintext(q *request) *s3err.Error {
	if !g.plaintextAllowed(q.bucket, q.key) {
		return s3err.New("AccessDenied", "The object is not encrypted by this gateway and serving unencrypted objects is disabled here.")
	}
	if asksForEncryption(q) {
		return s3err.New("InvalidRequest", "The encryption parameters are not applicable to this object.")
	}
	return nil
}
