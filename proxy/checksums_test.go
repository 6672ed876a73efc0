package proxy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"net/http"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// The test's own checksums, from the standard library (not the gateway's table).
func testHash(alg string) hash.Hash {
	switch alg {
	case "CRC32":
		return crc32.NewIEEE()
	case "CRC32C":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "CRC64NVME":
		return crc64.New(crc64.MakeTable(0x9a6c9329ac4bc9b5))
	case "SHA256":
		return sha256.New()
	}
	panic(alg)
}

func sumOf(alg string, parts ...[]byte) []byte {
	h := testHash(alg)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// checksumUpload is a multipart upload with a checksum algorithm, part by part.
type checksumUpload struct {
	f        *fixture
	key, id  string
	alg, typ string
	parts    [][]byte
	etags    []string
}

func (f *fixture) createChecksumUpload(key, alg, typ string) *checksumUpload {
	f.t.Helper()
	h := map[string]string{"X-Amz-Checksum-Algorithm": alg}
	if typ != "" {
		h["X-Amz-Checksum-Type"] = typ
	}
	r := f.do(http.MethodPost, "/"+ipBucket+"/"+key+"?uploads", nil, h)
	var ini initiateResult
	if r.status != http.StatusOK || xml.Unmarshal(r.body, &ini) != nil || ini.UploadID == "" {
		f.t.Fatalf("CreateMultipartUpload %s %s: %d %s", alg, typ, r.status, r.body)
	}
	if r.header.Get("X-Amz-Checksum-Algorithm") != alg {
		f.t.Errorf("CreateMultipartUpload: x-amz-checksum-algorithm %q, want %s", r.header.Get("X-Amz-Checksum-Algorithm"), alg)
	}
	want := typ
	if want == "" {
		want = "COMPOSITE"
		if alg == "CRC64NVME" {
			want = "FULL_OBJECT"
		}
	}
	if r.header.Get("X-Amz-Checksum-Type") != want {
		f.t.Errorf("CreateMultipartUpload: x-amz-checksum-type %q, want %s", r.header.Get("X-Amz-Checksum-Type"), want)
	}
	return &checksumUpload{f: f, key: key, id: ini.UploadID, alg: alg, typ: want}
}

func (u *checksumUpload) path(q string) string {
	return fmt.Sprintf("/%s/%s?uploadId=%s%s", ipBucket, u.key, u.id, q)
}

// upload sends part n with the checksum header of alg (none for "").
func (u *checksumUpload) upload(p []byte, alg string) result {
	u.f.t.Helper()
	h := map[string]string{}
	if alg != "" {
		h["X-Amz-Checksum-"+alg] = b64(sumOf(alg, p))
	}
	n := len(u.parts) + 1
	r := u.f.do(http.MethodPut, u.path(fmt.Sprintf("&partNumber=%d", n)), p, h)
	if r.status == http.StatusOK {
		u.parts = append(u.parts, p)
		u.etags = append(u.etags, r.header.Get("ETag"))
	}
	return r
}

// complete sends Complete with each part's checksum (altered for part alter, 1-based; 0 none)
// and the headers h.
func (u *checksumUpload) complete(alter int, h map[string]string) result {
	var b strings.Builder
	b.WriteString("<CompleteMultipartUpload>")
	for i, p := range u.parts {
		sum := sumOf(u.alg, p)
		if i+1 == alter {
			sum[0] ^= 1
		}
		fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag><Checksum%s>%s</Checksum%[3]s></Part>", i+1, u.etags[i], u.alg, b64(sum))
	}
	b.WriteString("</CompleteMultipartUpload>")
	return u.f.do(http.MethodPost, u.path(""), []byte(b.String()), h)
}

// want is the object checksum S3 computes: COMPOSITE, the hash of the parts' digests and the
// part count; FULL_OBJECT, the CRC of the whole plaintext.
func (u *checksumUpload) want() string {
	if u.typ == "FULL_OBJECT" {
		return b64(sumOf(u.alg, u.parts...))
	}
	h := testHash(u.alg)
	for _, p := range u.parts {
		h.Write(sumOf(u.alg, p))
	}
	return fmt.Sprintf("%s-%d", b64(h.Sum(nil)), len(u.parts))
}

// A multipart upload with a checksum algorithm keeps S3's checksums of the plaintext: each
// part's in UploadPart's answer and in ListParts, the object's (COMPOSITE or FULL_OBJECT, as
// S3 computes it) in Complete's answer, on HEAD and GET with checksum mode and in
// GetObjectAttributes; none on a range or without checksum mode. The backend never sees a
// checksum of the plaintext.
func TestInProcessMultipartChecksums(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ alg, typ string }{
		{"SHA256", "COMPOSITE"}, {"CRC32", "FULL_OBJECT"}, {"CRC32C", ""}, {"CRC64NVME", ""},
	} {
		t.Run(c.alg+"-"+c.typ, func(t *testing.T) {
			f.t = t
			key := "ck-" + strings.ToLower(c.alg)
			u := f.createChecksumUpload(key, c.alg, c.typ)
			p1, p2 := plaintext(5<<20, "PLAINTEXT-MARKER-ck"), plaintext(1000, "PLAINTEXT-MARKER-ck")
			for _, p := range [][]byte{p1, p2} {
				r := u.upload(p, c.alg)
				if r.status != http.StatusOK || r.header.Get("X-Amz-Checksum-"+c.alg) != b64(sumOf(c.alg, p)) {
					t.Fatalf("UploadPart: %d, checksum %q; want %s (%s)", r.status, r.header.Get("X-Amz-Checksum-"+c.alg), b64(sumOf(c.alg, p)), r.body)
				}
			}
			lp := f.do(http.MethodGet, u.path(""), nil, nil)
			var parts struct {
				ChecksumAlgorithm, ChecksumType string
				Part                            []struct {
					PartNumber                                                       int
					ChecksumCRC32, ChecksumCRC32C, ChecksumCRC64NVME, ChecksumSHA256 string
				}
			}
			if lp.status != http.StatusOK || xml.Unmarshal(lp.body, &parts) != nil || len(parts.Part) != 2 {
				t.Fatalf("ListParts: %d %s", lp.status, lp.body)
			}
			if parts.ChecksumAlgorithm != c.alg || parts.ChecksumType != u.typ {
				t.Errorf("ListParts: algorithm %q type %q, want %s %s", parts.ChecksumAlgorithm, parts.ChecksumType, c.alg, u.typ)
			}
			for i, p := range parts.Part {
				got := map[string]string{"CRC32": p.ChecksumCRC32, "CRC32C": p.ChecksumCRC32C, "CRC64NVME": p.ChecksumCRC64NVME, "SHA256": p.ChecksumSHA256}[c.alg]
				if want := b64(sumOf(c.alg, u.parts[i])); got != want {
					t.Errorf("ListParts part %d: checksum %q, want %s", p.PartNumber, got, want)
				}
			}

			r := u.complete(0, map[string]string{"X-Amz-Checksum-" + c.alg: u.want()})
			want := u.want()
			if r.status != http.StatusOK || !bytes.Contains(r.body, []byte("<Checksum"+c.alg+">"+want+"</Checksum"+c.alg+">")) ||
				!bytes.Contains(r.body, []byte("<ChecksumType>"+u.typ+"</ChecksumType>")) {
				t.Fatalf("Complete: %d %s; want checksum %s %s", r.status, r.body, want, u.typ)
			}
			mode := map[string]string{"X-Amz-Checksum-Mode": "ENABLED"}
			for _, m := range []string{http.MethodHead, http.MethodGet} {
				h := f.do(m, "/"+ipBucket+"/"+key, nil, mode)
				if h.status != http.StatusOK || h.header.Get("X-Amz-Checksum-"+c.alg) != want || h.header.Get("X-Amz-Checksum-Type") != u.typ {
					t.Errorf("%s with checksum mode: %d, %q %q; want %s %s", m, h.status, h.header.Get("X-Amz-Checksum-"+c.alg), h.header.Get("X-Amz-Checksum-Type"), want, u.typ)
				}
				if m == http.MethodGet && !bytes.Equal(h.body, append(bytes.Clone(p1), p2...)) {
					t.Errorf("GET: %d bytes, not the plaintext", len(h.body))
				}
			}
			if h := f.do(http.MethodHead, "/"+ipBucket+"/"+key, nil, nil); h.header.Get("X-Amz-Checksum-"+c.alg) != "" {
				t.Errorf("HEAD without checksum mode shows %q", h.header.Get("X-Amz-Checksum-"+c.alg))
			}
			rg := f.do(http.MethodGet, "/"+ipBucket+"/"+key, nil, map[string]string{"X-Amz-Checksum-Mode": "ENABLED", "Range": "bytes=0-9"})
			if rg.status != http.StatusPartialContent || rg.header.Get("X-Amz-Checksum-"+c.alg) != "" {
				t.Errorf("ranged GET with checksum mode: %d, checksum %q (want none)", rg.status, rg.header.Get("X-Amz-Checksum-"+c.alg))
			}
			ga := f.do(http.MethodGet, "/"+ipBucket+"/"+key+"?attributes", nil, map[string]string{"X-Amz-Object-Attributes": "Checksum"})
			bare, _, _ := strings.Cut(want, "-")
			if ga.status != http.StatusOK || !bytes.Contains(ga.body, []byte("<Checksum"+c.alg+">"+bare+"</Checksum"+c.alg+">")) ||
				!bytes.Contains(ga.body, []byte("<ChecksumType>"+u.typ+"</ChecksumType>")) {
				t.Errorf("GetObjectAttributes: %d %s; want %s %s", ga.status, ga.body, bare, u.typ)
			}
		})
	}
	f.t = t
	for _, sum := range [][]byte{sumOf("CRC32", plaintext(5<<20, "PLAINTEXT-MARKER-ck")), sumOf("SHA256", plaintext(5<<20, "PLAINTEXT-MARKER-ck"))} {
		if f.faults.sentContains([]byte(b64(sum))) || f.faults.sentContains(sum) {
			t.Error("the backend received a checksum of the plaintext")
		}
	}
}

// What S3 refuses about multipart checksums, the gateway refuses with S3's errors: kinds S3
// does not offer, a type without an algorithm, a part of another algorithm or without one in a
// COMPOSITE upload, a part checksum in Complete that is not the part's (InvalidPart), a whole-
// object checksum that is not the object's (BadDigest), another checksum type at Complete. A
// FULL_OBJECT upload's part sent without a checksum gets the gateway's.
func TestInProcessMultipartChecksumErrors(t *testing.T) {
	f := newFixture(t)
	for _, h := range []map[string]string{
		{"X-Amz-Checksum-Algorithm": "SHA256", "X-Amz-Checksum-Type": "FULL_OBJECT"},
		{"X-Amz-Checksum-Algorithm": "CRC64NVME", "X-Amz-Checksum-Type": "COMPOSITE"},
		{"X-Amz-Checksum-Type": "COMPOSITE"},
		{"X-Amz-Checksum-Algorithm": "CRC33"},
		{"X-Amz-Checksum-Algorithm": "CRC32", "X-Amz-Checksum-Type": "PARTIAL"},
	} {
		if r := f.do(http.MethodPost, "/"+ipBucket+"/bad?uploads", nil, h); r.status != http.StatusBadRequest || r.code != "InvalidRequest" {
			t.Errorf("CreateMultipartUpload %v: %d %s, want 400 InvalidRequest", h, r.status, r.code)
		}
	}
	p1, p2 := plaintext(5<<20, "m"), plaintext(10, "m")

	u := f.createChecksumUpload("comp", "SHA256", "COMPOSITE")
	if r := u.upload(p1, "CRC32"); r.status != http.StatusBadRequest || r.code != "InvalidRequest" {
		t.Errorf("a CRC32 part of a SHA256 upload: %d %s, want 400 InvalidRequest", r.status, r.code)
	}
	if r := u.upload(p1, ""); r.status != http.StatusBadRequest || r.code != "InvalidRequest" {
		t.Errorf("a part without a checksum of a COMPOSITE upload: %d %s, want 400 InvalidRequest", r.status, r.code)
	}
	u.upload(p1, "SHA256")
	u.upload(p2, "SHA256")
	if r := u.complete(2, nil); r.status != http.StatusBadRequest || r.code != "InvalidPart" {
		t.Errorf("Complete with another part checksum: %d %s, want 400 InvalidPart", r.status, r.code)
	}
	if r := u.complete(0, map[string]string{"X-Amz-Checksum-Type": "FULL_OBJECT"}); r.status != http.StatusBadRequest || r.code != "InvalidRequest" {
		t.Errorf("Complete with another checksum type: %d %s, want 400 InvalidRequest", r.status, r.code)
	}
	bad := strings.Replace(u.want(), "-2", "-3", 1)
	if r := u.complete(0, map[string]string{"X-Amz-Checksum-Sha256": bad}); r.status != http.StatusBadRequest || r.code != "BadDigest" {
		t.Errorf("Complete with another part count: %d %s, want 400 BadDigest", r.status, r.code)
	}
	if r := u.complete(0, map[string]string{"X-Amz-Checksum-Sha256": u.want() + "x"}); r.status != http.StatusBadRequest || r.code != "InvalidRequest" {
		t.Errorf("Complete with a malformed composite value: %d %s, want 400 InvalidRequest", r.status, r.code)
	}
	if r := u.complete(0, nil); r.status != http.StatusOK {
		t.Errorf("Complete: %d %s", r.status, r.body)
	}

	u = f.createChecksumUpload("full", "CRC32", "FULL_OBJECT")
	if r := u.upload(p1, ""); r.status != http.StatusOK || r.header.Get("X-Amz-Checksum-Crc32") != b64(sumOf("CRC32", p1)) {
		t.Errorf("a FULL_OBJECT part without a checksum: %d, checksum %q, want the gateway's %s", r.status, r.header.Get("X-Amz-Checksum-Crc32"), b64(sumOf("CRC32", p1)))
	}
	u.upload(p2, "CRC32")
	wrong := sumOf("CRC32", p1, p1)
	if r := u.complete(0, map[string]string{"X-Amz-Checksum-Crc32": b64(wrong)}); r.status != http.StatusBadRequest || r.code != "BadDigest" {
		t.Errorf("Complete with another whole-object CRC32: %d %s, want 400 BadDigest", r.status, r.code)
	}
	if r := u.complete(0, map[string]string{"X-Amz-Checksum-Crc32": u.want() + "-2"}); r.status != http.StatusBadRequest || r.code != "InvalidRequest" {
		t.Errorf("Complete with a part count on a FULL_OBJECT value: %d %s, want 400 InvalidRequest", r.status, r.code)
	}
	if r := u.complete(0, map[string]string{"X-Amz-Checksum-Crc32": u.want()}); r.status != http.StatusOK || !bytes.Contains(r.body, []byte(u.want())) {
		t.Errorf("Complete: %d %s, want %s", r.status, r.body, u.want())
	}
}

// UploadPartCopy into an upload with a checksum algorithm computes the copied plaintext's
// checksum, answers with it in CopyPartResult and keeps it for Complete.
func TestInProcessUploadPartCopyChecksum(t *testing.T) {
	f := newFixture(t)
	src := plaintext(5<<20, "PLAINTEXT-MARKER-upc")
	f.put("upc-src", src)
	u := f.createChecksumUpload("upc", "SHA256", "")
	r := f.do(http.MethodPut, u.path("&partNumber=1"), nil, map[string]string{"X-Amz-Copy-Source": "/" + ipBucket + "/upc-src"})
	var res struct {
		ETag, ChecksumSHA256 string
	}
	if r.status != http.StatusOK || xml.Unmarshal(r.body, &res) != nil || res.ChecksumSHA256 != b64(sumOf("SHA256", src)) {
		t.Fatalf("UploadPartCopy: %d %s; want ChecksumSHA256 %s", r.status, r.body, b64(sumOf("SHA256", src)))
	}
	u.parts, u.etags = append(u.parts, src), append(u.etags, res.ETag)
	last := plaintext(100, "PLAINTEXT-MARKER-upc")
	u.upload(last, "SHA256")
	if c := u.complete(0, nil); c.status != http.StatusOK || !bytes.Contains(c.body, []byte(u.want())) {
		t.Fatalf("Complete: %d %s, want %s", c.status, c.body, u.want())
	}
}

// A part sent with the upload's id altered to another checksum kind (the kind byte is not
// sealed: the id is the client's) has a record without the upload's checksum: Complete answers
// InvalidPart, not an internal error.
func TestInProcessChecksumKindAltered(t *testing.T) {
	f := newFixture(t)
	u := f.createChecksumUpload("kind", "CRC32", "FULL_OBJECT")
	id, err := format.ParseUploadID(u.id)
	if err != nil || id.Checksum.Algorithm != format.ChecksumCRC32 {
		t.Fatalf("the upload id: %+v %v", id.Checksum, err)
	}
	id.Checksum = format.ChecksumKind{}
	plain := plaintext(1000, "m")
	r := f.do(http.MethodPut, fmt.Sprintf("/%s/kind?uploadId=%s&partNumber=1", ipBucket, id.String()), plain, nil)
	if r.status != http.StatusOK {
		t.Fatalf("UploadPart with the altered id: %d %s", r.status, r.body)
	}
	u.parts, u.etags = append(u.parts, plain), append(u.etags, r.header.Get("ETag"))
	body := fmt.Sprintf("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part></CompleteMultipartUpload>", u.etags[0])
	if c := f.do(http.MethodPost, u.path(""), []byte(body), nil); c.status != http.StatusBadRequest || c.code != "InvalidPart" {
		t.Errorf("Complete: %d %s, want 400 InvalidPart", c.status, c.code)
	}
}
