package specdecode

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"math/bits"
	"strconv"

	"github.com/cespare/xxhash/v2"
	"github.com/zeebo/xxh3"
)

// S3's additional checksums of the plaintext (section 3.6.6): a kind byte CK (the algorithm's
// number, plus 0x80 for FULL_OBJECT) in upload ids and tails, an algorithm's number and value
// in part records; and a single-part object's algorithm (by name in x-amz-meta-s3seal-ck, by
// number in its PartInfo) and value (in its trailer), DecryptSingleChecksum.

// checksumAlgorithms is the table of section 3.6.6, by number (index 0 unused): S3's name, the
// value's size in bytes and the hash (digests in the byte order the table gives: big-endian for
// the CRCs and the xxHashes, which is what Go's Sum writes).
var checksumAlgorithms = [...]struct {
	name string
	size int
	hash func() hash.Hash
}{
	{},
	{"CRC32", 4, func() hash.Hash { return crc32.NewIEEE() }},
	{"CRC32C", 4, func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }},
	// CRC-64/NVME: polynomial 0xad93d23594c93659, reflected; hash/crc64 takes the reflected form
	// and uses all ones as initial value and final XOR.
	{"CRC64NVME", 8, func() hash.Hash { return crc64.New(crc64.MakeTable(bits.Reverse64(0xad93d23594c93659))) }},
	{"SHA1", 20, sha1.New},
	{"SHA256", 32, sha256.New},
	{"SHA512", 64, sha512.New},
	{"MD5", 16, md5.New},
	{"XXHASH64", 8, func() hash.Hash { return xxhash.New() }},
	{"XXHASH3", 8, func() hash.Hash { return xxh3.New() }},
	{"XXHASH128", 16, func() hash.Hash { return xxh3.New128() }},
}

// ChecksumSize is the size in bytes of the checksum of algorithm number alg (1..10), 0 for
// any other number.
func ChecksumSize(alg byte) int {
	if alg == 0 || int(alg) >= len(checksumAlgorithms) {
		return 0
	}
	return checksumAlgorithms[alg].size
}

// ChecksumName is S3's name of algorithm number alg ("" for any other number).
func ChecksumName(alg byte) string {
	if ChecksumSize(alg) == 0 {
		return ""
	}
	return checksumAlgorithms[alg].name
}

// ChecksumOfMeta is the algorithm number a single-part object's x-amz-meta-s3seal-ck value
// names: exactly S3's upper-case name, 0 for the empty value (no metadata: no checksum);
// anything else is an error.
func ChecksumOfMeta(v string) (byte, error) {
	if v == "" {
		return 0, nil
	}
	for alg := byte(1); ChecksumSize(alg) != 0; alg++ {
		if ChecksumName(alg) == v {
			return alg, nil
		}
	}
	return 0, fmt.Errorf("checksum: x-amz-meta-s3seal-ck %q names no algorithm", v)
}

// ValidKind reports whether ck is one of the twelve kinds of section 3.6.6: COMPOSITE (no 0x80)
// of every algorithm but CRC64NVME (3), FULL_OBJECT (0x80) of the three CRCs (1, 2, 3).
func ValidKind(ck byte) bool {
	alg := ck &^ 0x80
	if ChecksumSize(alg) == 0 {
		return false
	}
	if ck&0x80 != 0 {
		return alg <= 3
	}
	return alg != 3
}

// Checksum is algorithm alg's checksum of x.
func Checksum(alg byte, x []byte) ([]byte, error) {
	if ChecksumSize(alg) == 0 {
		return nil, fmt.Errorf("checksum: unknown algorithm %d", alg)
	}
	h := checksumAlgorithms[alg].hash()
	h.Write(x)
	return h.Sum(nil), nil
}

// ObjectChecksum is the checksum of kind ck of an object whose parts, in order, have the given
// plaintexts (section 3.6.6): for COMPOSITE the algorithm's checksum of the parts' checksums
// concatenated, for FULL_OBJECT its checksum of the whole plaintext (computed directly here,
// not by combining the parts' CRCs).
func ObjectChecksum(ck byte, parts [][]byte) ([]byte, error) {
	if !ValidKind(ck) || len(parts) == 0 {
		return nil, fmt.Errorf("checksum: kind %#x of %d parts", ck, len(parts))
	}
	alg := ck &^ 0x80
	var cat []byte
	for _, p := range parts {
		if ck&0x80 != 0 {
			cat = append(cat, p...)
			continue
		}
		c, _ := Checksum(alg, p)
		cat = append(cat, c...)
	}
	return Checksum(alg, cat)
}

// ShowChecksum is an object checksum as S3 shows it: base64, and for COMPOSITE "-" and the
// number of parts k.
func ShowChecksum(ck byte, value []byte, k int) string {
	s := base64.StdEncoding.EncodeToString(value)
	if ck&0x80 == 0 {
		s += "-" + strconv.Itoa(k)
	}
	return s
}

// ChecksumType is S3's name of kind ck's type.
func ChecksumType(ck byte) string {
	if ck&0x80 != 0 {
		return "FULL_OBJECT"
	}
	return "COMPOSITE"
}

// parseExtension reads a tail's extension (section 3.6.3): empty, or CK ‖ value with CK a valid
// kind and value of its algorithm's size.
func parseExtension(ext []byte) (ck byte, value []byte, err error) {
	if len(ext) == 0 {
		return 0, nil, nil
	}
	if !ValidKind(ext[0]) || len(ext) != 1+ChecksumSize(ext[0]&^0x80) {
		return 0, nil, errors.New("tail: an extension this decoder does not know")
	}
	return ext[0], ext[1:], nil
}
