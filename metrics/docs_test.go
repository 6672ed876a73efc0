package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/proxy"
)

// exposedNames gathers the names of every gateway family, after one event of each kind (vector
// families only appear once they have a child).
func exposedNames(t *testing.T) map[string]bool {
	t.Helper()
	m := New(Options{NoProcessMetrics: true})
	m.RequestStarted()
	m.RequestDone(proxy.RequestInfo{Op: "PutObject", Status: 200, PlainIn: 1, PlainOut: 1, StoredIn: 1, StoredOut: 1})
	m.AuthFailure("GetObject", "AccessDenied")
	m.Tamper("GetObject")
	m.Unencrypted("GetObject")
	m.BackendError("GetObject")
	m.KeyUse(proxy.KeyUse{Action: "write"})
	m.KMSCall("kms", "Decrypt", "success", time.Millisecond)
	m.Rejected("concurrency_limit")
	m.AuditWriteError()
	m.setReady("backend", true)
	m.WatchCache(func() CacheStats { return CacheStats{} })
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	return names
}

// referenced returns the s3seal_* metric names in text, histogram suffixes removed.
func referenced(text string) map[string]bool {
	out := map[string]bool{}
	for _, n := range regexp.MustCompile(`s3seal_[a-z0-9_]+`).FindAllString(text, -1) {
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if strings.HasSuffix(n, "_seconds"+suf) {
				n = strings.TrimSuffix(n, suf)
			}
		}
		out[n] = true
	}
	return out
}

// TestDocsMatchRegistry: docs/METRICS.md documents every exposed family and names no other;
// every metric the example Grafana dashboard queries exists; names follow the conventions
// (counters end in _total, histograms of time in _seconds).
func TestDocsMatchRegistry(t *testing.T) {
	exposed := exposedNames(t)
	doc, err := os.ReadFile("../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := referenced(string(doc))
	for n := range exposed {
		if !documented[n] {
			t.Errorf("%s is exposed but not documented in docs/METRICS.md", n)
		}
	}
	for n := range documented {
		if !exposed[n] {
			t.Errorf("docs/METRICS.md names %s, which the gateway does not expose", n)
		}
	}
	raw, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("dashboard has no panels")
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for n := range referenced(tg.Expr) {
				if !exposed[n] {
					t.Errorf("panel %q queries %s, which the gateway does not expose", p.Title, n)
				}
			}
		}
	}
	for n := range exposed {
		switch {
		case strings.HasSuffix(n, "_total"), strings.HasSuffix(n, "_seconds"), strings.HasSuffix(n, "_bytes"),
			slices.Contains([]string{"s3seal_requests_in_flight", "s3seal_ready", "s3seal_build_info"}, n):
		default:
			t.Errorf("%s: not a conventional name (counter _total, histogram _seconds, gauge listed here)", n)
		}
	}
}
