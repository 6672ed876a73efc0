package integration

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/internal/testenv"
)

// refusedBeforeAnyByte: an S3 error status (with an XML code, except for HEAD) and no object
// bytes: what FORMAT.md 3.5.2 and 3.6 require of a multipart object whose part set is not the
// one completed.
func (r coreResult) refusedBeforeAnyByte(method string) bool {
	return r.Status/100 != 2 && r.Status != 0 && (method == http.MethodHead || r.Code != "")
}

// TestCoreMultipartPartSet (issue 10, acceptance 1; FORMAT.md 3.6): a three-part object written
// through the gateway (format 3: Part_1 ‖ Part_2 ‖ Part_3 ‖ Tail) is rebuilt in MinIO under its
// own key, with the gateway's own metadata (the envelope) and its own tail, from a changed set
// of its stored parts: the first, a middle or the last part dropped, two parts reordered, a
// part duplicated, a part added (forged, or of another object), a part replaced by one forged
// by somebody who knows the upload id but no gateway key or by the same part of another
// object; a format-3 object presented as format 2 or 1 (envelope version byte, part header
// versions); the tail missing or taken from another object; another object's parts and tail
// under this object's envelope. Every read (GET, ranged GET, GET ?partNumber=1, HEAD) is refused before any byte and
// the response holds no plaintext. A control rebuilt unchanged reads back whole.
func TestCoreMultipartPartSet(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	direct := m.Client(t)
	hc := coreHTTPClient()
	var parts [][]byte
	for _, n := range coreMPParts() {
		parts = append(parts, testenv.RandomBytes(t, n, ""))
	}
	plain := bytes.Join(parts, nil)
	other, _ := coreMPUpload(t, gw, direct, bucket, "mpset/other", parts)
	extra := forgePart(t, 3, 4, testenv.RandomBytes(t, 1000, ""))

	// Each case changes a fresh upload of its own key (the envelope binds the key: an object
	// moved to another key is refused for that alone, TestCoreMultipartTamper).
	type setCase struct {
		name   string
		change func(st [][]byte, tail []byte, meta map[string]string) (coreMPObject, map[string]string)
		intact bool
	}
	same := func(f func(st [][]byte, tail []byte) coreMPObject) func([][]byte, []byte, map[string]string) (coreMPObject, map[string]string) {
		return func(st [][]byte, tail []byte, meta map[string]string) (coreMPObject, map[string]string) {
			return f(st, tail), meta
		}
	}
	headersAs := func(v byte) func([][]byte, []byte, map[string]string) (coreMPObject, map[string]string) {
		return same(func(st [][]byte, tail []byte) coreMPObject {
			var out [][]byte
			for _, p := range st {
				b := bytes.Clone(p)
				if b[0] != 3 {
					t.Fatalf("a part header of a new multipart object is not of format 3: %x", b[:1])
				}
				b[0] = v
				out = append(out, b)
			}
			return coreMPObject{out, tail}
		})
	}
	envAs := func(v byte) func([][]byte, []byte, map[string]string) (coreMPObject, map[string]string) {
		return func(st [][]byte, tail []byte, meta map[string]string) (coreMPObject, map[string]string) {
			b, err := base64.StdEncoding.DecodeString(meta[coreMetaEnv])
			if err != nil || b[0] != 3 {
				t.Fatalf("the envelope of a new multipart object is not of format 3: %v %x", err, b[:1])
			}
			b[0] = v
			return coreMPObject{st, tail}, map[string]string{coreMetaEnv: base64.StdEncoding.EncodeToString(b)}
		}
	}
	cases := []setCase{
		{"unchanged-control", same(func(st [][]byte, tail []byte) coreMPObject { return coreMPObject{st, tail} }), true},
		{"first-dropped", same(func(st [][]byte, tail []byte) coreMPObject { return coreMPObject{[][]byte{st[1], st[2]}, tail} }), false},
		{"middle-dropped", same(func(st [][]byte, tail []byte) coreMPObject { return coreMPObject{[][]byte{st[0], st[2]}, tail} }), false},
		{"last-dropped", same(func(st [][]byte, tail []byte) coreMPObject { return coreMPObject{[][]byte{st[0], st[1]}, tail} }), false},
		{"reordered", same(func(st [][]byte, tail []byte) coreMPObject { return coreMPObject{[][]byte{st[1], st[0], st[2]}, tail} }), false},
		{"duplicated", same(func(st [][]byte, tail []byte) coreMPObject {
			return coreMPObject{[][]byte{st[0], st[1], st[1], st[2]}, tail}
		}), false},
		{"forged-part-added", same(func(st [][]byte, tail []byte) coreMPObject {
			return coreMPObject{[][]byte{st[0], st[1], st[2], extra}, tail}
		}), false},
		{"part-of-another-object-added", same(func(st [][]byte, tail []byte) coreMPObject {
			return coreMPObject{[][]byte{st[0], st[1], other.parts[2], st[2]}, tail}
		}), false},
		{"forged-part", same(func(st [][]byte, tail []byte) coreMPObject {
			return coreMPObject{[][]byte{st[0], forgePart(t, 3, 2, parts[1]), st[2]}, tail}
		}), false},
		{"part-of-another-object", same(func(st [][]byte, tail []byte) coreMPObject {
			return coreMPObject{[][]byte{st[0], other.parts[1], st[2]}, tail}
		}), false},
		{"envelope-as-format-2", envAs(2), false},
		{"envelope-as-format-1", envAs(1), false},
		{"headers-as-format-2", headersAs(2), false},
		{"headers-as-format-1", headersAs(1), false},
		{"tail-missing", same(func(st [][]byte, _ []byte) coreMPObject { return coreMPObject{st, nil} }), false},
		{"tail-of-another-object", same(func(st [][]byte, _ []byte) coreMPObject { return coreMPObject{st, other.tail} }), false},
		{"all-of-another-object", same(func(_ [][]byte, _ []byte) coreMPObject { return other }), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "mpset/" + c.name
			orig, meta := coreMPUpload(t, gw, direct, bucket, key, parts)
			obj, objMeta := c.change(orig.parts, orig.tail, meta)
			coreMPPutObject(t, direct, bucket, key, obj, objMeta)
			url := gw.Endpoint + "/" + bucket + "/" + key
			for _, q := range []struct {
				method, query string
				hdr           http.Header
				want          []byte
			}{
				{http.MethodGet, "", nil, plain},
				{http.MethodGet, "", http.Header{"Range": {"bytes=0-999"}}, plain[:1000]},
				{http.MethodGet, "?partNumber=1", nil, parts[0]},
				{http.MethodHead, "", nil, nil},
			} {
				r := coreDo(hc, coreRequest(t, q.method, url+q.query, q.hdr, gw.AccessKeyID, gw.SecretAccessKey))
				if c.intact {
					if !r.complete() || !bytes.Equal(r.Body, q.want) {
						t.Errorf("%s%s %s of the object rebuilt unchanged: %v, want the original bytes", q.method, q.query, q.hdr.Get("Range"), r)
					}
					continue
				}
				if !r.refusedBeforeAnyByte(q.method) || sharedRun(plain, r.Body) >= 0 {
					t.Errorf("%s%s %s: %v, want a refusal before any byte", q.method, q.query, q.hdr.Get("Range"), r)
				}
			}
			if c.intact {
				return
			}
			if n := tamperLogLines(t, gw.LogPath, bucket, key); n == 0 {
				t.Errorf("the gateway log has no kind=tamper line for %s", key)
			}
		})
	}
}

// forgePart is what somebody without a gateway key can make of a part: a header of format
// version (2 or 3) for part n with a salt of their own and the segments and trailer under a key
// they chose (the upload id holds no key that would do better: FORMAT.md 3.5.1).
func forgePart(t *testing.T, version byte, n int, plain []byte) []byte {
	t.Helper()
	var ok, salt [32]byte
	rand.Read(ok[:])
	rand.Read(salt[:])
	pi := make([]byte, 16)
	pi[0], pi[1] = version, 1
	binary.BigEndian.PutUint32(pi[4:], uint32(n))
	binary.BigEndian.PutUint64(pi[8:], uint64(len(plain)))
	pk, err := hkdf.Key(sha256.New, ok[:], salt[:], "s3seal/2 part"+string(pi), 32)
	if err != nil {
		t.Fatal(err)
	}
	return append(append(pi, salt[:]...), coreSealStream(t, pk, plain)...)
}

// TestCoreMultipartCompleteChecksParts (issue 10, acceptance 1): CompleteMultipartUpload checks
// the client's part ETags against what was uploaded: a part uploaded again by another writer
// after the client's upload, or a part forged straight into the backend upload by somebody who
// knows the upload id, gets InvalidPart (or a refusal) and leaves no readable object.
func TestCoreMultipartCompleteChecksParts(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	ctx := context.Background()
	c := gw.Client(t)
	direct := m.Client(t)
	p1 := testenv.RandomBytes(t, 5<<20, "")
	// Part 2 is over 5 MiB so that it is a backend part that can be overwritten (a smaller last
	// part is held aside under the reserved prefix, FORMAT.md 3.6, out of UploadPart's reach).
	p2 := testenv.RandomBytes(t, 5<<20+1000, "")

	start := func(key string) (string, []types.CompletedPart) {
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		var done []types.CompletedPart
		for i, p := range [][]byte{p1, p2} {
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p), ContentLength: aws.Int64(int64(len(p)))})
			if err != nil {
				t.Fatal(err)
			}
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
		}
		return *up.UploadId, done
	}
	complete := func(key, id string, done []types.CompletedPart) error {
		_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
			UploadId: &id, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
		return err
	}
	gone := func(key string) {
		t.Helper()
		if _, err := direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key}); err == nil {
			t.Errorf("%s: an object is left in the backend after the refused Complete", key)
		}
	}

	// Another writer uploads part 1 again (other bytes) through the gateway.
	id, done := start("rewritten")
	other := testenv.RandomBytes(t, 5<<20, "")
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("rewritten"), UploadId: &id,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(other), ContentLength: aws.Int64(int64(len(other)))}); err != nil {
		t.Fatal(err)
	}
	err := complete("rewritten", id, done)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidPart" {
		t.Errorf("Complete after part 1 was uploaded again: %v, want InvalidPart", err)
	}
	gone("rewritten")

	// A part forged into the backend upload by somebody who knows the upload id.
	id, done = start("forged")
	backendID := id[:bytes.LastIndexByte([]byte(id), '.')]
	forged := forgePart(t, 3, 2, p2)
	if _, err := direct.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("forged"), UploadId: &backendID,
		PartNumber: aws.Int32(2), Body: bytes.NewReader(forged), ContentLength: aws.Int64(int64(len(forged)))}); err != nil {
		t.Fatal(err)
	}
	if err := complete("forged", id, done); err == nil {
		t.Error("Complete with a forged part 2 succeeded")
	}
	gone("forged")

	// The honest upload completes and reads back.
	id, done = start("honest")
	if err := complete("honest", id, done); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("honest")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(out.Body); err != nil || !bytes.Equal(got.Bytes(), append(append([]byte(nil), p1...), p2...)) {
		t.Fatalf("honest object: %v", err)
	}
}

// coreSealStream encrypts plain as one stream under pk (FORMAT.md 3.2: 64 KiB segments, the
// nonce be64(i) ‖ be32(final), then the MD5 trailer), written here from the spec.
func coreSealStream(t *testing.T, pk, plain []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(pk)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	n := max(1, (len(plain)+coreS-1)/coreS)
	var out []byte
	for i := 0; i < n; i++ {
		seg := plain[i*coreS : min(len(plain), (i+1)*coreS)]
		flag := uint32(0)
		if i == n-1 {
			flag = 1
		}
		out = aead.Seal(out, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, uint64(i)), flag), seg, nil)
	}
	sum := md5.Sum(plain)
	return aead.Seal(out, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, uint64(n)), 2), sum[:], nil)
}
