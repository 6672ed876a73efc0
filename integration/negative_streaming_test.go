package integration

// The aws-chunked part of the negative matrix: a tampered chunk in the middle of a 20 MiB
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD upload, a tampered trailer of a 20 MiB
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER upload, a wrong CRC32C trailer, and a Content-MD5
// mismatch; each next to a control that the gateway accepts.

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"net/http"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

const (
	negLargeSize = 20 << 20
	negChunkSize = 64 << 10
)

// negCRC32C is the x-amz-checksum-crc32c trailer line for b.
func negCRC32C(b []byte) string {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	return "x-amz-checksum-crc32c:" + base64.StdEncoding.EncodeToString(sum[:])
}

// TestNegativeStreaming: aws-chunked uploads whose chunk, chunk signature, trailer or trailer
// signature was tampered with, or whose checksum is wrong, are refused and store nothing, even
// when half of a 20 MiB body has already gone through the gateway.
func TestNegativeStreaming(t *testing.T) {
	n := negStart(t)
	plain := testenv.RandomBytes(t, negLargeSize, marker)
	mid := negLargeSize / negChunkSize / 2
	sig := negSig{cred: n.full}
	put := func(t *testing.T, key, mode string, data []byte, trailer string, edit func(*negChunkedBody)) *http.Request {
		return negStreamingPut(t, n.url(n.bucket, key), sig, mode, data, negChunkSize, trailer, edit)
	}
	tamperChunk := func(b *negChunkedBody) {
		c := bytes.Clone(b.Chunks[mid])
		c[len(c)/2] ^= 0x01
		b.Chunks[mid] = c
	}

	t.Run("signed", func(t *testing.T) {
		t.Run("control", func(t *testing.T) {
			n.acceptedWrite(t, put(t, "ok/signed", negStreamingSigned, plain, "", nil), "ok/signed", plain)
		})
		t.Run("tampered-chunk", func(t *testing.T) {
			n.refusedWrite(t, 403, "SignatureDoesNotMatch", func(key string) *http.Request {
				return put(t, key, negStreamingSigned, plain, "", tamperChunk)
			})
		})
		t.Run("tampered-chunk-signature", func(t *testing.T) {
			n.refusedWrite(t, 403, "SignatureDoesNotMatch", func(key string) *http.Request {
				return put(t, key, negStreamingSigned, plain, "", func(b *negChunkedBody) { b.Sigs[mid] = negFlipHex(b.Sigs[mid]) })
			})
		})
	})

	t.Run("signed-trailer", func(t *testing.T) {
		trailer := negCRC32C(plain)
		t.Run("control", func(t *testing.T) {
			n.acceptedWrite(t, put(t, "ok/signed-trailer", negStreamingSignedTrailer, plain, trailer, nil), "ok/signed-trailer", plain)
		})
		t.Run("tampered-trailer", func(t *testing.T) {
			// The checksum of other data, same length: the trailer signature no longer matches.
			other := negCRC32C(plain[1:])
			if len(other) != len(trailer) || other == trailer {
				t.Fatal("test setup: need another checksum of the same length")
			}
			n.refusedWrite(t, 403, "SignatureDoesNotMatch", func(key string) *http.Request {
				return put(t, key, negStreamingSignedTrailer, plain, trailer, func(b *negChunkedBody) { b.Trailer = other })
			})
		})
		t.Run("tampered-trailer-signature", func(t *testing.T) {
			n.refusedWrite(t, 403, "SignatureDoesNotMatch", func(key string) *http.Request {
				return put(t, key, negStreamingSignedTrailer, plain, trailer, func(b *negChunkedBody) { b.TrailerSig = negFlipHex(b.TrailerSig) })
			})
		})
		t.Run("tampered-chunk", func(t *testing.T) {
			n.refusedWrite(t, 403, "SignatureDoesNotMatch", func(key string) *http.Request {
				return put(t, key, negStreamingSignedTrailer, plain, trailer, tamperChunk)
			})
		})
		t.Run("signed-wrong-crc32c", func(t *testing.T) {
			// Correctly signed, but the checksum is not the data's.
			n.refusedWrite(t, 400, "BadDigest", func(key string) *http.Request {
				return put(t, key, negStreamingSignedTrailer, plain, negCRC32C(plain[1:]), nil)
			})
		})
	})

	small := plain[:5<<20+3]
	t.Run("unsigned-trailer", func(t *testing.T) {
		t.Run("control", func(t *testing.T) {
			n.acceptedWrite(t, put(t, "ok/unsigned-trailer", negStreamingUnsigned, small, negCRC32C(small), nil), "ok/unsigned-trailer", small)
		})
		t.Run("wrong-crc32c", func(t *testing.T) {
			n.refusedWrite(t, 400, "BadDigest", func(key string) *http.Request {
				return put(t, key, negStreamingUnsigned, small, negCRC32C(small[1:]), nil)
			})
		})
		t.Run("tampered-chunk", func(t *testing.T) {
			// Nothing signs the chunks here: the CRC32C trailer is what catches the change.
			n.refusedWrite(t, 400, "BadDigest", func(key string) *http.Request {
				return put(t, key, negStreamingUnsigned, small, negCRC32C(small), func(b *negChunkedBody) {
					c := bytes.Clone(b.Chunks[len(b.Chunks)/2])
					c[0] ^= 0x80
					b.Chunks[len(b.Chunks)/2] = c
				})
			})
		})
	})

	t.Run("content-md5", func(t *testing.T) {
		md5Header := func(b []byte) http.Header {
			s := md5.Sum(b)
			return http.Header{"Content-Md5": {base64.StdEncoding.EncodeToString(s[:])}}
		}
		unsigned := negSig{cred: n.full, payload: "UNSIGNED-PAYLOAD"}
		t.Run("control", func(t *testing.T) {
			req := negRequest(t, http.MethodPut, n.url(n.bucket, "ok/md5"), small, unsigned, md5Header(small))
			n.acceptedWrite(t, req, "ok/md5", small)
		})
		t.Run("mismatch", func(t *testing.T) {
			n.refusedWrite(t, 400, "BadDigest", func(key string) *http.Request {
				return negRequest(t, http.MethodPut, n.url(n.bucket, key), small, unsigned, md5Header(small[1:]))
			})
		})
	})
}
