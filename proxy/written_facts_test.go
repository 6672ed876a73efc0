package proxy_test

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// countingTransport records every backend request (method, path and Range) on its way.
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.seen = append(c.seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Range"))
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *countingTransport) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.seen
	c.seen = nil
	return s
}

// TestWritesCacheFacts: the first read after a PutObject or a CopyObject costs the same backend
// requests as a read with the facts cached: a write caches the facts of what it wrote, bound
// to the metadata it sent (cacheWritten). A Complete does not: it never saw the object the
// backend made (FORMAT.md 3.6), so the first read checks the tail and every part boundary.
// (That an SSE-C write's cached facts show no plaintext ETag without the key:
// TestSSECListingsHidePlaintextETag.)
func TestWritesCacheFacts(t *testing.T) {
	store, lf := newTestStore(t)
	ct := &countingTransport{next: store.Transport()}
	ft := &faultTransport{next: ct}
	f := serveFixture(t, fixtureConfig(store, lf, ft), ft, store)
	f.createBucket()
	body := bytes.Repeat([]byte("facts "), 700)
	getTwice := func(what, key string, checked bool) {
		t.Helper()
		ct.take()
		if r := f.do(http.MethodGet, "/"+ipBucket+"/"+key, nil, nil); r.status != http.StatusOK {
			t.Fatalf("%s: GET %d %s", what, r.status, r.body)
		}
		first := ct.take()
		if r := f.do(http.MethodGet, "/"+ipBucket+"/"+key, nil, nil); r.status != http.StatusOK {
			t.Fatalf("%s: second GET %d", what, r.status)
		}
		warm := ct.take()
		if checked && len(first) <= len(warm) {
			t.Errorf("%s: the first GET after the write sent %v, a warm GET %v: want the object checked first", what, first, warm)
		}
		if !checked && len(first) != len(warm) {
			t.Errorf("%s: the first GET after the write sent %v, a warm GET %v", what, first, warm)
		}
	}
	if r := f.do(http.MethodPut, "/"+ipBucket+"/k", body, nil); r.status != http.StatusOK {
		t.Fatalf("PUT %d %s", r.status, r.body)
	}
	getTwice("PutObject", "k", false)
	if r := f.do(http.MethodPut, "/"+ipBucket+"/k2", nil, map[string]string{"X-Amz-Copy-Source": "/" + ipBucket + "/k"}); r.status != http.StatusOK {
		t.Fatalf("CopyObject %d %s", r.status, r.body)
	}
	getTwice("CopyObject", "k2", false)

	r := f.do(http.MethodPost, "/"+ipBucket+"/mp?uploads", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("CreateMultipartUpload %d %s", r.status, r.body)
	}
	id := between(string(r.body), "<UploadId>", "</UploadId>")
	p := f.do(http.MethodPut, "/"+ipBucket+"/mp?partNumber=1&uploadId="+id, body, nil)
	if p.status != http.StatusOK {
		t.Fatalf("UploadPart %d %s", p.status, p.body)
	}
	doc := `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>` + p.header.Get("Etag") + `</ETag></Part></CompleteMultipartUpload>`
	if c := f.do(http.MethodPost, "/"+ipBucket+"/mp?uploadId="+id, []byte(doc), nil); c.status != http.StatusOK || !strings.Contains(string(c.body), "<ETag>") {
		t.Fatalf("Complete %d %s", c.status, c.body)
	}
	getTwice("CompleteMultipartUpload", "mp", true)
}

// between is the text of s between the first open and the close after it ("" if absent).
func between(s, open, close string) string {
	_, rest, ok := strings.Cut(s, open)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, close)
	return v
}
