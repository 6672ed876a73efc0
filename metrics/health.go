package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Check is one readiness check: a dependency the gateway cannot serve without.
type Check struct {
	Name string                          // "backend", "keys"
	Fn   func(ctx context.Context) error // nil error: reachable and usable
}

// HealthOptions configures NewHealth.
type HealthOptions struct {
	Checks []Check
	// CacheFor is how long a readiness result is reused; 0 = 2s.
	CacheFor time.Duration
	// Timeout bounds each check; 0 = 3s.
	Timeout time.Duration
	// Log receives readiness changes; nil = none.
	Log *slog.Logger
	// Now is the clock (tests); nil = time.Now.
	Now func() time.Time
}

// Result is the outcome of one check.
type Result struct {
	Name string
	Err  error
}

// Health answers /healthz and /readyz. Readiness runs every check (concurrently, each bounded by
// the timeout) at most once per CacheFor; requests in between get the cached result, so probes
// from many load balancers cost the backend and the key provider one call per period.
type Health struct {
	m   *Metrics
	o   HealthOptions
	mu  sync.Mutex
	at  time.Time // when results were computed; zero = never
	res []Result
	ok  bool
}

// NewHealth returns a Health that reports its check outcomes in the s3seal_ready gauge.
func (m *Metrics) NewHealth(o HealthOptions) *Health {
	if o.CacheFor <= 0 {
		o.CacheFor = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Health{m: m, o: o}
}

// Ready returns whether every check passed, and each check's result, computing them when the
// cached ones are older than CacheFor.
func (h *Health) Ready() (bool, []Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.o.Now()
	if !h.at.IsZero() && now.Sub(h.at) < h.o.CacheFor {
		return h.ok, h.res
	}
	res := make([]Result, len(h.o.Checks))
	var wg sync.WaitGroup
	for i, c := range h.o.Checks {
		res[i].Name = c.Name
		wg.Go(func() {
			// Not the probe's context: a probe that gives up must not poison the cached result.
			ctx, cancel := context.WithTimeout(context.Background(), h.o.Timeout)
			defer cancel()
			res[i].Err = c.Fn(ctx)
		})
	}
	wg.Wait()
	ok := true
	for i, r := range res {
		ok = ok && r.Err == nil
		h.m.setReady(r.Name, r.Err == nil)
		wasOK := h.at.IsZero() || h.res[i].Err == nil
		switch {
		case r.Err != nil && wasOK:
			h.o.Log.Warn("not ready", "check", r.Name, "err", r.Err)
		case r.Err == nil && !wasOK:
			h.o.Log.Info("ready again", "check", r.Name)
		}
	}
	h.at, h.res, h.ok = h.o.Now(), res, ok
	return ok, res
}

// Handler serves /metrics, /healthz (200 while the process serves) and /readyz (200 when every
// readiness check passes, 503 otherwise; the body names each check).
func Handler(m *Metrics, h *Health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.MetricsHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, res := h.Ready()
		var b strings.Builder
		if ok {
			b.WriteString("ready\n")
		} else {
			b.WriteString("not ready\n")
		}
		for _, r := range res {
			if r.Err == nil {
				fmt.Fprintf(&b, "%s: ok\n", r.Name)
			} else {
				fmt.Fprintf(&b, "%s: %s\n", r.Name, oneLine(r.Err.Error()))
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write([]byte(b.String()))
	})
	return mux
}

// oneLine keeps an error message on one line and short.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
