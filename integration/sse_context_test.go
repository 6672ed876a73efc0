package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestKMSContextReservedKeys (FORMAT.md 4): against the real gateway, MinIO and the KMS
// emulator, a client's SSE-KMS encryption context that names the reserved key "bucket" or
// "gateway" is refused with 400 InvalidArgument (Go SDK and aws-cli) and nothing is stored; and
// a stored x-amz-meta-s3seal-ctx that the backend altered to name "bucket" (with the object's
// own bucket, so the KMS context would be unchanged if it were merged) makes the object fail
// like a tampered one (500 InternalError).
func TestKMSContextReservedKeys(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	c, direct := gw.Client(t), m.Client(t)
	ctx := context.Background()
	body := testenv.RandomBytes(t, 70_000, marker)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

	for _, js := range []string{`{"project":"apollo","bucket":"other"}`, `{"bucket":"` + bucket + `"}`, `{"gateway":"s3seal"}`} {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("refused"), Body: bytes.NewReader(body),
			ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSEncryptionContext: aws.String(b64(js))})
		if code, status := apiErr(err); code != "InvalidArgument" || status != 400 {
			t.Errorf("context %s: %v (%s %d), want 400 InvalidArgument", js, err, code, status)
		}
	}
	src := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(src, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := gw.AWS(t, "s3api", "put-object", "--bucket", bucket, "--key", "refused", "--body", src,
		"--server-side-encryption", "aws:kms", "--ssekms-encryption-context", b64(`{"bucket":"other"}`))
	if err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Errorf("aws-cli put-object with a reserved context key: %q, %v; want InvalidArgument", out, err)
	}
	if _, err := direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("refused")}); err == nil {
		t.Error("an object with a refused context was stored")
	}

	// An accepted context, then the backend rewrites the stored one to name "bucket".
	key := "with-context"
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSEncryptionContext: aws.String(b64(`{"project":"apollo"}`))}); err != nil {
		t.Fatalf("put with a context: %v", err)
	}
	get := func() ([]byte, error) {
		o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			return nil, err
		}
		defer o.Body.Close()
		return io.ReadAll(o.Body)
	}
	if got, err := get(); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("get with the stored context: %v", err)
	}
	_, meta := storedBytes(t, direct, bucket, key)
	ctxName := ""
	for name := range meta {
		if strings.EqualFold(name, "s3seal-ctx") {
			ctxName = name
		}
	}
	if ctxName == "" {
		t.Fatalf("no s3seal-ctx in the backend metadata %v", meta)
	}
	meta[ctxName] = b64(`{"project":"apollo","bucket":"` + bucket + `"}`)
	if _, err := direct.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: &key, CopySource: aws.String(bucket + "/" + key),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: meta}); err != nil {
		t.Fatalf("backend rewrite of the metadata: %v", err)
	}
	if got, err := get(); err == nil {
		t.Errorf("the object opened with a stored context naming bucket (%d bytes)", len(got))
	} else if code, status := apiErr(err); code != "InternalError" || status != 500 {
		t.Errorf("stored context naming bucket: %v (%s %d), want 500 InternalError", err, code, status)
	}
}
