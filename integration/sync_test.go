package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/testenv"
)

// syncTree writes a small tree of files: a few small ones and one above the multipart
// thresholds used below.
func syncTree(t *testing.T, big int) string {
	t.Helper()
	dir := t.TempDir()
	for i, n := range []int{0, 1, 1000, 70_000, big} {
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%2))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, sub, fmt.Sprintf("f%d.bin", i), testenv.RandomBytes(t, n, marker))
	}
	return dir
}

// runTool runs a client program with the gateway's environment (without AWS_CA_BUNDLE, which
// rclone 1.60 cannot cope with) and returns its combined output.
func runTool(t *testing.T, gw *testenv.Gateway, extraEnv []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := gw.Command(ctx, testenv.LookPath(t, name), args...)
	var env []string
	for _, kv := range cmd.Env {
		if !strings.HasPrefix(kv, "AWS_CA_BUNDLE=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, extraEnv...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestRcloneCopyCheck: rclone copy then rclone check report no differences (rclone compares
// sizes and MD5s: the listing's plaintext sizes and ETags, and its own md5 metadata for
// multipart uploads).
func TestRcloneCopyCheck(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	dir := syncTree(t, 12<<20)
	env := []string{
		"RCLONE_CONFIG_GW_TYPE=s3", "RCLONE_CONFIG_GW_PROVIDER=Other",
		"RCLONE_CONFIG_GW_ACCESS_KEY_ID=" + gw.AccessKeyID, "RCLONE_CONFIG_GW_SECRET_ACCESS_KEY=" + gw.SecretAccessKey,
		"RCLONE_CONFIG_GW_ENDPOINT=" + gw.Endpoint, "RCLONE_CONFIG_GW_REGION=us-east-1",
		"RCLONE_CONFIG_GW_FORCE_PATH_STYLE=true", "RCLONE_CONFIG=/dev/null",
	}
	remote := "gw:" + bucket + "/tree"
	runTool(t, gw, env, "rclone", "copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", dir, remote)
	out := runTool(t, gw, env, "rclone", "check", dir, remote)
	if !strings.Contains(out, "0 differences found") || strings.Contains(out, "ERROR") {
		t.Errorf("rclone check:\n%s", out)
	}
	if !strings.Contains(out, "5 matching files") {
		t.Errorf("rclone check did not match all 5 files:\n%s", out)
	}
}

// TestSyncTwiceUploadsNothing: s3cmd sync and aws s3 sync, run twice in a row, upload nothing
// the second time.
func TestSyncTwiceUploadsNothing(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	dir := syncTree(t, 16<<20) // above s3cmd's 15 MiB multipart chunk

	host := strings.TrimPrefix(gw.Endpoint, "http://")
	cfg := filepath.Join(t.TempDir(), "s3cfg")
	conf := fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nbucket_location = us-east-1\nsignature_v2 = False\n",
		gw.AccessKeyID, gw.SecretAccessKey, host, host)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	dst := "s3://" + bucket + "/s3cmd/"
	first := runTool(t, gw, nil, "s3cmd", "-c", cfg, "sync", dir+"/", dst)
	if n := strings.Count(first, "upload:"); n != 5 {
		t.Errorf("first s3cmd sync uploaded %d files, want 5:\n%s", n, first)
	}
	second := runTool(t, gw, nil, "s3cmd", "-c", cfg, "sync", dir+"/", dst)
	if strings.Contains(second, "upload:") {
		t.Errorf("second s3cmd sync uploaded again:\n%s", second)
	}

	out, err := gw.AWS(t, "s3", "sync", dir, "s3://"+bucket+"/awscli/")
	if err != nil || strings.Count(out, "upload:") != 5 {
		t.Errorf("first aws s3 sync: %v\n%s", err, out)
	}
	out, err = gw.AWS(t, "s3", "sync", dir, "s3://"+bucket+"/awscli/")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("second aws s3 sync did something: %v\n%s", err, out)
	}
}
