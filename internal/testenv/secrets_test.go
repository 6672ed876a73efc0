package testenv

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRecordSecrets(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("S3SEAL_TEST_LOG_DIR", dir)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	yml := "credentials:\n  - access_key_id: A\n    secret_access_key: from-yaml-secret\nbackend:\n  secret_access_key: backend-yaml-secret\n"
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	recordGatewaySecrets(t, map[string]string{
		"GATEWAY_SECRET_ACCESS_KEY":     "client-secret",
		"GATEWAY_KMS_SECRET_ACCESS_KEY": "kms-secret",
		"GATEWAY_ACCESS_KEY_ID":         "not-a-secret",
	}, []string{"-config", cfg})
	RecordSecret(t, "sse-c-key", "c3NlLWMta2V5")
	RecordSecret(t, "empty", "")
	got, err := ReadSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, s := range got {
		if s.Test != t.Name() {
			t.Errorf("secret %q recorded for test %q", s.Kind, s.Test)
		}
		values = append(values, s.Value)
	}
	slices.Sort(values)
	want := []string{"backend-yaml-secret", "c3NlLWMta2V5", "client-secret", "from-yaml-secret", "kms-secret"}
	if !slices.Equal(values, want) {
		t.Errorf("recorded %q, want %q", values, want)
	}
	if none, err := ReadSecrets(t.TempDir()); err != nil || len(none) != 0 {
		t.Errorf("empty dir: %v %v", none, err)
	}
}
