package testenv

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeGateway is an S3 listener that counts requests and a metrics listener whose /readyz
// answers 200 or 503 as told.
type fakeGateway struct {
	s3, metrics *httptest.Server
	requests    atomic.Int64
	ready       atomic.Bool
}

func newFakeGateway(t *testing.T) *fakeGateway {
	f := &fakeGateway{}
	f.ready.Store(true)
	f.s3 = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	f.metrics = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !f.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "backend: ok\nkeys: ok\n")
	}))
	t.Cleanup(f.s3.Close)
	t.Cleanup(f.metrics.Close)
	return f
}

func (f *fakeGateway) server(name string) HAProxyServer {
	var port int
	_, _ = fmt.Sscanf(f.metrics.URL[strings.LastIndexByte(f.metrics.URL, ':')+1:], "%d", &port)
	return HAProxyServer{Name: name, Addr: strings.TrimPrefix(f.s3.URL, "http://"), CheckPort: port}
}

// TestHAProxyRoundRobinAndReadyz: requests alternate between the servers; a server whose
// /readyz answers 503 is marked DOWN (check L7STS) and gets no requests; it is UP again and
// served once /readyz answers 200. The stats counts agree with the servers' own counts.
func TestHAProxyRoundRobinAndReadyz(t *testing.T) {
	a, b := newFakeGateway(t), newFakeGateway(t)
	h := StartHAProxy(t, []HAProxyServer{a.server("a"), b.server("b")})
	get := func(n int) {
		t.Helper()
		for range n {
			resp, err := http.Get(h.Endpoint + "/bucket/key")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("through haproxy: %d", resp.StatusCode)
			}
		}
	}
	get(10)
	if a.requests.Load() != 5 || b.requests.Load() != 5 {
		t.Errorf("round robin over 10 requests: a %d, b %d, want 5 and 5", a.requests.Load(), b.requests.Load())
	}
	b.ready.Store(false)
	h.WaitStatus(t, "b", "DOWN", 10*time.Second)
	if st := h.Stats(t)["b"]; st.CheckStatus != "L7STS" {
		t.Errorf("check status of b with /readyz 503: %q, want L7STS", st.CheckStatus)
	}
	get(10)
	if a.requests.Load() != 15 || b.requests.Load() != 5 {
		t.Errorf("with b DOWN: a %d, b %d, want 15 and 5", a.requests.Load(), b.requests.Load())
	}
	b.ready.Store(true)
	h.WaitStatus(t, "b", "UP", 10*time.Second)
	get(10)
	if b.requests.Load() != 10 {
		t.Errorf("after b came back: b served %d in all, want 10", b.requests.Load())
	}
	st := h.Stats(t)
	if st["a"].Sessions != a.requests.Load() || st["b"].Sessions != b.requests.Load() {
		t.Errorf("stats: a %d, b %d sessions; servers counted %d, %d", st["a"].Sessions, st["b"].Sessions, a.requests.Load(), b.requests.Load())
	}
}

// haproxyDirectives are the lines of a configuration without comments, blank lines and the
// lines that differ by deployment (bind, server).
func haproxyDirectives(cfg string) []string {
	var out []string
	for _, l := range strings.Split(cfg, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "bind ") || strings.HasPrefix(l, "server ") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// TestHAProxyDeployExample: deploy/haproxy/haproxy.cfg, the example docs/DEPLOY.md points to,
// is what the tests run (same directives, apart from bind and server lines), has three
// health-checked servers, and haproxy -c accepts it.
func TestHAProxyDeployExample(t *testing.T) {
	const path = "../../deploy/haproxy/haproxy.cfg"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := haproxyDirectives(string(b))
	want := haproxyDirectives(HAProxyConfig("127.0.0.1:1", "127.0.0.1:2", nil))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s differs from HAProxyConfig:\n--- file\n%s\n--- HAProxyConfig\n%s", path, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := strings.Count(string(b), "\n    server "); n != 3 {
		t.Errorf("%s has %d server lines, want 3", path, n)
	}
	if strings.Count(string(b), " check port 9090") != 3 {
		t.Errorf("%s: not every server is checked on the metrics port 9090", path)
	}
	if out, err := exec.Command(HAProxyBin(t), "-c", "-f", path).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c %s: %v\n%s", path, err, out)
	}
}
