package proxy_test

// Tests of CompleteMultipartUpload against a lying backend (issue 21): a part set the client
// did not name is never completed, in either ETag mode; a failed part check is never answered
// 200 because of what the backend answers afterwards; and an upload is continued only by a
// credential that may use its KMS key.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/s3seal/s3seal/keys"
	"github.com/s3seal/s3seal/proxy"
)

// rewriter is a backend that lies: it keeps the last stored body of each UploadPart (by part
// number) and lets a test replace any answer (fn, nil: pass through).
type rewriter struct {
	next http.RoundTripper

	mu    sync.Mutex
	parts map[int][]byte
	fn    func(r *http.Request, resp *http.Response) *http.Response
}

func (w *rewriter) set(fn func(r *http.Request, resp *http.Response) *http.Response) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fn = fn
}

func (w *rewriter) part(n int) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.parts[n]
}

func (w *rewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	if n, err := strconv.Atoi(r.URL.Query().Get("partNumber")); err == nil && r.Method == http.MethodPut && r.Body != nil && r.Header.Get("X-Amz-Copy-Source") == "" {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		w.mu.Lock()
		w.parts[n] = body
		w.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := w.next.RoundTrip(r)
	w.mu.Lock()
	fn := w.fn
	w.mu.Unlock()
	if err != nil || fn == nil {
		return resp, err
	}
	return fn(r, resp), nil
}

// answer replaces resp by status with body (an S3 error document, or the bytes of a range).
func answer(resp *http.Response, status int, h http.Header, body []byte) *http.Response {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	resp.StatusCode, resp.Status = status, fmt.Sprintf("%d %s", status, http.StatusText(status))
	resp.Header = h
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.ContentLength = int64(len(body))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

// preconditionFailed makes resp the backend's 412 (as S3 answers a failed If-Match).
func preconditionFailed(r *http.Request, resp *http.Response) *http.Response {
	var body []byte
	if r.Method != http.MethodHead {
		body = []byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`)
	}
	return answer(resp, http.StatusPreconditionFailed, http.Header{"Content-Type": {"application/xml"}}, body)
}

// lyingConfig is what a test of this file changes in the gateway's configuration.
type lyingConfig func(c *proxy.Config, lf *keys.LocalFile)

// newLyingFixture is newFixture with the configuration changed by cfg and a rewriter between
// the gateway and the embedded store.
func newLyingFixture(t *testing.T, cfg lyingConfig) (*fixture, *rewriter) {
	t.Helper()
	store, lf := newTestStore(t)
	rw := &rewriter{next: store.Transport(), parts: map[int][]byte{}}
	ft := &faultTransport{next: rw}
	c := fixtureConfig(store, lf, ft)
	cfg(&c, lf)
	f := serveFixture(t, c, ft, store)
	f.createBucket()
	return f, rw
}

// startUpload creates an upload of key and uploads parts (numbered from 1) through the
// gateway; it returns the upload id and the parts' ETags as UploadPart answered them.
func (f *fixture) startUpload(key string, parts ...[]byte) (string, []string) {
	f.t.Helper()
	r := f.do(http.MethodPost, "/"+ipBucket+"/"+key+"?uploads", nil, nil)
	var ini initiateResult
	if r.status != http.StatusOK || xml.Unmarshal(r.body, &ini) != nil || ini.UploadID == "" {
		f.t.Fatalf("CreateMultipartUpload: %d %s", r.status, r.body)
	}
	var etags []string
	for i, p := range parts {
		r := f.do(http.MethodPut, fmt.Sprintf("/%s/%s?partNumber=%d&uploadId=%s", ipBucket, key, i+1, ini.UploadID), p, nil)
		if r.status != http.StatusOK || r.header.Get("ETag") == "" {
			f.t.Fatalf("UploadPart %d: %d %s", i+1, r.status, r.body)
		}
		etags = append(etags, r.header.Get("ETag"))
	}
	return ini.UploadID, etags
}

// completeBody is a CompleteMultipartUpload document naming parts 1..len(etags).
func completeBody(etags ...string) []byte {
	var done completeUpload
	for i, e := range etags {
		done.Parts = append(done.Parts, completePart{i + 1, e})
	}
	body, _ := xml.Marshal(done)
	return body
}

// servedAs makes the backend answer every ranged GET of path from fake instead of the stored
// object (same length): what a backend that completed another part set than asked would hold.
func servedAs(path string, fake []byte) func(r *http.Request, resp *http.Response) *http.Response {
	return func(r *http.Request, resp *http.Response) *http.Response {
		rng := r.Header.Get("Range")
		if r.Method != http.MethodGet || r.URL.Path != path || resp.StatusCode/100 != 2 || !strings.HasPrefix(rng, "bytes=") {
			return resp
		}
		a, b, ok := strings.Cut(strings.TrimPrefix(rng, "bytes="), "-")
		first, err1 := strconv.ParseInt(a, 10, 64)
		last, err2 := strconv.ParseInt(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || last >= int64(len(fake)) {
			return resp
		}
		h := resp.Header.Clone()
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(fake)))
		return answer(resp, http.StatusPartialContent, h, fake[first:last+1])
	}
}

// TestCompleteBackendETagsOtherParts (issue 21a): with encryption.etag backend, the client
// completes parts [1,2] of an upload that also holds a part 3 of the same size; the backend
// completes parts 1 and 3 (every read of the object serves them). Complete reads nothing back
// (FORMAT.md 3.6), so it may answer 200; every read of the object is refused, since part 3's
// header is not the one the tail's digest covers, and no byte of part 3 is served.
func TestCompleteBackendETagsOtherParts(t *testing.T) {
	f, rw := newLyingFixture(t, func(c *proxy.Config, _ *keys.LocalFile) { c.ETag = proxy.ETagBackend })
	p1, p2, p3 := plaintext(5<<20, "PART-ONE"), plaintext(5<<20, "PART-TWO"), plaintext(5<<20, "PART-THREE")
	id, etags := f.startUpload("swap", p1, p2, p3)
	stored1, stored3 := rw.part(1), rw.part(3)
	if len(stored1) == 0 || len(stored3) != len(rw.part(2)) {
		t.Fatalf("recorded parts of %d and %d bytes (part 2: %d)", len(stored1), len(stored3), len(rw.part(2)))
	}
	rw.set(servedAs("/"+ipBucket+"/swap", append(append([]byte(nil), stored1...), stored3...)))
	r := f.do(http.MethodPost, fmt.Sprintf("/%s/swap?uploadId=%s", ipBucket, id), completeBody(etags[0], etags[1]), nil)
	if r.status != http.StatusOK && r.status/100 != 4 {
		t.Fatalf("Complete of parts [1,2] that the backend completes as [1,3]: %d %s", r.status, r.body)
	}
	for _, h := range []map[string]string{nil, {"Range": fmt.Sprintf("bytes=%d-%d", 5<<20-10, 5<<20+10)}} {
		g := f.do(http.MethodGet, "/"+ipBucket+"/swap", nil, h)
		// The whole-object GET is answered by the backend with the parts it really holds
		// (servedAs lies to ranged reads only): those bytes are the client's, or nothing.
		want := append(append([]byte(nil), p1...), p2...)
		if h != nil {
			want = want[5<<20-10 : 5<<20+11]
		}
		if (g.status/100 == 2 && !bytes.Equal(g.body, want)) || bytes.Contains(g.body, []byte("PART-THREE")) {
			t.Fatalf("GET %v of the object completed with another part: %d, %d bytes", h, g.status, len(g.body))
		}
		if h != nil && g.status/100 == 2 {
			t.Fatalf("ranged GET %v across the swapped part: %d, want a refusal", h, g.status)
		}
	}
}

// TestCompleteFailedCheckThenLie (issue 21b): the part check fails (the client names an ETag
// that is not part 2's), and the backend then answers the gateway's own conditional requests
// with 412 as if another writer had replaced the object. The client must get InvalidPart: a
// 412 proves nothing, and the key still holds the refused object.
func TestCompleteFailedCheckThenLie(t *testing.T) {
	f, rw := newLyingFixture(t, func(*proxy.Config, *keys.LocalFile) {})
	p1, p2 := plaintext(5<<20, "PART-ONE"), plaintext(1000, "PART-TWO")
	id, etags := f.startUpload("lie", p1, p2)
	rw.set(func(r *http.Request, resp *http.Response) *http.Response {
		if r.Method == http.MethodHead && r.Header.Get("If-Match") != "" {
			return preconditionFailed(r, resp)
		}
		return resp
	})
	r := f.do(http.MethodPost, fmt.Sprintf("/%s/lie?uploadId=%s", ipBucket, id), completeBody(etags[0], md5ETag([]byte("not part 2"))), nil)
	if r.status != http.StatusBadRequest || r.code != "InvalidPart" {
		t.Fatalf("Complete with a wrong part ETag, backend answering 412 afterwards: %d %s, want 400 InvalidPart", r.status, r.body)
	}
}
