package metrics

import (
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/s3seal/s3seal/proxy"
)

// Namespace prefixes every gateway metric.
const Namespace = "s3seal"

// StatusAborted is the status label of a request whose connection was aborted mid-response.
const StatusAborted = "aborted"

// durationBuckets cover small S3 requests (milliseconds) up to large transfers (minutes).
func durationBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
}

// kmsBuckets cover KMS calls: milliseconds normally, seconds when retrying.
func kmsBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// Options configures New.
type Options struct {
	// Version is reported in s3seal_build_info.
	Version string
	// NoProcessMetrics leaves out the Go runtime and process collectors (tests).
	NoProcessMetrics bool
}

// Metrics holds the gateway's instruments. It implements proxy.Observer; all methods are safe
// for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	inFlight      prometheus.Gauge
	plainIn       *prometheus.CounterVec
	plainOut      *prometheus.CounterVec
	cipherOut     *prometheus.CounterVec
	cipherIn      *prometheus.CounterVec
	backendErrors *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	tamper        *prometheus.CounterVec
	unencrypted   *prometheus.CounterVec
	keyUses       *prometheus.CounterVec
	kmsCalls      *prometheus.CounterVec
	kmsDuration   *prometheus.HistogramVec
	rejected      *prometheus.CounterVec
	auditErrors   prometheus.Counter
	ready         *prometheus.GaugeVec
}

// New returns Metrics registered on a new registry of their own.
func New(o Options) *Metrics {
	reg := prometheus.NewRegistry()
	f := promauto.With(reg)
	name := func(n string) string { return Namespace + "_" + n }
	m := &Metrics{
		reg: reg,
		requests: f.NewCounterVec(prometheus.CounterOpts{Name: name("requests_total"),
			Help: "Client requests by S3 operation and HTTP status (\"aborted\": connection aborted mid-response)."},
			[]string{"op", "status"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{Name: name("request_duration_seconds"),
			Help: "Time from request headers to the last response byte, by S3 operation.", Buckets: durationBuckets()},
			[]string{"op"}),
		inFlight: f.NewGauge(prometheus.GaugeOpts{Name: name("requests_in_flight"),
			Help: "Client requests being served now."}),
		plainIn: f.NewCounterVec(prometheus.CounterOpts{Name: name("plaintext_received_bytes_total"),
			Help: "Object payload bytes received from clients (plaintext), by S3 operation."}, []string{"op"}),
		plainOut: f.NewCounterVec(prometheus.CounterOpts{Name: name("plaintext_sent_bytes_total"),
			Help: "Response body bytes sent to clients (object plaintext, listings, errors), by S3 operation."}, []string{"op"}),
		cipherOut: f.NewCounterVec(prometheus.CounterOpts{Name: name("ciphertext_sent_bytes_total"),
			Help: "Stored object bytes sent to the backend (ciphertext), by S3 operation."}, []string{"op"}),
		cipherIn: f.NewCounterVec(prometheus.CounterOpts{Name: name("ciphertext_received_bytes_total"),
			Help: "Stored object bytes received from the backend (ciphertext), by S3 operation."}, []string{"op"}),
		backendErrors: f.NewCounterVec(prometheus.CounterOpts{Name: name("backend_errors_total"),
			Help: "Backend requests that failed or answered 5xx, by S3 operation."}, []string{"op"}),
		authFailures: f.NewCounterVec(prometheus.CounterOpts{Name: name("auth_failures_total"),
			Help: "Requests refused by authentication or authorization, by S3 operation and S3 error code."},
			[]string{"op", "reason"}),
		tamper: f.NewCounterVec(prometheus.CounterOpts{Name: name("tamper_detections_total"),
			Help: "Stored objects or key envelopes that failed authentication (modified, truncated, moved), by S3 operation."},
			[]string{"op"}),
		unencrypted: f.NewCounterVec(prometheus.CounterOpts{Name: name("unencrypted_objects_served_total"),
			Help: "Objects served as stored because the gateway did not encrypt them, by S3 operation."}, []string{"op"}),
		keyUses: f.NewCounterVec(prometheus.CounterOpts{Name: name("key_uses_total"),
			Help: "Uses of a data key on an object (the audit trail's records), by action."}, []string{"action"}),
		kmsCalls: f.NewCounterVec(prometheus.CounterOpts{Name: name("kms_requests_total"),
			Help: "Key provider calls (KMS or the local key file) by provider, operation and outcome."},
			[]string{"provider", "operation", "outcome"}),
		kmsDuration: f.NewHistogramVec(prometheus.HistogramOpts{Name: name("kms_request_duration_seconds"),
			Help: "Key provider call latency (retries included), by provider and operation.", Buckets: kmsBuckets()},
			[]string{"provider", "operation"}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{Name: name("requests_rejected_total"),
			Help: "Requests refused before reaching the S3 handler (503 SlowDown), by reason."}, []string{"reason"}),
		auditErrors: f.NewCounter(prometheus.CounterOpts{Name: name("audit_write_errors_total"),
			Help: "Audit records that could not be written."}),
		ready: f.NewGaugeVec(prometheus.GaugeOpts{Name: name("ready"),
			Help: "1 when the last readiness check of this dependency passed, 0 when it failed."}, []string{"check"}),
	}
	version := o.Version
	if version == "" {
		version = "devel"
	}
	f.NewGauge(prometheus.GaugeOpts{Name: name("build_info"), Help: "Always 1; labels name the build.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}}).Set(1)
	if !o.NoProcessMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry returns the registry the metrics are on (to gather them in tests, or register more).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// MetricsHandler serves the registry in the Prometheus exposition format.
func (m *Metrics) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

var _ proxy.Observer = (*Metrics)(nil)

// opLabel is the op label of an event; requests refused before classification have none.
func opLabel(op string) string {
	if op == "" {
		return "Unknown"
	}
	return op
}

// RequestStarted implements proxy.Observer.
func (m *Metrics) RequestStarted() { m.inFlight.Inc() }

// RequestDone implements proxy.Observer.
func (m *Metrics) RequestDone(ri proxy.RequestInfo) {
	m.inFlight.Dec()
	op := opLabel(ri.Op)
	status := StatusAborted
	if ri.Status != 0 {
		status = strconv.Itoa(ri.Status)
	}
	m.requests.WithLabelValues(op, status).Inc()
	m.duration.WithLabelValues(op).Observe(ri.Duration.Seconds())
	add := func(v *prometheus.CounterVec, n int64) {
		if n > 0 {
			v.WithLabelValues(op).Add(float64(n))
		}
	}
	add(m.plainIn, ri.PlainIn)
	add(m.plainOut, ri.PlainOut)
	add(m.cipherOut, ri.StoredOut)
	add(m.cipherIn, ri.StoredIn)
}

// AuthFailure implements proxy.Observer.
func (m *Metrics) AuthFailure(op, reason string) {
	m.authFailures.WithLabelValues(opLabel(op), reason).Inc()
}

// Tamper implements proxy.Observer.
func (m *Metrics) Tamper(op string) { m.tamper.WithLabelValues(opLabel(op)).Inc() }

// Unencrypted implements proxy.Observer.
func (m *Metrics) Unencrypted(op string) { m.unencrypted.WithLabelValues(opLabel(op)).Inc() }

// BackendError implements proxy.Observer.
func (m *Metrics) BackendError(op string) { m.backendErrors.WithLabelValues(opLabel(op)).Inc() }

// KeyUse implements proxy.Observer: it counts the use; writing the audit record is the audit
// trail's job (cmd/gateway fans the event out to both).
func (m *Metrics) KeyUse(k proxy.KeyUse) { m.keyUses.WithLabelValues(k.Action).Inc() }

// KMSCall records one key provider call: provider ("kms", "local"), operation
// ("GenerateDataKey", "Decrypt", "Ping") and outcome ("success" or an error kind).
func (m *Metrics) KMSCall(provider, operation, outcome string, d time.Duration) {
	m.kmsCalls.WithLabelValues(provider, operation, outcome).Inc()
	m.kmsDuration.WithLabelValues(provider, operation).Observe(d.Seconds())
}

// Rejected counts a request refused before the S3 handler (reason e.g. "concurrency_limit").
func (m *Metrics) Rejected(reason string) { m.rejected.WithLabelValues(reason).Inc() }

// AuditWriteError counts an audit record that could not be written.
func (m *Metrics) AuditWriteError() { m.auditErrors.Inc() }

// setReady records the outcome of one readiness check.
func (m *Metrics) setReady(check string, ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	m.ready.WithLabelValues(check).Set(v)
}
