package sigv4

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"net/http"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/zeebo/xxh3"
)

// crc64NVMEPoly is the bit-reflected CRC-64/NVME polynomial 0xad93d23594c93659,
// in the form hash/crc64 expects.
const crc64NVMEPoly = 0x9a6c9329ac4bc9b5

// checksumAlgorithm is one of the S3 additional checksums.
type checksumAlgorithm struct {
	name   string // as in x-amz-sdk-checksum-algorithm: CRC32, CRC32C, ...
	header string // lower-case header / trailer name
	size   int    // digest length in bytes
	newFn  func() hash.Hash
}

// crc64NVMETable is built once: crc64.MakeTable builds a new table for a polynomial other than
// ISO and ECMA.
var crc64NVMETable = crc64.MakeTable(crc64NVMEPoly)

// checksumAlgorithms are S3's checksum algorithms, in S3's order. A table built once: the
// look-ups below run for every header of every request.
var checksumAlgorithms = [...]checksumAlgorithm{
	{"CRC32", "x-amz-checksum-crc32", 4, func() hash.Hash { return crc32.NewIEEE() }},
	{"CRC32C", "x-amz-checksum-crc32c", 4, func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }},
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

// unsupportedChecksumAlgorithm is S3's message for an x-amz-sdk-checksum-algorithm it does not
// know.
const unsupportedChecksumAlgorithm = "Checksum algorithm provided is unsupported. Please try again with any of the valid types: " +
	"[CRC32, CRC32C, CRC64NVME, SHA1, SHA256, SHA512, MD5, XXHASH64, XXHASH3, XXHASH128]"

func checksumByHeader(name string) (checksumAlgorithm, bool) {
	for _, a := range checksumAlgorithms {
		if len(a.header) == len(name) && strings.EqualFold(a.header, name) {
			return a, true
		}
	}
	return checksumAlgorithm{}, false
}

func checksumByName(name string) (checksumAlgorithm, bool) {
	for _, a := range checksumAlgorithms {
		if strings.EqualFold(a.name, name) {
			return a, true
		}
	}
	return checksumAlgorithm{}, false
}

// decodeChecksum decodes a base64 checksum value of the algorithm's size.
func decodeChecksum(a checksumAlgorithm, value string) ([]byte, bool) {
	b, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(value))
	if err != nil || len(b) != a.size {
		return nil, false
	}
	return b, true
}

// integrityHeaders are the body-integrity promises found in the headers.
type integrityHeaders struct {
	contentMD5     []byte            // decoded Content-MD5, nil if absent
	checksum       checksumAlgorithm // from an x-amz-checksum-* header or x-amz-trailer
	checksumWant   []byte            // header value; nil when it arrives in the trailer
	hasChecksum    bool
	trailer        bool // the checksum is declared in x-amz-trailer
	trailerPresent bool // x-amz-trailer present (possibly empty)
	parsed         bool // set by parseIntegrityHeaders
}

// parseIntegrityHeaders validates Content-MD5, x-amz-checksum-*,
// x-amz-sdk-checksum-algorithm and x-amz-trailer against the payload mode.
func parseIntegrityHeaders(h http.Header, mode PayloadMode) (integrityHeaders, *Error) {
	out := integrityHeaders{parsed: true}
	if vals := h.Values("Content-Md5"); len(vals) > 0 {
		b, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(vals[0]))
		if len(vals) != 1 || err != nil || len(b) != 16 {
			return out, newError(CodeInvalidDigest, "The Content-MD5 you specified was invalid.")
		}
		out.contentMD5 = b
	}
	for name, vals := range h {
		a, ok := checksumByHeader(name)
		if !ok {
			continue
		}
		if out.hasChecksum {
			return out, newError(CodeInvalidRequest, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		want, ok := decodeChecksum(a, vals[0])
		if len(vals) != 1 || !ok {
			return out, newError(CodeInvalidRequest, "Value for "+a.header+" header is invalid.")
		}
		out.checksum, out.checksumWant, out.hasChecksum = a, want, true
	}
	if vals := h.Values("X-Amz-Trailer"); len(vals) > 0 {
		out.trailerPresent = true
		if mode != PayloadStreamingUnsignedTrailer && mode != PayloadStreamingSignedTrailer {
			return out, newError(CodeInvalidRequest, "x-amz-trailer requires x-amz-content-sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER or STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")
		}
		for _, v := range vals {
			for _, name := range strings.Split(v, ",") {
				name = strings.TrimSpace(name)
				if name == "" {
					continue
				}
				a, ok := checksumByHeader(name)
				if !ok {
					return out, newError(CodeInvalidRequest, "The value specified in the x-amz-trailer header is not supported")
				}
				if out.hasChecksum {
					return out, newError(CodeInvalidRequest, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
				}
				out.checksum, out.hasChecksum, out.trailer = a, true, true
			}
		}
	}
	if vals := h.Values("X-Amz-Sdk-Checksum-Algorithm"); len(vals) > 0 {
		a, ok := checksumByName(strings.TrimSpace(vals[0]))
		if len(vals) != 1 || !ok {
			return out, newError(CodeInvalidRequest, unsupportedChecksumAlgorithm)
		}
		if !out.hasChecksum {
			return out, newError(CodeInvalidRequest, "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.")
		}
		if a.name != out.checksum.name {
			return out, newError(CodeInvalidRequest, "Value for x-amz-sdk-checksum-algorithm header is invalid.")
		}
	}
	return out, nil
}
