package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
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

// coreMPObject is a format-3 multipart object as MinIO stores it (FORMAT.md 3.6): the parts
// (each: 48-byte header, segments, trailer) followed by the tail (sealed manifest, be32 length,
// "s3seal/3").
type coreMPObject struct {
	parts [][]byte
	tail  []byte
}

// bytes returns the stored object: Part_1 ‖ … ‖ Part_K ‖ Tail.
func (o coreMPObject) bytes() []byte { return append(bytes.Join(o.parts, nil), o.tail...) }

// coreTailMagic ends every format-3 multipart object (FORMAT.md 3.6).
const coreTailMagic = "s3seal/3"

// coreTailLength is the length of the tail at the end of stored, from its footer (be32 length
// of the sealed manifest, then the magic): the sealed manifest plus 12, or -1 when stored does
// not end in a well-formed footer.
func coreTailLength(stored []byte) int {
	if len(stored) < 12 || string(stored[len(stored)-8:]) != coreTailMagic {
		return -1
	}
	n := int(binary.BigEndian.Uint32(stored[len(stored)-12:])) + 12
	if n > len(stored) {
		return -1
	}
	return n
}

// coreMPUpload uploads parts through the gateway as a multipart object and returns the stored
// object split into its parts and its tail, and the gateway's metadata (the envelope), read
// from MinIO. It fails the test unless the object is of format 3: envelope version 3, no
// manifest metadata, exactly the parts and then one tail.
func coreMPUpload(t *testing.T, gw *testenv.Gateway, direct *s3.Client, bucket, key string, parts [][]byte) (coreMPObject, map[string]string) {
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
	tl := coreTailLength(stored)
	if tl < 0 {
		t.Fatalf("stored object (%d bytes) does not end in a format-3 tail: %x", len(stored), stored[max(0, len(stored)-12):])
	}
	var o coreMPObject
	o.tail = stored[len(stored)-tl:]
	stored = stored[:len(stored)-tl]
	for _, p := range parts {
		n := int(coreStoredSize(int64(len(p)))) + 48
		if len(stored) < n {
			t.Fatalf("stored object shorter than its parts and tail")
		}
		o.parts = append(o.parts, stored[:n])
		stored = stored[n:]
	}
	if len(stored) != 0 || meta[coreMetaEnv] == "" || meta[coreMetaParts] != "" {
		t.Fatalf("stored object: %d bytes between the parts and the tail, envelope %q, manifest metadata %q (format 3 has none)",
			len(stored), meta[coreMetaEnv], meta[coreMetaParts])
	}
	if env, err := base64.StdEncoding.DecodeString(meta[coreMetaEnv]); err != nil || len(env) == 0 || env[0] != 3 {
		t.Fatalf("the envelope of a new multipart object is not of format 3: %v %x", err, env[:min(1, len(env))])
	}
	return o, map[string]string{coreMetaEnv: meta[coreMetaEnv]}
}

// coreMetaParts is the format-2 part manifest's metadata name (FORMAT.md 3.5.2).
const coreMetaParts = "s3seal-parts"

// coreMPPutDirect writes parts straight to MinIO as a multipart object with the given
// metadata (the gateway's envelope), as somebody with backend access would. The stored object
// is the concatenation of parts, whatever they are.
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

// coreMPPutObject writes o straight to MinIO as a multipart object: its bytes (parts ‖ tail)
// in backend parts that start where its parts start, a part joining the one before it while
// that is under 5 MiB (MinIO wants 5 MiB for every backend part but the last), the tail in the
// last backend part after the last part's bytes, as the gateway stores a last part under 5 MiB.
func coreMPPutObject(t *testing.T, c *s3.Client, bucket, key string, o coreMPObject, meta map[string]string) {
	t.Helper()
	var backend [][]byte
	for _, p := range o.parts {
		if n := len(backend); n > 0 && len(backend[n-1]) < 5<<20 {
			backend[n-1] = append(backend[n-1], p...)
		} else {
			backend = append(backend, bytes.Clone(p))
		}
	}
	if len(backend) == 0 {
		backend = [][]byte{nil}
	}
	backend[len(backend)-1] = append(backend[len(backend)-1], o.tail...)
	coreMPPutDirect(t, c, bucket, key, backend, meta)
}

// refusedInternal: the read was refused with 500 before any byte (InternalError for a GET;
// a HEAD has no body), and the response holds no 16-byte run of the plaintext.
func (r coreResult) refusedInternal(method string, plain []byte) bool {
	if r.Status != http.StatusInternalServerError || sharedRun(plain, r.Body) >= 0 {
		return false
	}
	return method == http.MethodHead || r.Code == "InternalError"
}

// TestCoreMultipartTamper (issue 4, acceptance 2, multipart objects; FORMAT.md 3.4, 3.6): a
// three-part object written through the gateway (format 3: parts ‖ tail) is rebuilt in MinIO
// as a multipart object with one change: a byte of a part header (PartInfo, part salt), of a
// segment or of a trailer; two parts swapped; a part taken from another upload of the same key;
// a part truncated; the whole object copied to another key; a byte of the tail (nonce, sealed
// manifest, length, magic); the tail cut (dropped, its first or last byte missing), doubled,
// moved away from the parts, or taken from another upload of the same key. The gateway checks
// the tail and every part boundary before it serves a byte, so every read of such an object
// (HEAD, ranged GETs in every part, GET ?partNumber=N, the whole GET) is refused with 500
// InternalError and no plaintext. Damage inside a segment is found only when that segment is
// read: reads of it (and the whole GET) must fail as specified, reads of other segments must
// return the right bytes (or fail cleanly), a HEAD that answers 200 must give the original
// size. A control case rebuilds the object unchanged, which must read back whole.
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
		mutate func(st, other coreMPObject) coreMPObject
		moved  bool // written under another key
		intact bool // the control: every read must succeed
		// segOnly narrows the damage to segment seg of part 2 (index 1): reads of its other
		// segments and of the other parts need not fail.
		segOnly bool
		seg     int
	}
	flip := func(part, off int) func(st, _ coreMPObject) coreMPObject {
		return func(st, _ coreMPObject) coreMPObject {
			out := coreMPObject{parts: slices.Clone(st.parts), tail: st.tail}
			out.parts[part] = bytes.Clone(st.parts[part])
			if off < 0 {
				off += len(st.parts[part])
			}
			out.parts[part][off] ^= 0x01
			return out
		}
	}
	flipTail := func(off int) func(st, _ coreMPObject) coreMPObject {
		return func(st, _ coreMPObject) coreMPObject {
			out := coreMPObject{parts: st.parts, tail: bytes.Clone(st.tail)}
			if off < 0 {
				off += len(st.tail)
			}
			out.tail[off] ^= 0x01
			return out
		}
	}
	withTail := func(f func(st, other coreMPObject) []byte) func(st, other coreMPObject) coreMPObject {
		return func(st, other coreMPObject) coreMPObject { return coreMPObject{parts: st.parts, tail: f(st, other)} }
	}
	cases := []mpCase{
		{name: "unchanged-control", mutate: func(st, _ coreMPObject) coreMPObject { return st }, intact: true},
		{name: "part2-partinfo-number", mutate: flip(1, 7)},
		{name: "part2-partinfo-size", mutate: flip(1, 15)},
		{name: "part2-salt", mutate: flip(1, 20)},
		{name: "part2-segment0", mutate: flip(1, 48+100), segOnly: true, seg: 0},
		{name: "part2-segment40", mutate: flip(1, 48+40*(coreS+16)+100), segOnly: true, seg: 40},
		{name: "part1-trailer", mutate: flip(0, -1)},
		{name: "part3-trailer", mutate: flip(2, -1)},
		{name: "parts-1-2-swapped", mutate: func(st, _ coreMPObject) coreMPObject {
			return coreMPObject{parts: [][]byte{st.parts[1], st.parts[0], st.parts[2]}, tail: st.tail}
		}},
		{name: "part2-from-another-upload", mutate: func(st, other coreMPObject) coreMPObject {
			return coreMPObject{parts: [][]byte{st.parts[0], other.parts[1], st.parts[2]}, tail: st.tail}
		}},
		{name: "part3-trailer-dropped", mutate: func(st, _ coreMPObject) coreMPObject {
			return coreMPObject{parts: [][]byte{st.parts[0], st.parts[1], st.parts[2][:len(st.parts[2])-32]}, tail: st.tail}
		}},
		{name: "copied-to-another-key", mutate: func(st, _ coreMPObject) coreMPObject { return st }, moved: true},
		{name: "tail-nonce", mutate: flipTail(0)},
		{name: "tail-manifest", mutate: flipTail(40)},
		{name: "tail-manifest-tag", mutate: flipTail(-13)},
		{name: "tail-length", mutate: flipTail(-9)},
		{name: "tail-magic", mutate: flipTail(-1)},
		{name: "tail-dropped", mutate: withTail(func(_, _ coreMPObject) []byte { return nil })},
		{name: "tail-first-byte-cut", mutate: withTail(func(st, _ coreMPObject) []byte { return st.tail[1:] })},
		{name: "tail-last-byte-cut", mutate: withTail(func(st, _ coreMPObject) []byte { return st.tail[:len(st.tail)-1] })},
		{name: "tail-footer-only", mutate: withTail(func(st, _ coreMPObject) []byte { return st.tail[len(st.tail)-12:] })},
		{name: "tail-doubled", mutate: withTail(func(st, _ coreMPObject) []byte { return append(bytes.Clone(st.tail), st.tail...) })},
		{name: "tail-after-junk", mutate: withTail(func(st, _ coreMPObject) []byte { return append(make([]byte, 16), st.tail...) })},
		{name: "tail-from-another-upload", mutate: withTail(func(_, other coreMPObject) []byte { return other.tail })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "mptamper/" + c.name
			other, _ := coreMPUpload(t, gw, direct, bucket, key, parts)
			st, env := coreMPUpload(t, gw, direct, bucket, key, parts)
			if bytes.Equal(other.tail, st.tail) {
				t.Fatal("two uploads of the same key have the same tail")
			}
			if c.moved {
				key += "-copy"
			}
			mutated := c.mutate(st, other)
			if !c.intact && bytes.Equal(mutated.bytes(), st.bytes()) && !c.moved {
				t.Fatal("the mutation changed nothing")
			}
			coreMPPutObject(t, direct, bucket, key, mutated, env)
			if got, _ := storedBytes(t, direct, bucket, key); !bytes.Equal(got, mutated.bytes()) {
				t.Fatalf("MinIO holds %d bytes, not the %d written", len(got), len(mutated.bytes()))
			}
			url := gw.Endpoint + "/" + bucket + "/" + key
			do := func(method, query string, hdr http.Header) coreResult {
				return coreDo(hc, coreRequest(t, method, url+query, hdr, gw.AccessKeyID, gw.SecretAccessKey))
			}
			// check judges one read whose correct answer is want; seg is the segment of part 2
			// it reads (-1 for all of it, -2 for none).
			check := func(what, method string, r coreResult, want []byte, seg int) {
				t.Helper()
				switch {
				case c.intact:
					if !r.complete() || (method != http.MethodHead && !bytes.Equal(r.Body, want)) {
						t.Errorf("%s of the object rebuilt unchanged: %v, want the original bytes", what, r)
					}
				case !c.segOnly:
					if !r.refusedInternal(method, plain) {
						t.Errorf("%s: %v, want 500 InternalError and no plaintext (equal to the original: %v)", what, r, bytes.Equal(r.Body, want))
					}
				case seg == -1 || seg == c.seg:
					if !r.failedAsSpecified(method) || (r.complete() && bytes.Equal(r.Body, want)) {
						t.Errorf("%s: %v, want a failure (equal to the original: %v)", what, r, bytes.Equal(r.Body, want))
					}
				default:
					// Damage inside one segment is found when that segment is read; the
					// gateway may refuse more (fail closed), but must never return other bytes.
					if (r.complete() && method != http.MethodHead && !bytes.Equal(r.Body, want)) || (!r.complete() && !r.failedAsSpecified(method)) {
						t.Errorf("%s (untouched segment): %v, want the original bytes or a clean failure", what, r)
					}
				}
			}

			h := do(http.MethodHead, "", nil)
			check("HEAD", http.MethodHead, h, nil, -2)
			if h.Status == http.StatusOK && h.Header.Get("Content-Length") != strconv.Itoa(len(plain)) {
				t.Errorf("HEAD: 200 with Content-Length %s, the object has %d bytes", h.Header.Get("Content-Length"), len(plain))
			}
			off := 0
			for i, p := range parts {
				mid := off + len(p)/2 // segment 40 of a 5 MiB part
				for _, q := range []struct {
					query string
					hdr   http.Header
					want  []byte
					seg   int
				}{
					{"", http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", off+10, off+1009)}}, plain[off+10 : off+1010], 0},
					{"", http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", mid, mid+999)}}, plain[mid : mid+1000], (len(p) / 2) / coreS},
					{fmt.Sprintf("?partNumber=%d", i+1), nil, p, -1},
				} {
					seg := q.seg
					if i != 1 {
						seg = -2
					}
					check(fmt.Sprintf("part %d: GET%s %s", i+1, q.query, q.hdr.Get("Range")), http.MethodGet, do(http.MethodGet, q.query, q.hdr), q.want, seg)
				}
				off += len(p)
			}
			// A range over the end of part 3 (its last byte, next to the tail).
			check("GET last 100 bytes", http.MethodGet, do(http.MethodGet, "", http.Header{"Range": {"bytes=-100"}}), plain[len(plain)-100:], -2)
			check("GET", http.MethodGet, do(http.MethodGet, "", nil), plain, -1)
			if c.intact {
				return
			}
			if n := tamperLogLines(t, gw.LogPath, bucket, key); n == 0 {
				t.Errorf("the gateway log has no kind=tamper line for %s", key)
			}
		})
	}
}
