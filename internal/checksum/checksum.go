// Package checksum is S3's additional checksums in one table: each algorithm's name, header,
// digest size and hash, numbered as docs/FORMAT.md stores them (so the numbers never change),
// and the CRC arithmetic S3's full-object multipart checksums need (Combine).
//
// Written by hand because no library offers this: the hashes are the standard library's and
// two xxHash packages; the table is S3's list, and the CRC combination (zlib's crc32_combine,
// generalised to the three reflected CRCs S3 uses) is exported by neither the standard library
// nor a well-kept module: minio-go, MinIO and versitygw each keep an unexported copy of zlib's
// older matrix method (minio-go's reachable only as ChecksumType.FullObjectChecksum over its
// client's ObjectPart list).
package checksum

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/zeebo/xxh3"
)

// Algorithm is one of S3's checksum algorithms by its number in the format; 0 is none.
type Algorithm byte

// The algorithms, numbered in S3's order. The numbers are stored in objects (FORMAT.md): never
// renumber.
const (
	None Algorithm = iota
	CRC32
	CRC32C
	CRC64NVME
	SHA1
	SHA256
	SHA512
	MD5
	XXHASH64
	XXHASH3
	XXHASH128
)

// crc64NVMEPoly is the bit-reflected CRC-64/NVME polynomial 0xad93d23594c93659, in the form
// hash/crc64 expects.
const crc64NVMEPoly = 0x9a6c9329ac4bc9b5

var (
	crc32cTable    = crc32.MakeTable(crc32.Castagnoli)
	crc64NVMETable = crc64.MakeTable(crc64NVMEPoly)
)

var algorithms = [...]struct {
	name   string // as in x-amz-checksum-algorithm and x-amz-sdk-checksum-algorithm
	header string // lower-case header and trailer name
	size   int    // digest length in bytes
	newFn  func() hash.Hash
}{
	{},
	{"CRC32", "x-amz-checksum-crc32", 4, func() hash.Hash { return crc32.NewIEEE() }},
	{"CRC32C", "x-amz-checksum-crc32c", 4, func() hash.Hash { return crc32.New(crc32cTable) }},
	{"CRC64NVME", "x-amz-checksum-crc64nvme", 8, func() hash.Hash { return crc64.New(crc64NVMETable) }},
	{"SHA1", "x-amz-checksum-sha1", 20, sha1.New},
	{"SHA256", "x-amz-checksum-sha256", 32, sha256.New},
	{"SHA512", "x-amz-checksum-sha512", 64, sha512.New},
	{"MD5", "x-amz-checksum-md5", 16, md5.New},
	// The xxHash digests are in their canonical (big-endian) form, as S3 encodes them.
	{"XXHASH64", "x-amz-checksum-xxhash64", 8, func() hash.Hash { return xxhash.New() }},
	{"XXHASH3", "x-amz-checksum-xxhash3", 8, func() hash.Hash { return xxh3.New() }},
	{"XXHASH128", "x-amz-checksum-xxhash128", 16, func() hash.Hash { return xxh3.New128() }},
}

// Unsupported is S3's message for an algorithm name it does not know.
const Unsupported = "Checksum algorithm provided is unsupported. Please try again with any of the valid types: " +
	"[CRC32, CRC32C, CRC64NVME, SHA1, SHA256, SHA512, MD5, XXHASH64, XXHASH3, XXHASH128]"

// Named returns the algorithm S3 calls name, in any letter case.
func Named(name string) (Algorithm, bool) {
	for i := 1; i < len(algorithms); i++ {
		if strings.EqualFold(algorithms[i].name, name) {
			return Algorithm(i), true
		}
	}
	return None, false
}

// ByHeader returns the algorithm whose header (x-amz-checksum-crc32, ...) is name, in any
// letter case.
func ByHeader(name string) (Algorithm, bool) {
	for i := 1; i < len(algorithms); i++ {
		if h := algorithms[i].header; len(h) == len(name) && strings.EqualFold(h, name) {
			return Algorithm(i), true
		}
	}
	return None, false
}

// Known reports whether a is an algorithm (not None, not an unknown number).
func (a Algorithm) Known() bool { return a > None && int(a) < len(algorithms) }

// String is S3's name of a ("" for None and unknown numbers).
func (a Algorithm) String() string {
	if !a.Known() {
		return ""
	}
	return algorithms[a].name
}

// Header is a's lower-case header name ("" for None and unknown numbers).
func (a Algorithm) Header() string {
	if !a.Known() {
		return ""
	}
	return algorithms[a].header
}

// Size is the length of a's digest in bytes (0 for None and unknown numbers).
func (a Algorithm) Size() int {
	if !a.Known() {
		return 0
	}
	return algorithms[a].size
}

// New returns a new hash of a, or nil for None and unknown numbers.
func (a Algorithm) New() hash.Hash {
	if !a.Known() {
		return nil
	}
	return algorithms[a].newFn()
}

// IsCRC reports whether a is one of the CRCs, the only algorithms S3 offers full-object
// multipart checksums for.
func (a Algorithm) IsCRC() bool { return a == CRC32 || a == CRC32C || a == CRC64NVME }
