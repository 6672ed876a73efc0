package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// keptHash is the test's own hash of an algorithm, from the standard library.
func keptHash(alg types.ChecksumAlgorithm) hash.Hash {
	switch alg {
	case types.ChecksumAlgorithmCrc32:
		return crc32.NewIEEE()
	case types.ChecksumAlgorithmCrc32c:
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case types.ChecksumAlgorithmCrc64nvme:
		return crc64.New(crc64.MakeTable(0x9a6c9329ac4bc9b5))
	case types.ChecksumAlgorithmSha256:
		return sha256.New()
	}
	panic(alg)
}

func keptSum(alg types.ChecksumAlgorithm, parts ...[]byte) []byte {
	h := keptHash(alg)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// headChecksum is HeadObject's checksum of alg.
func headChecksum(out *s3.HeadObjectOutput, alg types.ChecksumAlgorithm) string {
	switch alg {
	case types.ChecksumAlgorithmCrc32:
		return aws.ToString(out.ChecksumCRC32)
	case types.ChecksumAlgorithmCrc32c:
		return aws.ToString(out.ChecksumCRC32C)
	case types.ChecksumAlgorithmCrc64nvme:
		return aws.ToString(out.ChecksumCRC64NVME)
	case types.ChecksumAlgorithmSha256:
		return aws.ToString(out.ChecksumSHA256)
	}
	return ""
}

// TestClientsChecksumsKept: with aws-sdk-go-v2 over TLS (aws-chunked bodies with trailing
// checksums, as current SDKs send them) against MinIO, the gateway keeps S3's checksums of the
// plaintext: a single-part PutObject's, a COMPOSITE SHA256 and a FULL_OBJECT CRC64NVME and CRC32C
// multipart upload's (Complete answers with the object's checksum as S3 computes it: checked
// against the test's own hashes), HeadObject and GetObjectAttributes show them, and the SDK's
// own validation of GetObject with checksum mode passes. MinIO holds no checksum of the
// plaintext: nothing of the client's checksums reaches it.
func TestClientsChecksumsKept(t *testing.T) {
	gw, m, mat := startTLSGateway(t, nil)
	bucket := m.NewBucket(t)
	hc := &http.Client{Transport: mat.Transport(), Timeout: 2 * time.Minute}
	c := clientsDefaultSDK(t, gw, hc)
	ctx := context.Background()
	var sums []string

	single := testenv.RandomBytes(t, 200<<10, marker)
	key := "kept/single"
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(single), ChecksumAlgorithm: types.ChecksumAlgorithmSha256}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	want := base64.StdEncoding.EncodeToString(keptSum(types.ChecksumAlgorithmSha256, single))
	sums = append(sums, want)
	checkKept(t, c, bucket, key, types.ChecksumAlgorithmSha256, types.ChecksumTypeFullObject, want, want, single)

	p1, p2 := testenv.RandomBytes(t, 5<<20, marker), testenv.RandomBytes(t, 100<<10+7, marker)
	for _, tc := range []struct {
		alg types.ChecksumAlgorithm
		typ types.ChecksumType
	}{
		{types.ChecksumAlgorithmSha256, types.ChecksumTypeComposite},
		{types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeFullObject},
		{types.ChecksumAlgorithmCrc32c, types.ChecksumTypeFullObject},
	} {
		key := "kept/mp-" + strings.ToLower(string(tc.alg))
		cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key, ChecksumAlgorithm: tc.alg, ChecksumType: tc.typ})
		if err != nil {
			t.Fatalf("CreateMultipartUpload %s: %v", tc.alg, err)
		}
		if cr.ChecksumAlgorithm != tc.alg || cr.ChecksumType != tc.typ {
			t.Errorf("CreateMultipartUpload %s: algorithm %s type %s", tc.alg, cr.ChecksumAlgorithm, cr.ChecksumType)
		}
		var done []types.CompletedPart
		for i, p := range [][]byte{p1, p2} {
			n := int32(i + 1)
			up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: cr.UploadId, PartNumber: &n, Body: bytes.NewReader(p), ChecksumAlgorithm: tc.alg})
			if err != nil {
				t.Fatalf("UploadPart %d %s: %v", n, tc.alg, err)
			}
			cp := types.CompletedPart{PartNumber: &n, ETag: up.ETag, ChecksumCRC32C: up.ChecksumCRC32C, ChecksumCRC64NVME: up.ChecksumCRC64NVME, ChecksumSHA256: up.ChecksumSHA256}
			done = append(done, cp)
		}
		lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: &key, UploadId: cr.UploadId})
		if err != nil || len(lp.Parts) != 2 || lp.ChecksumAlgorithm != tc.alg {
			t.Fatalf("ListParts %s: %v %+v", tc.alg, err, lp)
		}
		for i, p := range lp.Parts {
			got := map[types.ChecksumAlgorithm]string{types.ChecksumAlgorithmSha256: aws.ToString(p.ChecksumSHA256),
				types.ChecksumAlgorithmCrc64nvme: aws.ToString(p.ChecksumCRC64NVME), types.ChecksumAlgorithmCrc32c: aws.ToString(p.ChecksumCRC32C)}[tc.alg]
			if w := base64.StdEncoding.EncodeToString(keptSum(tc.alg, [][]byte{p1, p2}[i])); got != w {
				t.Errorf("ListParts %s part %d: %q, want %s", tc.alg, i+1, got, w)
			}
		}
		comp, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: cr.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: done}, ChecksumType: tc.typ})
		if err != nil {
			t.Fatalf("CompleteMultipartUpload %s: %v", tc.alg, err)
		}
		// S3's object checksum, from the test's own hashes: COMPOSITE, the hash of the parts'
		// digests and the part count; FULL_OBJECT, the CRC of the whole plaintext.
		want := base64.StdEncoding.EncodeToString(keptSum(tc.alg, p1, p2))
		attr := want
		if tc.typ == types.ChecksumTypeComposite {
			attr = base64.StdEncoding.EncodeToString(keptSum(tc.alg, keptSum(tc.alg, p1), keptSum(tc.alg, p2)))
			want = fmt.Sprintf("%s-2", attr)
		}
		got := map[types.ChecksumAlgorithm]string{types.ChecksumAlgorithmSha256: aws.ToString(comp.ChecksumSHA256),
			types.ChecksumAlgorithmCrc64nvme: aws.ToString(comp.ChecksumCRC64NVME), types.ChecksumAlgorithmCrc32c: aws.ToString(comp.ChecksumCRC32C)}[tc.alg]
		if got != want || comp.ChecksumType != tc.typ {
			t.Errorf("CompleteMultipartUpload %s: checksum %q type %s, want %s %s", tc.alg, got, comp.ChecksumType, want, tc.typ)
		}
		sums = append(sums, attr)
		checkKept(t, c, bucket, key, tc.alg, tc.typ, want, attr, append(bytes.Clone(p1), p2...))
	}

	// Nothing of the checksums at rest: MinIO's own view of every object.
	mc := m.Client(t)
	for _, k := range []string{"kept/single", "kept/mp-sha256", "kept/mp-crc64nvme", "kept/mp-crc32c"} {
		out, err := mc.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &k, ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatalf("MinIO HeadObject %s: %v", k, err)
		}
		for _, v := range append([]string{aws.ToString(out.ChecksumCRC32), aws.ToString(out.ChecksumCRC32C), aws.ToString(out.ChecksumCRC64NVME), aws.ToString(out.ChecksumSHA256)}, metaValues(out.Metadata)...) {
			for _, s := range sums {
				if v != "" && strings.Contains(v, s) {
					t.Errorf("MinIO holds the plaintext checksum %s with %s", s, k)
				}
			}
		}
	}
}

func metaValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// checkKept reads back key (plaintext plain) and checks the checksum alg/typ: want on HEAD with
// checksum mode, attr in GetObjectAttributes; the SDK validates GetObject's itself.
func checkKept(t *testing.T, c *s3.Client, bucket, key string, alg types.ChecksumAlgorithm, typ types.ChecksumType, want, attr string, plain []byte) {
	t.Helper()
	ctx := context.Background()
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatalf("HeadObject %s: %v", key, err)
	}
	if got := headChecksum(h, alg); got != want || h.ChecksumType != typ {
		t.Errorf("HeadObject %s: checksum %q type %s, want %s %s", key, got, h.ChecksumType, want, typ)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	var b bytes.Buffer
	_, err = b.ReadFrom(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(b.Bytes(), plain) {
		t.Errorf("GetObject %s with checksum mode: %d bytes, %v", key, b.Len(), err)
	}
	ga, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: &bucket, Key: &key, ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesChecksum}})
	if err != nil || ga.Checksum == nil {
		t.Fatalf("GetObjectAttributes %s: %v", key, err)
	}
	got := map[types.ChecksumAlgorithm]string{types.ChecksumAlgorithmSha256: aws.ToString(ga.Checksum.ChecksumSHA256),
		types.ChecksumAlgorithmCrc64nvme: aws.ToString(ga.Checksum.ChecksumCRC64NVME), types.ChecksumAlgorithmCrc32c: aws.ToString(ga.Checksum.ChecksumCRC32C)}[alg]
	if got != attr || ga.Checksum.ChecksumType != typ {
		t.Errorf("GetObjectAttributes %s: checksum %q type %s, want %s %s", key, got, ga.Checksum.ChecksumType, attr, typ)
	}
}
