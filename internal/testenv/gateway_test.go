package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const fakeGatewayPackage = "github.com/s3seal/s3seal/internal/testenv/testdata/fakegw"

// useFakeGateway builds testdata/fakegw and makes GatewayBin return it for this test.
func useFakeGateway(t *testing.T) string {
	t.Helper()
	bin, err := buildBinary(fakeGatewayPackage, "fakegw")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("S3SEAL_TEST_GATEWAY_BIN", bin)
	return bin
}

// gatewayEnvOf asks a fakegw for the environment it was started with.
func gatewayEnvOf(t *testing.T, g *Gateway) map[string]string {
	t.Helper()
	resp, err := http.Get(g.Endpoint + "/env")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	env := map[string]string{}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	return env
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStartGatewayEnvironmentAndLogs(t *testing.T) {
	bin := useFakeGateway(t)
	logDir := t.TempDir()
	t.Setenv("S3SEAL_TEST_LOG_DIR", logDir)
	t.Setenv("S3SEAL_LEAK_CHECK", "must not reach the gateway")

	var pids []int
	t.Run("two gateways", func(t *testing.T) {
		g1 := StartGateway(t, map[string]string{"EXTRA": "x", "GATEWAY_REGION": "eu-west-1"})
		g2 := StartGateway(t, map[string]string{"GATEWAY_ACCESS_KEY_ID": "", "HOME": ""})
		pids = append(pids, g1.Cmd.Process.Pid, g2.Cmd.Process.Pid)

		env1 := gatewayEnvOf(t, g1)
		want := map[string]string{
			"PATH":                      os.Getenv("PATH"),
			"HOME":                      os.Getenv("HOME"),
			"GATEWAY_LISTEN":            strings.TrimPrefix(g1.Endpoint, "http://"),
			"GATEWAY_ACCESS_KEY_ID":     g1.AccessKeyID,
			"GATEWAY_SECRET_ACCESS_KEY": g1.SecretAccessKey,
			"GATEWAY_REGION":            "eu-west-1",
			"EXTRA":                     "x",
		}
		if v, ok := os.LookupEnv("GORACE"); ok { // forwarded to -race gateways
			want["GORACE"] = v
		}
		if !maps.Equal(env1, want) {
			t.Errorf("gateway 1 environment\n got %v\nwant %v", env1, want)
		}
		if !strings.HasPrefix(g1.Endpoint, "http://127.0.0.1:") || g1.Region != "eu-west-1" {
			t.Errorf("endpoint %q region %q", g1.Endpoint, g1.Region)
		}
		if len(g1.AccessKeyID) < 16 || len(g1.SecretAccessKey) != 40 {
			t.Errorf("weak generated credentials %q / %d chars", g1.AccessKeyID, len(g1.SecretAccessKey))
		}

		env2 := gatewayEnvOf(t, g2)
		if _, ok := env2["GATEWAY_ACCESS_KEY_ID"]; ok || g2.AccessKeyID != "" {
			t.Errorf("empty override did not remove GATEWAY_ACCESS_KEY_ID: env %q, field %q", env2["GATEWAY_ACCESS_KEY_ID"], g2.AccessKeyID)
		}
		if _, ok := env2["HOME"]; ok {
			t.Error("empty override did not remove HOME")
		}
		if g2.Region != "us-east-1" || g2.Endpoint == g1.Endpoint || g2.SecretAccessKey == g1.SecretAccessKey {
			t.Errorf("gateway 2: region %q, endpoint %q (g1 %q), same secret %v", g2.Region, g2.Endpoint, g1.Endpoint, g2.SecretAccessKey == g1.SecretAccessKey)
		}

		log1 := readFile(t, g1.LogPath)
		for _, s := range []string{"fakegw: stderr works", "listening on " + strings.TrimPrefix(g1.Endpoint, "http://"), "GET /env", "cwd " + filepath.Dir(g1.LogPath)} {
			if !strings.Contains(log1, s) {
				t.Errorf("gateway log lacks %q:\n%s", s, log1)
			}
		}
		if strings.Contains(log1, g1.SecretAccessKey) {
			t.Error("the harness wrote the secret key into the log")
		}
	})

	for _, pid := range pids {
		if procAlive(pid) {
			t.Errorf("gateway pid %d still alive after its test ended", pid)
		}
	}
	shared := readFile(t, filepath.Join(logDir, "gateway-TestStartGatewayEnvironmentAndLogs_two_gateways.log"))
	if n := strings.Count(shared, "=== testenv "); n != 2 {
		t.Errorf("suite-wide log has %d gateway headers, want 2:\n%s", n, shared)
	}
	if n := strings.Count(shared, "got SIGTERM"); n != 2 {
		t.Errorf("suite-wide log shows %d SIGTERMs, want 2:\n%s", n, shared)
	}
	if !strings.Contains(shared, bin) || strings.Count(shared, "GET /env") != 2 {
		t.Errorf("suite-wide log lacks the binary or the requests:\n%s", shared)
	}
	entries, _ := filepath.Glob(filepath.Join(logDir, "gateway-*.log")) // besides SecretsFile
	if len(entries) != 1 {
		t.Errorf("log dir has %d gateway logs, want 1", len(entries))
	}
	if secrets, err := ReadSecrets(logDir); err != nil || len(secrets) != 2 {
		t.Errorf("recorded secrets: %d (%v), want the two gateways' client secrets", len(secrets), err)
	}
}

func TestStartGatewayWithArgs(t *testing.T) {
	useFakeGateway(t)
	g := StartGatewayWithArgs(t, nil, "-config", "my config.yaml")
	if log := readFile(t, g.LogPath); !strings.Contains(log, `args ["-config" "my config.yaml"]`) {
		t.Errorf("arguments not passed:\n%s", log)
	}
}

func TestStartGatewayExitDuringStartup(t *testing.T) {
	useFakeGateway(t)
	start := time.Now()
	f := runFake(t, func(tb testing.TB) {
		StartGateway(tb, map[string]string{"FAKEGW_EXIT": "3"})
	})
	if !f.fatal {
		t.Fatal("StartGateway did not fail for a gateway that exits")
	}
	msg := f.text()
	for _, s := range []string{"exited during start-up", "exit status 3", "exiting with status 3 as asked"} {
		if !strings.Contains(msg, s) {
			t.Errorf("failure message lacks %q:\n%s", s, msg)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v to notice the exit", d)
	}
}

func TestGatewayStop(t *testing.T) {
	useFakeGateway(t)
	t.Run("graceful", func(t *testing.T) {
		g := StartGateway(t, nil)
		if err := g.Stop(t); err != nil {
			t.Fatalf("Stop: %v (the fake exits 0 on SIGTERM)", err)
		}
		if !strings.Contains(readFile(t, g.LogPath), "got SIGTERM") {
			t.Error("no SIGTERM seen by the gateway")
		}
		if portOpen(strings.TrimPrefix(g.Endpoint, "http://")) {
			t.Error("port still open after Stop")
		}
		if err := g.Stop(t); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
	t.Run("kill after grace", func(t *testing.T) {
		g := StartGateway(t, map[string]string{"FAKEGW_IGNORE_TERM": "1"})
		start := time.Now()
		err := g.stop(t, 500*time.Millisecond)
		d := time.Since(start)
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("stop returned %v, want an exit error", err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("exit %v, want killed by SIGKILL", err)
		}
		if d < 500*time.Millisecond || d > 5*time.Second {
			t.Errorf("stop took %v with a 500ms grace", d)
		}
		if procAlive(g.Cmd.Process.Pid) {
			t.Error("process still alive")
		}
	})
}

func TestGatewayBinFromEnvironment(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "gateway")
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("S3SEAL_TEST_GATEWAY_BIN", notExec)
	if f := runFake(t, func(tb testing.TB) { GatewayBin(tb) }); !f.fatal || !strings.Contains(f.text(), notExec) {
		t.Errorf("non-executable S3SEAL_TEST_GATEWAY_BIN accepted: %q", f.text())
	}
	bin := useFakeGateway(t)
	if got := GatewayBin(t); got != bin {
		t.Errorf("GatewayBin = %q, want %q", got, bin)
	}
}

func TestGatewayClient(t *testing.T) {
	useFakeGateway(t)
	g := StartGateway(t, nil)
	c := g.Client(t)
	ctx := context.Background()
	out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.Owner.DisplayName); got != g.AccessKeyID {
		t.Errorf("request signed with %q, want the gateway's key %q", got, g.AccessKeyID)
	}
	// Path-style: HEAD /exists. Virtual-hosted style would send HEAD / to exists.127.0.0.1.
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("exists")}); err != nil {
		t.Errorf("HeadBucket(exists): %v (not path-style?)", err)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("missing")}); err == nil {
		t.Error("HeadBucket(missing) succeeded")
	}
	if c.Options().Retryer.MaxAttempts() != 1 {
		t.Errorf("gateway client retries (%d attempts)", c.Options().Retryer.MaxAttempts())
	}
}

func TestGatewayCommandLineClients(t *testing.T) {
	useFakeGateway(t)
	// Settings that would break the clients if Env() let them through.
	t.Setenv("AWS_PROFILE", "no-such-profile")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	g := StartGateway(t, nil)

	ownerOf := func(t *testing.T, out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var res struct{ Owner struct{ DisplayName string } }
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v in %q", err, out)
		}
		return res.Owner.DisplayName
	}
	t.Run("aws v1", func(t *testing.T) {
		out, err := g.AWS(t, "s3api", "list-buckets", "--output", "json")
		if got := ownerOf(t, out, err); got != g.AccessKeyID {
			t.Errorf("aws v1 signed with %q, want %q", got, g.AccessKeyID)
		}
		if v, _ := g.AWS(t, "--version"); strings.Contains(v, "aws-cli/2.") {
			t.Errorf("AWS ran v2: %s", v)
		}
		_, err = g.AWS(t, "s3api", "head-bucket", "--bucket", "missing")
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("head-bucket missing: err %v, want a 404 with stderr", err)
		}
	})
	t.Run("aws v2", func(t *testing.T) {
		out, err := g.AWSv2(t, "s3api", "list-buckets", "--output", "json")
		if got := ownerOf(t, out, err); got != g.AccessKeyID {
			t.Errorf("aws v2 signed with %q, want %q", got, g.AccessKeyID)
		}
	})
	t.Run("boto3", func(t *testing.T) {
		script := `
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["S3SEAL_ENDPOINT"])
print(s3.list_buckets()["Owner"]["DisplayName"], sys.argv[1], os.environ.get("AWS_PROFILE", "-"))
`
		out, err := g.Python(t, script, "arg1")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.TrimSpace(out), g.AccessKeyID+" arg1 -"; got != want {
			t.Errorf("boto3 printed %q, want %q", got, want)
		}
	})
	t.Run("env", func(t *testing.T) {
		env := g.Env()
		for _, kv := range env {
			if strings.HasPrefix(kv, "AWS_PROFILE=") || strings.HasPrefix(kv, "AWS_ENDPOINT_URL=") {
				t.Errorf("Env() passes %s", kv)
			}
		}
		for _, want := range []string{"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
			"S3SEAL_ENDPOINT=" + g.Endpoint, "AWS_DEFAULT_REGION=us-east-1", "PATH=" + os.Getenv("PATH")} {
			if !slices.Contains(env, want) {
				t.Errorf("Env() lacks %s", want)
			}
		}
	})
}

func TestStartGatewayMinIO(t *testing.T) {
	useFakeGateway(t)
	g, m, k, keyID := StartGatewayMinIO(t, map[string]string{"GATEWAY_BACKEND_PATH_STYLE": "false", "EXTRA": "1"})
	env := gatewayEnvOf(t, g)
	want := map[string]string{
		"GATEWAY_BACKEND_ENDPOINT":          m.Endpoint,
		"GATEWAY_BACKEND_REGION":            "us-east-1",
		"GATEWAY_BACKEND_ACCESS_KEY_ID":     m.Data.AccessKey, // not the root key
		"GATEWAY_BACKEND_SECRET_ACCESS_KEY": m.Data.SecretKey,
		"GATEWAY_BACKEND_PATH_STYLE":        "false", // the override wins
		"GATEWAY_KMS_ENDPOINT":              k.Endpoint,
		"GATEWAY_KMS_REGION":                "us-east-1",
		"GATEWAY_KMS_ACCESS_KEY_ID":         "test",
		"GATEWAY_KMS_SECRET_ACCESS_KEY":     "test",
		"GATEWAY_KMS_KEY_ID":                keyID,
		"EXTRA":                             "1",
	}
	for k, v := range want {
		if env[k] != v && strings.Contains(k, "SECRET") {
			t.Errorf("%s is not the expected secret", k) // no secret values in test output
		} else if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if env["GATEWAY_BACKEND_ACCESS_KEY_ID"] == m.AccessKey || env["GATEWAY_BACKEND_SECRET_ACCESS_KEY"] == m.SecretKey {
		t.Error("the gateway got MinIO's root key")
	}
	out, err := k.Client(t).DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		t.Fatalf("the key given to the gateway does not exist in the emulator: %v", err)
	}
	if out.KeyMetadata.KeyState != kmstypes.KeyStateEnabled {
		t.Errorf("key state %s", out.KeyMetadata.KeyState)
	}
	resp, err := http.Get(env["GATEWAY_BACKEND_ENDPOINT"] + "/minio/health/live")
	if err != nil {
		t.Fatalf("backend endpoint unreachable: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("backend health %d", resp.StatusCode)
	}
}

// TestStartGatewayMinIORoot: the one variant that hands the gateway MinIO's root key.
func TestStartGatewayMinIORoot(t *testing.T) {
	useFakeGateway(t)
	g, m, _, keyID := StartGatewayMinIORoot(t, nil)
	env := gatewayEnvOf(t, g)
	if env["GATEWAY_BACKEND_ACCESS_KEY_ID"] != m.AccessKey || env["GATEWAY_BACKEND_SECRET_ACCESS_KEY"] != m.SecretKey {
		t.Errorf("backend key %q, want the root key %q (and its secret)", env["GATEWAY_BACKEND_ACCESS_KEY_ID"], m.AccessKey)
	}
	if env["GATEWAY_KMS_KEY_ID"] != keyID || env["GATEWAY_BACKEND_ENDPOINT"] != m.Endpoint {
		t.Errorf("rest of the environment missing: %v", env)
	}
}
