package format

import (
	"encoding/base64"
	"fmt"
	"io"
)

// Test-only hooks to make randomness deterministic (known-answer vectors, fuzz seeds).

func NewObjectKeyFrom(rnd io.Reader) (*ObjectKey, error) { return newObjectKey(rnd) }

// NewObjectKeyOfVersion draws a key as if opened from an envelope of format version ver
// (0: a new key).
func NewObjectKeyOfVersion(rnd io.Reader, ver int) (*ObjectKey, error) {
	k, err := newObjectKey(rnd)
	if k != nil {
		k.version = byte(ver)
	}
	return k, err
}

func NewPartEncryptReaderV2WithRand(k *ObjectKey, rnd, src io.Reader, partNumber int, size int64, o EncryptOptions) (*EncryptReader, error) {
	return k.newPartEncryptReaderV2(rnd, src, partNumber, size, o)
}

func SealEnvelopeWithRand(rnd io.Reader, ok *ObjectKey, kek []byte, p SealParams) (*Envelope, error) {
	return sealEnvelope(rnd, ok, kek, p)
}

func NewPartEncryptReaderWithRand(rnd io.Reader, src io.Reader, upub []byte, partNumber int, size int64, o EncryptOptions) (*EncryptReader, error) {
	return newPartEncryptReader(rnd, src, upub, partNumber, size, o)
}

// ObjectKeyBytes exposes OK for cross-checks with the independent decoder.
func ObjectKeyBytes(k *ObjectKey) []byte { return append([]byte(nil), k.k[:]...) }

// Updating reports whether the test binary runs with -args -update (regenerate test data).
func Updating() bool { return *update }

// SealManifestWithRand seals a part manifest drawing its nonce from rnd.
func SealManifestWithRand(k *ObjectKey, rnd io.Reader, l Layout, etagMD5 []byte) (string, error) {
	return k.sealManifest(rnd, l, etagMD5)
}

// PartRecordKeyWithRand is PartRecordKey drawing its nonce from rnd.
func PartRecordKeyWithRand(k *ObjectKey, rnd io.Reader, bucket, key, backendID string, part int, etag string, f PartFacts) (string, bool, error) {
	return k.partRecordKey(rnd, bucket, key, backendID, part, etag, f)
}

// SealTailWithRand is SealTail drawing its nonce from rnd.
func SealTailWithRand(k *ObjectKey, rnd io.Reader, parts []ManifestPart) ([]byte, []byte, error) {
	return k.sealTail(rnd, parts, ObjectChecksum{})
}

// SealTailChecksumWithRand is SealTailChecksum drawing its nonce from rnd.
func SealTailChecksumWithRand(k *ObjectKey, rnd io.Reader, parts []ManifestPart, ck ObjectChecksum) ([]byte, []byte, error) {
	return k.sealTail(rnd, parts, ck)
}

// ChecksumKindOf decodes a checksum kind's byte form (false: not a kind S3 offers).
func ChecksumKindOf(b byte) (ChecksumKind, bool) { return checksumKindOf(b) }

// ChecksumKindByte is a checksum kind's byte form (0 for none).
func ChecksumKindByte(c ChecksumKind) byte { return c.byteForm() }

// AsVersion binds k to format version ver, as if it had been opened from an envelope of
// that version (0: a new key); it returns k.
func AsVersion(k *ObjectKey, ver int) *ObjectKey {
	k.version = byte(ver)
	return k
}

// KeyVersion is the format version k is bound to (0: a new key).
func KeyVersion(k *ObjectKey) int { return int(k.version) }

// SealPartRecordFacts is the name of a format-3 part record whose sealed plaintext is facts as
// given (any bytes, unchecked), sealed under k with nonce rnd: for tests of what
// OpenPartRecord refuses of records a writer would never seal.
func SealPartRecordFacts(k *ObjectKey, nonce []byte, bucket, key, backendID string, part int, etag string, facts []byte) string {
	sealed := k.partRecordAEAD(infoPartRecordV3).Seal(append([]byte(nil), nonce...), nonce, facts, partRecordAAD(infoPartRecordV3, bucket, key, backendID, part, etag))
	return PartRecordsOf(backendID) + fmt.Sprintf("%05d/%s/", part, etag) + base64.RawURLEncoding.EncodeToString(sealed)
}
