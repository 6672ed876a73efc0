package integration

import (
	"encoding/json"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/config"
	"github.com/s3seal/s3seal/internal/testenv"
)

// opsCheckBackendUser checks docker-compose.yml's least privilege at the backend: the
// gateway's backend key is not MinIO's root key but the user that the one-shot minio-init job
// creates with the root key (same access key and secret) and gives the policy file of
// deploy/minio, which is the policy the integration suite's gateways run under
// (testenv.DataPolicy: S3 actions only); the gateway starts once the job has completed, and
// no service but minio and the job sees the root password.
func opsCheckBackendUser(t *testing.T, cf opsCompose, cfg *config.Config) {
	t.Helper()
	minio := cf.Services["minio"]
	rootUser, rootPass := minio.Environment["MINIO_ROOT_USER"], minio.Environment["MINIO_ROOT_PASSWORD"]
	if rootUser == "" || rootPass == "" {
		t.Fatal("the minio service sets no MINIO_ROOT_USER / MINIO_ROOT_PASSWORD")
	}
	if cfg.Backend.AccessKeyID == rootUser || cfg.Backend.SecretAccessKey == rootPass {
		t.Error("the gateway's backend key is MinIO's root key")
	}
	for name, s := range cf.Services {
		if name == "minio" || name == "minio-init" {
			continue
		}
		for k, v := range s.Environment {
			if v == rootPass {
				t.Errorf("service %s gets MinIO's root password (%s)", name, k)
			}
		}
	}

	job, ok := cf.Services["minio-init"]
	if !ok {
		t.Fatal("no minio-init service creates the gateway's MinIO user")
	}
	if c := cf.Services["gateway"].DependsOn["minio-init"]; c != "service_completed_successfully" {
		t.Errorf("gateway depends_on minio-init with condition %q, want service_completed_successfully", c)
	}
	if _, ok := job.DependsOn["minio"]; !ok {
		t.Error("minio-init does not depend on minio")
	}
	if job.Environment["MINIO_ROOT_USER"] != rootUser || job.Environment["MINIO_ROOT_PASSWORD"] != rootPass {
		t.Error("minio-init's MINIO_ROOT_USER / MINIO_ROOT_PASSWORD are not the minio service's")
	}
	if job.Environment["BACKEND_USER"] != cfg.Backend.AccessKeyID || job.Environment["BACKEND_SECRET"] != cfg.Backend.SecretAccessKey {
		t.Error("minio-init's BACKEND_USER / BACKEND_SECRET are not the gateway's backend key")
	}
	if !strings.HasPrefix(job.Image, "minio/mc") {
		t.Errorf("minio-init image %q: want minio/mc", job.Image)
	}
	if !slices.Equal(job.Entrypoint, []string{"/bin/sh", "-c"}) || len(job.Command) != 1 {
		t.Fatalf("minio-init: entrypoint %q, command %q: want /bin/sh -c and one script", job.Entrypoint, job.Command)
	}
	script := job.Command[0]
	if !strings.HasPrefix(script, "set -e\n") {
		t.Error("the minio-init script does not start with set -e: a failed step would pass")
	}

	// The script's steps, in order, with compose's $$ (a literal $ for the shell).
	alias := regexp.MustCompile(`mc alias set (\S+) http://minio:(\d+) "\$\$MINIO_ROOT_USER" "\$\$MINIO_ROOT_PASSWORD"`).FindStringSubmatchIndex(script)
	if alias == nil {
		t.Fatalf("the minio-init script sets no alias for minio with the root key:\n%s", script)
	}
	name, port := script[alias[2]:alias[3]], script[alias[4]:alias[5]]
	if i := slices.Index(minio.Command, "--address"); i >= 0 && i+1 < len(minio.Command) {
		if _, p, _ := net.SplitHostPort(minio.Command[i+1]); p != port {
			t.Errorf("minio-init talks to port %s, MinIO listens on %s", port, minio.Command[i+1])
		}
	}
	q := regexp.QuoteMeta
	policy := q(testenv.DataPolicyName)
	steps := []struct{ what, re string }{
		{"create the policy", `mc admin policy create ` + q(name) + ` ` + policy + ` (\S+)\n`},
		{"add the user", `mc admin user add ` + q(name) + ` "\$\$BACKEND_USER" "\$\$BACKEND_SECRET"\n`},
		// mc refuses to attach a policy again ("already in effect"): a second run checks it.
		{"attach the policy to the user", `mc admin policy attach ` + q(name) + ` ` + policy + ` --user "\$\$BACKEND_USER" \|\|\n\s*mc admin user info ` + q(name) + ` "\$\$BACKEND_USER" \| grep -q '` + policy + `'\n`},
	}
	at, policyFile := alias[1], ""
	for _, s := range steps {
		m := regexp.MustCompile(s.re).FindStringSubmatchIndex(script[at:])
		if m == nil {
			t.Fatalf("the minio-init script does not %s (after the previous step), %s:\n%s", s.what, s.re, script)
		}
		if len(m) > 2 {
			policyFile = script[at+m[2] : at+m[3]]
		}
		at += m[1]
	}
	opsCheckPolicyFile(t, job, policyFile)
}

// opsCheckPolicyFile reads the policy file the job's script names (at path inside the
// container, on a bind mount of the repository) and checks it allows S3 actions only and is
// testenv.DataPolicy.
func opsCheckPolicyFile(t *testing.T, job opsComposeService, path string) {
	t.Helper()
	file := opsRepoFile(t, job, path)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Effect   string
			Action   []string
			Resource []string
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(doc.Statement) == 0 {
		t.Errorf("%s has no statement", file)
	}
	for _, s := range doc.Statement {
		for _, a := range s.Action {
			if !strings.HasPrefix(a, "s3:") {
				t.Errorf("%s allows %q: the gateway's user needs S3 actions only", file, a)
			}
		}
	}
	var got, want any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(testenv.DataPolicy), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s is not testenv.DataPolicy, the policy the integration tests run the gateway under:\n%s\nwant %s", file, data, testenv.DataPolicy)
	}
}
