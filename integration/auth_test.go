package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestAuthFailures: wrong secret, unknown access key, and a body that does not match its
// signed x-amz-content-sha256 — each with S3's error, and nothing stored.
func TestAuthFailures(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	direct := m.Client(t)
	url := gw.Endpoint + "/" + bucket + "/"

	do := func(req *http.Request) (int, string) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, s3ErrorCode(b)
	}
	absent := func(key string) {
		t.Helper()
		_, err := direct.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "NotFound" {
			t.Errorf("%s: expected no object in MinIO, HEAD gave %v", key, err)
		}
	}
	body := testenv.RandomBytes(t, 1<<20, marker)

	status, code := do(signedRequest(t, http.MethodPut, url+"wrong-secret", body, "", gw.AccessKeyID, gw.SecretAccessKey+"x"))
	if status != 403 || code != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %d %s, want 403 SignatureDoesNotMatch", status, code)
	}
	absent("wrong-secret")

	status, code = do(signedRequest(t, http.MethodPut, url+"unknown-key", body, "", "AKIDUNKNOWN0000000", gw.SecretAccessKey))
	if status != 403 || code != "InvalidAccessKeyId" {
		t.Errorf("unknown key: %d %s, want 403 InvalidAccessKeyId", status, code)
	}
	absent("unknown-key")

	// Signed over one body, sent with another of the same length: the mismatch is only known at
	// the end of the stream, after most ciphertext went to MinIO; the backend write must abort.
	other := bytes.Clone(body)
	other[len(other)-1] ^= 1
	sum := sha256.Sum256(body)
	req := signedRequest(t, http.MethodPut, url+"tampered-body", other, hex.EncodeToString(sum[:]), gw.AccessKeyID, gw.SecretAccessKey)
	status, code = do(req)
	if status != 400 || code != "XAmzContentSHA256Mismatch" {
		t.Errorf("tampered body: %d %s, want 400 XAmzContentSHA256Mismatch", status, code)
	}
	absent("tampered-body")

	// Same over an existing object: the old version must survive intact.
	good := signedRequest(t, http.MethodPut, url+"existing", body, "", gw.AccessKeyID, gw.SecretAccessKey)
	if status, code := do(good); status != 200 {
		t.Fatalf("good PUT: %d %s", status, code)
	}
	req = signedRequest(t, http.MethodPut, url+"existing", other, hex.EncodeToString(sum[:]), gw.AccessKeyID, gw.SecretAccessKey)
	if status, code := do(req); status != 400 || code != "XAmzContentSHA256Mismatch" {
		t.Errorf("tampered overwrite: %d %s", status, code)
	}
	get := signedRequest(t, http.MethodGet, url+"existing", nil, "", gw.AccessKeyID, gw.SecretAccessKey)
	resp, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Errorf("existing object after a rejected overwrite: status %d, %d bytes, equal=%v, err %v",
			resp.StatusCode, len(got), bytes.Equal(got, body), err)
	}
}
