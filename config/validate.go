package config

import (
	"errors"
	"fmt"
)

// Validate checks the configuration for contradictions.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("config: "+format, args...)) }
	switch c.Mode {
	case ModeEmbedded, ModeS3:
	default:
		add("mode %q: want %q or %q", c.Mode, ModeEmbedded, ModeS3)
	}
	c.validateKeys(add)
	c.validateKMSKeys(add)
	if c.Mode == ModeS3 && len(c.Credentials) == 0 {
		add("no client credentials: set credentials in the file or GATEWAY_ACCESS_KEY_ID/GATEWAY_SECRET_ACCESS_KEY")
	}
	seen := map[string]bool{}
	for i, cr := range c.Credentials {
		if cr.AccessKeyID == "" || cr.SecretAccessKey == "" {
			add("credentials[%d]: access_key_id and a secret are required", i)
		}
		if seen[cr.AccessKeyID] {
			add("credentials[%d]: duplicate access_key_id", i)
		}
		seen[cr.AccessKeyID] = true
	}
	if c.Encryption.S3ECSpoolMaxBytes < 0 {
		add("encryption.s3ec_spool_max_bytes %d is negative", c.Encryption.S3ECSpoolMaxBytes)
	}
	if (c.Backend.AccessKeyID == "") != (c.Backend.SecretAccessKey == "") {
		add("backend: access_key_id and secret_access_key must be set together")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls: cert_file and key_file must be set together")
	}
	switch c.Backend.Payload {
	case "auto", "unsigned", "crc-trailer":
	default:
		add("backend.payload %q: want auto, unsigned or crc-trailer", c.Backend.Payload)
	}
	switch c.Backend.SSE {
	case "", "AES256", "aws:kms":
	default:
		add("backend.sse %q: want \"\", AES256 or aws:kms", c.Backend.SSE)
	}
	switch c.Encryption.ETag {
	case ETagPlaintext, ETagBackend:
	default:
		add("encryption.etag %q: want %q or %q", c.Encryption.ETag, ETagPlaintext, ETagBackend)
	}
	if err := validateScopes(c.Encryption.AllowUnencrypted); err != nil {
		add("encryption.allow_unencrypted: %v", err)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format %q: want text or json", c.Log.Format)
	}
	if c.Cache.MaxObjects < 0 || c.Cache.MaxBytes < 0 || c.Cache.MaxAge < 0 || c.Cache.DecryptMaxAge < 0 {
		add("cache limits must not be negative")
	}
	s := c.Server
	if s.ReadHeaderTimeout < 0 || s.IdleTimeout < 0 || s.BodyReadTimeout < 0 || s.BodyWriteTimeout < 0 ||
		s.ShutdownTimeout < 0 || s.MaxHeaderBytes < 0 || s.MaxConcurrentRequests < 0 ||
		c.Metrics.ReadyCache < 0 || c.Metrics.ReadyTimeout < 0 {
		add("server and metrics timeouts and limits must not be negative")
	}
	if c.Metrics.Listen != "" && c.Metrics.Listen == c.Listen {
		add("metrics.listen must differ from listen (%s)", c.Listen)
	}
	return errors.Join(errs...)
}

// Redacted returns a copy with every secret replaced, safe to log or print.
func (c *Config) Redacted() Config {
	r := *c
	r.Credentials = append([]Credential(nil), c.Credentials...)
	for i := range r.Credentials {
		if r.Credentials[i].SecretAccessKey != "" {
			r.Credentials[i].SecretAccessKey = "REDACTED"
		}
	}
	if r.Backend.SecretAccessKey != "" {
		r.Backend.SecretAccessKey = "REDACTED"
	}
	if r.Keys.KMS.SecretAccessKey != "" {
		r.Keys.KMS.SecretAccessKey = "REDACTED"
	}
	if r.Keys.PKCS11.PIN != "" {
		r.Keys.PKCS11.PIN = "REDACTED"
	}
	if len(c.Keys.Providers) > 0 {
		r.Keys.Providers = make(map[string]NamedProvider, len(c.Keys.Providers))
		for name, p := range c.Keys.Providers {
			if p.KMS.SecretAccessKey != "" {
				p.KMS.SecretAccessKey = "REDACTED"
			}
			if p.PKCS11.PIN != "" {
				p.PKCS11.PIN = "REDACTED"
			}
			r.Keys.Providers[name] = p
		}
	}
	return r
}
