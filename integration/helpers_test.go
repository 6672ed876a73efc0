// Package integration holds the end-to-end tests: the real gateway binary in front of a real
// MinIO server and a KMS-API emulator, driven by real clients (aws-cli, boto3, the Go SDK).
// Run them through scripts/test, which starts those services.
package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// roundTripSizes are the object sizes of the walking-skeleton acceptance: empty, one byte,
// around one 64 KiB segment, and several MiB (below aws-cli's 8 MiB multipart threshold).
var roundTripSizes = []int{0, 1, 65535, 65536, 65537, 7 << 20}

const marker = "S3SEAL-PLAINTEXT-MARKER"

// writeFile writes data to a new file in dir.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// storedBytes reads an object directly from MinIO, bypassing the gateway.
func storedBytes(t *testing.T, c *s3.Client, bucket, key string) ([]byte, map[string]string) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("direct GET %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, out.Metadata
}

// sharedRun returns the offset of a 16-byte run of plain that appears in stored, or -1.
//
// Any 16-byte run of plain at offset i contains the 8-byte window of plain that starts at the
// next multiple of 8 (at most i+8). So it is enough to index plain's 8-byte windows at offsets
// 0, 8, 16, ... and look up every 8-byte window of stored; a hit is then confirmed by comparing
// the whole 16-byte neighbourhood.
func sharedRun(plain, stored []byte) int {
	if len(plain) < 16 || len(stored) < 16 {
		return -1
	}
	index := make(map[uint64][]int, len(plain)/8+1)
	for off := 0; off+8 <= len(plain); off += 8 {
		k := binary.LittleEndian.Uint64(plain[off:])
		index[k] = append(index[k], off)
	}
	for j := 0; j+8 <= len(stored); j++ {
		offs, ok := index[binary.LittleEndian.Uint64(stored[j:])]
		if !ok {
			continue
		}
		for _, off := range offs {
			// plain[off:off+8] == stored[j:j+8]; extend to any 16-byte run containing it.
			for d := 0; d <= 8; d++ {
				ps, ss := off-d, j-d
				if ps < 0 || ss < 0 || ps+16 > len(plain) || ss+16 > len(stored) {
					continue
				}
				if bytes.Equal(plain[ps:ps+16], stored[ss:ss+16]) {
					return ss
				}
			}
		}
	}
	return -1
}

func TestSharedRunFindsRuns(t *testing.T) {
	plain := testenv.RandomBytes(t, 4096, "")
	for _, at := range []int{0, 1, 7, 8, 9, 4000, 4080} {
		stored := append(testenv.RandomBytes(t, 100, ""), plain[at:at+16]...)
		stored = append(stored, testenv.RandomBytes(t, 50, "")...)
		// The bytes around the run differ from plain's, so that the run found is the one put
		// at 100 (random ones matched one time in 256: a run found at 99 or 101).
		stored[116] = ^plain[min(at+16, len(plain)-1)]
		if at > 0 {
			stored[99] = ^plain[at-1]
		}
		if got := sharedRun(plain, stored); got != 100 {
			t.Errorf("run from plain offset %d: found at %d, want 100", at, got)
		}
	}
	if got := sharedRun(plain, testenv.RandomBytes(t, 4096, "")); got != -1 {
		t.Errorf("unrelated data: found a run at %d", got)
	}
}

// signedRequest builds a request to the gateway signed with SigV4 over the given payload hash.
func signedRequest(t *testing.T, method, url string, body []byte, payloadHash, accessKey, secret string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	if payloadHash == "" {
		sum := sha256.Sum256(body)
		payloadHash = hex.EncodeToString(sum[:])
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secret}
	err = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		SignHTTP(context.Background(), creds, req, payloadHash, "s3", "us-east-1", time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// s3ErrorCode extracts <Code> from an S3 XML error body.
func s3ErrorCode(body []byte) string {
	i := bytes.Index(body, []byte("<Code>"))
	j := bytes.Index(body, []byte("</Code>"))
	if i < 0 || j < i {
		return ""
	}
	return string(body[i+6 : j])
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

func md5sum(b []byte) []byte    { s := md5.Sum(b); return s[:] }
func sha256sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// newBucketName returns a fresh, valid bucket name (not created).
func newBucketName(t *testing.T, prefix string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

// deleteBucket removes a bucket and everything in it directly in MinIO (test cleanup).
func deleteBucket(t *testing.T, m *testenv.MinIO, bucket string) {
	c := m.Client(t)
	ctx := context.Background()
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return // bucket already gone
		}
		for _, o := range page.Contents {
			_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: o.Key})
		}
	}
	_, _ = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket})
}

// secondGateway starts another gateway process with the same client credential, backend and
// KMS key as gw (a stateless peer, with empty caches).
func secondGateway(t *testing.T, gw *testenv.Gateway, m *testenv.MinIO, k *testenv.KMS, keyID string) *testenv.Gateway {
	t.Helper()
	return testenv.StartGateway(t, coreGatewayEnv(m, m.Endpoint, k.Endpoint, keyID, map[string]string{
		"GATEWAY_ACCESS_KEY_ID": gw.AccessKeyID, "GATEWAY_SECRET_ACCESS_KEY": gw.SecretAccessKey,
	}))
}
