package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestClientsChecksumAlgorithms: S3 takes ten checksum algorithms. aws-sdk-go-v2 computes six
// of them (CRC32, CRC32C, CRC64NVME, SHA1, SHA256, SHA512) and sends each as an aws-chunked
// trailer over TLS; each PutObject succeeds through the gateway and reads back. The other
// four (MD5, XXHASH64, XXHASH3, XXHASH128), sent as headers, are verified: the right value is
// taken, a wrong one gets 400 BadDigest and stores nothing. The xxHash values are from
// python3-xxhash 3.2.0 (Debian; the C xxHash library), not from the code under test.
func TestClientsChecksumAlgorithms(t *testing.T) {
	gw, m, mat := startTLSGateway(t, nil)
	bucket := m.NewBucket(t)
	rec := &clientsRecorder{next: mat.Transport()}
	hc := &http.Client{Transport: rec, Timeout: 2 * time.Minute}
	c := clientsDefaultSDK(t, gw, hc)
	ctx := context.Background()
	for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c,
		types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmSha512} {
		key := "sdk/" + string(alg)
		plain := testenv.RandomBytes(t, 100<<10, marker)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(plain), ChecksumAlgorithm: alg}); err != nil {
			t.Fatalf("PutObject with %s: %v", alg, err)
		}
		if tr := rec.first(t, http.MethodPut, "/"+key).Header.Get("X-Amz-Trailer"); tr != "x-amz-checksum-"+string(bytes.ToLower([]byte(alg))) {
			t.Errorf("PutObject with %s sent x-amz-trailer %q", alg, tr)
		}
		got, _ := getAll(t, c, bucket, key)
		if !bytes.Equal(got, plain) {
			t.Errorf("%s: GetObject gave %d bytes, not the %d put", alg, len(got), len(plain))
		}
		checkAtRest(t, m, bucket, key, plain)
	}

	long := bytes.Repeat([]byte("hello world"), 1000)
	put := func(key, header, value string, data []byte) coreResult {
		req, err := http.NewRequest(http.MethodPut, gw.Endpoint+"/"+bucket+"/"+key, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		req.Header.Set(header, value)
		if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: gw.AccessKeyID, SecretAccessKey: gw.SecretAccessKey},
			req, hex.EncodeToString(sum[:]), "s3", gw.Region, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		return coreDo(hc, req)
	}
	md5sum := md5.Sum(long)
	for _, tc := range []struct{ header, good, bad string }{
		{"x-amz-checksum-md5", base64.StdEncoding.EncodeToString(md5sum[:]), "XrY7u+Ae7tCTyyK7j1rNww=="},
		{"x-amz-checksum-xxhash64", "6DnH1qcyXE4=", "7DnH1qcyXE4="},
		{"x-amz-checksum-xxhash3", "4xfrLnDb960=", "5xfrLnDb960="},
		{"x-amz-checksum-xxhash128", "t1TjS+aVuaPjF+sucNv3rQ==", "u1TjS+aVuaPjF+sucNv3rQ=="},
	} {
		key := "raw/" + tc.header
		if r := put(key, tc.header, tc.bad, long); r.Status != http.StatusBadRequest || r.Code != "BadDigest" {
			t.Errorf("%s with a wrong value: %d %s, want 400 BadDigest", tc.header, r.Status, r.Code)
		}
		if _, err := m.Client(t).HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key}); err == nil {
			t.Errorf("%s with a wrong value: an object was stored", tc.header)
		}
		if r := put(key, tc.header, tc.good, long); r.Status != http.StatusOK {
			t.Errorf("%s with the right value: %d %s %s", tc.header, r.Status, r.Code, r.Body)
			continue
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatalf("GetObject %s: %v", key, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, long) {
			t.Errorf("%s: GetObject gave %d bytes (%v)", key, len(got), err)
		}
	}
}
