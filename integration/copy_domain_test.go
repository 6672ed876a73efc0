package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/specdecode"
	"github.com/s3seal/s3seal/internal/testenv"
)

// TestCopyAcrossKeyDomains (issue 10, item 11): a server-side copy of a KMS-protected object to
// an SSE-C destination is re-encrypted under a fresh object key, so the holder of the customer
// key (who can open the destination's envelope) learns neither the source's data key nor its
// object key: the two object keys, each opened from its envelope per FORMAT.md with what its
// holder has (the KMS data key; the customer key), differ, and the source's stored bytes do not
// decrypt under the destination's key. A copy within the same KMS key keeps the object key
// (only the envelope is rewritten, FORMAT.md 4).
func TestCopyAcrossKeyDomains(t *testing.T) {
	gw, m, k, _ := testenv.StartGatewayMinIO(t, map[string]string{"GATEWAY_SSEC_ALLOW_HTTP": "true"})
	bucket := m.NewBucket(t)
	ctx := context.Background()
	c := gw.Client(t)
	direct := m.Client(t)
	plain := testenv.RandomBytes(t, 300_000, marker)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("src"), Body: bytes.NewReader(plain)}); err != nil {
		t.Fatal(err)
	}
	raw, ckey, cmd5 := ssecKey(t)
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("dst-ssec"), CopySource: aws.String(bucket + "/src"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(ckey), SSECustomerKeyMD5: aws.String(cmd5)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("dst-same"), CopySource: aws.String(bucket + "/src")}); err != nil {
		t.Fatal(err)
	}
	// The destination reads back through the gateway with the customer key.
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("dst-ssec"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(ckey), SSECustomerKeyMD5: aws.String(cmd5)})
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	_, _ = got.ReadFrom(out.Body)
	out.Body.Close()
	if !bytes.Equal(got.Bytes(), plain) {
		t.Fatal("SSE-C copy does not read back")
	}

	srcStored, srcMeta := storedBytes(t, direct, bucket, "src")
	dstStored, dstMeta := storedBytes(t, direct, bucket, "dst-ssec")
	sameStored, sameMeta := storedBytes(t, direct, bucket, "dst-same")
	// The source's object key, opened as the gateway does: the KMS data key, then the envelope.
	dk := kmsDataKey(t, k, srcMeta[coreMetaEnv], bucket)
	okSrc, keyID, wrapped, _, err := specdecode.OpenEnvelope(srcMeta[coreMetaEnv], dk, bucket, "src")
	if err != nil || keyID == "" || len(wrapped) == 0 {
		t.Fatalf("source envelope: %v", err)
	}
	// The destination's object key, opened by the customer-key holder.
	okDst, _, _, _, err := specdecode.OpenEnvelope(dstMeta[coreMetaEnv], []byte(raw), bucket, "dst-ssec")
	if err != nil {
		t.Fatalf("destination envelope under the customer key: %v", err)
	}
	if bytes.Equal(okSrc, okDst) {
		t.Fatal("the SSE-C destination shares the source's object key")
	}
	if bytes.Equal(srcStored, dstStored) {
		t.Fatal("the SSE-C destination holds the source's stored bytes")
	}
	if _, _, err := specdecode.DecryptSingle(okDst, srcStored); err == nil {
		t.Fatal("the source's stored bytes decrypt under the destination's object key")
	}
	dstAlg, err := specdecode.ChecksumOfMeta(dstMeta["s3seal-ck"])
	if err != nil {
		t.Fatal(err)
	}
	if p, _, _, err := specdecode.DecryptSingleChecksum(okDst, dstStored, dstAlg); err != nil || !bytes.Equal(p, plain) {
		t.Fatalf("destination under its own key: %v", err)
	}
	// Same KMS key: the stored bytes and the object key are kept, the envelope is new.
	okSame, _, _, _, err := specdecode.OpenEnvelope(sameMeta[coreMetaEnv], kmsDataKey(t, k, sameMeta[coreMetaEnv], bucket), bucket, "dst-same")
	if err != nil || !bytes.Equal(okSame, okSrc) || !bytes.Equal(sameStored, srcStored) || sameMeta[coreMetaEnv] == srcMeta[coreMetaEnv] {
		t.Fatalf("copy under the same key: %v, same key %v, same bytes %v", err, bytes.Equal(okSame, okSrc), bytes.Equal(sameStored, srcStored))
	}
}

// kmsDataKey unwraps an envelope's data key at the KMS emulator with the bucket's context
// (FORMAT.md 2), as a gateway does.
func kmsDataKey(t *testing.T, k *testenv.KMS, env, bucket string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(env)
	if err != nil || len(b) < 8 {
		t.Fatalf("envelope: %v", err)
	}
	// FORMAT.md 4: version, kind, wrap, seg_shift, be16 key id, be16 wrapped key.
	n := int(b[4])<<8 | int(b[5])
	w := int(b[6+n])<<8 | int(b[7+n])
	wrapped := b[8+n : 8+n+w]
	out, err := k.Client(t).Decrypt(context.Background(), &kms.DecryptInput{CiphertextBlob: wrapped,
		EncryptionContext: map[string]string{"gateway": "s3seal", "bucket": bucket}})
	if err != nil {
		t.Fatalf("KMS Decrypt of the data key: %v", err)
	}
	return out.Plaintext
}
