package format

import (
	"bytes"
	"crypto/md5"
	"io"
	"testing"
)

// SingleChecksumVector is a single-part object that seals S3's additional checksum of its
// plaintext: the algorithm's number (docs/FORMAT.md 3.6.6's table) in byte 2 of its PartInfo,
// which feeds PK, and MD5 ‖ checksum in its trailer (32 + the algorithm's size bytes); the
// algorithm's name is the object's x-amz-meta-s3seal-ck.
type SingleChecksumVector struct {
	Name string `json:"name"`
	EnvelopeVector
	PlainSize         int64  `json:"plain_size"`
	ComputeMD5        bool   `json:"compute_md5"`
	ChecksumAlgorithm string `json:"checksum_algorithm"` // the value of x-amz-meta-s3seal-ck
	ChecksumNumber    int    `json:"checksum_number"`
	PartInfo          string `json:"part_info"` // intermediate: PartInfo(kind 0, part 0, p), byte 2 the number
	PK                string `json:"pk"`
	Checksum          string `json:"checksum"`      // of the plaintext
	TrailerPlain      string `json:"trailer_plain"` // MD5 ‖ checksum, what the trailer seals
	StoredSize        int64  `json:"stored_size"`
	StoredHex         string `json:"stored_hex,omitempty"`
	StoredSHA256      string `json:"stored_sha256"`
	MD5               string `json:"md5"`
}

func genSingleChecksum(t *testing.T, name string, size int64, a ChecksumAlgorithm) SingleChecksumVector {
	env, ok := genEnvelope(t, name, KindSingle)
	plain := VectorPlain(0, size)
	r, err := NewEncryptReader(bytes.NewReader(plain), ok, size, EncryptOptions{ComputeMD5: true, Checksum: a})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	pi := partInfo(Version, kindSingle, 0, size)
	pi[2] = byte(a)
	h := a.New()
	h.Write(plain)
	ck := h.Sum(nil)
	if !bytes.Equal(r.Checksum(), ck) {
		t.Fatalf("%s: EncryptReader.Checksum %x, %s of the plaintext %x", name, r.Checksum(), a, ck)
	}
	sum := md5.Sum(plain)
	v := SingleChecksumVector{Name: name, EnvelopeVector: env, PlainSize: size, ComputeMD5: true,
		ChecksumAlgorithm: a.String(), ChecksumNumber: int(a), PartInfo: hexs(pi[:]),
		PK: hexs(deriveKey(ok.k[:], nil, partInfoLabel(pi))), Checksum: hexs(ck), TrailerPlain: hexs(append(sum[:], ck...)),
		StoredSize: int64(len(stored)), StoredSHA256: sha(stored), MD5: hexs(sum[:])}
	if hexs(ok.singleStreamKey(size, a)) != v.PK || int64(len(stored)) != EncryptedSizeOf(size, a) {
		t.Fatalf("%s: PK or stored size differ from singleStreamKey's and EncryptedSizeOf's", name)
	}
	if len(stored) <= 256 {
		v.StoredHex = hexs(stored)
	}
	return v
}
