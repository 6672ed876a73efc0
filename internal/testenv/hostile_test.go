package testenv

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The hostile proxy against a stand-in upstream whose answer changes with every GET: what it
// records, and each attack helper.
func TestHostileProxy(t *testing.T) {
	var version atomic.Int32
	var sawHost atomic.Value
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawHost.Store(r.Host)
		if r.Method == http.MethodPut {
			version.Add(1)
			return
		}
		body := []byte(strings.Repeat(string(rune('a'+version.Load())), 100))
		if r.Header.Get("Range") == "bytes=0-9" {
			w.Header().Set("Content-Range", "bytes 0-9/100")
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write(body[:10])
			return
		}
		w.Header().Set("Etag", `"v`+string(rune('0'+version.Load()))+`"`)
		_, _ = w.Write(body)
	}))
	defer up.Close()
	h := NewHostile(t, up.URL)
	path := ObjectPath("b", "k")
	do := func(method, rng string) (int, []byte, http.Header, error) {
		req, _ := http.NewRequest(method, h.URL+path+"?versionId=1", nil)
		req.Header.Set("X-Amz-Meta-Test", "yes")
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		// No keep-alive: the client must not retry the reset read on a new connection.
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header, err
	}

	h.FlipOnRead(path, 2, 0, 99, 1000)
	h.RefuseOnRead(path, 3, http.StatusServiceUnavailable, "SlowDown")
	h.ResetOnRead(path, 4)
	h.ReplayOnRead(t, path, 5)
	var hooked atomic.Int32
	h.Hook(func(req BackendRequest, resp *http.Response) error {
		if req.Method == http.MethodGet {
			hooked.Add(1)
		}
		return nil
	})

	if st, b, _, err := do(http.MethodGet, ""); err != nil || st != 200 || string(b) != strings.Repeat("a", 100) {
		t.Fatalf("read 1: %d %q %v", st, b, err)
	}
	if st, b, _, err := do(http.MethodGet, ""); err != nil || st != 200 || b[0] != 'a'^0xff || b[99] != 'a'^0xff || !bytes.Equal(b[1:99], bytes.Repeat([]byte("a"), 98)) {
		t.Errorf("read 2 (flip 0 and 99): %d %q %v", st, b, err)
	}
	if st, b, _, err := do(http.MethodGet, ""); err != nil || st != http.StatusServiceUnavailable || !strings.Contains(string(b), "<Code>SlowDown</Code>") {
		t.Errorf("read 3 (refused): %d %q %v", st, b, err)
	}
	if _, _, _, err := do(http.MethodGet, ""); err == nil {
		t.Error("read 4 (reset): got an answer")
	}
	if st, _, _, err := do(http.MethodPut, ""); err != nil || st != 200 {
		t.Fatalf("PUT: %d %v", st, err)
	}
	if st, b, hdr, err := do(http.MethodGet, ""); err != nil || st != 200 || string(b) != strings.Repeat("a", 100) || hdr.Get("Etag") != `"v0"` {
		t.Errorf("read 5 (replay of read 1 after a new version): %d %q ETag %s %v", st, b, hdr.Get("Etag"), err)
	}
	if st, b, _, err := do(http.MethodGet, "bytes=0-9"); err != nil || st != 206 || string(b) != strings.Repeat("b", 10) {
		t.Errorf("read 6 (no attack): %d %q %v", st, b, err)
	}

	if got := h.Reads(path); got != 6 {
		t.Errorf("Reads = %d, want 6", got)
	}
	if got := hooked.Load(); got != 6 { // Hooks run before the OnRead hooks, the reset's too
		t.Errorf("Hook saw %d GET answers, want 6", got)
	}
	reqs := h.Requests()
	if len(reqs) != 7 {
		t.Fatalf("%d requests recorded, want 7", len(reqs))
	}
	r := reqs[6]
	if r.Method != http.MethodGet || r.Path != path || r.Query.Get("versionId") != "1" || r.Read != 6 ||
		r.Header.Get("Range") != "bytes=0-9" || r.Header.Get("X-Amz-Meta-Test") != "yes" {
		t.Errorf("last request recorded as %+v", r)
	}
	if reqs[4].Method != http.MethodPut || reqs[4].Read != 0 {
		t.Errorf("PUT recorded as %+v", reqs[4])
	}
	if host := strings.TrimPrefix(h.URL, "http://"); r.Header.Get("Host") != host || sawHost.Load() != host {
		t.Errorf("Host recorded %q, upstream saw %v, want the proxy's %q", r.Header.Get("Host"), sawHost.Load(), host)
	}
}
