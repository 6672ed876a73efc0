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
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// hostileUpload creates an upload of key through c and uploads parts (numbered from 1); it
// returns the upload id and the parts' ETags.
func hostileUpload(t *testing.T, c *s3.Client, bucket, key string, parts ...[]byte) (*string, []*string) {
	t.Helper()
	ctx := context.Background()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	var etags []*string
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p), ContentLength: aws.Int64(int64(len(p)))})
		if err != nil {
			t.Fatal(err)
		}
		etags = append(etags, out.ETag)
	}
	return up.UploadId, etags
}

// completedParts names parts 1..len(etags).
func completedParts(etags ...*string) *types.CompletedMultipartUpload {
	var done []types.CompletedPart
	for i, e := range etags {
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: e})
	}
	return &types.CompletedMultipartUpload{Parts: done}
}

// recordedPart is the body of the last UploadPart of part n of path the backend received.
func recordedPart(h *testenv.Hostile, path string, n int) []byte {
	var body []byte
	for _, r := range h.Requests() {
		if r.Method == http.MethodPut && r.Path == path && r.Query.Get("partNumber") == strconv.Itoa(n) && r.Header.Get("X-Amz-Copy-Source") == "" {
			body = r.Body
		}
	}
	return body
}

// TestHostileCompleteOtherParts (issue 21a; FORMAT.md 3.6.4): with encryption.etag backend, the
// client completes parts [1,2] of an upload that also holds a part 3 of the same size; the
// backend completes 1 and 3 instead: every read of the object serves part 1 and part 3 as
// uploaded, then the gateway's tail (the gateway reads nothing back at Complete, so the
// Complete itself may answer 200). The tail's digest of the part headers names part 2's
// header (its number and salt), not part 3's: every read (GET, ranged GETs in either part,
// GET ?partNumber=2, HEAD) is refused with 500 and none serves a byte of any part's plaintext,
// by another gateway on the same backend (nothing cached) and by the gateway that completed
// the upload (docs/SECURITY.md: "every read of that object is then refused").
func TestHostileCompleteOtherParts(t *testing.T) {
	m, k := testenv.NewMinIO(t), testenv.NewKMS(t)
	h := testenv.NewHostile(t, m.Endpoint)
	env := coreGatewayEnv(m, h.URL, k.Endpoint, k.CreateKey(t), map[string]string{"GATEWAY_BACKEND_PAYLOAD": "unsigned", "GATEWAY_ETAG": "backend"})
	gw, reader := testenv.StartGateway(t, env), testenv.StartGateway(t, env)
	bucket := m.NewBucket(t)
	key := "swapped"
	path := testenv.ObjectPath(bucket, key)
	c := gw.Client(t)
	p1, p2, p3 := testenv.RandomBytes(t, 5<<20, ""), testenv.RandomBytes(t, 5<<20, ""), testenv.RandomBytes(t, 5<<20, "")
	id, etags := hostileUpload(t, c, bucket, key, p1, p2, p3)
	s1, s2, s3b := recordedPart(h, path, 1), recordedPart(h, path, 2), recordedPart(h, path, 3)
	if len(s1) == 0 || len(s2) == 0 || len(s3b) != len(s2) || bytes.Equal(s2, s3b) {
		t.Fatalf("recorded parts: %d, %d and %d bytes", len(s1), len(s2), len(s3b))
	}
	// The backend's object: part 2's stored bytes, wherever a read of the object covers them,
	// are part 3's; everything else (part 1, the tail) is as stored.
	lo, hi := int64(len(s1)), int64(len(s1)+len(s2))
	var swapped atomic.Int64
	h.Hook(func(req testenv.BackendRequest, resp *http.Response) error {
		if req.Method != http.MethodGet || req.Path != path || resp.StatusCode/100 != 2 {
			return nil
		}
		var first int64
		if cr := resp.Header.Get("Content-Range"); cr != "" {
			a, _, _ := strings.Cut(strings.TrimPrefix(cr, "bytes "), "-")
			v, err := strconv.ParseInt(a, 10, 64)
			if err != nil {
				return fmt.Errorf("Content-Range %q", cr)
			}
			first = v
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		for i := range body {
			if off := first + int64(i); off >= lo && off < hi {
				body[i] = s3b[off-lo]
				swapped.Add(1)
			}
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil
	})
	_, err := c.CompleteMultipartUpload(context.Background(), &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: id, MultipartUpload: completedParts(etags[0], etags[1])})
	if err != nil {
		// Refusing the Complete is as good; it must not have been a success the client missed.
		if code, status := apiErr(err); status/100 == 2 || code == "" {
			t.Fatalf("Complete of parts [1,2] completed by the backend as [1,3]: %v (%s %d)", err, code, status)
		}
		t.Logf("Complete refused: %v", err)
		return
	}
	// The premise: MinIO holds Part_1 ‖ Part_2 ‖ Tail, so the hook's offsets are part 2's.
	stored, _ := storedBytes(t, m.Client(t), bucket, key)
	tl := format3TailLen(stored)
	if tl < 0 || len(stored) != len(s1)+len(s2)+tl || !bytes.Equal(stored[:lo], s1) || !bytes.Equal(stored[lo:hi], s2) {
		t.Fatalf("stored object: %d bytes (tail %d), want part 1, part 2 and one tail", len(stored), tl)
	}
	hc := coreHTTPClient()
	for _, g := range []struct {
		name string
		gw   *testenv.Gateway
	}{{"another gateway", reader}, {"the completing gateway", gw}} {
		t.Run(g.name, func(t *testing.T) {
			swapped.Store(0)
			url := g.gw.Endpoint + "/" + bucket + "/" + key
			for _, q := range []struct {
				method, query string
				hdr           http.Header
			}{
				{http.MethodGet, "", nil},
				{http.MethodGet, "", http.Header{"Range": {"bytes=5300000-5301000"}}},
				{http.MethodGet, "", http.Header{"Range": {"bytes=0-1000"}}},
				{http.MethodGet, "?partNumber=2", nil},
				{http.MethodHead, "", nil},
			} {
				r := coreDo(hc, coreRequest(t, q.method, url+q.query, q.hdr, g.gw.AccessKeyID, g.gw.SecretAccessKey))
				if sharedRun(p2, r.Body) >= 0 || sharedRun(p3, r.Body) >= 0 {
					t.Errorf("%s%s %s served plaintext of part 2 or part 3: %v", q.method, q.query, q.hdr.Get("Range"), r)
				}
				if r.Status != http.StatusInternalServerError || (q.method == http.MethodGet && r.Code != "InternalError") || sharedRun(p1, r.Body) >= 0 {
					t.Errorf("%s%s %s of parts [1,2] completed by the backend as [1,3]: %v, want 500 InternalError before any byte",
						q.method, q.query, q.hdr.Get("Range"), r)
				}
			}
			if swapped.Load() == 0 {
				t.Error("no read of the object covered part 2: the swap was never served")
			}
		})
	}
}

// TestHostileCompleteRefusedThenPrecondition (issue 21b): the part check fails (the client
// names an ETag that is not part 2's), and the backend answers the gateway's conditional HEAD
// that precedes deleting the refused object with 412, as if another writer had replaced it.
// The client gets InvalidPart, never 200.
func TestHostileCompleteRefusedThenPrecondition(t *testing.T) {
	gw, h, m := testenv.StartGatewayHostile(t, nil)
	bucket := m.NewBucket(t)
	key := "refused"
	path := testenv.ObjectPath(bucket, key)
	c := gw.Client(t)
	id, etags := hostileUpload(t, c, bucket, key, testenv.RandomBytes(t, 5<<20, ""), testenv.RandomBytes(t, 1000, ""))
	h.Hook(func(req testenv.BackendRequest, resp *http.Response) error {
		if req.Method == http.MethodHead && req.Path == path && req.Header.Get("If-Match") != "" {
			resp.Body.Close()
			resp.StatusCode, resp.Status = http.StatusPreconditionFailed, ""
			resp.Header = http.Header{"Content-Length": {"0"}}
			resp.ContentLength = 0
			resp.Body = http.NoBody
		}
		return nil
	})
	wrong := aws.String(`"` + strings.Repeat("0f", 16) + `"`)
	_, err := c.CompleteMultipartUpload(context.Background(), &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: id, MultipartUpload: completedParts(etags[0], wrong)})
	if code, status := apiErr(err); code != "InvalidPart" || status != http.StatusBadRequest {
		t.Fatalf("Complete with a wrong part ETag, backend answering 412 afterwards: %v (%s %d), want 400 InvalidPart", err, code, status)
	}
}

// TestUploadKeyAllowListKMS (issue 21c): credential A may use KMS key K, credential B may not
// (it has the default key only). A creates an SSE-KMS upload under K (the envelope names K's
// ARN, the allow-list K's id); B may neither upload a part to it, fill one by UploadPartCopy,
// nor complete it (AccessDenied); A may; and B continues a default-key upload.
func TestUploadKeyAllowListKMS(t *testing.T) {
	m, k := testenv.NewMinIO(t), testenv.NewKMS(t)
	def, keyK := k.CreateKey(t), k.CreateKey(t)
	const akA, skA = "AKUPLOADKEYA00000001", "secret-upload-key-a-000000000000000001"
	const akB, skB = "AKUPLOADKEYB00000001", "secret-upload-key-b-000000000000000001"
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	yml := fmt.Sprintf(`mode: s3
credentials:
  - access_key_id: %s
    secret_access_key: %s
    kms_key_ids: [%s]
  - access_key_id: %s
    secret_access_key: %s
`, akA, skA, keyK, akB, skB)
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := testenv.StartGatewayWithArgs(t, coreGatewayEnv(m, m.Endpoint, k.Endpoint, def, map[string]string{
		"GATEWAY_ACCESS_KEY_ID": akA, "GATEWAY_SECRET_ACCESS_KEY": skA,
	}), "-config", cfg)
	bucket := m.NewBucket(t)
	ctx := context.Background()
	a := gw.Client(t)
	b := gw.Client(t, func(o *s3.Options) { o.Credentials = credentials.NewStaticCredentialsProvider(akB, skB, "") })
	body := testenv.RandomBytes(t, 1000, "")
	if _, err := a.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("src"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	key := "under-k"
	if _, err := b.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key,
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(keyK)}); err == nil {
		t.Fatal("CreateMultipartUpload under K by a credential without K succeeded")
	}
	up, err := a.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key,
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(keyK)})
	if err != nil {
		t.Fatal(err)
	}
	part := func(c *s3.Client, key string, id *string, n int32) (*s3.UploadPartOutput, error) {
		return c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: id, PartNumber: aws.Int32(n),
			Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))})
	}
	p1, err := part(a, key, up.UploadId, 1)
	if err != nil {
		t.Fatalf("UploadPart by the credential allowed K: %v", err)
	}
	if _, err := part(b, key, up.UploadId, 2); !isAccessDenied(err) {
		t.Errorf("UploadPart of a K upload by a credential without K: %v, want 403 AccessDenied", err)
	}
	_, err = b.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId, PartNumber: aws.Int32(3),
		CopySource: aws.String(bucket + "/src")})
	if !isAccessDenied(err) {
		t.Errorf("UploadPartCopy into a K upload by a credential without K: %v, want 403 AccessDenied", err)
	}
	done := &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId, MultipartUpload: completedParts(p1.ETag)}
	if _, err := b.CompleteMultipartUpload(ctx, done); !isAccessDenied(err) {
		t.Errorf("Complete of a K upload by a credential without K: %v, want 403 AccessDenied", err)
	}
	if _, err := a.CompleteMultipartUpload(ctx, done); err != nil {
		t.Errorf("Complete by the credential allowed K: %v", err)
	}
	// The default key: B continues A's upload under it.
	up, err = a.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("default")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part(b, "default", up.UploadId, 1); err != nil {
		t.Errorf("UploadPart of a default-key upload by another credential: %v", err)
	}
}

// isAccessDenied reports S3's 403 AccessDenied.
func isAccessDenied(err error) bool {
	code, status := apiErr(err)
	return code == "AccessDenied" && status == http.StatusForbidden
}
