package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// mpCompleteMaxRequests bounds the backend requests of one CompleteMultipartUpload of the
// 3 parts below (5 MiB, 5 MiB, 1 MiB), from the design of format 3 (issue 22, "Requests per
// Complete": ceil(K/1000) ListParts + record listing pages + (held: 1 GET) + 1 UploadPart +
// 1 Complete + record clean-up, 1 ListObjectVersions + 1 DeleteObjects per 1,000):
//
//	ListParts                    1  (K = 3 <= 1,000)
//	listing of records and held  1  (3 part records, the held part and the upload's own
//	                                 records: one page of 1,000)
//	GET of the held part         1  (part 3 is under 5 MiB, so it is held)
//	UploadPart (held ‖ tail)     1
//	CompleteMultipartUpload      1
//	ListObjectVersions           1  (record clean-up, under 1,000 versions)
//	DeleteObjects                1
//	                           ---
//	                             7
const mpCompleteMaxRequests = 7

// mpCompleteParts are the part sizes of the Complete tests: two full parts and a short last one.
var mpCompleteParts = []int{5 << 20, 5 << 20, 1 << 20}

// mpUpload is an upload made through a gateway: its id, the client's parts and their ETags.
type mpUpload struct {
	bucket, key, id string
	parts           [][]byte
	etags           []string
}

// plain is the object's plaintext, the parts in order.
func (u *mpUpload) plain() []byte { return bytes.Join(u.parts, nil) }

// etag is S3's multipart ETag of the parts (quoted), what a plaintext-ETag gateway answers.
func (u *mpUpload) etag() string { return `"` + hideMultipartETag(u.parts...) + `"` }

// completeInput is the client's CompleteMultipartUpload of every part.
func (u *mpUpload) completeInput() *s3.CompleteMultipartUploadInput {
	var cp []types.CompletedPart
	for i, e := range u.etags {
		cp = append(cp, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(e)})
	}
	return &s3.CompleteMultipartUploadInput{Bucket: &u.bucket, Key: &u.key, UploadId: &u.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cp}}
}

// newMPUpload creates an upload of key through c and uploads parts of the given sizes.
func newMPUpload(t *testing.T, c *s3.Client, bucket, key string, sizes []int) *mpUpload {
	t.Helper()
	out, err := c.CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	u := &mpUpload{bucket: bucket, key: key, id: aws.ToString(out.UploadId)}
	for i, n := range sizes {
		p := testenv.RandomBytes(t, n, marker)
		u.parts = append(u.parts, p)
		u.etags = append(u.etags, uploadPartETag(t, c, bucket, key, u.id, int32(i+1), p))
	}
	return u
}

// mpReadBack fails the test unless u's object reads back through c: GET whole and two ranges
// (across the first part boundary, and the last bytes) with the plaintext's bytes and the ETag
// wantETag (the ETag of a HEAD when wantETag is ""), HEAD with the same ETag and the size.
func mpReadBack(t *testing.T, c *s3.Client, u *mpUpload, wantETag string) {
	t.Helper()
	ctx := context.Background()
	plain := u.plain()
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &u.bucket, Key: &u.key})
	if err != nil {
		t.Fatalf("HEAD of the completed object: %v", err)
	}
	if wantETag == "" {
		wantETag = aws.ToString(head.ETag)
	}
	if got := aws.ToString(head.ETag); got != wantETag {
		t.Errorf("HEAD ETag %s, want %s", got, wantETag)
	}
	if got := aws.ToInt64(head.ContentLength); got != int64(len(plain)) {
		t.Errorf("HEAD Content-Length %d, want %d", got, len(plain))
	}
	first := int64(len(u.parts[0]))
	n := int64(len(plain))
	for _, r := range []struct{ a, b int64 }{{-1, -1}, {first - 100, first + 99}, {n - 70_000, n - 1}} {
		in := &s3.GetObjectInput{Bucket: &u.bucket, Key: &u.key}
		want, what := plain, "GET"
		if r.a >= 0 {
			in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", r.a, r.b))
			want, what = plain[r.a:r.b+1], "GET "+*in.Range
		}
		out, err := c.GetObject(ctx, in)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (read error %v), equal %v, want %d bytes", what, len(got), err, bytes.Equal(got, want), len(want))
		}
		if e := aws.ToString(out.ETag); e != wantETag {
			t.Errorf("%s: ETag %s, want %s", what, e, wantETag)
		}
	}
}

// TestMultipartCompleteRequests (issue 22, format 3): the backend requests a gateway makes to
// serve one CompleteMultipartUpload of 3 parts (5 MiB, 5 MiB, 1 MiB), recorded by a tap
// between the gateway and MinIO. The object is written once: no CopyObject and no
// UploadPartCopy (no x-amz-copy-source header on any request), exactly one backend
// CompleteMultipartUpload, no GET or HEAD of the completed key (without uploadId) after it, and
// at most mpCompleteMaxRequests requests. The object then reads back (GET whole and ranges)
// with the client's bytes and the Complete's ETag. Format 2 (a manifest copied onto the
// object) fails the first and the third of these.
func TestMultipartCompleteRequests(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	tap := newBackendTap(t, m.Endpoint)
	gw := testenv.StartGateway(t, coreGatewayEnv(m, tap.URL, k.Endpoint, k.CreateKey(t), nil))
	c := gw.Client(t)
	bucket := m.NewBucket(t)
	u := newMPUpload(t, c, bucket, "obj", mpCompleteParts)
	objPath := testenv.ObjectPath(bucket, u.key)

	mark := tap.mark()
	out, err := c.CompleteMultipartUpload(context.Background(), u.completeInput())
	reqs := tap.settle(t, mark, 300*time.Millisecond)
	tapLog(t, "CompleteMultipartUpload", reqs)
	if err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	if got := aws.ToString(out.ETag); got != u.etag() {
		t.Errorf("Complete answered ETag %s, want S3's multipart ETag %s", got, u.etag())
	}

	completes, completeAt := 0, -1
	for i, r := range reqs {
		if r.CopySource != "" {
			t.Errorf("%v: a backend copy (x-amz-copy-source) while completing: the object is written twice", r)
		}
		if r.Kind == "CompleteMultipartUpload" {
			completes++
			if completeAt < 0 {
				completeAt = i
			}
		}
	}
	if completes != 1 {
		t.Errorf("%d backend CompleteMultipartUpload requests, want exactly 1", completes)
	}
	if completeAt >= 0 {
		for _, r := range reqs[completeAt+1:] {
			if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Path == objPath && !r.Query.Has("uploadId") {
				t.Errorf("%v: a read of the completed object after the backend Complete", r)
			}
		}
	}
	if len(reqs) > mpCompleteMaxRequests {
		t.Errorf("%d backend requests for one Complete of %d parts, want at most %d (format 3's \"Requests per Complete\")",
			len(reqs), len(u.parts), mpCompleteMaxRequests)
	}
	for _, r := range reqs {
		if r.Path != "/"+bucket && !strings.HasPrefix(r.Path, "/"+bucket+"/") {
			t.Errorf("%v: a backend request outside the upload's bucket", r)
		}
	}

	mpReadBack(t, c, u, u.etag())
}
