package main

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/s3seal/s3seal/metrics"
	"github.com/s3seal/s3seal/s3err"
)

// limits wraps the S3 handler with what the server itself does not offer: a cap on concurrent
// requests (refused at once with 503 SlowDown), idle timeouts on request and response bodies
// (reset by every byte, so long transfers are never cut), and a count of running handlers for
// the shutdown.
type limits struct {
	next       http.Handler
	sem        chan struct{} // one slot per request being served
	bodyRead   time.Duration
	bodyWrite  time.Duration
	m          *metrics.Metrics
	log        *slog.Logger
	running    sync.WaitGroup
	rejections rateLog
}

func newLimits(next http.Handler, maxConcurrent int, bodyRead, bodyWrite time.Duration, m *metrics.Metrics, log *slog.Logger) *limits {
	return &limits{next: next, sem: make(chan struct{}, maxConcurrent), bodyRead: bodyRead, bodyWrite: bodyWrite, m: m, log: log}
}

func (l *limits) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.running.Add(1)
	defer l.running.Done()
	select {
	case l.sem <- struct{}{}:
	default:
		l.reject(w, r)
		return
	}
	defer func() { <-l.sem }()

	rc := http.NewResponseController(w)
	if l.bodyWrite > 0 {
		// Every write renews the deadline; renew it once more for what the server flushes after
		// the handler returns (net/http clears it before the next request).
		defer func() { _ = rc.SetWriteDeadline(time.Now().Add(l.bodyWrite)) }()
		w = &deadlineWriter{ResponseWriter: w, rc: rc, d: l.bodyWrite}
	}
	if l.bodyRead > 0 && r.Body != nil && r.Body != http.NoBody {
		// Give the server its own body back when the handler returns: it checks that body to
		// see a request whose rest was left unread (a refused upload), and only then closes
		// the connection gracefully instead of parsing the rest as the next request.
		body := r.Body
		defer func() { r.Body = body }()
		r.Body = &deadlineReader{ReadCloser: body, rc: rc, d: l.bodyRead}
	}
	l.next.ServeHTTP(w, r)
}

// reject answers 503 SlowDown, as S3 does when a client should back off.
func (l *limits) reject(w http.ResponseWriter, r *http.Request) {
	l.m.Rejected("concurrency_limit")
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := strings.ToUpper(hex.EncodeToString(b[:]))
	e := s3err.New("SlowDown", "Too many concurrent requests; reduce your request rate.")
	e.Resource = r.URL.Path
	w.Header().Set("Connection", "close") // the unread body, if any, is not worth draining
	s3err.Write(w, r, e, id)
	if l.rejections.due(time.Now()) {
		l.log.Warn("concurrency limit reached: refusing requests with 503 SlowDown",
			"limit", cap(l.sem), "request_id", id, "method", r.Method)
	}
}

// wait blocks until every running handler has returned or d has passed; it reports whether all
// returned.
func (l *limits) wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() { l.running.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// rateLog lets one log line through per minute.
type rateLog struct {
	mu   sync.Mutex
	last time.Time
}

func (r *rateLog) due(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.last) < time.Minute {
		return false
	}
	r.last = now
	return true
}

// deadlineReader gives every read of a request body d to make progress.
type deadlineReader struct {
	io.ReadCloser
	rc *http.ResponseController
	d  time.Duration
}

func (b *deadlineReader) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	return b.ReadCloser.Read(p)
}

// deadlineWriter gives every write of a response d to make progress.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) WriteHeader(code int) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	w.ResponseWriter.WriteHeader(code)
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

// Flush passes through to the underlying writer.
func (w *deadlineWriter) Flush() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	_ = w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
