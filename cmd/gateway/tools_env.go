package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/config"
)

// The subcommands (presign, rewrap, migrate, decrypt) read the gateway's own configuration, so
// that they reach the same backend and key provider. This file builds those from it, reusing
// the gateway's construction (buildBackend, buildKeys).

// loadToolConfig loads the configuration like the gateway does, but does not insist on what
// only a running gateway needs (client credentials, a default KMS key): recovery must work with
// nothing but key-provider access. The settings the tools do use are still checked.
func loadToolConfig(path string, getenv func(string) string) (*config.Config, error) {
	cfg, err := config.Load(path, getenv)
	if cfg == nil || err == nil {
		return cfg, err
	}
	var errs []error
	switch cfg.Mode {
	case config.ModeEmbedded, config.ModeS3:
	default:
		errs = append(errs, fmt.Errorf("config: mode %q: want %q or %q", cfg.Mode, config.ModeEmbedded, config.ModeS3))
	}
	if err := cfg.ValidateKeys(); err != nil {
		errs = append(errs, err)
	}
	if (cfg.Backend.AccessKeyID == "") != (cfg.Backend.SecretAccessKey == "") {
		errs = append(errs, errors.New("config: backend: access_key_id and secret_access_key must be set together"))
	}
	switch cfg.Encryption.ETag {
	case config.ETagPlaintext, config.ETagBackend:
	default:
		errs = append(errs, fmt.Errorf("config: encryption.etag %q: want %q or %q", cfg.Encryption.ETag, config.ETagPlaintext, config.ETagBackend))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// toolLogger logs the construction's warnings (e.g. a missing key file) to w.
func toolLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// toolBackend returns an S3 client for the configured backend (in embedded mode: the embedded
// store of the data dir, which only one process may open, so the gateway must be stopped) and
// a func releasing it.
func toolBackend(ctx context.Context, cfg *config.Config, log *slog.Logger) (*s3.Client, func(), error) {
	a := &app{}
	b, err := buildBackend(ctx, cfg, log, a)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	opts := s3.Options{
		Region:                     b.Region,
		UsePathStyle:               b.PathStyle,
		Credentials:                b.Credentials,
		HTTPClient:                 &http.Client{Transport: b.Transport},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if b.Endpoint != "" {
		opts.BaseEndpoint = aws.String(b.Endpoint)
	}
	return s3.New(opts), a.Close, nil
}

// toolSetup loads a tool's configuration and opens the configured key provider; on success the
// caller must call closeKeys.
func toolSetup(ctx context.Context, configPath string, tio toolIO) (cfg *config.Config, log *slog.Logger, kp keyProvider, closeKeys func(), err error) {
	if cfg, err = loadToolConfig(configPath, tio.getenv); err != nil {
		return nil, nil, nil, nil, err
	}
	log = toolLogger(tio.stderr)
	if kp, closeKeys, err = toolKeys(ctx, cfg, log); err != nil {
		return nil, nil, nil, nil, err
	}
	return cfg, log, kp, closeKeys, nil
}

// toolKeys opens the key providers of cfg, without ever creating a local key file (a new
// file could not open any existing object).
func toolKeys(ctx context.Context, cfg *config.Config, log *slog.Logger) (keyProvider, func(), error) {
	set, err := openProviders(ctx, cfg, log, openExisting)
	if err != nil {
		return nil, nil, err
	}
	p, err := set.provider(nil)
	if err != nil {
		set.Close()
		return nil, nil, err
	}
	return p, set.Close, nil
}
