package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// S3EC reading is off unless buckets are named; the env list is comma-separated; the spool
// has its defaults and env overrides.
func TestS3ECSettings(t *testing.T) {
	c, err := Load("", env(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Encryption
	if len(e.S3ECBuckets) != 0 || e.S3ECSpoolDir != os.TempDir() || e.S3ECSpoolMaxBytes != 1<<30 {
		t.Errorf("defaults: %+v", e)
	}
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("mode: embedded\nencryption:\n  s3ec_buckets: [from-file]\n  s3ec_spool_max_bytes: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(file, env(map[string]string{"HOME": "/h"})); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Encryption.S3ECBuckets, []string{"from-file"}) || c.Encryption.S3ECSpoolMaxBytes != 5 {
		t.Errorf("file: %+v", c.Encryption)
	}
	c, err = Load(file, env(map[string]string{
		"HOME":                         "/h",
		"GATEWAY_S3EC_BUCKETS":         " legacy, other ,,*",
		"GATEWAY_S3EC_SPOOL_DIR":       "/var/spool/s3seal",
		"GATEWAY_S3EC_SPOOL_MAX_BYTES": "4096",
	}))
	if err != nil {
		t.Fatal(err)
	}
	e = c.Encryption
	if !slices.Equal(e.S3ECBuckets, []string{"legacy", "other", "*"}) || e.S3ECSpoolDir != "/var/spool/s3seal" || e.S3ECSpoolMaxBytes != 4096 {
		t.Errorf("env: %+v", e)
	}
	for _, v := range []string{"-1", "lots"} {
		if _, err := Load("", env(map[string]string{"HOME": "/h", "GATEWAY_S3EC_SPOOL_MAX_BYTES": v})); err == nil {
			t.Errorf("spool max %q accepted", v)
		}
	}
}
