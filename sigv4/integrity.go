package sigv4

import (
	"encoding/base64"
	"hash"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/internal/checksum"
)

// checksumAlgorithm is one of the S3 additional checksums (internal/checksum's table), with the
// fields the verifier reads at hand.
type checksumAlgorithm struct {
	alg    checksum.Algorithm
	name   string // as in x-amz-sdk-checksum-algorithm: CRC32, CRC32C, ...
	header string // lower-case header / trailer name
	size   int    // digest length in bytes
}

func checksumOf(a checksum.Algorithm) checksumAlgorithm {
	return checksumAlgorithm{alg: a, name: a.String(), header: a.Header(), size: a.Size()}
}

// newFn returns a new hash of the algorithm.
func (a checksumAlgorithm) newFn() hash.Hash { return a.alg.New() }

// checksumByHeader returns the algorithm whose header (or trailer) is name, in any letter case.
// It runs for every header of every request: checksum.ByHeader compares lengths first and
// allocates nothing.
func checksumByHeader(name string) (checksumAlgorithm, bool) {
	a, ok := checksum.ByHeader(name)
	if !ok {
		return checksumAlgorithm{}, false
	}
	return checksumOf(a), true
}

// checksumByName returns the algorithm S3 calls name (x-amz-sdk-checksum-algorithm), in any
// letter case.
func checksumByName(name string) (checksumAlgorithm, bool) {
	a, ok := checksum.Named(name)
	if !ok {
		return checksumAlgorithm{}, false
	}
	return checksumOf(a), true
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
			return out, newError(CodeInvalidRequest, checksum.Unsupported)
		}
		if !out.hasChecksum {
			return out, newError(CodeInvalidRequest, "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.")
		}
		if a.alg != out.checksum.alg {
			return out, newError(CodeInvalidRequest, "Value for x-amz-sdk-checksum-algorithm header is invalid.")
		}
	}
	return out, nil
}
