package integration

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/loadgen"
	"github.com/s3seal/s3seal/internal/testenv"
)

// Bounds of the load test on the gateway's own figures (from its /metrics), between a sample
// after a short warm-up and one after the load, both with no client or backend connection
// open: goroutines
// back to at most start + loadGoroutineSlack, resident memory at most 2 × start +
// loadRSSSlack (Go returns freed heap to the OS lazily, so RSS does not fall back at once).
const (
	loadGoroutineSlack = 16
	loadRSSSlack       = 64 << 20
)

// loadKnob reads an integer or duration knob from the environment, with a default.
func loadKnob[T int | time.Duration](t *testing.T, name string, def T) T {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out T
	switch p := any(&out).(type) {
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive integer", name, v)
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive duration", name, v)
		}
		*p = d
	}
	return out
}

// TestLoadMixed (issue 13, acceptance 3): S3SEAL_LOAD_CLIENTS clients (default 64) run the
// load generator's mix (PUT, GET, ranged GET, HEAD, list, multipart, delete, copy) against a
// gateway in front of MinIO for S3SEAL_LOAD_DURATION (default 2m); every object is verified by
// content hash at the end. Zero corrupt reads, zero errors (none is expected on loopback, so
// no 5xx either), and the gateway's goroutines and RSS back near where they started.
// The figures are printed with t.Logf (go test -v). The 30-minute soak of docs/RELIABILITY.md
// is this test with S3SEAL_LOAD_DURATION=30m.
func TestLoadMixed(t *testing.T) {
	clients := loadKnob(t, "S3SEAL_LOAD_CLIENTS", 64)
	duration := loadKnob(t, "S3SEAL_LOAD_DURATION", 2*time.Minute)
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	env, ops := opsGatewayEnv(t, m, k.Endpoint, k.CreateKey(t))
	// The backend connection runs through a (pass-through) fault proxy only so that the
	// gateway's idle backend connections, 2 goroutines each in Go's transport and kept up to
	// 90 s, can be closed before each sample: the counts compare handlers, not pool sizes.
	fp := testenv.NewFaultProxy(t, m.Endpoint)
	env["GATEWAY_BACKEND_ENDPOINT"] = fp.URL
	gw := testenv.StartGateway(t, env)
	bucket := m.NewBucket(t)
	ctx := context.Background()
	cfg := loadgen.Config{Endpoint: gw.Endpoint, Region: gw.Region, AccessKeyID: gw.AccessKeyID,
		SecretAccessKey: gw.SecretAccessKey, Bucket: bucket}

	// Warm-up: a few seconds of the same mix, so the baseline has the pools and caches a
	// running gateway has (the first sample of a fresh process would be unfairly small).
	warm := cfg
	warm.Clients, warm.Duration, warm.Prefix = 8, 3*time.Second, "warm-up/"
	if res, err := loadgen.Run(ctx, warm); err != nil || len(res.Corrupt)+res.ErrorCount != 0 {
		t.Fatalf("warm-up: %v %v %v", err, res.Corrupt, res.Errors)
	}
	fp.ResetAll()
	time.Sleep(500 * time.Millisecond)
	start := settleSample(t, ops, loadgen.Sample{}, 1<<30)

	cfg.Clients, cfg.Duration = clients, duration
	var samples []loadgen.Sample // the gateway's figures during the load, every 5 s
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(5 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if s, err := loadgen.Scrape(ctx, ops+"/metrics"); err == nil {
					samples = append(samples, s)
				}
			}
		}
	}()
	res, err := loadgen.Run(ctx, cfg)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	fp.ResetAll()
	end := settleSample(t, ops, start, loadGoroutineSlack)
	var peak loadgen.Sample
	for _, s := range samples {
		peak.Goroutines, peak.RSS = max(peak.Goroutines, s.Goroutines), max(peak.RSS, s.RSS)
	}
	t.Logf("load: gateway RSS (MiB) and goroutines during the load, about every %v: %s",
		5*time.Second*time.Duration(loadEvery(len(samples))), loadSeries(samples))
	tot := res.Total()
	t.Logf("load: %d clients for %v against the gateway (in front of MinIO, loopback)\n%s", clients, duration, res.Table())
	t.Logf("load: %.1f ops/s, p50 %v, p99 %v; gateway at start: %v; peak during the load: %v; at the end (idle): %v",
		res.OpsPerSecond(), tot.Quantile(0.5), tot.Quantile(0.99), start, peak, end)

	if len(res.Corrupt) != 0 {
		t.Errorf("%d corrupt reads: %q", len(res.Corrupt), res.Corrupt)
	}
	if res.ErrorCount != 0 {
		t.Errorf("%d failed operations (%d with a 5xx status), e.g.: %q", res.ErrorCount, res.Status5xx, res.Errors)
	}
	if want := clients * 8; res.Verified != want {
		t.Errorf("%d keys verified at the end, want %d", res.Verified, want)
	}
	if tot.Count < clients {
		t.Errorf("only %d operations in %v: the load did not run", tot.Count, duration)
	}
	if end.Goroutines > start.Goroutines+loadGoroutineSlack {
		t.Errorf("goroutines %d at the end, %d at the start (bound start+%d)", end.Goroutines, start.Goroutines, loadGoroutineSlack)
	}
	if end.RSS > 2*start.RSS+loadRSSSlack {
		t.Errorf("RSS %d MiB at the end, %d MiB at the start (bound 2×start+%d MiB)", end.RSS>>20, start.RSS>>20, loadRSSSlack>>20)
	}
}

// loadEvery is the step that keeps a series of n samples to about 24 entries.
func loadEvery(n int) int { return max(1, n/24) }

// loadSeries formats every loadEvery-th sample as "RSS/goroutines".
func loadSeries(samples []loadgen.Sample) string {
	var b strings.Builder
	for i := 0; i < len(samples); i += loadEvery(len(samples)) {
		fmt.Fprintf(&b, " %.0f/%d", float64(samples[i].RSS)/(1<<20), samples[i].Goroutines)
	}
	return strings.TrimSpace(b.String())
}
