package format

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"os"
	"testing"
)

// update regenerates testdata/format/vectors.json and the fuzz seed corpora:
//
//	go test ./format -run 'TestGenerateVectors|TestGenerateFuzzCorpus' -args -update
var update = flag.Bool("update", false, "regenerate known-answer vectors and fuzz seed corpora")

// VectorsPath is the known-answer vector file, relative to this package.
const VectorsPath = "../testdata/format/vectors.json"

// VectorFile is the layout of testdata/format/vectors.json. Hex strings are lowercase.
type VectorFile struct {
	Comment   []string          `json:"comment"`
	Single    []SingleVector    `json:"single"`
	Multipart []MultipartVector `json:"multipart"`
	// MultipartV2 are format-2 multipart objects (docs/FORMAT.md 3.5).
	MultipartV2 []MultipartV2Vector `json:"multipart_v2,omitempty"`
	// MultipartV3 are format-3 multipart objects (docs/FORMAT.md 3.6).
	MultipartV3 []MultipartV3Vector `json:"multipart_v3,omitempty"`
	// SingleChecksum are single-part objects that seal S3's additional checksum.
	SingleChecksum []SingleChecksumVector `json:"single_checksum,omitempty"`
}

// EnvelopeVector holds an envelope's inputs and outputs.
type EnvelopeVector struct {
	// Version is the envelope's format version; absent means 1.
	Version    int    `json:"version,omitempty"`
	DK         string `json:"dk"`
	OK         string `json:"ok"`
	ES         string `json:"es"`
	Kind       int    `json:"kind"`
	Wrap       int    `json:"wrap"`
	KeyID      string `json:"key_id"`
	WrappedKey string `json:"wrapped_key"`
	Bucket     string `json:"bucket"`
	Key        string `json:"key"`
	WK         string `json:"wk"`
	KC         string `json:"kc"`
	Envelope   string `json:"envelope"`
}

// SingleVector is a single-part object.
type SingleVector struct {
	Name string `json:"name"`
	EnvelopeVector
	PlainSize    int64  `json:"plain_size"`
	ComputeMD5   bool   `json:"compute_md5"`
	PK           string `json:"pk"`
	StoredSize   int64  `json:"stored_size"`
	StoredHex    string `json:"stored_hex,omitempty"`
	StoredSHA256 string `json:"stored_sha256"`
	MD5          string `json:"md5"`
}

// PartVector is one part of a multipart vector.
type PartVector struct {
	Number       int    `json:"number"`
	EphPriv      string `json:"eph_priv"`
	EphPub       string `json:"eph_pub"`
	PlainOffset  int64  `json:"plain_offset"`
	PlainSize    int64  `json:"plain_size"`
	ComputeMD5   bool   `json:"compute_md5"`
	Header       string `json:"header"`
	PK           string `json:"pk"`
	StoredSize   int64  `json:"stored_size"`
	StoredSHA256 string `json:"stored_sha256"`
	MD5          string `json:"md5"`
}

// MultipartVector is a multipart object: its stored bytes are the parts' stored bytes
// concatenated, its plaintext the pattern over the whole object.
type MultipartVector struct {
	Name string `json:"name"`
	EnvelopeVector
	UPub           string       `json:"upub"`
	UploadIDSuffix string       `json:"upload_id_suffix"`
	Parts          []PartVector `json:"parts"`
	StoredSize     int64        `json:"stored_size"`
	StoredSHA256   string       `json:"stored_sha256"`
}

// VectorPlain is the documented plaintext generator: byte i of an object is i mod 251.
func VectorPlain(off, n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off + int64(i)) % 251)
	}
	return b
}

// vectorBytes derives a fixed input: SHA-256 of "s3seal test vector " ‖ label.
func vectorBytes(label string) []byte {
	h := sha256.Sum256([]byte("s3seal test vector " + label))
	return h[:]
}

func hexs(b []byte) string { return hex.EncodeToString(b) }

func sha(b []byte) string { h := sha256.Sum256(b); return hexs(h[:]) }

func genEnvelope(t *testing.T, name string, kind Kind) (EnvelopeVector, *ObjectKey) {
	return genEnvelopeOfVersion(t, name, kind, Version)
}

// genEnvelopeOfVersion seals the vector envelope of format version ver around the vector OK.
func genEnvelopeOfVersion(t *testing.T, name string, kind Kind, ver byte) (EnvelopeVector, *ObjectKey) {
	v := EnvelopeVector{
		DK: hexs(vectorBytes(name + " dk")), OK: hexs(vectorBytes(name + " ok")), ES: hexs(vectorBytes(name + " es")),
		Kind: int(kind), Wrap: int(WrapProvider), KeyID: "arn:aws:kms:us-east-1:111122223333:key/vector-" + name,
		WrappedKey: hexs(append(vectorBytes(name+" wrapped 1"), vectorBytes(name+" wrapped 2")...)[:40]),
		Bucket:     "vector-bucket", Key: "dir/" + name + ".bin",
	}
	dk, _ := hex.DecodeString(v.DK)
	es, _ := hex.DecodeString(v.ES)
	wrapped, _ := hex.DecodeString(v.WrappedKey)
	ok, err := newObjectKey(hexReader(v.OK))
	if err != nil {
		t.Fatal(err)
	}
	ok.version = ver
	if ver != Version {
		v.Version = int(ver)
	}
	e, err := sealEnvelope(bytes.NewReader(es), ok, dk, SealParams{Kind: kind, Wrap: WrapProvider, KeyID: v.KeyID, WrappedKey: wrapped, Bucket: v.Bucket, Object: v.Key})
	if err != nil {
		t.Fatal(err)
	}
	v.WK = hexs(deriveKey(dk, es, []byte(infoWrap)))
	v.KC = hexs(deriveKey(ok.k[:], nil, []byte(infoCommit)))
	v.Envelope = e.Encode()
	return v, ok
}

func hexReader(s string) io.Reader {
	b, _ := hex.DecodeString(s)
	return bytes.NewReader(b)
}

func genSingle(t *testing.T, name string, size int64) SingleVector {
	env, ok := genEnvelope(t, name, KindSingle)
	plain := VectorPlain(0, size)
	r, err := NewEncryptReader(bytes.NewReader(plain), ok, size, EncryptOptions{ComputeMD5: true})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(plain)
	v := SingleVector{Name: name, EnvelopeVector: env, PlainSize: size, ComputeMD5: true,
		PK: hexs(ok.singlePartKey(size)), StoredSize: int64(len(stored)), StoredSHA256: sha(stored), MD5: hexs(sum[:])}
	if len(stored) <= 256 {
		v.StoredHex = hexs(stored)
	}
	return v
}

func genMultipart(t *testing.T, name string, numbers []int, sizes []int64) MultipartVector {
	env, ok := genEnvelope(t, name, KindMultipart)
	upub, err := ok.UploadPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	id := EncodeUploadID("", upub)
	v := MultipartVector{Name: name, EnvelopeVector: env, UPub: hexs(upub), UploadIDSuffix: id}
	var all []byte
	var off int64
	for i, n := range numbers {
		pv := PartVector{Number: n, EphPriv: hexs(vectorBytes(name + " eph " + itoa(int64(n)))), PlainOffset: off, PlainSize: sizes[i], ComputeMD5: true}
		plain := VectorPlain(off, sizes[i])
		r, err := newPartEncryptReader(hexReader(pv.EphPriv), bytes.NewReader(plain), upub, n, sizes[i], EncryptOptions{ComputeMD5: true})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		header := stored[:PartHeaderSize]
		priv, _ := ok.uploadPrivateKey()
		ephPub := header[partInfoSize:]
		pub, _ := priv.Curve().NewPublicKey(ephPub)
		shared, _ := priv.ECDH(pub)
		pk := multipartKey(shared, ephPub, upub, [partInfoSize]byte(header[:partInfoSize]))
		sum := md5.Sum(plain)
		pv.EphPub, pv.Header, pv.PK = hexs(ephPub), hexs(header), hexs(pk)
		pv.StoredSize, pv.StoredSHA256, pv.MD5 = int64(len(stored)), sha(stored), hexs(sum[:])
		v.Parts = append(v.Parts, pv)
		all = append(all, stored...)
		off += sizes[i]
	}
	v.StoredSize, v.StoredSHA256 = int64(len(all)), sha(all)
	return v
}

func TestGenerateVectors(t *testing.T) {
	if !*update {
		t.Skip("run with -args -update to regenerate " + VectorsPath)
	}
	f := VectorFile{
		Comment: []string{
			"Known-answer vectors for docs/FORMAT.md, version 1. Generated by package format",
			"(go test ./format -run TestGenerateVectors -args -update) and checked by both format and",
			"the independent decoder internal/specdecode, which also re-encrypts them from the spec.",
			"Fixed inputs (dk, ok, es, eph_priv) are SHA-256 of 's3seal test vector <name> <label>'.",
			"Plaintext: byte i of the object (across parts for multipart) is i mod 251.",
			"Hex is lowercase; envelope is standard base64; wk, kc, pk are intermediate values.",
			"upload_id_suffix is what the gateway appends to the backend's upload id.",
			"multipart_v2: format-2 multipart objects (FORMAT.md 3.5). part_salt and manifest_nonce are",
			"fixed inputs like the others (the nonce is the first 12 bytes); mk, parts_digest (D) and",
			"manifest_body are intermediate values; upload_id is backend_upload_id with the .s2 suffix.",
			"part_record and id_record_key: upload records (FORMAT.md 3.5.3); backend_etag and nonce are",
			"fixed inputs like the others (the nonce is the first 12 bytes), rk and aad intermediate values.",
			"multipart_v3: format-3 multipart objects (FORMAT.md 3.6): inputs and part fields as for",
			"multipart_v2 (headers of version 3); mk3, parts_digest (D) and manifest_body are intermediate",
			"values, tail the object's last bytes; stored_size, stored_sha256 (and stored_hex when short) are",
			"of the parts followed by the tail. part_record (FORMAT.md 3.6.2) is the first part's: backend_etag",
			"and nonce fixed inputs, rk3, facts (MD5 | PartSalt | be64 size) and aad intermediate values.",
			"multipart_v3 cases with checksum_kind are uploads created with a checksum (FORMAT.md 3.6.6):",
			"checksum_kind is CK (the byte after the envelope in the upload id, and the first of the tail's",
			"extension), checksum_algorithm and checksum_type its names, each part's checksum that of its",
			"plaintext, checksum the object's (COMPOSITE: of the parts' checksums concatenated; FULL_OBJECT:",
			"of the whole plaintext) and checksum_s3 as S3 shows it; part_record facts end with alg | checksum.",
			"single_checksum: single-part objects sealing S3's additional checksum: checksum_algorithm is the",
			"value of x-amz-meta-s3seal-ck, checksum_number the algorithm's number (FORMAT.md 3.6.6), byte 2 of",
			"part_info (an intermediate value, as pk); the trailer seals trailer_plain = MD5 | checksum.",
		},
		Single: []SingleVector{
			genSingle(t, "empty", 0),
			genSingle(t, "one-byte", 1),
			genSingle(t, "one-segment", SegmentSize),
			genSingle(t, "segment-plus-one", SegmentSize+1),
		},
		Multipart: []MultipartVector{
			genMultipart(t, "two-parts", []int{1, 3}, []int64{SegmentSize + 3, 5}),
		},
		MultipartV2: []MultipartV2Vector{
			genMultipartV2(t, "v2-two-parts", []int{1, 3}, []int64{SegmentSize + 3, 5}, true, ""),
			genMultipartV2(t, "v2-two-runs", []int{1, 2, 3, 4}, []int64{SegmentSize + 1, SegmentSize + 1, SegmentSize + 1, 7}, true, "eyJwcm9qZWN0IjoidmVjdG9ycyJ9"),
			genMultipartV2(t, "v2-empty-part-no-md5", []int{7}, []int64{0}, false, ""),
		},
		MultipartV3: []MultipartV3Vector{
			genMultipartV3(t, "v3-two-parts", []int{1, 3}, []int64{SegmentSize + 3, 5}, true, ""),
			genMultipartV3(t, "v3-two-runs", []int{1, 2, 3, 4}, []int64{SegmentSize + 1, SegmentSize + 1, SegmentSize + 1, 7}, true, "eyJwcm9qZWN0IjoidmVjdG9ycyJ9"),
			genMultipartV3(t, "v3-part-10000-no-md5", []int{10000}, []int64{0}, false, ""),
			genMultipartV3Checksum(t, "v3-sha256-composite", []int{1, 3}, []int64{SegmentSize + 3, 5}, true, "", ChecksumKind{Algorithm: ChecksumSHA256}),
			genMultipartV3Checksum(t, "v3-crc64nvme-full-object", []int{1, 2, 3}, []int64{SegmentSize + 1, SegmentSize + 1, 9}, true, "eyJwcm9qZWN0IjoidmVjdG9ycyJ9", ChecksumKind{Algorithm: ChecksumCRC64NVME, FullObject: true}),
			genMultipartV3Checksum(t, "v3-crc32c-full-object", []int{2, 5}, []int64{SegmentSize, 0}, true, "", ChecksumKind{Algorithm: ChecksumCRC32C, FullObject: true}),
			genMultipartV3Checksum(t, "v3-crc32-composite", []int{1, 2}, []int64{5, 6}, true, "", ChecksumKind{Algorithm: ChecksumCRC32}),
			genMultipartV3Checksum(t, "v3-sha512-composite-no-md5", []int{10000}, []int64{11}, false, "", ChecksumKind{Algorithm: ChecksumSHA512}),
		},
		SingleChecksum: []SingleChecksumVector{
			genSingleChecksum(t, "single-crc32-one-byte", 1, ChecksumCRC32),
			genSingleChecksum(t, "single-crc64nvme-empty", 0, ChecksumCRC64NVME),
			genSingleChecksum(t, "single-sha256-segment-plus-one", SegmentSize+1, ChecksumSHA256),
			genSingleChecksum(t, "single-sha512-seven-bytes", 7, ChecksumSHA512),
			genSingleChecksum(t, "single-xxhash128-one-segment", SegmentSize, ChecksumXXHASH128),
		},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(VectorsPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
