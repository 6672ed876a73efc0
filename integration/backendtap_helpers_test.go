package integration

// The backend tap of the multipart Complete tests (multipart_requests_test.go,
// multipart_crash_test.go; issue 22, format 3): an HTTP reverse proxy between one gateway
// process and MinIO that records every backend request the gateway makes, names its S3
// operation, and can be armed to act at the N-th request of a kind, before the request reaches
// MinIO or after MinIO answered it (the crash tests SIGKILL the gateway there).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/format"
)

// tapReq is one backend request the tap received.
type tapReq struct {
	Seq        int // from 0, in arrival order
	Method     string
	Path       string     // decoded, path-style: "/bucket/key"
	Query      url.Values // as sent
	CopySource string     // the x-amz-copy-source header, "" if none
	Range      string     // the Range header
	Kind       string     // the S3 operation (tapKind)
	Reserved   bool       // the key is under the reserved prefix (upload records, held parts)
	// Status is MinIO's answer: 0 while unanswered, tapDropped when the tap dropped the
	// request before MinIO, tapFailed when forwarding failed.
	Status int
}

const (
	tapDropped = -1
	tapFailed  = -2
)

// Label is the request's kind, with " (reserved)" for a key under the reserved prefix: what
// the crash test counts steps by.
func (r tapReq) Label() string {
	if r.Reserved {
		return r.Kind + " (reserved)"
	}
	return r.Kind
}

func (r tapReq) String() string {
	keys := make([]string, 0, len(r.Query))
	for k := range r.Query {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := fmt.Sprintf("#%d %s %s", r.Seq, r.Method, tapShortPath(r.Path))
	if len(keys) > 0 {
		s += " ?" + strings.Join(keys, "&")
	}
	if r.CopySource != "" {
		s += " copy-source=" + r.CopySource
	}
	if r.Range != "" {
		s += " Range=" + r.Range
	}
	status := fmt.Sprint(r.Status)
	switch r.Status {
	case 0:
		status = "open"
	case tapDropped:
		status = "dropped"
	case tapFailed:
		status = "failed"
	}
	return fmt.Sprintf("%s [%s] %s", s, r.Label(), status)
}

// tapShortPath shortens a path for logs: the reserved prefix (U+10FFFF) shown as "<R>" and
// long record names cut.
func tapShortPath(p string) string {
	p = strings.ReplaceAll(p, format.ReservedPrefix, "<R>")
	if len(p) > 110 {
		p = p[:100] + "..." + p[len(p)-7:]
	}
	return p
}

// tapKind names the S3 operation of a path-style backend request.
func tapKind(method, path string, q url.Values, copySource string) string {
	rest := strings.TrimPrefix(path, "/")
	if rest == "" {
		if method == http.MethodGet {
			return "ListBuckets"
		}
		return method + " /"
	}
	i := strings.IndexByte(rest, '/')
	bucketLevel := i < 0 || i == len(rest)-1
	has := q.Has
	other := func(prefix string) string {
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return prefix + "?" + strings.Join(keys, "&")
	}
	if bucketLevel {
		switch method {
		case http.MethodGet:
			switch {
			case q.Get("list-type") == "2":
				return "ListObjectsV2"
			case has("versions"):
				return "ListObjectVersions"
			case has("uploads"):
				return "ListMultipartUploads"
			case has("location"):
				return "GetBucketLocation"
			case has("versioning"):
				return "GetBucketVersioning"
			}
			for k := range q {
				if !slices.Contains([]string{"prefix", "delimiter", "marker", "max-keys", "encoding-type"}, k) {
					return other("GetBucket")
				}
			}
			return "ListObjects"
		case http.MethodHead:
			return "HeadBucket"
		case http.MethodPost:
			if has("delete") {
				return "DeleteObjects"
			}
			return other("PostBucket")
		case http.MethodPut:
			if len(q) == 0 {
				return "CreateBucket"
			}
			return other("PutBucket")
		case http.MethodDelete:
			if len(q) == 0 {
				return "DeleteBucket"
			}
			return other("DeleteBucket")
		}
		return other(method + "Bucket")
	}
	switch method {
	case http.MethodPost:
		switch {
		case has("uploadId"):
			return "CompleteMultipartUpload"
		case has("uploads"):
			return "CreateMultipartUpload"
		}
		return other("PostObject")
	case http.MethodPut:
		switch {
		case has("partNumber") && has("uploadId") && copySource != "":
			return "UploadPartCopy"
		case has("partNumber") && has("uploadId"):
			return "UploadPart"
		case copySource != "":
			return "CopyObject"
		case len(q) == 0:
			return "PutObject"
		}
		return other("PutObject")
	case http.MethodGet:
		switch {
		case has("uploadId"):
			return "ListParts"
		case len(q) == 0 || (len(q) == 1 && (has("versionId") || has("partNumber"))):
			return "GetObject"
		}
		return other("GetObject")
	case http.MethodHead:
		return "HeadObject"
	case http.MethodDelete:
		switch {
		case has("uploadId"):
			return "AbortMultipartUpload"
		case len(q) == 0 || (len(q) == 1 && has("versionId")):
			return "DeleteObject"
		}
		return other("DeleteObject")
	}
	return other(method + "Object")
}

// tapMoment is when an armed hook runs.
type tapMoment int

const (
	// tapBefore: the request arrived and has not been forwarded; after Do, it is dropped
	// (connection closed, MinIO never sees it) unless Forward is set.
	tapBefore tapMoment = iota
	// tapAfter: MinIO answered and the tap has read the whole answer; after Do, the answer is
	// dropped (connection closed, the gateway never sees it) unless PassAnswer is set.
	tapAfter
)

func (m tapMoment) String() string {
	if m == tapBefore {
		return "before"
	}
	return "after"
}

// tapHook acts once, at the N-th request (from 1, counted from arming) that Match accepts.
type tapHook struct {
	Match      func(tapReq) bool
	N          int
	At         tapMoment
	Do         func(tapReq)
	Forward    bool // tapBefore: forward the request after Do
	PassAnswer bool // tapAfter: pass MinIO's answer on after Do

	seen  int
	fired chan struct{} // closed when the N-th request arrived (before Do runs)
	done  chan struct{} // closed once Do has returned
}

// Fired reports whether the N-th request has arrived (Do may still be running).
func (h *tapHook) Fired() bool {
	select {
	case <-h.fired:
		return true
	default:
		return false
	}
}

// Wait waits (up to d) until Do has returned; it reports whether it has.
func (h *tapHook) Wait(d time.Duration) bool {
	select {
	case <-h.done:
		return true
	case <-time.After(d):
		return false
	}
}

// backendTap is the recording, hookable reverse proxy. The Host header is passed on as the
// gateway signed it, so MinIO accepts the gateway's signatures.
type backendTap struct {
	URL string

	mu    sync.Mutex
	reqs  []*tapReq
	hooks []*tapHook
}

type tapCtxKey struct{}

type tapCtx struct {
	rec   *tapReq
	after []*tapHook
}

var errTapDrop = errors.New("backend tap: answer dropped on purpose")

// newBackendTap starts a tap in front of upstream (MinIO's endpoint); it stops at the end of
// the test.
func newBackendTap(t testing.TB, upstream string) *backendTap {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	p := &backendTap{}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	tr.MaxIdleConnsPerHost = 64
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // as signed by the gateway
		},
		Transport:      tr,
		FlushInterval:  -1,
		ModifyResponse: p.answered,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, errTapDrop) {
				tapHangUp(w)
				return
			}
			if tc, ok := r.Context().Value(tapCtxKey{}).(tapCtx); ok {
				p.setStatus(tc.rec, tapFailed)
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &tapReq{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
			CopySource: r.Header.Get("X-Amz-Copy-Source"), Range: r.Header.Get("Range")}
		rec.Kind = tapKind(rec.Method, rec.Path, rec.Query, rec.CopySource)
		if rest, ok := strings.CutPrefix(rec.Path, "/"); ok {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				rec.Reserved = strings.HasPrefix(rest[i+1:], format.ReservedPrefix)
			}
		}
		p.mu.Lock()
		rec.Seq = len(p.reqs)
		p.reqs = append(p.reqs, rec)
		var before, after []*tapHook
		for _, h := range p.hooks {
			if h.seen >= h.N || !h.Match(*rec) {
				continue
			}
			if h.seen++; h.seen == h.N {
				close(h.fired)
				if h.At == tapBefore {
					before = append(before, h)
				} else {
					after = append(after, h)
				}
			}
		}
		snapshot := *rec
		p.mu.Unlock()
		for _, h := range before {
			h.Do(snapshot)
			close(h.done)
			if !h.Forward {
				p.setStatus(rec, tapDropped)
				tapHangUp(w)
				return
			}
		}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tapCtxKey{}, tapCtx{rec, after})))
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// answered records MinIO's status and runs the tapAfter hooks of the request.
func (p *backendTap) answered(resp *http.Response) error {
	tc, _ := resp.Request.Context().Value(tapCtxKey{}).(tapCtx)
	if tc.rec == nil {
		return nil
	}
	p.setStatus(tc.rec, resp.StatusCode)
	if len(tc.after) == 0 {
		return nil
	}
	body, err := io.ReadAll(resp.Body) // MinIO has finished the request once its answer ended
	resp.Body.Close()
	if err != nil {
		return err
	}
	p.mu.Lock()
	snapshot := *tc.rec
	p.mu.Unlock()
	drop := false
	for _, h := range tc.after {
		h.Do(snapshot)
		close(h.done)
		drop = drop || !h.PassAnswer
	}
	if drop {
		return errTapDrop
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

// tapHangUp closes the gateway's connection without an answer.
func tapHangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (p *backendTap) setStatus(rec *tapReq, status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rec.Status == 0 {
		rec.Status = status
	}
}

// arm adds h; it counts the requests Match accepts from now on.
func (p *backendTap) arm(h *tapHook) *tapHook {
	if h.N < 1 {
		h.N = 1
	}
	h.fired, h.done = make(chan struct{}), make(chan struct{})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hooks = append(p.hooks, h)
	return h
}

// mark is the sequence number the next request will get (for since and settle).
func (p *backendTap) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.reqs)
}

// since returns copies of the requests from mark on.
func (p *backendTap) since(mark int) []tapReq {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]tapReq, 0, len(p.reqs)-mark)
	for _, r := range p.reqs[mark:] {
		out = append(out, *r)
	}
	return out
}

// settle waits until every request from mark on is answered (or dropped) and no new one has
// arrived for quiet (requests the gateway makes after answering its client count too), up to
// 15 s, and returns them.
func (p *backendTap) settle(t testing.TB, mark int, quiet time.Duration) []tapReq {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	last, lastChange := -1, time.Now()
	for {
		reqs := p.since(mark)
		open := 0
		for _, r := range reqs {
			if r.Status == 0 {
				open++
			}
		}
		if len(reqs) != last {
			last, lastChange = len(reqs), time.Now()
		}
		if open == 0 && time.Since(lastChange) >= quiet {
			return reqs
		}
		if time.Now().After(deadline) {
			t.Errorf("backend tap: %d requests, %d of them unanswered, still changing after 15 s", len(reqs), open)
			return reqs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tapCounts counts requests by Label.
func tapCounts(reqs []tapReq) map[string]int {
	n := map[string]int{}
	for _, r := range reqs {
		n[r.Label()]++
	}
	return n
}

// tapLog logs reqs one a line and their counts by kind.
func tapLog(t testing.TB, title string, reqs []tapReq) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d backend requests\n", title, len(reqs))
	for _, r := range reqs {
		fmt.Fprintf(&b, "  %v\n", r)
	}
	counts := tapCounts(reqs)
	labels := make([]string, 0, len(counts))
	for l := range counts {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	b.WriteString("  by kind:")
	for _, l := range labels {
		fmt.Fprintf(&b, " %s=%d", l, counts[l])
	}
	t.Log(b.String())
}

// TestBackendTapKinds: tapKind names the operations the Complete tests count (no services).
func TestBackendTapKinds(t *testing.T) {
	q := func(s string) url.Values {
		v, err := url.ParseQuery(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		method, path, query, copySource, want string
	}{
		{"POST", "/b/k", "uploadId=x", "", "CompleteMultipartUpload"},
		{"POST", "/b/k", "uploads=", "", "CreateMultipartUpload"},
		{"PUT", "/b/k", "partNumber=1&uploadId=x", "", "UploadPart"},
		{"PUT", "/b/k", "partNumber=1&uploadId=x", "/b/k", "UploadPartCopy"},
		{"PUT", "/b/k", "", "/b/k", "CopyObject"},
		{"PUT", "/b/k", "", "", "PutObject"},
		{"GET", "/b/k", "uploadId=x&max-parts=1000", "", "ListParts"},
		{"GET", "/b/k", "", "", "GetObject"},
		{"GET", "/b/k", "versionId=v", "", "GetObject"},
		{"HEAD", "/b/k", "", "", "HeadObject"},
		{"DELETE", "/b/k", "uploadId=x", "", "AbortMultipartUpload"},
		{"DELETE", "/b/k", "versionId=v", "", "DeleteObject"},
		{"GET", "/b", "list-type=2&prefix=p", "", "ListObjectsV2"},
		{"GET", "/b/", "versions=&prefix=p", "", "ListObjectVersions"},
		{"GET", "/b", "prefix=p", "", "ListObjects"},
		{"GET", "/b", "uploads=", "", "ListMultipartUploads"},
		{"POST", "/b", "delete=", "", "DeleteObjects"},
		{"DELETE", "/b", "", "", "DeleteBucket"},
		{"GET", "/b/k", "tagging=", "", "GetObject?tagging"},
	} {
		if got := tapKind(c.method, c.path, q(c.query), c.copySource); got != c.want {
			t.Errorf("%s %s?%s (copy source %q): %s, want %s", c.method, c.path, c.query, c.copySource, got, c.want)
		}
	}
}
