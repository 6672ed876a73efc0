package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/s3seal/s3seal/audit"
	"github.com/s3seal/s3seal/cache"
	"github.com/s3seal/s3seal/config"
	"github.com/s3seal/s3seal/embedded"
	"github.com/s3seal/s3seal/metrics"
	"github.com/s3seal/s3seal/proxy"
)

// app is a built gateway and what must be released when it stops.
type app struct {
	handler      http.Handler
	metrics      *metrics.Metrics
	health       *metrics.Health
	audit        *audit.Writer // nil: no audit trail
	backendName  string
	keyID        string
	embeddedCred *config.Credential // set in embedded mode when the credential was generated
	closers      []func() error
}

// Close releases everything build acquired, in reverse order.
func (a *app) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		_ = a.closers[i]()
	}
}

// keyProvider is what build needs from a key provider.
type keyProvider interface {
	cache.Source
	DefaultKeyID() string
	Ping(ctx context.Context) error
}

// build wires config into a running gateway: backend, key provider, cache, proxy.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger) (a *app, err error) {
	a = &app{}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	backend, err := buildBackend(ctx, cfg, log, a)
	if err != nil {
		return nil, err
	}
	providers, err := openProviders(ctx, cfg, log, openOrCreate)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() error { providers.Close(); return nil })
	a.metrics = metrics.New(metrics.Options{Version: version()})
	provider, err := providers.provider(a.metrics)
	if err != nil {
		return nil, err
	}
	a.keyID = provider.DefaultKeyID()
	if cfg.Audit.File != "" {
		if a.audit, err = audit.Open(cfg.Audit.File); err != nil {
			return nil, err
		}
		a.closers = append(a.closers, a.audit.Close)
	}
	keyCache := cache.New(provider, cache.Config{
		Disabled:      cfg.Cache.Disabled,
		MaxAge:        cfg.Cache.MaxAge,
		MaxObjects:    cfg.Cache.MaxObjects,
		MaxBytes:      cfg.Cache.MaxBytes,
		DecryptMaxAge: cfg.Cache.DecryptMaxAge,
	})
	a.closers = append(a.closers, func() error { keyCache.Purge(); return nil })
	a.metrics.WatchCache(func() metrics.CacheStats {
		st := keyCache.Stats()
		side := func(s cache.SideStats) metrics.CacheSide {
			return metrics.CacheSide{Hits: s.Hits, Misses: s.Misses, Evictions: s.Evictions}
		}
		return metrics.CacheStats{Encrypt: side(st.Encrypt), Decrypt: side(st.Decrypt)}
	})

	creds := make([]proxy.Credential, 0, len(cfg.Credentials))
	for _, c := range cfg.Credentials {
		creds = append(creds, proxy.Credential{
			AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey,
			Buckets: c.Buckets, ReadOnly: c.ReadOnly, KMSKeyIDs: c.KMSKeyIDs, Admin: c.Admin,
		})
	}
	gw, err := proxy.New(proxy.Config{
		Region:                cfg.Region,
		Credentials:           creds,
		Backend:               backend,
		Keys:                  keyCache,
		KeyID:                 a.keyID,
		ETag:                  cfg.Encryption.ETag,
		AllowUnencrypted:      cfg.Encryption.AllowUnencrypted,
		S3ECBuckets:           cfg.Encryption.S3ECBuckets,
		S3ECSpoolDir:          cfg.Encryption.S3ECSpoolDir,
		S3ECSpoolMaxBytes:     cfg.Encryption.S3ECSpoolMaxBytes,
		SigV2:                 cfg.SigV2,
		BaseDomains:           cfg.BaseDomains,
		ReservedBuckets:       cfg.Backend.ReservedBuckets,
		TrustForwardedHeaders: cfg.TrustForwardedHeaders,
		BucketKeyIDs:          cfg.Keys.BucketKeyIDs,
		SSECAllowHTTP:         cfg.SSECAllowHTTP,
		BackendSSE:            cfg.Backend.SSE,
		BackendSSEKeyID:       cfg.Backend.SSEKMSKeyID,
		BackendMaxCopySize:    cfg.Backend.MaxCopySize,
		MaxHeaderBytes:        cfg.Server.MaxHeaderBytes,
		Logger:                log,
		Observer:              observer{Metrics: a.metrics, audit: a.audit, log: log},
	})
	if err != nil {
		return nil, err
	}
	a.handler = gw
	a.health = a.metrics.NewHealth(metrics.HealthOptions{
		Checks:   []metrics.Check{{Name: "backend", Fn: gw.Ping}, {Name: "keys", Fn: provider.Ping}},
		CacheFor: cfg.Metrics.ReadyCache,
		Timeout:  cfg.Metrics.ReadyTimeout,
		Log:      log,
	})
	return a, nil
}

// buildBackend starts the embedded store (embedded mode) or describes the S3 backend.
func buildBackend(ctx context.Context, cfg *config.Config, log *slog.Logger, a *app) (proxy.Backend, error) {
	if cfg.Mode == config.ModeEmbedded {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return proxy.Backend{}, fmt.Errorf("data dir: %w", err)
		}
		store, err := embedded.Start(embedded.Options{Dir: filepath.Join(cfg.DataDir, "store"), Logger: log})
		if err != nil {
			return proxy.Backend{}, fmt.Errorf("embedded store: %w", err)
		}
		a.closers = append(a.closers, store.Close)
		a.backendName = "embedded:" + filepath.Join(cfg.DataDir, "store")
		if len(cfg.Credentials) == 0 {
			id, secret, created, err := embedded.LoadOrCreateCredentials(cfg.DataDir)
			if err != nil {
				return proxy.Backend{}, fmt.Errorf("embedded credentials: %w", err)
			}
			if created {
				log.Info("created client credentials", "file", filepath.Join(cfg.DataDir, "credentials.yaml"), "access_key", id)
			}
			cfg.Credentials = []config.Credential{{AccessKeyID: id, SecretAccessKey: secret, Admin: true}}
			a.embeddedCred = &cfg.Credentials[0]
		}
		return proxy.Backend{
			Endpoint:  store.Endpoint(),
			Region:    cfg.Backend.Region,
			PathStyle: true,
			// The embedded store checks no signature (it is reachable only through a socket in
			// the data dir); requests are still signed, like for any backend.
			Credentials: credentials.NewStaticCredentialsProvider("embedded", "embedded", ""),
			Transport:   store.Transport(),
			Payload:     proxy.PayloadUnsigned, // a local socket: nothing in flight to protect
		}, nil
	}

	tr, err := proxy.NewTransport(proxy.TransportOptions{CABundle: cfg.Backend.CABundle, ResponseHeaderTimeout: cfg.Backend.Timeout})
	if err != nil {
		return proxy.Backend{}, err
	}
	var provider aws.CredentialsProvider
	if cfg.Backend.AccessKeyID != "" {
		provider = credentials.NewStaticCredentialsProvider(cfg.Backend.AccessKeyID, cfg.Backend.SecretAccessKey, "")
	} else {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.Backend.Region))
		if err != nil {
			return proxy.Backend{}, fmt.Errorf("backend credentials (AWS default chain): %w", err)
		}
		if awsCfg.Credentials == nil {
			return proxy.Backend{}, errors.New("backend credentials: none configured and the AWS default chain found none")
		}
		provider = aws.NewCredentialsCache(awsCfg.Credentials)
	}
	a.backendName = cfg.Backend.Endpoint
	if a.backendName == "" {
		a.backendName = "aws-s3:" + cfg.Backend.Region
	}
	return proxy.Backend{
		Endpoint:    cfg.Backend.Endpoint,
		Region:      cfg.Backend.Region,
		PathStyle:   cfg.Backend.PathStyle,
		Credentials: provider,
		Transport:   tr,
		Payload:     cfg.Backend.Payload,
	}, nil
}
