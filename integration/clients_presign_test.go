package integration

// Presigned URLs made by real clients (issue 3, acceptance 2), used with curl: `aws s3 presign`
// (GET) from aws-cli v2 and v1, and boto3's generate_presigned_url (GET and PUT).

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// clientsCurl runs curl (status code on stdout, body to out) and returns the HTTP status.
func clientsCurl(t *testing.T, out string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all := append([]string{"-sS", "-o", out, "-w", "%{http_code}"}, args...)
	cmd := exec.CommandContext(ctx, testenv.LookPath(t, "curl"), all...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	status, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, stderr.String())
	}
	return string(status)
}

// clientsCurlGet fetches url with curl and asserts a 200 with body want.
func clientsCurlGet(t *testing.T, what, url string, want []byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "curl.out")
	status := clientsCurl(t, out, url)
	got, _ := os.ReadFile(out)
	if status != "200" || !bytes.Equal(got, want) {
		t.Errorf("%s: curl GET %s, %d bytes (%s), want 200 and the %d bytes stored", what, status, len(got), clientsSnippet(got), len(want))
	}
}

// clientsSnippet is the start of a body for error messages (an S3 error document, usually).
func clientsSnippet(b []byte) string {
	if len(b) > 300 || bytes.ContainsRune(b, 0) {
		return "binary or long body"
	}
	return string(b)
}

// clientsPut stores plain through the gateway with the Go SDK.
func clientsPut(t *testing.T, gw *testenv.Gateway, bucket, key string, plain []byte) {
	t.Helper()
	if _, err := gw.Client(t).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: bytes.NewReader(plain), ContentLength: aws.Int64(int64(len(plain))),
	}); err != nil {
		t.Fatalf("PutObject %s: %v", key, err)
	}
}

// clientsBoto3PresignScript prints presigned GET and PUT URLs for a key as JSON; argv[1] is
// "s3v4" (botocore Config(signature_version="s3v4")) or "default" (no Config at all).
const clientsBoto3PresignScript = `
import boto3, json, os, sys
from botocore.config import Config
version, bucket, key = sys.argv[1:4]
cfg = Config(signature_version="s3v4") if version == "s3v4" else None
c = boto3.client("s3", endpoint_url=os.environ["S3SEAL_ENDPOINT"], config=cfg)
print(json.dumps({op: c.generate_presigned_url(op, Params={"Bucket": bucket, "Key": key}, ExpiresIn=900)
                  for op in ("get_object", "put_object")}))
`

// clientsBoto3Presign runs clientsBoto3PresignScript and returns the GET and PUT URLs.
func clientsBoto3Presign(t *testing.T, gw *testenv.Gateway, version, bucket, key string) (get, put string) {
	t.Helper()
	out, _, err := clientsRun(t, gw, nil, testenv.LookPath(t, "python3"), "-c", clientsBoto3PresignScript, version, bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	var urls map[string]string
	if err := json.Unmarshal([]byte(out), &urls); err != nil {
		t.Fatalf("boto3 presign output %q: %v", out, err)
	}
	return urls["get_object"], urls["put_object"]
}

// clientsIsV4 reports whether a presigned URL uses SigV4 query authentication (else SigV2).
func clientsIsV4(u string) bool { return strings.Contains(u, "X-Amz-Algorithm=AWS4-HMAC-SHA256") }

// TestClientsPresigned: presigned URLs from aws-cli and boto3 work with curl. aws-cli v2 and
// boto3 with signature_version s3v4 make SigV4 URLs, which a default gateway accepts. aws-cli v1
// and boto3 without a Config still make SigV2 URLs by default: those work with a gateway that
// has GATEWAY_SIGV2=true, and a default gateway refuses them as S3 does (400 InvalidRequest);
// aws-cli v1 configured with s3.signature_version = s3v4 makes SigV4 URLs.
func TestClientsPresigned(t *testing.T) {
	testenv.LookPath(t, "curl")
	v1 := clientsAWSv1(t)
	v2 := clientsRequireFile(t, clientsDebianAWS)
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	gw2, m2, _, _ := testenv.StartGatewayMinIO(t, map[string]string{"GATEWAY_SIGV2": "true"})
	bucket2 := m2.NewBucket(t)
	plain := testenv.RandomBytes(t, clientsSize, marker)
	clientsPut(t, gw, bucket, "presign/get", plain)
	clientsPut(t, gw2, bucket2, "presign/get", plain)
	presign := func(gw *testenv.Gateway, bin string, env []string, bucket string) string {
		t.Helper()
		out, _, err := clientsRun(t, gw, env, bin, "--endpoint-url", gw.Endpoint, "s3", "presign", "s3://"+bucket+"/presign/get")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}

	t.Run("aws-cli-v2", func(t *testing.T) {
		u := presign(gw, v2, nil, bucket)
		if !clientsIsV4(u) {
			t.Fatalf("aws-cli v2 presigned %s, not SigV4", u)
		}
		clientsCurlGet(t, "aws-cli v2 presigned GET", u, plain)
	})
	t.Run("aws-cli-v1-s3v4", func(t *testing.T) {
		cfg := writeFile(t, t.TempDir(), "aws-config", []byte("[default]\ns3 =\n    signature_version = s3v4\n"))
		u := presign(gw, v1, []string{"AWS_CONFIG_FILE=" + cfg}, bucket)
		if !clientsIsV4(u) {
			t.Fatalf("aws-cli v1 with s3v4 presigned %s, not SigV4", u)
		}
		clientsCurlGet(t, "aws-cli v1 (s3v4) presigned GET", u, plain)
	})
	t.Run("aws-cli-v1-default", func(t *testing.T) {
		u := presign(gw2, v1, nil, bucket2)
		if clientsIsV4(u) || !strings.Contains(u, "AWSAccessKeyId=") {
			t.Fatalf("aws-cli v1 presigned %s; expected its default SigV2 query authentication", u)
		}
		clientsCurlGet(t, "aws-cli v1 presigned GET (SigV2) with GATEWAY_SIGV2=true", u, plain)

		// The same kind of URL for the default gateway: refused as S3 refuses SigV2 where only
		// SigV4 is accepted.
		u = presign(gw, v1, nil, bucket)
		out := filepath.Join(t.TempDir(), "refused.xml")
		status := clientsCurl(t, out, u)
		body, _ := os.ReadFile(out)
		if status != "400" || s3ErrorCode(body) != "InvalidRequest" {
			t.Errorf("SigV2 presigned GET to a default gateway: %s %s, want 400 InvalidRequest", status, clientsSnippet(body))
		}
	})
	t.Run("boto3-s3v4", func(t *testing.T) {
		get, put := clientsBoto3Presign(t, gw, "s3v4", bucket, "presign/boto3")
		if !clientsIsV4(get) || !clientsIsV4(put) {
			t.Fatalf("boto3 s3v4 presigned %s and %s, not SigV4", get, put)
		}
		clientsBoto3PresignedRoundTrip(t, m, bucket, "presign/boto3", get, put)
	})
	t.Run("boto3-default-sigv2", func(t *testing.T) {
		get, put := clientsBoto3Presign(t, gw2, "default", bucket2, "presign/boto3-v2")
		if clientsIsV4(get) || clientsIsV4(put) {
			t.Logf("boto3 without a Config presigned SigV4 URLs (%s)", get)
		}
		clientsBoto3PresignedRoundTrip(t, m2, bucket2, "presign/boto3-v2", get, put)
	})
}

// clientsBoto3PresignedRoundTrip uploads with curl -T to a presigned PUT URL, downloads with
// curl from the presigned GET URL, and checks both against the plaintext and MinIO.
func clientsBoto3PresignedRoundTrip(t *testing.T, m *testenv.MinIO, bucket, key, get, put string) {
	t.Helper()
	plain := testenv.RandomBytes(t, clientsSize, marker)
	dir := t.TempDir()
	src := writeFile(t, dir, "up.bin", plain)
	resp := filepath.Join(dir, "put.out")
	if status := clientsCurl(t, resp, "-T", src, put); status != "200" {
		body, _ := os.ReadFile(resp)
		t.Fatalf("curl PUT to the presigned URL: %s %s", status, clientsSnippet(body))
	}
	clientsCurlGet(t, "presigned GET after a presigned PUT", get, plain)
	checkAtRest(t, m, bucket, key, plain)
}
