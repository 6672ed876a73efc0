package integration

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/specdecode"
	"github.com/s3seal/s3seal/internal/testenv"
)

// TestCoreSpecDecodeGatewayObjects (issue 4, acceptance 1): objects written through the real
// gateway with the Go SDK are read straight from MinIO and decrypted by internal/specdecode,
// the decoder written only from docs/FORMAT.md. The data key is unwrapped here with the KMS
// emulator's Decrypt under the encryption context the spec names, not by the gateway.
func TestCoreSpecDecodeGatewayObjects(t *testing.T) {
	gw, m, k, keyID := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	client := gw.Client(t)
	direct := m.Client(t)
	kc := k.Client(t)
	ctx := context.Background()

	sizes := []int{0, 1, 15, 16, 17, coreS - 1, coreS, coreS + 1, 2 * coreS, 3*coreS + 5, 1<<20 + 3}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			key := fmt.Sprintf("spec/obj-%d", n)
			plain := testenv.RandomBytes(t, n, "")
			put, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(plain)})
			if err != nil {
				t.Fatalf("PUT through the gateway: %v", err)
			}
			stored, meta := storedBytes(t, direct, bucket, key)
			// The SDK sends a checksum: the object seals it (FORMAT.md 3.3, s3seal-ck).
			alg, err := specdecode.ChecksumOfMeta(meta["s3seal-ck"])
			if err != nil {
				t.Fatal(err)
			}
			if want := coreStoredSize(int64(n)) + int64(specdecode.ChecksumSize(alg)); int64(len(stored)) != want {
				t.Errorf("stored %d bytes, FORMAT.md 3.3 says %d", len(stored), want)
			}
			env := meta[coreMetaEnv]
			if env == "" {
				t.Fatalf("no %s metadata: %v", coreMetaEnv, meta)
			}
			envKeyID, wrapped := coreEnvParts(t, env)
			if !strings.HasSuffix(envKeyID, keyID) {
				t.Errorf("envelope key id %q does not name the gateway's key %q", envKeyID, keyID)
			}

			dk := kmsUnwrap(t, kc, envKeyID, wrapped, bucket)
			ok, gotID, gotWrapped, kind, err := specdecode.OpenEnvelope(env, dk, bucket, key)
			if err != nil {
				t.Fatalf("specdecode.OpenEnvelope: %v", err)
			}
			if gotID != envKeyID || !bytes.Equal(gotWrapped, wrapped) || kind != 0 {
				t.Errorf("specdecode read key id %q, %d-byte wrapped key, kind %d", gotID, len(gotWrapped), kind)
			}
			got, sum, _, err := specdecode.DecryptSingleChecksum(ok, stored, alg)
			if err != nil {
				t.Fatalf("specdecode.DecryptSingle: %v", err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("specdecode returned %d bytes that differ from the %d uploaded", len(got), len(plain))
			}
			if want := hex.EncodeToString(md5sum(plain)); hex.EncodeToString(sum) != want {
				t.Errorf("trailer MD5 %x, want %s", sum, want)
			}
			if etag := strings.Trim(aws.ToString(put.ETag), `"`); etag != hex.EncodeToString(sum) {
				t.Errorf("gateway ETag %q is not the MD5 sealed in the trailer %x", etag, sum)
			}

			// The decoder must be able to say no: the envelope is bound to the object's name,
			// and every stored byte is authenticated.
			if _, _, _, _, err := specdecode.OpenEnvelope(env, dk, bucket, key+"x"); err == nil {
				t.Error("specdecode opened the envelope under another object name")
			}
			bad := bytes.Clone(stored)
			bad[len(bad)/2] ^= 0x40
			if _, _, err := specdecode.DecryptSingle(ok, bad); err == nil {
				t.Error("specdecode accepted a stored stream with a flipped byte")
			}
		})
	}

	// The wrapped data key is bound to its bucket by the encryption context.
	env := func() string {
		_, meta := storedBytes(t, direct, bucket, "spec/obj-1")
		return meta[coreMetaEnv]
	}()
	id, wrapped := coreEnvParts(t, env)
	_, err := kc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wrapped, KeyId: &id,
		EncryptionContext: map[string]string{"gateway": "s3seal", "bucket": bucket + "-other"}})
	if err == nil {
		t.Error("KMS unwrapped the data key under another bucket's encryption context")
	}
}

// TestCoreSpecDecodeGatewayMultipart (issue 4, acceptance 1, multipart): a multipart upload
// through the gateway with the Go SDK (parts 1, 3 and 4: part numbers may have gaps), read
// straight from MinIO and decrypted by internal/specdecode after unwrapping the data key with
// the KMS emulator. UploadPart must have answered each part's plaintext MD5 as its ETag. The
// object is of format 3 (FORMAT.md 3.6): the last part, under 5 MiB, held by the gateway and
// uploaded with the tail.
func TestCoreSpecDecodeGatewayMultipart(t *testing.T) {
	gw, m, k, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	client := gw.Client(t)
	ctx := context.Background()
	key := "spec/multipart"
	parts := map[int32][]byte{
		1: testenv.RandomBytes(t, 5<<20+3, ""),
		3: testenv.RandomBytes(t, 5<<20, ""),
		4: testenv.RandomBytes(t, 12345, ""),
	}
	up, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	var done []types.CompletedPart
	var plain []byte
	for _, n := range []int32{1, 3, 4} {
		out, err := client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(parts[n]), ContentLength: aws.Int64(int64(len(parts[n])))})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", n, err)
		}
		if got, want := strings.Trim(aws.ToString(out.ETag), `"`), hex.EncodeToString(md5sum(parts[n])); got != want {
			t.Errorf("part %d: ETag %s, want the plaintext MD5 %s", n, got, want)
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag})
		plain = append(plain, parts[n]...)
	}
	if _, err := client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}

	stored, meta := storedBytes(t, m.Client(t), bucket, key)
	env := meta[coreMetaEnv]
	if env == "" {
		t.Fatalf("no %s metadata: %v", coreMetaEnv, meta)
	}
	id, wrapped := coreEnvParts(t, env)
	dk := kmsUnwrap(t, k.Client(t), id, wrapped, bucket)
	e, err := specdecode.Open(env, dk, bucket, key)
	if err != nil || e.Version != 3 || e.Kind != 1 {
		t.Fatalf("specdecode.Open: %+v, %v", e, err)
	}
	// A new multipart object is of format 3 (FORMAT.md 3.6): its parts are authenticated as a
	// set by the tail, its last bytes, and it has no manifest metadata.
	if meta["s3seal-parts"] != "" {
		t.Errorf("a format-3 object with manifest metadata %q", meta["s3seal-parts"])
	}
	got, tail, err := specdecode.DecryptMultipartV3(e.OK, stored)
	if err != nil {
		t.Fatalf("specdecode.DecryptMultipartV3: %v", err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatalf("specdecode returned %d bytes that differ from the %d uploaded", len(got), len(plain))
	}
	if tail.K != 3 || len(tail.Runs) != 3 || tail.Runs[0].First != 1 || tail.Runs[1].First != 3 || tail.Runs[2].First != 4 {
		t.Errorf("tail of %d parts, runs %+v; want parts 1, 3 and 4", tail.K, tail.Runs)
	}
	var md5s []byte
	for _, n := range []int32{1, 3, 4} {
		md5s = append(md5s, md5sum(parts[n])...)
	}
	if want := fmt.Sprintf("%x-3", md5sum(md5s)); tail.ETag() != want {
		t.Errorf("tail ETag %s, want %s", tail.ETag(), want)
	}
	if d, err := specdecode.Decrypt(e, stored, ""); err != nil || !bytes.Equal(d, plain) {
		t.Errorf("specdecode.Decrypt: %v", err)
	}
	// Without its tail, or with a part dropped, the object does not decode.
	if _, _, err := specdecode.DecryptMultipartV3(e.OK, stored[:len(stored)-int(tail.Size)]); err == nil {
		t.Error("specdecode read the format-3 object without its tail")
	}
	first := 48 + len(parts[1]) + 16*((len(parts[1])+coreS-1)/coreS) + 32
	if _, _, err := specdecode.DecryptMultipartV3(e.OK, stored[first:]); err == nil {
		t.Error("specdecode read the format-3 object without its first part")
	}
	// And the gateway agrees.
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if b, err := io.ReadAll(out.Body); err != nil || !bytes.Equal(b, plain) {
		t.Errorf("GET through the gateway: %d bytes, %v", len(b), err)
	}
}

// kmsUnwrap unwraps a data key with the KMS emulator under the encryption context FORMAT.md
// section 2 names for bucket.
func kmsUnwrap(t *testing.T, kc *kms.Client, keyID string, wrapped []byte, bucket string) []byte {
	t.Helper()
	out, err := kc.Decrypt(context.Background(), &kms.DecryptInput{
		CiphertextBlob:    wrapped,
		KeyId:             aws.String(keyID),
		EncryptionContext: map[string]string{"gateway": "s3seal", "bucket": bucket},
	})
	if err != nil {
		t.Fatalf("KMS Decrypt of the envelope's wrapped key: %v", err)
	}
	if len(out.Plaintext) != 32 {
		t.Fatalf("KMS returned a %d-byte data key", len(out.Plaintext))
	}
	return out.Plaintext
}
