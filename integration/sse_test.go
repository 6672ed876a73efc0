package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/internal/testenv"
)

func ssecKey(t *testing.T) (key, keyB64, md5B64 string) {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(raw)
	return string(raw), base64.StdEncoding.EncodeToString(raw), base64.StdEncoding.EncodeToString(sum[:])
}

func apiErr(err error) (code string, status int) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// TestKeyChoices: the same object under each key choice (default, SSE-S3, SSE-KMS with another
// key and an encryption context, SSE-C) reads back with the SSE response headers S3 sends; a
// wrong or missing SSE-C key and a KMS key outside the credential's allow-list get S3's errors;
// the SSE-C key is nowhere in the gateway's log or the backend.
func TestKeyChoices(t *testing.T) {
	m, k := testenv.NewMinIO(t), testenv.NewKMS(t)
	keyA, keyB, keyC := k.CreateKey(t), k.CreateKey(t), k.CreateKey(t)
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	yml := fmt.Sprintf(`mode: s3
credentials:
  - access_key_id: AKSSEALLOWED0000001
    secret_access_key: secret-allowed-0000000000000000000001
    kms_key_ids: [%s]
ssec_allow_http: true
`, keyB)
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := testenv.StartGatewayWithArgs(t, coreGatewayEnv(m, m.Endpoint, k.Endpoint, keyA, map[string]string{
		"GATEWAY_ACCESS_KEY_ID": "AKSSEALLOWED0000001", "GATEWAY_SECRET_ACCESS_KEY": "secret-allowed-0000000000000000000001",
	}), "-config", cfg)
	bucket := m.NewBucket(t)
	c := gw.Client(t)
	ctx := context.Background()
	body := testenv.RandomBytes(t, 200_000, marker)
	raw, ckey, cmd5 := ssecKey(t)
	encCtx := base64.StdEncoding.EncodeToString([]byte(`{"project":"apollo"}`))

	type choice struct {
		name string
		put  func(*s3.PutObjectInput)
		get  func(*s3.GetObjectInput)
		// expected response headers
		sse, kmsKey, ssecMD5 string
	}
	choices := []choice{
		{name: "default", put: func(*s3.PutObjectInput) {}, get: func(*s3.GetObjectInput) {}, sse: "AES256"},
		{name: "sse-s3", put: func(p *s3.PutObjectInput) { p.ServerSideEncryption = types.ServerSideEncryptionAes256 },
			get: func(*s3.GetObjectInput) {}, sse: "AES256"},
		{name: "sse-kms", put: func(p *s3.PutObjectInput) {
			p.ServerSideEncryption = types.ServerSideEncryptionAwsKms
			p.SSEKMSKeyId = aws.String(keyB)
			p.SSEKMSEncryptionContext = aws.String(encCtx)
		}, get: func(*s3.GetObjectInput) {}, sse: "aws:kms", kmsKey: keyB},
		{name: "sse-c", put: func(p *s3.PutObjectInput) {
			p.SSECustomerAlgorithm, p.SSECustomerKey, p.SSECustomerKeyMD5 = aws.String("AES256"), aws.String(ckey), aws.String(cmd5)
		}, get: func(g *s3.GetObjectInput) {
			g.SSECustomerAlgorithm, g.SSECustomerKey, g.SSECustomerKeyMD5 = aws.String("AES256"), aws.String(ckey), aws.String(cmd5)
		}, ssecMD5: cmd5},
	}
	for _, ch := range choices {
		key := "obj-" + ch.name
		in := &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}
		ch.put(in)
		put, err := c.PutObject(ctx, in)
		if err != nil {
			t.Fatalf("%s: put: %v", ch.name, err)
		}
		gin := &s3.GetObjectInput{Bucket: &bucket, Key: &key}
		ch.get(gin)
		out, err := c.GetObject(ctx, gin)
		if err != nil {
			t.Fatalf("%s: get: %v", ch.name, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, body) {
			t.Errorf("%s: body differs", ch.name)
		}
		for _, resp := range []struct {
			what              string
			sse, kms, ssecMD5 string
		}{
			{"put", string(put.ServerSideEncryption), aws.ToString(put.SSEKMSKeyId), aws.ToString(put.SSECustomerKeyMD5)},
			{"get", string(out.ServerSideEncryption), aws.ToString(out.SSEKMSKeyId), aws.ToString(out.SSECustomerKeyMD5)},
		} {
			if resp.sse != ch.sse || (ch.kmsKey != "" && !strings.Contains(resp.kms, ch.kmsKey)) || resp.ssecMD5 != ch.ssecMD5 {
				t.Errorf("%s %s: SSE headers %q %q %q, want %q %q %q", ch.name, resp.what, resp.sse, resp.kms, resp.ssecMD5, ch.sse, ch.kmsKey, ch.ssecMD5)
			}
		}
		stored, meta := storedBytes(t, m.Client(t), bucket, key)
		for _, secret := range []string{raw, ckey, hex.EncodeToString([]byte(raw))} {
			if bytes.Contains(stored, []byte(secret)) {
				t.Errorf("%s: the SSE-C key is in the stored bytes", ch.name)
			}
			for name, v := range meta {
				if strings.Contains(v, secret) || strings.Contains(name, secret) {
					t.Errorf("%s: the SSE-C key is in backend metadata %s", ch.name, name)
				}
			}
		}
	}

	// SSE-C: a wrong key (403 AccessDenied), no key (400 InvalidRequest), also for HEAD and
	// ranges; a copy with the copy-source key under a new key reads with the new key only.
	_, wrongKey, wrongMD5 := ssecKey(t)
	_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("obj-sse-c"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(wrongKey), SSECustomerKeyMD5: aws.String(wrongMD5)})
	if code, status := apiErr(err); code != "AccessDenied" || status != 403 {
		t.Errorf("wrong SSE-C key: %v (%s %d), want 403 AccessDenied", err, code, status)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("obj-sse-c"), Range: aws.String("bytes=10-20")})
	if code, status := apiErr(err); code != "InvalidRequest" || status != 400 {
		t.Errorf("missing SSE-C key: %v (%s %d), want 400 InvalidRequest", err, code, status)
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("obj-sse-c"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(wrongKey), SSECustomerKeyMD5: aws.String(wrongMD5)})
	if _, status := apiErr(err); status != 403 {
		t.Errorf("HEAD with the wrong SSE-C key: %v, want 403", err)
	}
	_, newKey, newMD5 := ssecKey(t)
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("copy-sse-c"), CopySource: aws.String(bucket + "/obj-sse-c"),
		CopySourceSSECustomerAlgorithm: aws.String("AES256"), CopySourceSSECustomerKey: aws.String(ckey), CopySourceSSECustomerKeyMD5: aws.String(cmd5),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(newKey), SSECustomerKeyMD5: aws.String(newMD5)})
	if err != nil {
		t.Fatalf("copy SSE-C to SSE-C: %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("copy-sse-c"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(newKey), SSECustomerKeyMD5: aws.String(newMD5)})
	if err != nil {
		t.Fatalf("get the SSE-C copy: %v", err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, body) {
		t.Error("SSE-C copy differs")
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("copy-sse-c"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(ckey), SSECustomerKeyMD5: aws.String(cmd5)})
	if _, status := apiErr(err); status != 403 {
		t.Errorf("the copy opened with the source's key: %v", err)
	}

	// A KMS key outside the credential's allow-list.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("denied"), Body: bytes.NewReader(body),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(keyC)})
	if code, status := apiErr(err); code != "AccessDenied" || status != 403 {
		t.Errorf("KMS key outside the allow-list: %v (%s %d), want 403 AccessDenied", err, code, status)
	}
	if _, err := m.Client(t).HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("denied")}); err == nil {
		t.Error("the refused object was stored")
	}

	// SSE-C over plain HTTP is refused unless ssec_allow_http.
	strict, _, _, _ := testenv.StartGatewayMinIO(t, nil)
	_, err = strict.Client(t).PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("http-ssec"), Body: bytes.NewReader(body),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(ckey), SSECustomerKeyMD5: aws.String(cmd5)})
	if code, status := apiErr(err); code != "InvalidRequest" || status != 400 {
		t.Errorf("SSE-C over HTTP: %v (%s %d), want 400 InvalidRequest", err, code, status)
	}

	logData, err := os.ReadFile(gw.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{ckey, wrongKey, newKey, hex.EncodeToString([]byte(raw))} {
		if bytes.Contains(logData, []byte(secret)) {
			t.Errorf("an SSE-C key is in the gateway log")
		}
	}
}
