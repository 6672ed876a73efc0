package integration

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestHostileMultipartRetriedPart (issue 10, acceptance 1; FORMAT.md 3.6): a client uploads
// part 2 twice (a retry) and completes with the second (its ETag, the plaintext MD5, selects
// that copy); the backend, which saw both uploads, completes the object with the first one
// instead: Part_1 ‖ older Part_2 ‖ Part_3 ‖ Tail, the gateway's own tail and envelope. Both are
// genuine parts of the same upload under the same object key and of the same size, so only the
// tail's digest of the part headers (their salts) tells them apart: every read is refused
// before any byte.
func TestHostileMultipartRetriedPart(t *testing.T) {
	gw, h, m := testenv.StartGatewayHostile(t, map[string]string{"GATEWAY_BACKEND_PAYLOAD": "unsigned"})
	bucket := m.NewBucket(t)
	ctx := context.Background()
	c := gw.Client(t)
	key := "retried"
	p1, a, b, p3 := testenv.RandomBytes(t, 5<<20, ""), testenv.RandomBytes(t, 5<<20, ""), testenv.RandomBytes(t, 5<<20, ""), testenv.RandomBytes(t, 100_000, "")
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	etags := map[int]*string{}
	for _, p := range []struct {
		n    int
		body []byte
	}{{1, p1}, {2, a}, {2, b}, {3, p3}} {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(p.n)), Body: bytes.NewReader(p.body), ContentLength: aws.Int64(int64(len(p.body)))})
		if err != nil {
			t.Fatal(err)
		}
		etags[p.n] = out.ETag
	}
	var done []types.CompletedPart
	for n := 1; n <= 3; n++ {
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(n)), ETag: etags[n]})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	// The first upload of part 2, as the backend received it.
	var older []byte
	for _, r := range h.Requests() {
		if r.Method == http.MethodPut && r.Query.Get("partNumber") == "2" && r.Path == testenv.ObjectPath(bucket, key) {
			older = r.Body
			break
		}
	}
	direct := m.Client(t)
	stored, meta := storedBytes(t, direct, bucket, key)
	n1, n2 := int(coreStoredSize(int64(len(p1))))+48, int(coreStoredSize(int64(len(b))))+48
	n3 := int(coreStoredSize(int64(len(p3)))) + 48
	tl := format3TailLen(stored)
	if len(older) != n2 || tl < 0 || len(stored) != n1+n2+n3+tl || bytes.Equal(older, stored[n1:n1+n2]) {
		t.Fatalf("recorded first upload of part 2: %d bytes (stored: parts %d+%d+%d, tail %d, %d in all)", len(older), n1, n2, n3, tl, len(stored))
	}
	if v, ok := meta["s3seal-parts"]; ok || meta[coreMetaEnv] == "" {
		t.Fatalf("stored metadata: envelope %q, manifest metadata %q (format 3 has none)", meta[coreMetaEnv], v)
	}
	// Before: the object as completed reads back.
	hc := coreHTTPClient()
	url := gw.Endpoint + "/" + bucket + "/" + key
	if r := coreDo(hc, coreRequest(t, http.MethodGet, url, nil, gw.AccessKeyID, gw.SecretAccessKey)); !r.complete() || !bytes.Equal(r.Body, bytes.Join([][]byte{p1, b, p3}, nil)) {
		t.Fatalf("completed object: %v", r)
	}
	// The backend's completion with the older part 2: the same bytes but for that part (the
	// last backend part is part 3 and the tail, as the gateway uploads a held last part).
	coreMPPutDirect(t, direct, bucket, key+"-rebuilt", [][]byte{stored[:n1], older, stored[n1+n2:]},
		map[string]string{coreMetaEnv: meta[coreMetaEnv]})
	// The rebuilt object must be read as "retried"'s twin: same name, so copy it back over it.
	if _, err := direct.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: &key, CopySource: aws.String(bucket + "/" + key + "-rebuilt")}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		method string
		hdr    http.Header
	}{
		{http.MethodGet, nil},
		{http.MethodGet, http.Header{"Range": {"bytes=5300000-5301000"}}},
		{http.MethodGet, http.Header{"Range": {"bytes=0-1000"}}},
		{http.MethodHead, nil},
	} {
		r := coreDo(hc, coreRequest(t, q.method, url, q.hdr, gw.AccessKeyID, gw.SecretAccessKey))
		if !r.refusedBeforeAnyByte(q.method) || sharedRun(a, r.Body) >= 0 || sharedRun(p1, r.Body) >= 0 {
			t.Errorf("%s %s of the object with the older part 2: %v, want a refusal before any byte", q.method, q.hdr.Get("Range"), r)
		}
	}
}
