package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestExampleDocumentsEveryKey checks that config.example.yaml names every key of Config (and
// nothing else), and that the defaults it shows are the ones the code applies.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ex Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a key in the example that Config lacks fails here
	if err := dec.Decode(&ex); err != nil {
		t.Fatalf("example does not parse into Config: %v", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeOf(Config{}), "") {
		if !hasPath(raw, strings.Split(key, ".")) {
			t.Errorf("config.example.yaml does not document %q", key)
		}
	}

	def := &Config{Mode: ModeS3}
	if err := def.defaults(env(map[string]string{"HOME": "/home/x"})); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", ex.Listen, def.Listen},
		{"region", ex.Region, def.Region},
		{"backend.timeout", ex.Backend.Timeout, def.Backend.Timeout},
		{"backend.payload", ex.Backend.Payload, def.Backend.Payload},
		{"backend.reserved_buckets", ex.Backend.ReservedBuckets, def.Backend.ReservedBuckets},
		{"backend.max_copy_size", ex.Backend.MaxCopySize, def.Backend.MaxCopySize},
		{"sigv2", ex.SigV2, def.SigV2},
		{"trust_forwarded_headers", ex.TrustForwardedHeaders, def.TrustForwardedHeaders},
		{"keys.kms.timeout", ex.Keys.KMS.Timeout, def.Keys.KMS.Timeout},
		{"keys.kms.max_attempts", ex.Keys.KMS.MaxAttempts, def.Keys.KMS.MaxAttempts},
		{"cache.max_age", ex.Cache.MaxAge, def.Cache.MaxAge},
		{"cache.max_objects", ex.Cache.MaxObjects, def.Cache.MaxObjects},
		{"cache.max_bytes", ex.Cache.MaxBytes, def.Cache.MaxBytes},
		{"cache.decrypt_max_age", ex.Cache.DecryptMaxAge, def.Cache.DecryptMaxAge},
		{"encryption.etag", ex.Encryption.ETag, def.Encryption.ETag},
		{"encryption.allow_unencrypted", ex.Encryption.AllowUnencrypted, def.Encryption.AllowUnencrypted},
		{"log.format", ex.Log.Format, def.Log.Format},
		{"log.level", ex.Log.Level, def.Log.Level},
		{"server", ex.Server, def.Server},
		{"metrics", ex.Metrics, def.Metrics},
		{"audit", ex.Audit, def.Audit},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: example shows %v, code default is %v", c.name, c.got, c.want)
		}
	}
}

// yamlKeys lists the dotted yaml keys of a struct type (slices of structs use the element's keys).
func yamlKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		out = append(out, key)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
			key += ".0"
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Duration(0)) {
			out = append(out, yamlKeys(ft, key+".")...)
		}
	}
	return out
}

func hasPath(v any, path []string) bool {
	if len(path) == 0 {
		return true
	}
	switch x := v.(type) {
	case map[string]any:
		child, ok := x[path[0]]
		return ok && hasPath(child, path[1:])
	case []any:
		return path[0] == "0" && len(x) > 0 && hasPath(x[0], path[1:])
	}
	return false
}

func TestEmbeddedDefaults(t *testing.T) {
	c, err := Load("", env(map[string]string{"HOME": "/home/u"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeEmbedded || c.Listen != "127.0.0.1:8080" || c.Region != "us-east-1" {
		t.Errorf("mode/listen/region = %q %q %q", c.Mode, c.Listen, c.Region)
	}
	if c.DataDir != "/home/u/.local/share/s3seal" {
		t.Errorf("data dir %q", c.DataDir)
	}
	if c.Keys.Provider != ProviderLocal || c.Keys.Local.File != "/home/u/.local/share/s3seal/keys.yaml" {
		t.Errorf("keys %+v", c.Keys)
	}
	if !c.Backend.PathStyle {
		t.Error("embedded mode must use path-style addressing")
	}
}

func TestEnvOverridesFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := `
listen: 0.0.0.0:9000
region: eu-west-1
credentials:
  - access_key_id: FILEKEY
    secret_access_key_file: ` + secretFile + `
    buckets: [a, b]
    read_only: true
backend:
  endpoint: http://file:9000
keys:
  kms:
    key_id: file-key
`
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file, env(map[string]string{
		"HOME":                              "/h",
		"GATEWAY_LISTEN":                    "127.0.0.1:1234",
		"GATEWAY_BACKEND_ENDPOINT":          "http://env:9000",
		"GATEWAY_BACKEND_PATH_STYLE":        "true",
		"GATEWAY_BACKEND_ACCESS_KEY_ID":     "bk",
		"GATEWAY_BACKEND_SECRET_ACCESS_KEY": "bs",
		"GATEWAY_ACCESS_KEY_ID":             "ENVKEY",
		"GATEWAY_SECRET_ACCESS_KEY":         "envsecret",
		"GATEWAY_KMS_ENDPOINT":              "http://kms:1",
		"GATEWAY_BACKEND_RESERVED_BUCKETS":  "minio, rgwadmin",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Backend.ReservedBuckets, []string{"minio", "rgwadmin"}) {
		t.Errorf("backend.reserved_buckets from the environment: %q", c.Backend.ReservedBuckets)
	}
	if c.Mode != ModeS3 || c.Listen != "127.0.0.1:1234" || c.Region != "eu-west-1" {
		t.Errorf("mode/listen/region = %q %q %q", c.Mode, c.Listen, c.Region)
	}
	if c.Backend.Endpoint != "http://env:9000" || !c.Backend.PathStyle || c.Backend.Region != "eu-west-1" {
		t.Errorf("backend %+v", c.Backend)
	}
	if c.Keys.Provider != ProviderKMS || c.Keys.KMS.KeyID != "file-key" || c.Keys.KMS.Endpoint != "http://kms:1" {
		t.Errorf("keys %+v", c.Keys)
	}
	if len(c.Credentials) != 2 || c.Credentials[0].SecretAccessKey != "from-file" ||
		!c.Credentials[0].ReadOnly || c.Credentials[1].AccessKeyID != "ENVKEY" {
		t.Errorf("credentials %+v", c.Redacted().Credentials)
	}
	// A credential from the file is not admin unless it says so; the one the environment adds is.
	if c.Credentials[0].Admin || !c.Credentials[1].Admin {
		t.Errorf("admin flags: file %v, env %v; want false, true", c.Credentials[0].Admin, c.Credentials[1].Admin)
	}
	r := c.Redacted()
	for _, cr := range r.Credentials {
		if cr.SecretAccessKey != "REDACTED" {
			t.Errorf("Redacted leaks a client secret")
		}
	}
	if r.Backend.SecretAccessKey != "REDACTED" || c.Backend.SecretAccessKey != "bs" {
		t.Errorf("Redacted must redact the copy only")
	}
}

func TestInvalid(t *testing.T) {
	cases := map[string]map[string]string{
		"s3 mode without credentials": {"GATEWAY_BACKEND_ENDPOINT": "http://x"},
		"kms without key id":          {"GATEWAY_KEY_PROVIDER": "kms"},
		"half a client credential":    {"GATEWAY_ACCESS_KEY_ID": "x"},
		"bad bool":                    {"GATEWAY_BACKEND_PATH_STYLE": "maybe"},
		"bad etag mode":               {"GATEWAY_ETAG": "md5"},
		"bad mode":                    {"GATEWAY_MODE": "cloud"},
		"bad concurrency limit":       {"GATEWAY_MAX_CONCURRENT_REQUESTS": "many"},
		"negative concurrency limit":  {"GATEWAY_MAX_CONCURRENT_REQUESTS": "-1"},
		"bad shutdown timeout":        {"GATEWAY_SHUTDOWN_TIMEOUT": "30"},
		"metrics on the S3 port":      {"GATEWAY_METRICS_LISTEN": "127.0.0.1:8080"},
		"bad max copy size":           {"GATEWAY_BACKEND_MAX_COPY_SIZE": "8MiB"},
		"negative max copy size":      {"GATEWAY_BACKEND_MAX_COPY_SIZE": "-1"},
	}
	for name, m := range cases {
		m["HOME"] = "/h"
		if _, err := Load("", env(m)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(bad, []byte("listen: x\nunknown_key: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad, env(map[string]string{"HOME": "/h"})); err == nil {
		t.Error("unknown key accepted")
	}
}

func TestOperationsEnv(t *testing.T) {
	c, err := Load("", env(map[string]string{
		"HOME":                            "/h",
		"GATEWAY_METRICS_LISTEN":          "127.0.0.1:9191",
		"GATEWAY_AUDIT_FILE":              "stdout",
		"GATEWAY_MAX_CONCURRENT_REQUESTS": "7",
		"GATEWAY_SHUTDOWN_TIMEOUT":        "1500ms",
		"GATEWAY_BACKEND_MAX_COPY_SIZE":   "8388608",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend.MaxCopySize != 8<<20 {
		t.Errorf("backend.max_copy_size from the environment: %d", c.Backend.MaxCopySize)
	}
	if c.Metrics.Listen != "127.0.0.1:9191" || c.Audit.File != "stdout" ||
		c.Server.MaxConcurrentRequests != 7 || c.Server.ShutdownTimeout != 1500*time.Millisecond {
		t.Errorf("metrics %+v audit %+v server %+v", c.Metrics, c.Audit, c.Server)
	}
}

// TestReservedBucketsNone: "[]" in the file and "-" in the environment reserve no name (AWS).
func TestReservedBucketsNone(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("backend:\n  endpoint: http://file:9000\n  reserved_buckets: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, vars := range map[string]map[string]string{
		"file []":       {"HOME": "/h", "GATEWAY_ACCESS_KEY_ID": "K", "GATEWAY_SECRET_ACCESS_KEY": "s"},
		"environment -": {"HOME": "/h", "GATEWAY_ACCESS_KEY_ID": "K", "GATEWAY_SECRET_ACCESS_KEY": "s", "GATEWAY_BACKEND_RESERVED_BUCKETS": "-"},
	} {
		c, err := Load(file, env(vars))
		if err != nil {
			t.Fatal(err)
		}
		if c.Backend.ReservedBuckets == nil || len(c.Backend.ReservedBuckets) != 0 {
			t.Errorf("%s: reserved buckets %q, want none", name, c.Backend.ReservedBuckets)
		}
	}
}
