package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// coreMPParts are the plaintext part sizes of the multipart tamper object (MinIO wants 5 MiB
// for every part but the last).
func coreMPParts() []int { return []int{5 << 20, 5 << 20, 100_000} }

// coreMPUpload uploads parts through the gateway as a multipart object and returns the stored
// part bytes (each: 48-byte header, segments, trailer) and the gateway's metadata (envelope and
// part manifest), read from MinIO.
func coreMPUpload(t *testing.T, gw *testenv.Gateway, direct *s3.Client, bucket, key string, parts [][]byte) ([][]byte, map[string]string) {
	t.Helper()
	ctx := context.Background()
	c := gw.Client(t)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p), ContentLength: aws.Int64(int64(len(p)))})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i+1, err)
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	stored, meta := storedBytes(t, direct, bucket, key)
	var out [][]byte
	for _, p := range parts {
		n := int(coreStoredSize(int64(len(p)))) + 48
		if len(stored) < n {
			t.Fatalf("stored object shorter than its parts")
		}
		out = append(out, stored[:n])
		stored = stored[n:]
	}
	if len(stored) != 0 || meta[coreMetaEnv] == "" || meta[coreMetaParts] == "" {
		t.Fatalf("stored object: %d bytes after the parts, envelope %q, manifest %q", len(stored), meta[coreMetaEnv], meta[coreMetaParts])
	}
	return out, map[string]string{coreMetaEnv: meta[coreMetaEnv], coreMetaParts: meta[coreMetaParts]}
}

// coreMetaParts is the part manifest's metadata name (FORMAT.md 3.5.2).
const coreMetaParts = "s3seal-parts"

// coreMPPutDirect writes parts straight to MinIO as a multipart object with the given
// metadata (the gateway's envelope and manifest), as somebody with backend access would.
func coreMPPutDirect(t *testing.T, c *s3.Client, bucket, key string, parts [][]byte, meta map[string]string) {
	t.Helper()
	ctx := context.Background()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key,
		Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p), ContentLength: aws.Int64(int64(len(p)))})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
}

// TestCoreMultipartTamper (issue 4, acceptance 2, multipart objects; FORMAT.md 3.4, 3.5): a
// three-part object written through the gateway is rebuilt in MinIO as a multipart object
// with one change: a byte of a part header (PartInfo, part salt), of a segment or of a trailer;
// two parts swapped; a part taken from another upload of the same key; a part truncated; the
// whole object copied to another key. Reads of the touched parts (ranged GET, GET
// ?partNumber=N) and the whole GET must fail as specified; reads of untouched parts must return
// the right bytes; a HEAD that answers 200 must give the original size.
func TestCoreMultipartTamper(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	direct := m.Client(t)
	hc := coreHTTPClient()
	var parts [][]byte
	var plain []byte
	for _, n := range coreMPParts() {
		p := testenv.RandomBytes(t, n, "")
		parts = append(parts, p)
		plain = append(plain, p...)
	}

	type mpCase struct {
		name   string
		mutate func(st, other [][]byte) [][]byte
		bad    []int // 0-based parts whose reads must fail
		moved  bool  // written under another key
		// segOnly narrows the damage of the bad part to its segment seg: reads of its other
		// segments must succeed.
		segOnly bool
		seg     int
	}
	flip := func(part, off int) func(st, _ [][]byte) [][]byte {
		return func(st, _ [][]byte) [][]byte {
			out := slices.Clone(st)
			out[part] = bytes.Clone(st[part])
			if off < 0 {
				off += len(st[part])
			}
			out[part][off] ^= 0x01
			return out
		}
	}
	cases := []mpCase{
		{name: "part2-partinfo-number", mutate: flip(1, 7), bad: []int{1}},
		{name: "part2-partinfo-size", mutate: flip(1, 15), bad: []int{1}},
		{name: "part2-salt", mutate: flip(1, 20), bad: []int{1}},
		{name: "part2-segment0", mutate: flip(1, 48+100), bad: []int{1}, segOnly: true, seg: 0},
		{name: "part2-segment40", mutate: flip(1, 48+40*(coreS+16)+100), bad: []int{1}, segOnly: true, seg: 40},
		// A ranged read does not read the part trailer (FORMAT.md 3.2); the whole GET must.
		{name: "part3-trailer", mutate: flip(2, -1)},
		{name: "parts-1-2-swapped", mutate: func(st, _ [][]byte) [][]byte { return [][]byte{st[1], st[0], st[2]} }, bad: []int{0, 1}},
		{name: "part2-from-another-upload", mutate: func(st, other [][]byte) [][]byte { return [][]byte{st[0], other[1], st[2]} }, bad: []int{1}},
		{name: "part3-trailer-dropped", mutate: func(st, _ [][]byte) [][]byte {
			return [][]byte{st[0], st[1], st[2][:len(st[2])-32]}
		}, bad: []int{2}},
		{name: "copied-to-another-key", mutate: func(st, _ [][]byte) [][]byte { return st }, bad: []int{0, 1, 2}, moved: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "mptamper/" + c.name
			other, _ := coreMPUpload(t, gw, direct, bucket, key, parts)
			st, env := coreMPUpload(t, gw, direct, bucket, key, parts)
			if c.moved {
				key += "-copy"
			}
			coreMPPutDirect(t, direct, bucket, key, c.mutate(st, other), env)
			url := gw.Endpoint + "/" + bucket + "/" + key
			do := func(method, query string, hdr http.Header) coreResult {
				return coreDo(hc, coreRequest(t, method, url+query, hdr, gw.AccessKeyID, gw.SecretAccessKey))
			}

			if h := do(http.MethodHead, "", nil); h.Status == http.StatusOK && h.Header.Get("Content-Length") != strconv.Itoa(len(plain)) {
				t.Errorf("HEAD: 200 with Content-Length %s, the object has %d bytes", h.Header.Get("Content-Length"), len(plain))
			} else if c.moved && h.Status == http.StatusOK {
				t.Errorf("HEAD of the copy under another key: 200")
			}
			off := 0
			for i, p := range parts {
				mid := off + len(p)/2 // segment 40 of a 5 MiB part
				for _, q := range []struct {
					query string
					hdr   http.Header
					want  []byte
					seg   int // the segment read, -1 for all
				}{
					{"", http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", off+10, off+1009)}}, plain[off+10 : off+1010], 0},
					{"", http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", mid, mid+999)}}, plain[mid : mid+1000], (len(p) / 2) / coreS},
					{fmt.Sprintf("?partNumber=%d", i+1), nil, p, -1},
				} {
					r := do(http.MethodGet, q.query, q.hdr)
					what := fmt.Sprintf("part %d: GET%s %s", i+1, q.query, q.hdr.Get("Range"))
					touched := slices.Contains(c.bad, i)
					if touched && c.segOnly {
						touched = q.seg == -1 || q.seg == c.seg
					}
					if touched {
						if !r.failedAsSpecified(http.MethodGet) {
							t.Errorf("%s: %v, want a failure (equal to the original: %v)", what, r, bytes.Equal(r.Body, q.want))
						}
					} else if (r.complete() && !bytes.Equal(r.Body, q.want)) || (!r.complete() && !r.failedAsSpecified(http.MethodGet)) {
						// The gateway checks every part boundary (headers, order, trailers) before
						// it serves any byte of a multipart object it has not seen, so damage in
						// one part may refuse the whole object: fail closed. What it must never
						// do is return other bytes.
						t.Errorf("%s (untouched part): %v, want the original bytes or a clean failure", what, r)
					}
				}
				off += len(p)
			}
			if r := do(http.MethodGet, "", nil); !r.failedAsSpecified(http.MethodGet) {
				t.Errorf("GET: %v, want a failure (equal to the original: %v)", r, bytes.Equal(r.Body, plain))
			}
			if n := tamperLogLines(t, gw.LogPath, bucket, key); n == 0 {
				t.Errorf("the gateway log has no kind=tamper line for %s", key)
			}
		})
	}
}
