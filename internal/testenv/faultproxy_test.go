package testenv

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// faultUpstream is an HTTP server that answers GET with body and PUT with the number of bytes
// it read.
func faultUpstream(t *testing.T, body []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				return
			}
			_, _ = io.WriteString(w, strings.Repeat("x", int(n%7)))
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func faultClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func faultGet(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func TestFaultProxyFaults(t *testing.T) {
	body := RandomBytes(t, 1<<20, "")
	up := faultUpstream(t, body)
	p := NewFaultProxy(t, up.URL)
	c := faultClient()

	got, err := faultGet(c, p.URL+"/a")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("passing through: %d bytes, %v", len(got), err)
	}

	p.CutDown(100_000)
	got, err = faultGet(c, p.URL+"/a")
	if err == nil {
		t.Fatalf("GET with a cut after 100000 bytes succeeded with %d bytes", len(got))
	}
	if len(got) >= len(body) || !bytes.Equal(got, body[:len(got)]) {
		t.Errorf("cut GET: %d bytes that are not a prefix of the body", len(got))
	}
	if got, err := faultGet(c, p.URL+"/a"); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after the one cut: %d bytes, %v", len(got), err)
	}

	p.CutUp(50_000)
	req, _ := http.NewRequest(http.MethodPut, p.URL+"/b", bytes.NewReader(body))
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("PUT with a cut upload answered %d", resp.StatusCode)
	}

	p.Down()
	if _, err := faultGet(c, p.URL+"/a"); err == nil {
		t.Fatal("GET during an outage succeeded")
	}
	before := p.Resets()
	p.Up()
	if got, err := faultGet(c, p.URL+"/a"); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after the outage: %d bytes, %v", len(got), err)
	}
	if before < 2 || p.Accepted() < 3 {
		t.Errorf("%d resets, %d connections accepted", before, p.Accepted())
	}

	const d = 300 * time.Millisecond
	p.SetDelay(d)
	start := time.Now()
	if got, err := faultGet(c, p.URL+"/a"); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("delayed: %d bytes, %v", len(got), err)
	}
	if took := time.Since(start); took < d {
		t.Errorf("a delayed response came after %v, before the delay of %v", took, d)
	}
}
