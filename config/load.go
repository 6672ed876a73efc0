package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads the file at path ("" = none), applies the environment (getenv, usually os.Getenv),
// defaults, and validates.
func Load(path string, getenv func(string) string) (*Config, error) {
	c := &Config{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: empty file
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	if err := c.applyEnv(getenv); err != nil {
		return nil, err
	}
	if c.Mode == "" {
		if path == "" && getenv("GATEWAY_BACKEND_ENDPOINT") == "" {
			c.Mode = ModeEmbedded
		} else {
			c.Mode = ModeS3
		}
	}
	if err := c.defaults(getenv); err != nil {
		return nil, err
	}
	if err := c.readSecretFiles(); err != nil {
		return nil, err
	}
	return c, c.Validate()
}

func (c *Config) applyEnv(getenv func(string) string) error {
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	var firstErr error
	boolean := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("config: %s=%q is not a boolean", name, v)
			}
			*dst = b
		}
	}
	str("GATEWAY_MODE", &c.Mode)
	str("GATEWAY_LISTEN", &c.Listen)
	str("GATEWAY_REGION", &c.Region)
	str("GATEWAY_DATA_DIR", &c.DataDir)
	str("GATEWAY_TLS_CERT_FILE", &c.TLS.CertFile)
	str("GATEWAY_TLS_KEY_FILE", &c.TLS.KeyFile)
	if v := getenv("GATEWAY_BASE_DOMAINS"); v != "" {
		c.BaseDomains = nil
		for _, d := range strings.Split(v, ",") {
			if d = strings.TrimSpace(d); d != "" {
				c.BaseDomains = append(c.BaseDomains, d)
			}
		}
	}
	boolean("GATEWAY_TRUST_FORWARDED_HEADERS", &c.TrustForwardedHeaders)
	boolean("GATEWAY_SIGV2", &c.SigV2)
	boolean("GATEWAY_SSEC_ALLOW_HTTP", &c.SSECAllowHTTP)
	str("GATEWAY_BACKEND_SSE", &c.Backend.SSE)
	str("GATEWAY_BACKEND_PAYLOAD", &c.Backend.Payload)
	str("GATEWAY_BACKEND_ENDPOINT", &c.Backend.Endpoint)
	str("GATEWAY_BACKEND_REGION", &c.Backend.Region)
	str("GATEWAY_BACKEND_ACCESS_KEY_ID", &c.Backend.AccessKeyID)
	str("GATEWAY_BACKEND_SECRET_ACCESS_KEY", &c.Backend.SecretAccessKey)
	boolean("GATEWAY_BACKEND_PATH_STYLE", &c.Backend.PathStyle)
	str("GATEWAY_KEY_PROVIDER", &c.Keys.Provider)
	str("GATEWAY_KMS_KEY_ID", &c.Keys.KMS.KeyID)
	str("GATEWAY_KMS_ENDPOINT", &c.Keys.KMS.Endpoint)
	str("GATEWAY_KMS_REGION", &c.Keys.KMS.Region)
	str("GATEWAY_KMS_ACCESS_KEY_ID", &c.Keys.KMS.AccessKeyID)
	str("GATEWAY_KMS_SECRET_ACCESS_KEY", &c.Keys.KMS.SecretAccessKey)
	str("GATEWAY_LOCAL_KEY_FILE", &c.Keys.Local.File)
	str("GATEWAY_PKCS11_MODULE", &c.Keys.PKCS11.Module)
	str("GATEWAY_PKCS11_TOKEN_LABEL", &c.Keys.PKCS11.TokenLabel)
	str("GATEWAY_PKCS11_KEY", &c.Keys.PKCS11.Key)
	boolean("GATEWAY_CACHE_DISABLED", &c.Cache.Disabled)
	str("GATEWAY_ETAG", &c.Encryption.ETag)
	if v := getenv("GATEWAY_ALLOW_UNENCRYPTED"); v != "" {
		c.Encryption.AllowUnencrypted = parseScopesEnv(v)
	}
	if v := getenv("GATEWAY_BACKEND_RESERVED_BUCKETS"); v != "" {
		c.Backend.ReservedBuckets = []string{}
		for _, b := range strings.Split(v, ",") {
			if b = strings.TrimSpace(b); b != "" && b != "-" {
				c.Backend.ReservedBuckets = append(c.Backend.ReservedBuckets, b)
			}
		}
	}
	if v := getenv("GATEWAY_BACKEND_MAX_COPY_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("config: GATEWAY_BACKEND_MAX_COPY_SIZE=%q is not an integer", v)
		}
		c.Backend.MaxCopySize = n
	}
	if v := getenv("GATEWAY_S3EC_BUCKETS"); v != "" {
		c.Encryption.S3ECBuckets = nil
		for _, b := range strings.Split(v, ",") {
			if b = strings.TrimSpace(b); b != "" {
				c.Encryption.S3ECBuckets = append(c.Encryption.S3ECBuckets, b)
			}
		}
	}
	str("GATEWAY_S3EC_SPOOL_DIR", &c.Encryption.S3ECSpoolDir)
	if v := getenv("GATEWAY_S3EC_SPOOL_MAX_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("config: GATEWAY_S3EC_SPOOL_MAX_BYTES=%q is not an integer", v)
		}
		c.Encryption.S3ECSpoolMaxBytes = n
	}
	str("GATEWAY_LOG_FORMAT", &c.Log.Format)
	str("GATEWAY_LOG_LEVEL", &c.Log.Level)
	str("GATEWAY_METRICS_LISTEN", &c.Metrics.Listen)
	str("GATEWAY_AUDIT_FILE", &c.Audit.File)
	integer := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("config: %s=%q is not an integer", name, v)
			}
			*dst = n
		}
	}
	integer("GATEWAY_MAX_CONCURRENT_REQUESTS", &c.Server.MaxConcurrentRequests)
	integer("GATEWAY_MAX_HEADER_BYTES", &c.Server.MaxHeaderBytes)
	if v := getenv("GATEWAY_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("config: GATEWAY_SHUTDOWN_TIMEOUT=%q is not a duration (e.g. 30s)", v)
		}
		c.Server.ShutdownTimeout = d
	}

	id, secret := getenv("GATEWAY_ACCESS_KEY_ID"), getenv("GATEWAY_SECRET_ACCESS_KEY")
	if (id == "") != (secret == "") {
		return errors.New("config: GATEWAY_ACCESS_KEY_ID and GATEWAY_SECRET_ACCESS_KEY must be set together")
	}
	if id != "" {
		replaced := false
		for i := range c.Credentials {
			if c.Credentials[i].AccessKeyID == id {
				// Same key id as in the file: the environment supplies its secret, the file
				// keeps its buckets, read-only and admin flags and KMS keys.
				c.Credentials[i].SecretAccessKey, c.Credentials[i].SecretAccessKeyFile = secret, ""
				replaced = true
			}
		}
		if !replaced {
			c.Credentials = append(c.Credentials, Credential{AccessKeyID: id, SecretAccessKey: secret, Admin: true})
		}
	}
	return firstErr
}

func (c *Config) defaults(getenv func(string) string) error {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Backend.MaxCopySize < 0 {
		return fmt.Errorf("config: backend.max_copy_size %d is negative (0 = S3's 5 GiB)", c.Backend.MaxCopySize)
	}
	if c.DataDir == "" {
		base := getenv("XDG_DATA_HOME")
		if base == "" {
			home := getenv("HOME")
			if home == "" {
				return errors.New("config: no data_dir, and neither XDG_DATA_HOME nor HOME is set")
			}
			base = filepath.Join(home, ".local", "share")
		}
		c.DataDir = filepath.Join(base, "s3seal")
	}
	if c.Backend.Region == "" {
		c.Backend.Region = c.Region
	}
	if c.Mode == ModeEmbedded {
		c.Backend.PathStyle = true
	}
	if c.Backend.Timeout == 0 {
		c.Backend.Timeout = 60 * time.Second
	}
	if c.Backend.Payload == "" {
		c.Backend.Payload = "auto"
	}
	if c.Backend.ReservedBuckets == nil {
		c.Backend.ReservedBuckets = []string{"minio", "admin"}
	}
	if c.Keys.Provider == "" {
		switch {
		case c.Mode == ModeEmbedded:
			c.Keys.Provider = ProviderLocal
		case c.Keys.KMS.KeyID != "":
			c.Keys.Provider = ProviderKMS
		default:
			c.Keys.Provider = ProviderLocal
		}
	}
	kmsDefaults(&c.Keys.KMS, c.Region)
	if err := c.keysDefaults(getenv); err != nil {
		return err
	}
	if c.Keys.Local.File == "" {
		c.Keys.Local.File = filepath.Join(c.DataDir, "keys.yaml")
	}
	if c.Cache.MaxAge == 0 {
		c.Cache.MaxAge = 5 * time.Minute
	}
	if c.Cache.MaxObjects == 0 {
		c.Cache.MaxObjects = 10000
	}
	if c.Cache.MaxBytes == 0 {
		c.Cache.MaxBytes = 64 << 30
	}
	if c.Cache.DecryptMaxAge == 0 {
		c.Cache.DecryptMaxAge = 5 * time.Minute
	}
	if c.Encryption.ETag == "" {
		c.Encryption.ETag = ETagPlaintext
	}
	if c.Encryption.S3ECSpoolDir == "" {
		c.Encryption.S3ECSpoolDir = os.TempDir()
	}
	if c.Encryption.S3ECSpoolMaxBytes == 0 {
		c.Encryption.S3ECSpoolMaxBytes = 1 << 30
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	c.serverDefaults()
	return nil
}

// serverDefaults fills the Server and Metrics defaults.
func (c *Config) serverDefaults() {
	s := &c.Server
	if s.ReadHeaderTimeout == 0 {
		s.ReadHeaderTimeout = 30 * time.Second
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = 120 * time.Second
	}
	if s.BodyReadTimeout == 0 {
		s.BodyReadTimeout = 60 * time.Second
	}
	if s.BodyWriteTimeout == 0 {
		s.BodyWriteTimeout = 60 * time.Second
	}
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = 64 << 10
	}
	if s.MaxConcurrentRequests == 0 {
		s.MaxConcurrentRequests = 1024
	}
	if s.ShutdownTimeout == 0 {
		s.ShutdownTimeout = 30 * time.Second
	}
	if c.Metrics.ReadyCache == 0 {
		c.Metrics.ReadyCache = 2 * time.Second
	}
	if c.Metrics.ReadyTimeout == 0 {
		c.Metrics.ReadyTimeout = 3 * time.Second
	}
}

func readSecretFile(path string, dst *string) error {
	if path == "" {
		return nil
	}
	if *dst != "" {
		return fmt.Errorf("config: both a secret and a secret file (%s) are set", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: reading secret file: %w", err)
	}
	*dst = strings.TrimSpace(string(data))
	return nil
}

func (c *Config) readSecretFiles() error {
	for i := range c.Credentials {
		if err := readSecretFile(c.Credentials[i].SecretAccessKeyFile, &c.Credentials[i].SecretAccessKey); err != nil {
			return err
		}
	}
	if err := readSecretFile(c.Backend.SecretAccessKeyFile, &c.Backend.SecretAccessKey); err != nil {
		return err
	}
	return readSecretFile(c.Keys.KMS.SecretAccessKeyFile, &c.Keys.KMS.SecretAccessKey)
}
