package format

import (
	"errors"
	"fmt"
)

// Format constants.
const (
	// Version is format version 1: single-part objects, and multipart objects written before
	// format 2. Version2 is the multipart format with sealed upload ids, per-part salts and a
	// sealed part manifest (docs/FORMAT.md 3.5).
	Version        = 1
	Version2       = 2
	Version3       = 3
	SegmentSize    = 1 << 16 // S: plaintext bytes per segment
	TagSize        = 16
	TrailerSize    = 32
	PartHeaderSize = 48
	KeySize        = 32
	// MaxTrailerSize is the longest trailer of any stream: a single-part object's sealing the
	// longest checksum (SHA512, 64 bytes; FORMAT.md 3.3). A reader that fetches the end of an
	// object before it knows the object's checksum algorithm reads this many bytes (or the
	// whole object if it is shorter).
	MaxTrailerSize = TrailerSize + maxChecksumSize
	// MetaEnvelope is the canonical MIME header name of the envelope metadata.
	MetaEnvelope = "X-Amz-Meta-S3seal-Env"
	// MetaManifest is the canonical MIME header name of a format-2 multipart object's sealed
	// part manifest.
	MetaManifest = "X-Amz-Meta-S3seal-Parts"
	// MetaSSE is the SSE mode the client asked for ("aws:kms"; absent for SSE-S3): response
	// headers only (FORMAT.md 4).
	MetaSSE = "X-Amz-Meta-S3seal-Sse"
	// MetaContext is the client's SSE-KMS encryption context, base64 JSON (FORMAT.md 4).
	MetaContext = "X-Amz-Meta-S3seal-Ctx"
	// MetaChecksum is the checksum algorithm of a single-part object that seals S3's
	// additional checksum of its plaintext in its trailer: S3's upper-case name of the
	// algorithm (ChecksumAlgorithm.String; ParseChecksumMeta reads it), absent for none
	// (FORMAT.md 3.3, 4). It is not authenticated and need not be (see ParseChecksumMeta).
	MetaChecksum = "X-Amz-Meta-S3seal-Ck"
	// MetaPrefix is the reserved user-metadata prefix.
	MetaPrefix = "X-Amz-Meta-S3seal-"
	// MaxPlainSize is the largest plaintext size of one stream (docs/FORMAT.md 3.2).
	MaxPlainSize = 1 << 48
	// MaxPartNumber is the largest multipart part number.
	MaxPartNumber = 10000

	segShift      = 16
	storedSegment = SegmentSize + TagSize
)

// Sentinel errors. Every error returned by this package wraps one of them, except errors of a
// caller-supplied reader or writer, which are passed through unchanged.
var (
	// ErrAuth: authentication failed (tampered, truncated, extended or reordered data, wrong
	// key, object moved to another name).
	ErrAuth = errors.New("s3seal/format: authentication failed")
	// ErrMalformed: input cannot be parsed (bad base64, short envelope, bad header, invalid
	// stored size).
	ErrMalformed = errors.New("s3seal/format: malformed input")
	// ErrVersion: unknown format version, kind, wrap or segment size.
	ErrVersion = errors.New("s3seal/format: unsupported version")
	// ErrSize: the plaintext source is shorter or longer than the declared size.
	ErrSize = errors.New("s3seal/format: plaintext size mismatch")
	// ErrRange: a requested plaintext range lies outside the stream.
	ErrRange = errors.New("s3seal/format: range out of bounds")
)

func errf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}

// numSegments is n = max(1, ceil(p/S)).
func numSegments(plain int64) int64 {
	if plain == 0 {
		return 1
	}
	return (plain + SegmentSize - 1) >> segShift
}

// EncryptedSize returns the stored size of a single-part object with plain plaintext bytes and
// no checksum, or -1 if plain is negative or larger than MaxPlainSize. It is
// EncryptedSizeOf(plain, ChecksumNone).
func EncryptedSize(plain int64) int64 { return EncryptedSizeOf(plain, ChecksumNone) }

// DecryptedSize is the inverse of EncryptedSize. It returns an error wrapping ErrMalformed if
// stored is not the size of any valid stream. It is DecryptedSizeOf(stored, ChecksumNone).
func DecryptedSize(stored int64) (int64, error) { return DecryptedSizeOf(stored, ChecksumNone) }

// EncryptedSizeOf returns the stored size of a single-part object with plain plaintext bytes
// whose trailer seals a checksum of algorithm a (FORMAT.md 3.3): p + 16·n + 32 + a.Size(). It
// returns -1 if plain is negative or larger than MaxPlainSize, or a is not ChecksumNone or a
// known algorithm.
func EncryptedSizeOf(plain int64, a ChecksumAlgorithm) int64 {
	if plain < 0 || plain > MaxPlainSize || !validChecksum(a) {
		return -1
	}
	return segmentsSize(plain) + trailerSizeOf(a)
}

// DecryptedSizeOf is the inverse of EncryptedSizeOf for the algorithm a. It returns an error
// wrapping ErrMalformed if stored is not the size of any valid stream with a's trailer, or a
// is not ChecksumNone or a known algorithm.
func DecryptedSizeOf(stored int64, a ChecksumAlgorithm) (int64, error) {
	if !validChecksum(a) {
		return 0, errf(ErrMalformed, "stored size: unknown checksum algorithm %d", a)
	}
	t := trailerSizeOf(a)
	if stored < t+TagSize {
		return 0, errf(ErrMalformed, "stored size %d is too small", stored)
	}
	e := stored - t
	q, r := e/storedSegment, e%storedSegment
	var p int64
	switch {
	case r == 0 && q >= 1:
		p = q * SegmentSize
	case r == TagSize && q == 0:
		p = 0
	case r > TagSize:
		p = q*SegmentSize + r - TagSize
	default:
		return 0, errf(ErrMalformed, "stored size %d is not a valid stream size", stored)
	}
	if p > MaxPlainSize {
		return 0, errf(ErrMalformed, "stored size %d exceeds the maximum stream size", stored)
	}
	return p, nil
}

// segmentsSize is the stored size of the segments of a stream of plain bytes (a valid size):
// p + 16·n, where its trailer starts.
func segmentsSize(plain int64) int64 { return plain + TagSize*numSegments(plain) }

// trailerSizeOf is the size of the trailer sealing an MD5 and a checksum of algorithm a: 32 +
// a.Size() (32 for none).
func trailerSizeOf(a ChecksumAlgorithm) int64 { return TrailerSize + int64(a.Size()) }

// PartEncryptedSize returns the stored size of a multipart part (48-byte header included) with
// plain plaintext bytes, or -1 if plain is negative or larger than MaxPlainSize.
func PartEncryptedSize(plain int64) int64 {
	s := EncryptedSize(plain)
	if s < 0 {
		return -1
	}
	return s + PartHeaderSize
}

// PartDecryptedSize is the inverse of PartEncryptedSize (ErrMalformed if stored is invalid).
func PartDecryptedSize(stored int64) (int64, error) {
	if stored < PartHeaderSize {
		return 0, errf(ErrMalformed, "stored part size %d is smaller than the part header", stored)
	}
	p, err := DecryptedSize(stored - PartHeaderSize)
	if err != nil {
		return 0, errf(ErrMalformed, "stored part size %d is not a valid part size", stored)
	}
	return p, nil
}

// segmentBuffer returns the buffer an encrypt or decrypt reader of a plain-byte stream needs:
// its largest stored segment or its trailer of trailer bytes, so that a small object does not
// allocate a whole 64 KiB segment (the largest allocation per request of 4 KiB PUTs and GETs
// in the gateway's allocation profile).
func segmentBuffer(plain, trailer int64) []byte {
	return make([]byte, max(min(max(plain, 0), SegmentSize)+TagSize, trailer))
}
