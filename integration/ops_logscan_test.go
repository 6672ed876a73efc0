package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// Secrets in logs. scripts/test runs TestOpsLogScan as a step of its own after the whole suite,
// with S3SEAL_TEST_LOGSCAN=1: it reads every gateway log the suite wrote to $S3SEAL_TEST_LOG_DIR
// (stdout and stderr of each gateway process) and the secrets the tests recorded there
// (internal/testenv RecordSecret; every secret in a gateway's environment or -config file is
// recorded automatically), and fails on any secret, SSE-C key or request signature in a log.
//
// One print is intended: in embedded mode the gateway prints the client credential it generated
// on stdout, once, in the block that starts "s3seal is running in embedded mode" and ends with
// the "aws --endpoint-url" line. That block is excluded, and the secret it shows is then looked
// for everywhere else (docs/DEPLOY.md tells operators to keep stdout apart from the logs).

// opsMinSecretLen: shorter values (moto's dummy "test") are not searched for; they are not
// secrets and would match ordinary words.
const opsMinSecretLen = 8

// opsSecretPatterns find secrets by their shape, whatever test made them.
func opsSecretPatterns() []struct {
	what string
	re   *regexp.Regexp
} {
	return []struct {
		what string
		re   *regexp.Regexp
	}{
		{"a SigV4 signature (64 hex digits)", regexp.MustCompile(`(^|[^0-9a-fA-F])[0-9a-f]{64}([^0-9a-fA-F]|$)`)},
		{"a signature parameter", regexp.MustCompile(`(?i)signature=[A-Za-z0-9%+/=]{16,}`)},
		{"an Authorization header (SigV4)", regexp.MustCompile(`AWS4-HMAC-SHA256\s+Credential=`)},
		{"an Authorization header (SigV2)", regexp.MustCompile(`AWS [A-Za-z0-9]{16,}:[A-Za-z0-9+/]{20,}=*`)},
		{"an SSE-C key header value", regexp.MustCompile(`(?i)x-amz-(copy-source-)?server-side-encryption-customer-key["'=:\s]+[A-Za-z0-9+/]{20,}`)},
	}
}

// opsEmbeddedBanner splits a log into what is scanned and the secrets the embedded-mode banner
// shows (the banner itself is left out of the scanned text).
func opsEmbeddedBanner(log string) (scanned string, bannerSecrets []string) {
	var b strings.Builder
	in := false
	for _, line := range strings.SplitAfter(log, "\n") {
		switch {
		case strings.HasPrefix(line, "s3seal is running in embedded mode"):
			in = true
		case in && strings.HasPrefix(line, "export AWS_SECRET_ACCESS_KEY="):
			bannerSecrets = append(bannerSecrets, strings.TrimSpace(strings.TrimPrefix(line, "export AWS_SECRET_ACCESS_KEY=")))
		case in && strings.HasPrefix(line, "aws --endpoint-url"):
			in = false
		case !in:
			b.WriteString(line)
		}
	}
	return b.String(), bannerSecrets
}

// opsScanLogs returns the findings in logs (name -> content) for the given secrets.
func opsScanLogs(logs map[string]string, secrets []testenv.Secret) []string {
	var findings []string
	scanned := map[string]string{}
	for name, content := range logs {
		s, banner := opsEmbeddedBanner(content)
		scanned[name] = s
		for _, v := range banner {
			secrets = append(secrets, testenv.Secret{Kind: "embedded banner secret", Test: name, Value: v})
		}
	}
	for name, content := range scanned {
		for _, s := range secrets {
			if len(s.Value) < opsMinSecretLen {
				continue
			}
			forms := []string{s.Value}
			if b, err := base64.StdEncoding.DecodeString(s.Value); err == nil && len(b) >= opsMinSecretLen {
				forms = append(forms, fmt.Sprintf("%x", b)) // an SSE-C key logged in hex
			}
			for _, f := range forms {
				if i := strings.Index(content, f); i >= 0 {
					findings = append(findings, fmt.Sprintf("%s: %s (from %s) at byte %d: %q", name, s.Kind, s.Test, i, opsContext(content, i)))
				}
			}
		}
		for _, p := range opsSecretPatterns() {
			for _, loc := range p.re.FindAllStringIndex(content, 5) {
				findings = append(findings, fmt.Sprintf("%s: %s at byte %d: %q", name, p.what, loc[0], opsContext(content, loc[0])))
			}
		}
	}
	return findings
}

// opsContext is the line around offset i.
func opsContext(s string, i int) string {
	start := strings.LastIndexByte(s[:i], '\n') + 1
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		end = len(s) - i
	}
	line := s[start : i+end]
	if len(line) > 240 {
		line = line[:240] + "..."
	}
	return line
}

// opsLogsIn reads the gateway logs in dir.
func opsLogsIn(t *testing.T, dir string) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "gateway-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	logs := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		logs[filepath.Base(p)] = string(b)
	}
	return logs
}

// TestOpsLogScan is the suite-wide scan (see above). Outside that step it is skipped.
func TestOpsLogScan(t *testing.T) {
	if os.Getenv("S3SEAL_TEST_LOGSCAN") != "1" {
		t.Skip("runs as its own step after the suite (scripts/test sets S3SEAL_TEST_LOGSCAN=1)")
	}
	dir := os.Getenv("S3SEAL_TEST_LOG_DIR")
	testenv.Require(t, "$S3SEAL_TEST_LOG_DIR", dir != "")
	logs := opsLogsIn(t, dir)
	if len(logs) == 0 {
		t.Fatalf("no gateway logs in %s: nothing was scanned", dir)
	}
	secrets, err := testenv.ReadSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets) == 0 {
		t.Fatalf("no recorded secrets in %s: the scan would prove nothing", dir)
	}
	for _, name := range []string{"S3SEAL_TEST_MINIO_SECRET_KEY"} {
		secrets = append(secrets, testenv.Secret{Kind: name, Test: "scripts/test", Value: os.Getenv(name)})
	}
	var size int
	for _, l := range logs {
		size += len(l)
	}
	t.Logf("scanning %d gateway logs (%d bytes) for %d recorded secrets and %d patterns",
		len(logs), size, len(secrets), len(opsSecretPatterns()))
	for _, f := range opsScanLogs(logs, secrets) {
		t.Error(f)
	}
}

// TestOpsLogScannerFinds: the scanner finds planted secrets and signatures, outside the
// embedded-mode banner only, and finds nothing in a clean log.
func TestOpsLogScannerFinds(t *testing.T) {
	sig := strings.Repeat("0123456789abcdef", 4)
	ssec := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	banner := "s3seal is running in embedded mode: ...\nexport AWS_ACCESS_KEY_ID=AKX\n" +
		"export AWS_SECRET_ACCESS_KEY=bannersecret123\naws --endpoint-url http://x s3 ls\n"
	clean := `time=2026-01-01T00:00:00Z level=INFO msg=request request_id=0123456789ABCDEF op=GetObject key=k status=200` + "\n"
	secrets := []testenv.Secret{{Kind: "client", Value: "clientsecret999"}, {Kind: "sse-c-key", Value: ssec}, {Kind: "dummy", Value: "test"}}
	planted := map[string]string{
		"client secret":        "err=\"bad secret clientsecret999\"\n",
		"sse-c key":            "h=" + ssec + "\n",
		"sse-c key in hex":     "k=3031323334353637383961626364656630313233343536373839616263646566\n",
		"sigv4 signature":      "auth=" + sig + "\n",
		"presigned url":        "url=/b/k?X-Amz-Signature=" + sig + "\n",
		"sigv2 query":          "url=/b/k?AWSAccessKeyId=AK&Signature=abcdefghijklmnopqrstuvwx%2B%3D\n",
		"authorization sigv4":  "Authorization: AWS4-HMAC-SHA256 Credential=AK/2026/us-east-1/s3/aws4_request\n",
		"authorization sigv2":  "Authorization: AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=\n",
		"sse-c header":         "x-amz-server-side-encryption-customer-key: " + ssec + "\n",
		"banner secret reused": banner + "msg=oops secret=bannersecret123\n",
	}
	for name, content := range planted {
		if f := opsScanLogs(map[string]string{"g.log": clean + content}, secrets); len(f) == 0 {
			t.Errorf("%s: not found", name)
		}
	}
	if f := opsScanLogs(map[string]string{"g.log": clean + banner + clean}, secrets); len(f) != 0 {
		t.Errorf("clean log with the embedded banner: %q", f)
	}
}

// TestOpsSecretsNotLogged drives requests that carry secrets (presigned URLs, SSE-C keys, bad
// signatures, aws-chunked uploads with chunk signatures) through a gateway logging at debug
// level, in both log formats, and scans its log right away.
func TestOpsSecretsNotLogged(t *testing.T) {
	for _, logFormat := range []string{"json", "text"} {
		t.Run(logFormat, func(t *testing.T) {
			m := testenv.NewMinIO(t)
			k := testenv.NewKMS(t)
			env, _ := opsGatewayEnv(t, m, k.Endpoint, k.CreateKey(t))
			env["GATEWAY_LOG_LEVEL"] = "debug"
			env["GATEWAY_LOG_FORMAT"] = logFormat
			env["GATEWAY_SIGV2"] = "true"
			gw := testenv.StartGateway(t, env)
			bucket := m.NewBucket(t)
			c := gw.Client(t)
			ctx := context.Background()
			key := "secret/obj"
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader([]byte("hello"))}); err != nil {
				t.Fatal(err)
			}
			// Presigned GET: the signature is in the query string.
			ps, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(ps.URL)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("presigned GET: %d", resp.StatusCode)
			}
			// The same URL with a broken signature.
			resp, err = http.Get(strings.Replace(ps.URL, "X-Amz-Signature=", "X-Amz-Signature=00", 1))
			if err == nil {
				resp.Body.Close()
			}
			// SSE-C: whatever the gateway answers, the key must not be logged.
			sseKey := testenv.RandomBytes(t, 32, "")
			sseB64 := base64.StdEncoding.EncodeToString(sseKey)
			testenv.RecordSecret(t, "sse-c-key", sseB64)
			_, _ = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("secret/ssec"),
				Body: bytes.NewReader([]byte("x")), SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: &sseB64})
			_, _ = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("secret/ssec"),
				SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: &sseB64})
			// A wrong secret for a known access key.
			wrong := "wrong" + strings.Repeat("S", 35)
			testenv.RecordSecret(t, "wrong-secret", wrong)
			bad := gw.Client(t, func(o *s3.Options) {
				o.Credentials = credentials.NewStaticCredentialsProvider(gw.AccessKeyID, wrong, "")
			})
			_, _ = bad.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
			// SigV2 (header) from boto3-style clients: signed by hand.
			req := signedRequest(t, http.MethodGet, gw.Endpoint+"/"+bucket+"/"+key, nil, "", gw.AccessKeyID, gw.SecretAccessKey)
			req.Header.Set("Authorization", "AWS "+gw.AccessKeyID+":"+base64.StdEncoding.EncodeToString([]byte("not-a-real-signature")))
			req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
			if err := gw.Stop(t); err != nil {
				t.Logf("gateway exit: %v", err)
			}
			b, err := os.ReadFile(gw.LogPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(`request`)) {
				t.Fatalf("the gateway log has no access lines:\n%s", b)
			}
			secrets := []testenv.Secret{
				{Kind: "client secret", Value: gw.SecretAccessKey}, {Kind: "backend secret", Value: m.Data.SecretKey}, {Kind: "MinIO root secret", Value: m.SecretKey},
				{Kind: "sse-c-key", Value: sseB64}, {Kind: "wrong secret", Value: wrong},
			}
			for _, f := range opsScanLogs(map[string]string{"gateway.log": string(b)}, secrets) {
				t.Error(f)
			}
		})
	}
}
