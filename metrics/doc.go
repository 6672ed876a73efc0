// Package metrics is the gateway's operations surface: Prometheus metrics (Metrics, on a
// registry of its own; nothing is registered globally) and the health endpoints (/healthz,
// /readyz with cached readiness checks), served by Handler on a listener apart from the S3 one.
//
// The instruments themselves come from github.com/prometheus/client_golang (promauto.With on the
// gateway's registry, promhttp for the exposition format, the Go and process collectors). What
// is written here is only the gateway-specific part: which counters exist and what feeds them.
// Metrics implements proxy.Observer (so this package imports proxy for the event types; proxy
// does not import it), takes key-provider call timings from a decorator in cmd/gateway, and reads
// the data-key cache's own counters at scrape time through a callback (the cache keeps
// cumulative counters already; copying them into Prometheus counters would count twice).
// Readiness caching is a few lines around a mutex; no library offers it in a form that fits a
// handler without bringing its own framework.
//
// The metric names, their labels and an example dashboard are documented in docs/METRICS.md and
// docs/grafana-dashboard.json; a test keeps both in step with the registry.
package metrics
