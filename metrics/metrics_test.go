package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/s3seal/s3seal/proxy"
)

// scrape fetches /metrics through Handler and parses the text exposition format.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels include want (counter,
// gauge, or a histogram's sample count), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestObserverCounters(t *testing.T) {
	m := New(Options{NoProcessMetrics: true})
	h := Handler(m, m.NewHealth(HealthOptions{}))
	puts := []int64{0, 1, 65536, 1 << 20}
	var plain, stored int64
	for _, n := range puts {
		m.RequestStarted()
		stored += n + 100
		plain += n
		m.RequestDone(proxy.RequestInfo{Op: "PutObject", Status: 200, Duration: time.Duration(n) * time.Microsecond,
			PlainIn: n, StoredOut: n + 100})
	}
	m.RequestStarted()
	m.RequestDone(proxy.RequestInfo{Op: "GetObject", Status: 0, PlainOut: 10, StoredIn: 200})
	m.RequestStarted()
	m.RequestStarted() // still in flight
	m.RequestDone(proxy.RequestInfo{Status: 400})
	m.AuthFailure("GetObject", "SignatureDoesNotMatch")
	m.AuthFailure("GetObject", "SignatureDoesNotMatch")
	m.AuthFailure("", "AccessDenied")
	m.Tamper("GetObject")
	m.Unencrypted("GetObject")
	m.BackendError("PutObject")
	m.KeyUse(proxy.KeyUse{Action: "write"})
	m.KeyUse(proxy.KeyUse{Action: "write"})
	m.KeyUse(proxy.KeyUse{Action: "read"})
	m.KMSCall("kms", "GenerateDataKey", "success", 3*time.Millisecond)
	m.KMSCall("kms", "Decrypt", "invalid_ciphertext", time.Millisecond)
	m.Rejected("concurrency_limit")
	m.AuditWriteError()
	m.WatchCache(func() CacheStats {
		return CacheStats{Encrypt: CacheSide{Hits: 7, Misses: 3, Evictions: 2}, Decrypt: CacheSide{Hits: 11, Misses: 5}}
	})

	fams := scrape(t, h)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"s3seal_requests_total", map[string]string{"op": "PutObject", "status": "200"}, float64(len(puts))},
		{"s3seal_requests_total", map[string]string{"op": "GetObject", "status": StatusAborted}, 1},
		{"s3seal_requests_total", map[string]string{"op": "Unknown", "status": "400"}, 1},
		{"s3seal_request_duration_seconds", map[string]string{"op": "PutObject"}, float64(len(puts))},
		{"s3seal_requests_in_flight", nil, 1},
		{"s3seal_plaintext_received_bytes_total", map[string]string{"op": "PutObject"}, float64(plain)},
		{"s3seal_ciphertext_sent_bytes_total", map[string]string{"op": "PutObject"}, float64(stored)},
		{"s3seal_plaintext_sent_bytes_total", map[string]string{"op": "GetObject"}, 10},
		{"s3seal_ciphertext_received_bytes_total", map[string]string{"op": "GetObject"}, 200},
		{"s3seal_auth_failures_total", map[string]string{"op": "GetObject", "reason": "SignatureDoesNotMatch"}, 2},
		{"s3seal_auth_failures_total", map[string]string{"op": "Unknown", "reason": "AccessDenied"}, 1},
		{"s3seal_tamper_detections_total", map[string]string{"op": "GetObject"}, 1},
		{"s3seal_unencrypted_objects_served_total", map[string]string{"op": "GetObject"}, 1},
		{"s3seal_backend_errors_total", map[string]string{"op": "PutObject"}, 1},
		{"s3seal_key_uses_total", map[string]string{"action": "write"}, 2},
		{"s3seal_key_uses_total", map[string]string{"action": "read"}, 1},
		{"s3seal_kms_requests_total", map[string]string{"provider": "kms", "operation": "GenerateDataKey", "outcome": "success"}, 1},
		{"s3seal_kms_requests_total", map[string]string{"operation": "Decrypt", "outcome": "invalid_ciphertext"}, 1},
		{"s3seal_kms_request_duration_seconds", map[string]string{"operation": "GenerateDataKey"}, 1},
		{"s3seal_requests_rejected_total", map[string]string{"reason": "concurrency_limit"}, 1},
		{"s3seal_audit_write_errors_total", nil, 1},
		{"s3seal_datakey_cache_hits_total", map[string]string{"side": "encrypt"}, 7},
		{"s3seal_datakey_cache_hits_total", map[string]string{"side": "decrypt"}, 11},
		{"s3seal_datakey_cache_misses_total", map[string]string{"side": "encrypt"}, 3},
		{"s3seal_datakey_cache_misses_total", map[string]string{"side": "decrypt"}, 5},
		{"s3seal_datakey_cache_evictions_total", map[string]string{"side": "encrypt"}, 2},
		{"s3seal_build_info", map[string]string{"version": "devel"}, 1},
	}
	for _, c := range checks {
		got, ok := value(fams, c.name, c.labels)
		if !ok {
			t.Errorf("%s%v: missing", c.name, c.labels)
			continue
		}
		if got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// PUT of 1 MiB took 1.048576 s in this test: it must land in the (1, 2.5] bucket.
	for _, mm := range fams["s3seal_request_duration_seconds"].GetMetric() {
		if mm.GetLabel()[0].GetValue() != "PutObject" {
			continue
		}
		for _, b := range mm.GetHistogram().GetBucket() {
			if b.GetUpperBound() == 1 && b.GetCumulativeCount() != uint64(len(puts)-1) {
				t.Errorf("le=1 bucket holds %d requests, want %d", b.GetCumulativeCount(), len(puts)-1)
			}
		}
	}
	if _, ok := fams["go_goroutines"]; ok {
		t.Error("NoProcessMetrics still registers the Go collector")
	}
	if _, ok := New(Options{}).Registry().Gather(); ok != nil {
		t.Errorf("gathering with process metrics: %v", ok)
	}
}

// Two gateways in one process (tests, or a future multi-listener binary) must not collide:
// nothing is registered globally.
func TestRegistriesAreIndependent(t *testing.T) {
	a, b := New(Options{NoProcessMetrics: true}), New(Options{NoProcessMetrics: true})
	a.Tamper("GetObject")
	fa := scrape(t, a.MetricsHandler())
	fb := scrape(t, b.MetricsHandler())
	if v, _ := value(fa, "s3seal_tamper_detections_total", nil); v != 1 {
		t.Errorf("a: %v", v)
	}
	if _, ok := value(fb, "s3seal_tamper_detections_total", nil); ok {
		t.Error("b sees a's counter")
	}
}

func TestHealthCachesAndReports(t *testing.T) {
	m := New(Options{NoProcessMetrics: true})
	now := time.Unix(1000, 0)
	var backendCalls, keyCalls int
	var backendErr error
	hl := m.NewHealth(HealthOptions{
		CacheFor: 2 * time.Second,
		Now:      func() time.Time { return now },
		Checks: []Check{
			{Name: "backend", Fn: func(context.Context) error { backendCalls++; return backendErr }},
			{Name: "keys", Fn: func(context.Context) error { keyCalls++; return nil }},
		},
	})
	h := Handler(m, hl)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	if code, body := get("/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 200 || !strings.HasPrefix(body, "ready\n") {
		t.Errorf("/readyz: %d %q", code, body)
	}
	backendErr = errors.New("dial tcp: connection refused")
	now = now.Add(time.Second) // within the cache period: still the old answer, no new calls
	if code, _ := get("/readyz"); code != 200 || backendCalls != 1 || keyCalls != 1 {
		t.Errorf("cached /readyz: %d, calls %d/%d", code, backendCalls, keyCalls)
	}
	now = now.Add(1500 * time.Millisecond)
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "backend: dial tcp: connection refused") ||
		!strings.Contains(body, "keys: ok") || backendCalls != 2 {
		t.Errorf("/readyz with the backend down: %d %q (calls %d)", code, body, backendCalls)
	}
	fams := scrape(t, h)
	if v, _ := value(fams, "s3seal_ready", map[string]string{"check": "backend"}); v != 0 {
		t.Errorf("s3seal_ready{backend} = %v, want 0", v)
	}
	if v, _ := value(fams, "s3seal_ready", map[string]string{"check": "keys"}); v != 1 {
		t.Errorf("s3seal_ready{keys} = %v, want 1", v)
	}
	backendErr = nil
	now = now.Add(3 * time.Second)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz after recovery: %d", code)
	}
	if code, _ := get("/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing: %d", code)
	}
}

// A check that hangs is cut off by the timeout and reported as not ready.
func TestHealthTimeout(t *testing.T) {
	m := New(Options{NoProcessMetrics: true})
	hl := m.NewHealth(HealthOptions{Timeout: 50 * time.Millisecond, Checks: []Check{{Name: "keys",
		Fn: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}}})
	start := time.Now()
	ok, res := hl.Ready()
	if ok || !errors.Is(res[0].Err, context.DeadlineExceeded) {
		t.Errorf("ok=%v res=%v", ok, res)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}
