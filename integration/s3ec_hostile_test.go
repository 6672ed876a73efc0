package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// s3ecAlterer makes, through the hostile-backend harness, the from-th and later GETs of one
// object (counted from when it was set) carry delta XORed in at absolute object offsets (CTR
// ciphertext is malleable: the XOR of two plaintexts turns one into the other without the
// key).
type s3ecAlterer struct {
	h     *testenv.Hostile
	mu    sync.Mutex
	path  string
	from  int // the read number from which bodies are altered
	delta []byte
}

func newS3ECAlterer(h *testenv.Hostile) *s3ecAlterer {
	a := &s3ecAlterer{h: h}
	h.Hook(a.modify)
	return a
}

// alter makes the from-th and later GETs of bucket/key (counted from now) carry delta.
func (a *s3ecAlterer) alter(bucket, key string, from int, delta []byte) {
	path := testenv.ObjectPath(bucket, key)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.path, a.from, a.delta = path, a.h.Reads(path)+from, delta
}

func (a *s3ecAlterer) modify(req testenv.BackendRequest, resp *http.Response) error {
	if req.Method != http.MethodGet || resp.StatusCode/100 != 2 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if req.Path != a.path || req.Read < a.from {
		return nil
	}
	start := int64(0)
	if cr := resp.Header.Get("Content-Range"); cr != "" { // "bytes a-b/size"
		first, _, _ := strings.Cut(strings.TrimPrefix(cr, "bytes "), "-")
		start, _ = strconv.ParseInt(first, 10, 64)
	}
	resp.Body = &xorBody{rc: resp.Body, pos: start, delta: a.delta}
	return nil
}

// xorBody XORs delta into the object bytes [0, len(delta)) as they pass.
type xorBody struct {
	rc    io.ReadCloser
	pos   int64
	delta []byte
}

func (x *xorBody) Read(p []byte) (int, error) {
	n, err := x.rc.Read(p)
	for i := 0; i < n; i++ {
		if o := x.pos + int64(i); o < int64(len(x.delta)) {
			p[i] ^= x.delta[o]
		}
	}
	x.pos += int64(n)
	return n, err
}

func (x *xorBody) Close() error { return x.rc.Close() }

// TestS3ECHostileBackendRereads: an S3 Encryption Client object whose bytes change between the
// backend's reads is never served altered, whole, ranged (Go SDK and aws-cli) or copied: the
// gateway reads the ciphertext once, spools it, verifies the tag and decrypts only the
// spooled bytes. Without that, "PAY ALICE $000100" would come out as "PAY MALLORY $9999".
func TestS3ECHostileBackendRereads(t *testing.T) {
	m := testenv.NewMinIO(t)
	hostile := testenv.NewHostile(t, m.Endpoint)
	h := newS3ECAlterer(hostile)
	gw, _, k, keyID := testenv.StartGatewayMinIO(t, map[string]string{
		"GATEWAY_BACKEND_ENDPOINT": hostile.URL, "GATEWAY_S3EC_BUCKETS": "*",
	})
	bucket := m.NewBucket(t)
	c := gw.Client(t, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	plain := append([]byte("PAY ALICE $000100 "), testenv.RandomBytes(t, 200_000, marker)...)
	forged := []byte("PAY MALLORY $9999")
	delta := make([]byte, len(forged))
	for i := range delta {
		delta[i] = plain[i] ^ forged[i]
	}
	awsBin := clientsRequireFile(t, clientsDebianAWS)
	dir := t.TempDir()

	type op struct {
		name string
		run  func(key string) ([]byte, error) // nil body for a copy
		want []byte
	}
	ops := []op{
		{"whole", func(key string) ([]byte, error) {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				return nil, err
			}
			defer out.Body.Close()
			return io.ReadAll(out.Body)
		}, plain},
		{"range", func(key string) ([]byte, error) {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String("bytes=4-16")})
			if err != nil {
				return nil, err
			}
			defer out.Body.Close()
			return io.ReadAll(out.Body)
		}, plain[4:17]},
		{"aws-cli range", func(key string) ([]byte, error) {
			dst := filepath.Join(dir, "got-"+key)
			_, _, err := clientsRun(t, gw, []string{"AWS_MAX_ATTEMPTS=1"}, awsBin, "--endpoint-url", gw.Endpoint,
				"s3api", "get-object", "--bucket", bucket, "--key", key, "--range", "bytes=0-99", dst)
			if err != nil {
				return nil, err
			}
			return os.ReadFile(dst)
		}, plain[:100]},
		{"copy", func(key string) ([]byte, error) {
			_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String(key + "-copy"), CopySource: aws.String(bucket + "/" + key)})
			if err != nil {
				return nil, err
			}
			b, _ := getAll(t, c, bucket, key+"-copy")
			return b, nil
		}, plain},
		{"part copy", func(key string) ([]byte, error) {
			dst := key + "-partcopy"
			up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &dst})
			if err != nil {
				return nil, err
			}
			defer c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &dst, UploadId: up.UploadId})
			pc, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &bucket, Key: &dst, UploadId: up.UploadId,
				PartNumber: aws.Int32(1), CopySource: aws.String(bucket + "/" + key), CopySourceRange: aws.String("bytes=0-99")})
			if err != nil {
				return nil, err
			}
			_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &dst, UploadId: up.UploadId,
				MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{PartNumber: aws.Int32(1), ETag: pc.CopyPartResult.ETag}}}})
			if err != nil {
				return nil, fmt.Errorf("complete: %w", err)
			}
			b, _ := getAll(t, c, bucket, dst)
			return b, nil
		}, plain[:100]},
	}
	for _, o := range ops {
		refused := 0
		for from := 1; from <= 4; from++ {
			key := fmt.Sprintf("cheque-%s-%d", strings.ReplaceAll(o.name, " ", "-"), from)
			putS3ECv2(t, m, k, keyID, bucket, key, plain, nil)
			h.alter(bucket, key, from, delta)
			got, err := o.run(key)
			switch {
			case err != nil:
				refused++
				switch o.name {
				case "copy":
					clientsAbsent(t, m, bucket, key+"-copy")
				case "part copy":
					clientsAbsent(t, m, bucket, key+"-partcopy")
				}
			case bytes.Contains(got, []byte("MALLORY")):
				t.Fatalf("%s, altered from GET %d: altered plaintext released", o.name, from)
			case !bytes.Equal(got, o.want):
				t.Errorf("%s, altered from GET %d: %d bytes that are not the object's", o.name, from, len(got))
			}
		}
		if refused == 0 {
			t.Errorf("%s: the alteration was never detected", o.name)
		}
	}
}

// TestS3ECNotOptedIn: in a bucket not named in GATEWAY_S3EC_BUCKETS an S3EC object is not
// decrypted: a GET gives either an error or the stored bytes as they are.
func TestS3ECNotOptedIn(t *testing.T) {
	gw, m, k, keyID := testenv.StartGatewayMinIO(t, map[string]string{"GATEWAY_S3EC_BUCKETS": "some-other-bucket"})
	bucket := m.NewBucket(t)
	plain := testenv.RandomBytes(t, 10_000, marker)
	putS3ECv2(t, m, k, keyID, bucket, "legacy", plain, nil)
	stored, err := m.Client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("legacy")})
	if err != nil {
		t.Fatal(err)
	}
	ciphertext, err := io.ReadAll(stored.Body)
	stored.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err := gw.Client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("legacy")})
	if err != nil {
		t.Logf("GET refused: %v", err)
		return
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || bytes.Contains(got, []byte(marker)) || !bytes.Equal(got, ciphertext) {
		t.Errorf("GET in a bucket not opted in: %d bytes (%v), plaintext %v, stored bytes %v",
			len(got), err, bytes.Contains(got, []byte(marker)), bytes.Equal(got, ciphertext))
	}
}
