package testenv

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// SecretsFile is the name, in $S3SEAL_TEST_LOG_DIR, of the list of secrets the tests used (one
// JSON object per line: kind, test, value). The log scan that runs after the suite
// (integration/ops_logscan_test.go) checks that none of them appears in any gateway log.
const SecretsFile = "secrets.jsonl"

// Secret is one recorded secret.
type Secret struct {
	Kind  string `json:"kind"` // e.g. "GATEWAY_SECRET_ACCESS_KEY", "sse-c-key"
	Test  string `json:"test"`
	Value string `json:"value"`
}

// RecordSecret notes a secret the test uses (a credential, an SSE-C key, ...) so that the log scan
// can check no gateway log contains it. It does nothing when $S3SEAL_TEST_LOG_DIR is unset or
// value is empty. Tests that hand a gateway a secret by other means than StartGateway's
// environment (which is recorded automatically) should call it.
func RecordSecret(t testing.TB, kind, value string) {
	t.Helper()
	dir := os.Getenv("S3SEAL_TEST_LOG_DIR")
	if dir == "" || value == "" {
		return
	}
	line, err := json.Marshal(Secret{Kind: kind, Test: t.Name(), Value: value})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	// One write per line to an O_APPEND file: lines from parallel tests and processes do not
	// interleave.
	f, err := os.OpenFile(filepath.Join(dir, SecretsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("testenv: recording a secret: %v", err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		t.Fatalf("testenv: recording a secret: %v", err)
	}
}

// ReadSecrets returns the secrets recorded in dir (none when the file does not exist).
func ReadSecrets(dir string) ([]Secret, error) {
	f, err := os.Open(filepath.Join(dir, SecretsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Secret
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var s Secret
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// recordGatewaySecrets records the secret values of a gateway's environment (every variable
// whose name contains SECRET) and of a -config file among args (every secret_access_key).
func recordGatewaySecrets(t testing.TB, vars map[string]string, args []string) {
	t.Helper()
	for k, v := range vars {
		if strings.Contains(k, "SECRET") || strings.HasSuffix(k, "_PIN") {
			RecordSecret(t, k, v)
		}
	}
	for i, a := range args {
		if (a == "-config" || a == "--config") && i+1 < len(args) {
			recordConfigSecrets(t, args[i+1])
		} else if v, ok := strings.CutPrefix(a, "-config="); ok {
			recordConfigSecrets(t, v)
		}
	}
}

// recordConfigSecrets records every secret_access_key value in a YAML config file (a file that
// does not parse is the gateway's problem, not the recorder's).
func recordConfigSecrets(t testing.TB, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var doc any
	if yaml.Unmarshal(data, &doc) != nil {
		return
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); ok && strings.Contains(k, "secret") {
					RecordSecret(t, "config:"+k, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
}
