package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/keys"
	"github.com/s3seal/s3seal/s3err"
	"github.com/s3seal/s3seal/sigv4"
)

// TestAnswerError (issue 11, acceptance 1): answerError is the one place a handler's error
// becomes the client's answer. Each kind of error gets its S3 error (status and code, from S3's
// documentation, not from this package's table), and once the response has started the
// connection is aborted instead.
func TestAnswerError(t *testing.T) {
	g, _ := newTestGateway(t)
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: errTimeout{}}
	for _, c := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"S3 error", s3err.New("NoSuchKey", ""), 404, "NoSuchKey"},
		{"wrapped S3 error", fmt.Errorf("context: %w", s3err.New("PreconditionFailed", "")), 412, "PreconditionFailed"},
		{"signature error", &sigv4.Error{Code: "SignatureDoesNotMatch"}, 403, "SignatureDoesNotMatch"},
		{"key provider down", fmt.Errorf("kms: %w", keys.ErrUnavailable), 503, "ServiceUnavailable"},
		{"key disabled", fmt.Errorf("kms: %w", keys.ErrKeyDisabled), 400, "KMS.DisabledException"},
		{"wrapped key tampered", fmt.Errorf("kms: %w", keys.ErrInvalidCiphertext), 500, "InternalError"},
		{"tamper", fmt.Errorf("segment 3: %w", format.ErrAuth), 500, "InternalError"},
		{"backend I/O timeout", fmt.Errorf("backend: %w", timeout), 503, "ServiceUnavailable"},
		{"backend cut", fmt.Errorf("body: %w", io.ErrUnexpectedEOF), 503, "ServiceUnavailable"},
		{"canceled", fmt.Errorf("request: %w", context.Canceled), 400, "RequestTimeout"},
		{"anything else", errors.New("boom"), 500, "InternalError"},
	} {
		rec := httptest.NewRecorder()
		q := &request{w: &responseWriter{ResponseWriter: rec}, r: httptest.NewRequest(http.MethodGet, "http://gw.test/b/k", nil), bucket: "b", key: "k", id: "R"}
		g.answerError(q, c.err)
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), "<Code>"+c.code+"</Code>") {
			t.Errorf("%s: %d %q, want %d %s", c.name, rec.Code, rec.Body.String(), c.status, c.code)
		}
		if strings.Contains(rec.Body.String(), "boom") {
			t.Errorf("%s: the cause reached the client: %q", c.name, rec.Body.String())
		}
	}

	// After the status line: an abort, never an error document appended to a body.
	rec := httptest.NewRecorder()
	q := &request{w: &responseWriter{ResponseWriter: rec}, r: httptest.NewRequest(http.MethodGet, "http://gw.test/b/k", nil), bucket: "b", key: "k", id: "R"}
	q.w.WriteHeader(http.StatusOK)
	defer func() {
		if p := recover(); p != http.ErrAbortHandler {
			t.Errorf("answerError after the headers: recovered %v, want http.ErrAbortHandler", p)
		}
	}()
	g.answerError(q, fmt.Errorf("segment 9: %w", format.ErrAuth))
	t.Error("answerError after the headers returned")
}

type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }
