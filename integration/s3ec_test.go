package integration

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// putS3ECv2 writes plain to MinIO directly as the AWS S3 Encryption Client v2 does, following
// its published format: a data key from KMS GenerateDataKey with the kms+context encryption
// context, AES-256-GCM over the whole body with the tag appended, and the v2 metadata.
func putS3ECv2(t *testing.T, m *testenv.MinIO, k *testenv.KMS, keyID, bucket, key string, plain []byte, tamper func([]byte)) {
	t.Helper()
	ctx := context.Background()
	encCtx := map[string]string{"aws:x-amz-cek-alg": "AES/GCM/NoPadding", "purpose": "legacy"}
	dk, err := k.Client(t).GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: &keyID, KeySpec: kmstypes.DataKeySpecAes256, EncryptionContext: encCtx})
	if err != nil {
		t.Fatal(err)
	}
	iv := make([]byte, 12)
	if _, err := rand.Read(iv); err != nil {
		t.Fatal(err)
	}
	blk, _ := aes.NewCipher(dk.Plaintext)
	gcm, _ := cipher.NewGCM(blk)
	body := gcm.Seal(nil, iv, plain, nil)
	if tamper != nil {
		tamper(body)
	}
	matdesc := `{"aws:x-amz-cek-alg":"AES/GCM/NoPadding","purpose":"legacy"}`
	_, err = m.Client(t).PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body),
		Metadata: map[string]string{
			"x-amz-key-v2": base64.StdEncoding.EncodeToString(dk.CiphertextBlob),
			"x-amz-iv":     base64.StdEncoding.EncodeToString(iv), "x-amz-cek-alg": "AES/GCM/NoPadding",
			"x-amz-wrap-alg": "kms+context", "x-amz-tag-len": "128", "x-amz-matdesc": matdesc,
			"x-amz-unencrypted-content-length": strconv.Itoa(len(plain)),
		}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestS3EncryptionClientObjects: objects in the S3 Encryption Client v2 format read back
// through the gateway (whole, ranges, HEAD and listing sizes, a copy into the gateway's own
// format); a tampered one fails before any byte is served.
func TestS3EncryptionClientObjects(t *testing.T) {
	gw, m, k, keyID := testenv.StartGatewayMinIO(t, map[string]string{"GATEWAY_S3EC_BUCKETS": "*"})
	bucket := m.NewBucket(t)
	c := gw.Client(t)
	ctx := context.Background()
	for _, size := range []int{0, 1, 100_000, 3<<20 + 5} {
		key := fmt.Sprintf("legacy-%d", size)
		plain := testenv.RandomBytes(t, size, marker)
		putS3ECv2(t, m, k, keyID, bucket, key, plain, nil)
		got, out := getAll(t, c, bucket, key)
		if !bytes.Equal(got, plain) || aws.ToInt64(out.ContentLength) != int64(size) {
			t.Errorf("%s: %d bytes (Content-Length %d), equal %v", key, len(got), aws.ToInt64(out.ContentLength), bytes.Equal(got, plain))
		}
		for name := range out.Metadata {
			if len(name) > 6 && name[:6] == "x-amz-" {
				t.Errorf("%s: encryption metadata %q shown to the client", key, name)
			}
		}
		if size > 10 {
			checkRanges(t, c, bucket, key, plain, nil, 10)
		}
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
		if err != nil || aws.ToInt64(h.ContentLength) != int64(size) {
			t.Errorf("%s: HEAD %v, %d bytes", key, err, aws.ToInt64(h.ContentLength))
		}
	}
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		var n int
		fmt.Sscanf(aws.ToString(o.Key), "legacy-%d", &n)
		if aws.ToInt64(o.Size) != int64(n) {
			t.Errorf("listing shows %s as %d bytes", aws.ToString(o.Key), aws.ToInt64(o.Size))
		}
	}

	// A copy through the gateway re-encrypts it in the gateway's format.
	plain := testenv.RandomBytes(t, 70_000, marker)
	putS3ECv2(t, m, k, keyID, bucket, "legacy-src", plain, nil)
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("migrated"), CopySource: aws.String(bucket + "/legacy-src")}); err != nil {
		t.Fatalf("copy: %v", err)
	}
	if got, _ := getAll(t, c, bucket, "migrated"); !bytes.Equal(got, plain) {
		t.Error("copy of an S3EC object differs")
	}
	checkAtRest(t, m, bucket, "migrated", plain)

	// Tampered: one flipped ciphertext byte, and a flipped tag byte.
	for i, flip := range []func([]byte){func(b []byte) { b[1000] ^= 1 }, func(b []byte) { b[len(b)-1] ^= 0x80 }} {
		key := fmt.Sprintf("tampered-%d", i)
		putS3ECv2(t, m, k, keyID, bucket, key, plain, flip)
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err == nil {
			b, rerr := io.ReadAll(out.Body)
			out.Body.Close()
			t.Errorf("%s: GET succeeded (%d bytes, read error %v)", key, len(b), rerr)
		}
		out, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String("bytes=0-99")})
		if err == nil {
			out.Body.Close()
			t.Errorf("%s: ranged GET succeeded", key)
		}
	}
}
