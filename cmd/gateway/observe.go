package main

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/s3seal/s3seal/audit"
	"github.com/s3seal/s3seal/cache"
	"github.com/s3seal/s3seal/keys"
	"github.com/s3seal/s3seal/metrics"
	"github.com/s3seal/s3seal/proxy"
)

// observer is what the proxy reports to: the metrics, plus the audit trail for key uses.
type observer struct {
	*metrics.Metrics
	audit *audit.Writer // nil: no audit trail
	log   *slog.Logger
}

// KeyUse counts the use and writes its audit record. A record that cannot be written is counted
// and logged (without the record's content beyond its request id); the request itself has
// already been served.
func (o observer) KeyUse(k proxy.KeyUse) {
	o.Metrics.KeyUse(k)
	if o.audit == nil {
		return
	}
	err := o.audit.Write(audit.Record{
		Time: k.Time, RequestID: k.RequestID, Action: k.Action, AccessKey: k.AccessKey,
		Bucket: k.Bucket, Object: k.Object, KeyID: k.KeyID, WrappedKeySHA256: k.WrappedKeyDigest,
	})
	if err != nil {
		o.Metrics.AuditWriteError()
		o.log.Error("audit record not written", "request_id", k.RequestID, "err", err)
	}
}

// reopenAuditOnSIGHUP reopens the audit file on every SIGHUP (after logrotate moved it) until
// stop is called.
func reopenAuditOnSIGHUP(w *audit.Writer, log *slog.Logger) (stop func()) {
	return onSIGHUP(func() {
		if err := w.Reopen(); err != nil {
			log.Error("audit file reopen failed; still writing to the previous file", "err", err)
		}
	})
}

// instrumentedKeys wraps the key provider: every call is timed and counted by operation and
// outcome (s3seal_kms_requests_total, s3seal_kms_request_duration_seconds).
type instrumentedKeys struct {
	src      keyProvider
	m        *metrics.Metrics
	provider string // "kms" or "local"
}

var (
	_ cache.Source      = instrumentedKeys{}
	_ cache.KeyIDSource = instrumentedKeys{}
)

func (k instrumentedKeys) observe(op string, start time.Time, err error) {
	k.m.KMSCall(k.provider, op, keyOutcome(err), time.Since(start))
}

// GenerateDataKey implements cache.Source.
func (k instrumentedKeys) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (plaintext, wrapped []byte, err error) {
	_, plaintext, wrapped, err = k.GenerateDataKeyID(ctx, keyID, encCtx)
	return plaintext, wrapped, err
}

// GenerateDataKeyID implements cache.KeyIDSource.
func (k instrumentedKeys) GenerateDataKeyID(ctx context.Context, keyID string, encCtx map[string]string) (usedKeyID string, plaintext, wrapped []byte, err error) {
	start := time.Now()
	defer func() { k.observe("GenerateDataKey", start, err) }()
	if ids, ok := k.src.(cache.KeyIDSource); ok {
		return ids.GenerateDataKeyID(ctx, keyID, encCtx)
	}
	plaintext, wrapped, err = k.src.GenerateDataKey(ctx, keyID, encCtx)
	return keyID, plaintext, wrapped, err
}

// Decrypt implements cache.Source.
func (k instrumentedKeys) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) (_ []byte, err error) {
	start := time.Now()
	defer func() { k.observe("Decrypt", start, err) }()
	return k.src.Decrypt(ctx, keyID, wrapped, encCtx)
}

// Ping checks the provider (readiness).
func (k instrumentedKeys) Ping(ctx context.Context) (err error) {
	start := time.Now()
	defer func() { k.observe("Ping", start, err) }()
	return k.src.Ping(ctx)
}

// DefaultKeyID is the provider's key for new objects.
func (k instrumentedKeys) DefaultKeyID() string { return k.src.DefaultKeyID() }

// keyOutcome is the outcome label of a key provider call.
func keyOutcome(err error) string {
	switch {
	case err == nil:
		return "success"
	case errors.Is(err, keys.ErrKeyNotFound):
		return "not_found"
	case errors.Is(err, keys.ErrKeyDisabled):
		return "disabled"
	case errors.Is(err, keys.ErrAccessDenied):
		return "access_denied"
	case errors.Is(err, keys.ErrInvalidCiphertext):
		return "invalid_ciphertext"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, keys.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, keys.ErrClosed):
		return "closed"
	}
	return "error"
}

// version names this build: the module version, or the VCS revision for a checkout build.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 && (v == "" || v == "(devel)") {
			v = s.Value[:12]
		}
	}
	if v == "(devel)" {
		return ""
	}
	return v
}
