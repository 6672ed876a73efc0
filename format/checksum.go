package format

import (
	"encoding/base64"
	"strconv"

	"github.com/s3seal/s3seal/internal/checksum"
)

// S3's additional checksums as the format keeps them (docs/FORMAT.md 3.6.6): a multipart
// upload's choice of algorithm and type (in its upload id), each part's checksum (in its
// record) and the object's (in its tail), all of the plaintext.

// ChecksumAlgorithm is one of S3's checksum algorithms, by its number in the format
// (internal/checksum holds the table); 0 is none.
type ChecksumAlgorithm = checksum.Algorithm

// The algorithms, numbered in S3's order.
const (
	ChecksumNone      = checksum.None
	ChecksumCRC32     = checksum.CRC32
	ChecksumCRC32C    = checksum.CRC32C
	ChecksumCRC64NVME = checksum.CRC64NVME
	ChecksumSHA1      = checksum.SHA1
	ChecksumSHA256    = checksum.SHA256
	ChecksumSHA512    = checksum.SHA512
	ChecksumMD5       = checksum.MD5
	ChecksumXXHASH64  = checksum.XXHASH64
	ChecksumXXHASH3   = checksum.XXHASH3
	ChecksumXXHASH128 = checksum.XXHASH128
)

// ChecksumKind is an upload's or an object's checksum algorithm and type. Its byte form is the
// algorithm's number, plus 0x80 for FULL_OBJECT; 0 is no checksum.
type ChecksumKind struct {
	Algorithm  ChecksumAlgorithm
	FullObject bool // S3's FULL_OBJECT type; else COMPOSITE
}

const checksumFullObjectBit = 0x80

func (c ChecksumKind) byteForm() byte {
	if c.Algorithm == ChecksumNone {
		return 0
	}
	b := byte(c.Algorithm)
	if c.FullObject {
		b |= checksumFullObjectBit
	}
	return b
}

// checksumKindOf decodes a byte form: false for an unknown algorithm, a type without an
// algorithm, and the combinations S3 does not offer (FULL_OBJECT but for the CRCs, CRC64NVME
// as COMPOSITE).
func checksumKindOf(b byte) (ChecksumKind, bool) {
	c := ChecksumKind{Algorithm: ChecksumAlgorithm(b &^ checksumFullObjectBit), FullObject: b&checksumFullObjectBit != 0}
	if b == 0 {
		return ChecksumKind{}, true
	}
	return c, c.Algorithm.Known() && c.Valid()
}

// Valid reports whether S3 offers the kind: any algorithm as COMPOSITE but CRC64NVME, and the
// CRCs as FULL_OBJECT.
func (c ChecksumKind) Valid() bool {
	if c.FullObject {
		return c.Algorithm.IsCRC()
	}
	return c.Algorithm != ChecksumCRC64NVME
}

// Type is S3's name of the kind's type: FULL_OBJECT or COMPOSITE ("" for no checksum).
func (c ChecksumKind) Type() string {
	switch {
	case c.Algorithm == ChecksumNone:
		return ""
	case c.FullObject:
		return "FULL_OBJECT"
	}
	return "COMPOSITE"
}

// ObjectChecksum is a multipart object's checksum as its tail keeps it.
type ObjectChecksum struct {
	Kind  ChecksumKind
	Value []byte // Kind.Algorithm.Size() bytes
}

// String is the value as S3 shows it: base64, and for a COMPOSITE checksum "-" and the number
// of parts.
func (c ObjectChecksum) String(parts int) string {
	s := base64.StdEncoding.EncodeToString(c.Value)
	if !c.Kind.FullObject {
		s += "-" + strconv.Itoa(parts)
	}
	return s
}

// A single-part object (kind 0) can seal S3's additional checksum of its plaintext in its
// trailer (FORMAT.md 3.3): the algorithm is known before the body and goes into the stream's
// PartInfo (its first reserved byte), the value is often known only after the body (an
// aws-chunked trailer) and goes into the trailer after the MD5.

// maxChecksumSize is the longest digest of S3's algorithms (SHA512).
const maxChecksumSize = 64

// validChecksum reports whether a is ChecksumNone or a known algorithm.
func validChecksum(a ChecksumAlgorithm) bool { return a == ChecksumNone || a.Known() }

// ParseChecksumMeta returns the algorithm a MetaChecksum value names: exactly S3's upper-case
// name (ChecksumAlgorithm.String, what the writer stores); the empty string, which is what a
// missing header reads as, is ChecksumNone. Any other value (another letter case, spaces, an
// unknown name) returns an error wrapping ErrMalformed.
//
// The value is stored beside the envelope, outside every seal, and needs no authentication of
// its own: the algorithm is in the stream's PartInfo, from which its part key PK is derived,
// and its digest size is in the stored size. A reader derives PK and the plaintext size from
// the value it read; a changed value (CRC32 read as CRC32C, of the same size), an added one
// (none read as CRC32) or a removed one (CRC32 read as none) gives another PK, or a stored size
// that is invalid for that algorithm, so every segment and the trailer fail (ErrAuth) or the
// size is refused (ErrMalformed) before any plaintext is released, for whole and ranged reads
// alike.
func ParseChecksumMeta(v string) (ChecksumAlgorithm, error) {
	if v == "" {
		return ChecksumNone, nil
	}
	for a := ChecksumAlgorithm(1); a.Known(); a++ {
		if a.String() == v {
			return a, nil
		}
	}
	return ChecksumNone, errf(ErrMalformed, "%s: unknown checksum algorithm %q", MetaChecksum, v)
}

// singleStreamKey is PK = HKDF(OK, -, "s3seal/1 part" ‖ PartInfo(kind 0, a, part 0, p), 32):
// the single-part key with the checksum algorithm in PartInfo's first reserved byte. For none
// the byte is 0: the key of an object without a checksum is singlePartKey's, as before.
func (k *ObjectKey) singleStreamKey(plain int64, a ChecksumAlgorithm) []byte {
	if a == ChecksumNone {
		return k.singlePartKey(plain)
	}
	pi := partInfo(Version, kindSingle, 0, plain)
	pi[2] = byte(a)
	return deriveKey(k.k[:], nil, partInfoLabel(pi))
}
