package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sync/atomic"
	"time"
)

// Observer receives what the gateway does, for metrics and the key-use audit trail. Every
// method must be cheap and safe for concurrent use. Config.Observer nil means none.
type Observer interface {
	// RequestStarted and RequestDone bracket every client request (in-flight gauge).
	RequestStarted()
	// RequestDone reports one finished client request.
	RequestDone(RequestInfo)
	// AuthFailure reports a request refused by authentication or authorization; reason is the
	// S3 error code (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied, ...).
	AuthFailure(op, reason string)
	// Tamper reports stored data that failed authentication (modified, truncated, moved).
	Tamper(op string)
	// Unencrypted reports an object served as stored because the gateway did not encrypt it.
	Unencrypted(op string)
	// BackendError reports a backend request that failed or answered 5xx.
	BackendError(op string)
	// KeyUse reports one use of a data key on an object (the audit trail).
	KeyUse(KeyUse)
}

// RequestInfo describes one finished client request.
type RequestInfo struct {
	RequestID string
	Op        string // S3 operation name
	Status    int    // HTTP status sent (0: connection aborted)
	Duration  time.Duration
	// Bytes of the client's payload received and of the body sent to the client (plaintext),
	// and bytes sent to and received from the backend for object bodies (ciphertext).
	PlainIn, PlainOut, StoredOut, StoredIn int64
}

// KeyUse is one audit record: which key protected which object, for whom.
type KeyUse struct {
	Time      time.Time
	RequestID string
	Action    string // "write", "read", "copy", "rewrap"
	AccessKey string // the client credential
	Bucket    string
	Object    string
	KeyID     string // key provider key id (KMS ARN or local key name)
	// WrappedKeyDigest is the hex SHA-256 of the wrapped data key: it identifies the data key
	// (and the KMS call that made it) without revealing anything.
	WrappedKeyDigest string
}

// wrappedDigest returns the hex SHA-256 of a wrapped data key.
func wrappedDigest(wrapped []byte) string {
	s := sha256.Sum256(wrapped)
	return hex.EncodeToString(s[:])
}

// nopObserver is used when Config.Observer is nil.
type nopObserver struct{}

func (nopObserver) RequestStarted()            {}
func (nopObserver) RequestDone(RequestInfo)    {}
func (nopObserver) AuthFailure(string, string) {}
func (nopObserver) Tamper(string)              {}
func (nopObserver) Unencrypted(string)         {}
func (nopObserver) BackendError(string)        {}
func (nopObserver) KeyUse(KeyUse)              {}

// countingReader counts the bytes read through it, atomically: the boundary reads of a
// multipart layout check run in parallel and add to the same request counter. A body that ends
// before its declared length (io.ErrUnexpectedEOF from net/http) becomes a transferError, so
// that package format does not take a dropped backend connection for stored data that was
// truncated (kind=tamper).
type countingReader struct {
	r io.Reader
	n *atomic.Int64 // shared by the parallel reads of one request
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	if err == io.ErrUnexpectedEOF {
		err = transferError{}
	}
	return n, err
}

// transferError is a body cut short in transit. It is a net.Error (not a timeout) and
// deliberately does not unwrap to io.ErrUnexpectedEOF.
type transferError struct{}

func (transferError) Error() string   { return "connection closed before the end of the body" }
func (transferError) Timeout() bool   { return false }
func (transferError) Temporary() bool { return false }
