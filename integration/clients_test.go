package integration

// Client compatibility (issue 3, acceptance 2): real client programs with their default
// settings, through the real gateway in front of MinIO and the KMS emulator, each round-trip
// an object: put, get byte-identical, head size, list, delete. The Go SDK, minio-go,
// virtual-hosted-style and forwarded-host cases are in clients_sdk_test.go, presigned URLs in
// clients_presign_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/internal/testenv"
)

// clientsSize is the object size of the client round trips: several 64 KiB segments, several
// 1 MiB botocore aws-chunked chunks, an odd tail, and below every client's multipart threshold.
const clientsSize = 3<<20 + 5

const (
	clientsDebianAWS    = "/usr/bin/aws"
	clientsDebianPython = "/usr/bin/python3"
	clientsRunTimeout   = 3 * time.Minute
)

// clientsRun runs a client program with the gateway's client environment (gw.Env()) plus
// extraEnv (later entries win), and returns stdout and stderr.
func clientsRun(t *testing.T, gw *testenv.Gateway, extraEnv []string, name string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientsRunTimeout)
	defer cancel()
	cmd := gw.Command(ctx, name, args...)
	cmd.Env = append(cmd.Env, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	shown := filepath.Base(name) + " " + strings.Join(clientsShownArgs(args), " ")
	t.Logf("%s (%v, err %v)", shown, time.Since(start).Round(time.Millisecond), err)
	if err != nil {
		err = fmt.Errorf("%s: %w\nstderr (tail):\n%s", shown, err, clientsTail(stderr.String(), 25))
	}
	return stdout.String(), stderr.String(), err
}

// clientsShownArgs hides script bodies (the argument after -c) in logs.
func clientsShownArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if i > 0 && args[i-1] == "-c" {
			a = "<script>"
		}
		out[i] = a
	}
	return out
}

func clientsTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// clientsAWSv1 is the pip-installed aws-cli v1: the first `aws` on PATH that is not Debian's.
func clientsAWSv1(t *testing.T) string {
	t.Helper()
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, "aws")
		if dir == "" || p == clientsDebianAWS {
			continue
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	testenv.Require(t, "aws-cli v1 on PATH", false)
	return ""
}

// clientsRequireFile skips (fails on CI) when a client program is not installed.
func clientsRequireFile(t *testing.T, path string) string {
	t.Helper()
	_, err := os.Stat(path)
	testenv.Require(t, path, err == nil)
	return path
}

// clientsAbsent asserts that MinIO holds no object bucket/key.
func clientsAbsent(t *testing.T, m *testenv.MinIO, bucket, key string) {
	t.Helper()
	_, err := m.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "NotFound" {
		t.Errorf("%s/%s: expected no object in MinIO, direct HEAD gave %v", bucket, key, err)
	}
}

// clientsAWSRoundTrip runs put (s3 cp, with --debug so the request headers can be inspected),
// head-object, list-objects-v2, get (s3 cp) and delete (s3 rm) with one aws-cli, checks each
// result against the plaintext and the stored object in MinIO, and returns the debug output of
// the upload.
func clientsAWSRoundTrip(t *testing.T, gw *testenv.Gateway, m *testenv.MinIO, bin string, env []string, bucket string) string {
	t.Helper()
	key := "aws/" + filepath.Base(t.Name()) + ".bin"
	plain := testenv.RandomBytes(t, clientsSize, marker)
	dir := t.TempDir()
	src := writeFile(t, dir, "up.bin", plain)
	aws := func(args ...string) (string, string, error) {
		return clientsRun(t, gw, env, bin, append([]string{"--endpoint-url", gw.Endpoint}, args...)...)
	}

	_, debug, err := aws("--debug", "s3", "cp", src, "s3://"+bucket+"/"+key)
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	out, _, err := aws("s3api", "head-object", "--bucket", bucket, "--key", key)
	if err != nil {
		t.Fatalf("head-object: %v", err)
	}
	var head struct {
		ContentLength int64
		ETag          string
	}
	if err := json.Unmarshal([]byte(out), &head); err != nil || head.ContentLength != int64(len(plain)) {
		t.Errorf("head-object: ContentLength %d (%v), want %d", head.ContentLength, err, len(plain))
	}
	if want := fmt.Sprintf(`"%x"`, md5sum(plain)); head.ETag != want {
		t.Errorf("head-object: ETag %s, want the plaintext MD5 %s", head.ETag, want)
	}
	out, _, err = aws("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", key)
	if err != nil {
		t.Fatalf("list-objects-v2: %v", err)
	}
	var list struct {
		Contents []struct {
			Key  string
			Size int64
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list-objects-v2 output %q: %v", out, err)
	}
	if len(list.Contents) != 1 || list.Contents[0].Key != key || list.Contents[0].Size != int64(len(plain)) {
		t.Errorf("list-objects-v2: %+v, want one %s of %d bytes", list.Contents, key, len(plain))
	}
	dst := filepath.Join(dir, "down.bin")
	if _, _, err := aws("s3", "cp", "s3://"+bucket+"/"+key, dst); err != nil {
		t.Fatalf("get: %v", err)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("get: %d bytes (%v), not the %d uploaded", len(got), err, len(plain))
	}
	checkAtRest(t, m, bucket, key, plain)
	if _, _, err := aws("s3", "rm", "s3://"+bucket+"/"+key); err != nil {
		t.Fatalf("delete: %v", err)
	}
	clientsAbsent(t, m, bucket, key)
	return debug
}

// clientsPayloadMode finds the x-amz-content-sha256 of the PutObject request in botocore's
// debug log ("Sending http request: <AWSPreparedRequest ... method=PUT ...>").
func clientsPayloadMode(debug string) string {
	re := regexp.MustCompile(`(?i)method=PUT[^\n]*'X-Amz-Content-SHA256': b'([A-Z0-9-]+)'`)
	if m := re.FindStringSubmatch(debug); m != nil {
		return m[1]
	}
	return ""
}

const clientsTrailerMode = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

// TestClientsAWSCLI: aws-cli v1 (pip) and Debian's aws-cli v2 with default settings over plain
// HTTP, and both over the gateway's TLS listener, where aws-cli v1 sends aws-chunked bodies
// with a trailing checksum.
func TestClientsAWSCLI(t *testing.T) {
	v1 := clientsAWSv1(t)
	v2 := clientsRequireFile(t, clientsDebianAWS)

	t.Run("http", func(t *testing.T) {
		gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
		bucket := m.NewBucket(t)
		t.Run("v1", func(t *testing.T) {
			debug := clientsAWSRoundTrip(t, gw, m, v1, nil, bucket)
			t.Logf("aws-cli v1 over http: PutObject payload %q", clientsPayloadMode(debug))
		})
		t.Run("v2", func(t *testing.T) {
			debug := clientsAWSRoundTrip(t, gw, m, v2, nil, bucket)
			t.Logf("aws-cli v2 over http: PutObject payload %q", clientsPayloadMode(debug))
		})
	})
	t.Run("tls", func(t *testing.T) {
		gw, m, mat := startTLSGateway(t, nil)
		bucket := m.NewBucket(t)
		env := []string{"AWS_CA_BUNDLE=" + mat.CertFile}
		t.Run("v1", func(t *testing.T) {
			debug := clientsAWSRoundTrip(t, gw, m, v1, env, bucket)
			if mode := clientsPayloadMode(debug); mode != clientsTrailerMode {
				t.Errorf("aws-cli v1 over TLS sent PutObject as %q, want %s (the aws-chunked trailer mode this test is about)", mode, clientsTrailerMode)
			}
		})
		t.Run("v2", func(t *testing.T) {
			debug := clientsAWSRoundTrip(t, gw, m, v2, env, bucket)
			t.Logf("aws-cli v2 over TLS: PutObject payload %q", clientsPayloadMode(debug))
		})
	})
}

// clientsBoto3Script uploads a file with put_object (recording the request headers with a
// before-send hook), then head/list/get; the "delete" step deletes and counts what is left.
const clientsBoto3Script = `
import boto3, botocore, json, os, sys, hashlib
step, bucket, key = sys.argv[1:4]
c = boto3.client("s3", endpoint_url=os.environ["S3SEAL_ENDPOINT"])
if step == "delete":
    c.delete_object(Bucket=bucket, Key=key)
    print(json.dumps({"left": c.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", -1)}))
    sys.exit(0)
seen = {}
def record(request, **kwargs):
    seen.update({k.lower(): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()})
c.meta.events.register("before-send.s3.PutObject", record)
with open(sys.argv[4], "rb") as f:
    put = c.put_object(Bucket=bucket, Key=key, Body=f)
head = c.head_object(Bucket=bucket, Key=key)
lst = c.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
body = c.get_object(Bucket=bucket, Key=key)["Body"].read()
print(json.dumps({
    "versions": [boto3.__version__, botocore.__version__],
    "put_headers": seen, "put_etag": put["ETag"],
    "head": [head["ContentLength"], head["ETag"]],
    "list": [[o["Key"], o["Size"]] for o in lst],
    "get": [len(body), hashlib.sha256(body).hexdigest()],
}))
`

// clientsBoto3RoundTrip runs the boto3 round trip with one python and returns the headers of
// the PutObject request.
func clientsBoto3RoundTrip(t *testing.T, gw *testenv.Gateway, m *testenv.MinIO, python string, env []string, bucket string) map[string]string {
	t.Helper()
	key := "boto3/" + filepath.Base(t.Name()) + ".bin"
	plain := testenv.RandomBytes(t, clientsSize, marker)
	src := writeFile(t, t.TempDir(), "up.bin", plain)
	out, _, err := clientsRun(t, gw, env, python, "-c", clientsBoto3Script, "put", bucket, key, src)
	if err != nil {
		t.Fatalf("boto3: %v", err)
	}
	var rep struct {
		Versions   []string
		PutHeaders map[string]string `json:"put_headers"`
		PutETag    string            `json:"put_etag"`
		Head       [2]any
		List       [][2]any
		Get        [2]any
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("boto3 report %q: %v", out, err)
	}
	t.Logf("boto3/botocore %v", rep.Versions)
	etag := fmt.Sprintf(`"%x"`, md5sum(plain))
	if rep.PutETag != etag {
		t.Errorf("put ETag %s, want the plaintext MD5 %s", rep.PutETag, etag)
	}
	if n, _ := rep.Head[0].(float64); int64(n) != int64(len(plain)) || rep.Head[1] != etag {
		t.Errorf("head %v, want [%d %s]", rep.Head, len(plain), etag)
	}
	if len(rep.List) != 1 || rep.List[0][0] != key || int64(rep.List[0][1].(float64)) != int64(len(plain)) {
		t.Errorf("list %v, want [[%s %d]]", rep.List, key, len(plain))
	}
	if n, _ := rep.Get[0].(float64); int64(n) != int64(len(plain)) || rep.Get[1] != fmt.Sprintf("%x", sha256sum(plain)) {
		t.Errorf("get %v does not match the plaintext", rep.Get)
	}
	checkAtRest(t, m, bucket, key, plain)
	out, _, err = clientsRun(t, gw, env, python, "-c", clientsBoto3Script, "delete", bucket, key)
	if err != nil {
		t.Fatalf("boto3 delete: %v", err)
	}
	if strings.TrimSpace(out) != `{"left": 0}` {
		t.Errorf("after delete_object, boto3 lists %s", out)
	}
	clientsAbsent(t, m, bucket, key)
	return rep.PutHeaders
}

// TestClientsBoto3: boto3 1.43 (python3 on PATH) and Debian's boto3 (/usr/bin/python3) with
// default settings over plain HTTP, and boto3 1.43 over TLS, where it sends aws-chunked bodies
// with a trailing checksum.
func TestClientsBoto3(t *testing.T) {
	python := testenv.LookPath(t, "python3")
	debian := clientsRequireFile(t, clientsDebianPython)

	t.Run("http", func(t *testing.T) {
		gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
		bucket := m.NewBucket(t)
		t.Run("pyenv", func(t *testing.T) {
			h := clientsBoto3RoundTrip(t, gw, m, python, nil, bucket)
			t.Logf("boto3 over http: x-amz-content-sha256 %q, checksum header crc32 %q", h["x-amz-content-sha256"], h["x-amz-checksum-crc32"])
		})
		t.Run("debian", func(t *testing.T) {
			h := clientsBoto3RoundTrip(t, gw, m, debian, nil, bucket)
			t.Logf("Debian boto3 over http: x-amz-content-sha256 %q", h["x-amz-content-sha256"])
		})
	})
	t.Run("tls", func(t *testing.T) {
		gw, m, mat := startTLSGateway(t, nil)
		bucket := m.NewBucket(t)
		env := []string{"AWS_CA_BUNDLE=" + mat.CertFile}
		t.Run("pyenv", func(t *testing.T) {
			h := clientsBoto3RoundTrip(t, gw, m, python, env, bucket)
			if h["x-amz-content-sha256"] != clientsTrailerMode || !strings.Contains(h["content-encoding"], "aws-chunked") || h["x-amz-trailer"] == "" {
				t.Errorf("boto3 over TLS sent PutObject with %v, want aws-chunked %s with an x-amz-trailer", h, clientsTrailerMode)
			}
		})
		t.Run("debian", func(t *testing.T) {
			h := clientsBoto3RoundTrip(t, gw, m, debian, env, bucket)
			t.Logf("Debian boto3 over TLS: x-amz-content-sha256 %q", h["x-amz-content-sha256"])
		})
	})
}

// clientsS3cmdConfig writes an s3cmd configuration for the gateway (path-style: host_bucket is
// the gateway's own host:port) and returns its path.
func clientsS3cmdConfig(t *testing.T, gw *testenv.Gateway) string {
	t.Helper()
	host := strings.TrimPrefix(gw.Endpoint, "http://")
	cfg := strings.Join([]string{
		"[default]",
		"access_key = " + gw.AccessKeyID,
		"secret_key = " + gw.SecretAccessKey,
		"host_base = " + host,
		"host_bucket = " + host,
		"bucket_location = " + gw.Region,
		"use_https = False",
		"signature_v2 = False",
		"",
	}, "\n")
	return writeFile(t, t.TempDir(), "s3cfg", []byte(cfg))
}

// clientsS3cmdRoundTrip: s3cmd put, info, ls, get, del, each with --debug (extra flags go
// before the command); it returns the debug output of all of them.
func clientsS3cmdRoundTrip(t *testing.T, gw *testenv.Gateway, m *testenv.MinIO, bucket string, flags ...string) string {
	t.Helper()
	cfg := clientsS3cmdConfig(t, gw)
	key := "s3cmd/" + filepath.Base(t.Name()) + ".bin"
	uri := "s3://" + bucket + "/" + key
	plain := testenv.RandomBytes(t, clientsSize, marker)
	dir := t.TempDir()
	src := writeFile(t, dir, "up.bin", plain)
	var debug strings.Builder
	s3cmd := func(args ...string) string {
		t.Helper()
		out, stderr, err := clientsRun(t, gw, nil, "s3cmd", append(append([]string{"-c", cfg, "--no-progress", "--debug"}, flags...), args...)...)
		if err != nil {
			t.Fatalf("s3cmd %s: %v\nstdout: %s", args[0], err, out)
		}
		debug.WriteString(stderr)
		return out
	}

	s3cmd("put", src, uri)
	info := s3cmd("info", uri)
	if m := regexp.MustCompile(`File size:\s*(\d+)`).FindStringSubmatch(info); m == nil || m[1] != strconv.Itoa(len(plain)) {
		t.Errorf("s3cmd info shows %q, want File size: %d", info, len(plain))
	}
	if m := regexp.MustCompile(`MD5 sum:\s*([0-9a-f]+)`).FindStringSubmatch(info); m == nil || m[1] != fmt.Sprintf("%x", md5sum(plain)) {
		t.Errorf("s3cmd info shows %q, want MD5 sum %x", info, md5sum(plain))
	}
	ls := s3cmd("ls", "s3://"+bucket+"/s3cmd/")
	if f := strings.Fields(ls); len(f) != 4 || f[2] != strconv.Itoa(len(plain)) || f[3] != uri {
		t.Errorf("s3cmd ls: %q, want one line with %d bytes and %s", ls, len(plain), uri)
	}
	dst := filepath.Join(dir, "down.bin")
	s3cmd("get", "--force", uri, dst)
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("s3cmd get: %d bytes (%v), not the %d uploaded", len(got), err, len(plain))
	}
	checkAtRest(t, m, bucket, key, plain)
	s3cmd("del", uri)
	clientsAbsent(t, m, bucket, key)
	return debug.String()
}

const (
	clientsS3cmdV2 = "DEBUG: Using signature v2"
	clientsS3cmdV4 = "DEBUG: Using signature v4"
)

// TestClientsS3cmd: s3cmd with SigV4 (its default) against a default gateway, and with
// --signature-v2 against a gateway with GATEWAY_SIGV2=true; the debug output proves which
// signature each run used. Against a default gateway (SigV2 off), s3cmd --signature-v2 gets
// S3's exact "Please use AWS4-HMAC-SHA256" refusal, on which s3cmd switches to SigV4.
func TestClientsS3cmd(t *testing.T) {
	testenv.LookPath(t, "s3cmd")
	t.Run("sigv4", func(t *testing.T) {
		gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
		bucket := m.NewBucket(t)
		debug := clientsS3cmdRoundTrip(t, gw, m, bucket)
		if !strings.Contains(debug, clientsS3cmdV4) || strings.Contains(debug, clientsS3cmdV2) {
			t.Errorf("s3cmd did not use SigV4 throughout (v4 seen %v, v2 seen %v)",
				strings.Contains(debug, clientsS3cmdV4), strings.Contains(debug, clientsS3cmdV2))
		}
	})
	t.Run("sigv2-refused", func(t *testing.T) {
		gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
		bucket := m.NewBucket(t)
		src := writeFile(t, t.TempDir(), "up.bin", []byte("SigV2 is off by default"))
		_, debug, err := clientsRun(t, gw, nil, "s3cmd", "-c", clientsS3cmdConfig(t, gw), "--debug",
			"--signature-v2", "put", src, "s3://"+bucket+"/refused")
		if err != nil {
			t.Fatal(err)
		}
		// The gateway refused the SigV2 PUT with S3's exact message, so s3cmd switched.
		v2 := strings.Index(debug, clientsS3cmdV2)
		switched := strings.Index(debug, "Endpoint requires signature v4")
		v4 := strings.LastIndex(debug, clientsS3cmdV4)
		if v2 < 0 || switched < v2 || v4 < switched {
			t.Errorf("s3cmd --signature-v2 against a SigV4-only gateway: want a SigV2 attempt, S3's refusal, then SigV4 (at %d, %d, %d)", v2, switched, v4)
		}
	})
	t.Run("sigv2", func(t *testing.T) {
		gw, m, _, _ := testenv.StartGatewayMinIO(t, map[string]string{"GATEWAY_SIGV2": "true"})
		bucket := m.NewBucket(t)
		debug := clientsS3cmdRoundTrip(t, gw, m, bucket, "--signature-v2")
		if !strings.Contains(debug, clientsS3cmdV2) || strings.Contains(debug, clientsS3cmdV4) {
			t.Errorf("s3cmd --signature-v2 did not use SigV2 throughout (v2 seen %v, v4 seen %v)",
				strings.Contains(debug, clientsS3cmdV2), strings.Contains(debug, clientsS3cmdV4))
		}
	})
}
