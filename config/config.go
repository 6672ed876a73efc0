// Package config is the gateway's configuration: one struct whose fields and comments are the
// documentation (config.example.yaml mirrors it), loaded from a YAML file (go.yaml.in/yaml/v3),
// then overridden by GATEWAY_* environment variables (how containers and sidecars are
// configured), then given defaults and validated.
//
// Secrets may come from the file, from the environment, or from files named by `*_file` keys
// (Kubernetes secrets, systemd credentials). Config values are never logged; Redacted returns a
// copy that is safe to print.
package config

import "time"

// Mode values.
const (
	ModeEmbedded = "embedded" // in-process S3 store on local disk + local key file
	ModeS3       = "s3"       // a real S3 backend (AWS, MinIO, Ceph, ...)
)

// Key provider values.
const (
	ProviderKMS   = "kms"
	ProviderLocal = "local"
)

// ETag modes.
const (
	ETagPlaintext = "plaintext" // MD5 of the plaintext, sealed in the object (S3 semantics)
	ETagBackend   = "backend"   // the backend's ETag everywhere and no MD5 (listings still read each object's facts once, for plaintext sizes)
)

// Config is the whole gateway configuration.
type Config struct {
	// Mode is "embedded" or "s3". Default: embedded when no config file is given and
	// GATEWAY_BACKEND_ENDPOINT is unset, s3 otherwise. Env GATEWAY_MODE.
	Mode string `yaml:"mode"`
	// Listen is the S3 listener address. Default 127.0.0.1:8080. Env GATEWAY_LISTEN.
	Listen string `yaml:"listen"`
	// Region is the region clients sign for. Default us-east-1. Env GATEWAY_REGION.
	Region string `yaml:"region"`
	// TLS serves the S3 listener over HTTPS when both files are set. The certificate is
	// re-read on SIGHUP.
	TLS TLS `yaml:"tls"`
	// BaseDomains enable virtual-hosted-style requests: <bucket>.<base domain>. Env
	// GATEWAY_BASE_DOMAINS (comma-separated).
	BaseDomains []string `yaml:"base_domains"`
	// TrustForwardedHeaders verifies signatures against X-Forwarded-Host/X-Forwarded-Proto, for
	// a gateway behind a trusted load balancer that rewrites Host. Default false. Env
	// GATEWAY_TRUST_FORWARDED_HEADERS.
	TrustForwardedHeaders bool `yaml:"trust_forwarded_headers"`
	// SigV2 accepts legacy SigV2 signatures (header and query) from old applications; requests
	// are re-signed to the backend with SigV4. Default false. Env GATEWAY_SIGV2.
	SigV2 bool `yaml:"sigv2"`
	// SSECAllowHTTP accepts SSE-C customer keys over plain HTTP (e.g. a sidecar on loopback).
	// Default false: SSE-C requests over HTTP are refused, as S3 does. Env
	// GATEWAY_SSEC_ALLOW_HTTP.
	SSECAllowHTTP bool `yaml:"ssec_allow_http"`
	// DataDir holds the embedded store, its client credentials and the local key file.
	// Default $XDG_DATA_HOME/s3seal or ~/.local/share/s3seal. Env GATEWAY_DATA_DIR.
	DataDir string `yaml:"data_dir"`
	// Credentials are the client credentials the gateway accepts. Env GATEWAY_ACCESS_KEY_ID and
	// GATEWAY_SECRET_ACCESS_KEY add one admin credential with access to every bucket, or, when
	// the file has that key id, give its secret. In embedded mode with none configured, one is created in the data dir.
	Credentials []Credential `yaml:"credentials"`
	// Backend is the S3 service objects are stored in (mode s3).
	Backend Backend `yaml:"backend"`
	// Keys selects and configures the key provider.
	Keys Keys `yaml:"keys"`
	// Cache configures the data-key cache.
	Cache Cache `yaml:"cache"`
	// Encryption configures format choices.
	Encryption Encryption `yaml:"encryption"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// Server configures the S3 listener's timeouts, limits and shutdown.
	Server Server `yaml:"server"`
	// Metrics configures the operations listener: /metrics, /healthz and /readyz.
	Metrics Metrics `yaml:"metrics"`
	// Audit configures the key-use audit trail.
	Audit Audit `yaml:"audit"`
}

// Server configures the S3 listener's timeouts, limits and shutdown. There is no overall
// read or write timeout, which would cut long transfers: the body timeouts below bound the
// time a client may stall, reset by every byte that moves.
type Server struct {
	// ReadHeaderTimeout bounds the time a client takes to send a request's headers. Default 30s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes a keep-alive connection with no request for this long. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// BodyReadTimeout is the longest a client may leave a request body without sending a byte.
	// Default 60s.
	BodyReadTimeout time.Duration `yaml:"body_read_timeout"`
	// BodyWriteTimeout is the longest a client may leave a response without reading a byte.
	// Default 60s.
	BodyWriteTimeout time.Duration `yaml:"body_write_timeout"`
	// MaxHeaderBytes limits the size of a request's headers: larger ones get S3's 400
	// RequestHeaderSectionTooLarge (beyond twice this, the HTTP server cuts the connection with
	// a bare 431). Default 65536. Env GATEWAY_MAX_HEADER_BYTES.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConcurrentRequests are served at once; more are refused at once with 503 SlowDown.
	// Default 1024. Env GATEWAY_MAX_CONCURRENT_REQUESTS.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// ShutdownTimeout is how long in-flight requests may take to finish after SIGTERM/SIGINT;
	// the rest are aborted (their backend uploads fail, nothing half-written is stored).
	// Default 30s. Env GATEWAY_SHUTDOWN_TIMEOUT.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Metrics configures the operations listener.
type Metrics struct {
	// Listen is the address of the listener serving /metrics (Prometheus), /healthz and
	// /readyz. Empty (the default) = off. Env GATEWAY_METRICS_LISTEN.
	Listen string `yaml:"listen"`
	// ReadyCache is how long a /readyz result (backend and key provider reachable) is reused.
	// Default 2s.
	ReadyCache time.Duration `yaml:"ready_cache"`
	// ReadyTimeout bounds one readiness check of the backend or the key provider. Default 3s.
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
}

// Audit configures the key-use audit trail: one JSON line per use of a data key on an object
// (write, read, copy, rewrap), never key bytes.
type Audit struct {
	// File is where audit records go: a file path (appended to, created 0600, reopened on
	// SIGHUP for log rotation), "stdout", "stderr", or empty (the default) for none.
	// Env GATEWAY_AUDIT_FILE.
	File string `yaml:"file"`
}

// TLS configures HTTPS on the S3 listener.
type TLS struct {
	// CertFile is a PEM certificate chain. Env GATEWAY_TLS_CERT_FILE.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key. Env GATEWAY_TLS_KEY_FILE.
	KeyFile string `yaml:"key_file"`
}

// Credential is one client access key.
type Credential struct {
	AccessKeyID string `yaml:"access_key_id"`
	// SecretAccessKey, or SecretAccessKeyFile naming a file that holds it.
	SecretAccessKey     string `yaml:"secret_access_key"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`
	// Buckets this credential may use; empty = all.
	Buckets []string `yaml:"buckets"`
	// ReadOnly refuses writes with AccessDenied.
	ReadOnly bool `yaml:"read_only"`
	// KMSKeyIDs are the keys this credential may choose with SSE-KMS headers, besides the
	// default keys ("*" = any key the provider has).
	KMSKeyIDs []string `yaml:"kms_key_ids"`
	// Admin may change bucket configuration and access control: bucket policy, bucket and
	// object ACLs (and ACL headers on uploads), lifecycle, versioning, object lock,
	// replication, logging, inventory, notification, encryption, CORS and website
	// configuration. Default false; the credential made from GATEWAY_ACCESS_KEY_ID and
	// GATEWAY_SECRET_ACCESS_KEY and embedded mode's generated credential are admin.
	Admin bool `yaml:"admin"`
}

// Backend is the S3 service behind the gateway.
type Backend struct {
	// Endpoint URL; empty = AWS S3 for Region. Env GATEWAY_BACKEND_ENDPOINT.
	Endpoint string `yaml:"endpoint"`
	// Region the backend is signed for. Default: the gateway's region. Env GATEWAY_BACKEND_REGION.
	Region string `yaml:"region"`
	// Static credentials; empty = the AWS default credential chain (env, shared config,
	// IMDS, web identity). Env GATEWAY_BACKEND_ACCESS_KEY_ID, GATEWAY_BACKEND_SECRET_ACCESS_KEY.
	AccessKeyID         string `yaml:"access_key_id"`
	SecretAccessKey     string `yaml:"secret_access_key"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`
	// PathStyle uses http://host/bucket/key instead of http://bucket.host/key. Default false
	// (true in embedded mode). Env GATEWAY_BACKEND_PATH_STYLE.
	PathStyle bool `yaml:"path_style"`
	// CABundle is a PEM file of extra CAs for a backend with a private certificate.
	CABundle string `yaml:"ca_bundle"`
	// Timeout for the response headers of one backend request. Default 60s.
	Timeout time.Duration `yaml:"timeout"`
	// Payload is how object bodies are sent without hashing the ciphertext again: "auto"
	// (CRC32C trailer over http, unsigned over https and in embedded mode), "unsigned" or
	// "crc-trailer". Default auto. Env GATEWAY_BACKEND_PAYLOAD.
	Payload string `yaml:"payload"`
	// SSE asks the backend to encrypt too (double encryption): "" (none), "AES256" or
	// "aws:kms" (with SSEKMSKeyID). Env GATEWAY_BACKEND_SSE.
	SSE         string `yaml:"sse"`
	SSEKMSKeyID string `yaml:"sse_kms_key_id"`
	// ReservedBuckets are bucket names the gateway refuses (InvalidBucketName) because the
	// backend serves its own APIs under them on the S3 port: a request signed with the
	// backend key there would be an admin request. Default [minio, admin] (MinIO's API
	// prefix, Ceph RGW's default rgw_admin_entry); add the RGW admin entry if it was changed;
	// [] on AWS, which has neither. Names S3's naming rules refuse are refused anyway. Env
	// GATEWAY_BACKEND_RESERVED_BUCKETS (comma-separated; "-" for none).
	ReservedBuckets []string `yaml:"reserved_buckets"`
	// MaxCopySize is the largest copy source (plaintext bytes) CopyObject and UploadPartCopy
	// accept; larger ones are refused as S3 refuses sources above its limit (InvalidRequest).
	// Default 0 = S3's limit, 5 GiB; set it lower for a backend whose copy limit is lower.
	// Completing a multipart upload copies nothing. Env GATEWAY_BACKEND_MAX_COPY_SIZE.
	MaxCopySize int64 `yaml:"max_copy_size"`
}

// Keys selects the key provider.
type Keys struct {
	// Provider is "kms", "local" or "pkcs11", configured by the section of that name. Default:
	// local in embedded mode, kms when kms.key_id is set, local otherwise. With Providers set,
	// it names the default provider among them instead. Env GATEWAY_KEY_PROVIDER.
	Provider string `yaml:"provider"`
	KMS      KMS    `yaml:"kms"`
	Local    Local  `yaml:"local"`
	PKCS11   PKCS11 `yaml:"pkcs11"`
	// Providers names several providers (docs/KEYS.md), each with a type (kms, local, pkcs11)
	// and that type's settings. Key ids recorded in envelopes are then "<name>:<key id>", so
	// reads need no mapping; ids without a known prefix (objects written before Providers was
	// set) belong to the default provider, keys.provider.
	Providers map[string]NamedProvider `yaml:"providers"`
	// BucketKeyIDs sets a bucket's default key, used when a client asks for no particular key:
	// a KMS key id or a local key name, or with Providers "<provider>:<key>" or "<provider>:"
	// (that provider's own default key).
	BucketKeyIDs map[string]string `yaml:"bucket_key_ids"`
}

// KMS configures AWS KMS (or a server speaking its API).
type KMS struct {
	// KeyID (id, ARN or alias) used for new objects. Env GATEWAY_KMS_KEY_ID.
	KeyID string `yaml:"key_id"`
	// Endpoint; empty = AWS KMS. Env GATEWAY_KMS_ENDPOINT.
	Endpoint string `yaml:"endpoint"`
	// Region; default: the gateway's region. Env GATEWAY_KMS_REGION.
	Region string `yaml:"region"`
	// Static credentials; empty = AWS default chain. Env GATEWAY_KMS_ACCESS_KEY_ID,
	// GATEWAY_KMS_SECRET_ACCESS_KEY.
	AccessKeyID         string `yaml:"access_key_id"`
	SecretAccessKey     string `yaml:"secret_access_key"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`
	// Timeout per KMS call. Default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts per KMS call, with exponential backoff. Default 4.
	MaxAttempts int `yaml:"max_attempts"`
}

// Local configures the local key file.
type Local struct {
	// File path; default <data_dir>/keys.yaml. Created (mode 0600) if missing. Env GATEWAY_LOCAL_KEY_FILE.
	File string `yaml:"file"`
}

// Cache configures the data-key cache (see package cache for why these defaults).
type Cache struct {
	// Disabled sends every key request to the provider. Env GATEWAY_CACHE_DISABLED.
	Disabled bool `yaml:"disabled"`
	// MaxAge of a data key used for new objects. Default 5m.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxObjects encrypted under one data key. Default 10000.
	MaxObjects int64 `yaml:"max_objects"`
	// MaxBytes of plaintext encrypted under one data key. Default 64 GiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// DecryptMaxAge of an unwrapped data key kept for reading. Default 5m.
	DecryptMaxAge time.Duration `yaml:"decrypt_max_age"`
}

// Encryption configures format choices.
type Encryption struct {
	// ETag is "plaintext" (MD5 of the plaintext, as S3) or "backend". Default plaintext.
	// Env GATEWAY_ETAG.
	ETag string `yaml:"etag"`
	// AllowUnencrypted is where objects without an s3seal envelope (data stored before the
	// gateway, during a migration) are served as they are stored: a list of scopes, "bucket"
	// (the whole bucket), "bucket/prefix" (keys starting with prefix) or "*" (everywhere).
	// Elsewhere such objects are refused with AccessDenied, because anyone who can write to
	// the backend could otherwise put plaintext of their choice where an encrypted object was.
	// A GET or HEAD with SSE-C or SSE-KMS headers is refused for such an object even inside a
	// scope. Also accepted: true (= ["*"]) and false (= none). Default: none. Env
	// GATEWAY_ALLOW_UNENCRYPTED (true, false or comma-separated scopes).
	AllowUnencrypted Scopes `yaml:"allow_unencrypted"`
	// S3ECBuckets are the buckets whose objects written by the AWS S3 Encryption Client (v2
	// format) are verified and decrypted on GET and copy ("*": every bucket). In other buckets
	// such objects are treated like any object without the gateway's envelope. Default none.
	// Env GATEWAY_S3EC_BUCKETS (comma-separated).
	S3ECBuckets []string `yaml:"s3ec_buckets"`
	// S3ECSpoolDir holds the ciphertext of S3EC objects being read: each read spools the whole
	// object once while its GCM tag is checked, and decrypts only from the spool after that
	// (files 0600, unlinked at once; never plaintext). Default the system temp dir. Env
	// GATEWAY_S3EC_SPOOL_DIR.
	S3ECSpoolDir string `yaml:"s3ec_spool_dir"`
	// S3ECSpoolMaxBytes bounds the spool across all requests at once. A read that does not fit
	// now gets 503 SlowDown (retry later); an object larger than the whole bound gets 501
	// NotImplemented. Default 1 GiB. Env GATEWAY_S3EC_SPOOL_MAX_BYTES.
	S3ECSpoolMaxBytes int64 `yaml:"s3ec_spool_max_bytes"`
}

// Log configures logging.
type Log struct {
	// Format "text" or "json". Default text. Env GATEWAY_LOG_FORMAT.
	Format string `yaml:"format"`
	// Level "debug", "info", "warn", "error". Default info. Env GATEWAY_LOG_LEVEL.
	Level string `yaml:"level"`
}
