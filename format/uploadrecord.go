package format

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Upload records (docs/FORMAT.md 3.5.3). S3 offers no way to read an open upload's metadata,
// nor anything stored with a part but its ETag, so the gateway keeps what ListMultipartUploads
// and ListParts must show in the names of zero-byte objects under the reserved prefix
// (U+10FFFF) of the upload's bucket; one prefix listing reads them:
//
//	<UploadRecordsPrefix><backend upload id>/id/<upload id suffix, cut every 200 characters by '/'>
//	<UploadRecordsPrefix><backend upload id>/part/<5-digit part number>/<backend part ETag>/<sealed MD5>
//
// The upload id suffix is the part of the client's id after the backend's (3.5.1), which holds
// nothing secret. A part's plaintext MD5 is information about the plaintext, so it is sealed:
//
//	RK     = HKDF(OK, -, "s3seal/2 part etag", 32)
//	sealed = base64url-unpadded( N ‖ AES-GCM(RK, N, MD5, AAD) )       N: 12 random bytes
//	AAD    = "s3seal/2 part etag" ‖ lp(bucket) ‖ lp(object key) ‖ lp(backend upload id)
//	         ‖ be32(part number) ‖ lp(backend part ETag)
//
// A record copied to another upload, part, object or backend ETag does not open.

const (
	// ReservedPrefix is the key prefix the gateway keeps for itself in every bucket: keys
	// starting with U+10FFFF, the greatest code point. Its UTF-8 form (F4 8F BF BF) is the
	// greatest a key can start with, so these keys sort after every other key in S3's
	// listings (byte order), and a listing that reaches one has no other key after it: hiding
	// them leaves every page but the last full. Clients can neither read nor write keys under
	// it, and listings never show them.
	ReservedPrefix = "\U0010FFFF"
	// UploadRecordsPrefix is where the upload records of every open upload are.
	UploadRecordsPrefix = ReservedPrefix + "s3seal/uploads/"
	// MaxKeyLength is S3's limit on a key's length in bytes; records that would be longer
	// are not written.
	MaxKeyLength = 1024

	infoPartETag      = "s3seal/2 part etag"
	recordIDDir       = "id/"
	recordPartDir     = "part/"
	recordSealedBytes = nonceSize + 16 + TagSize
	recordSealedChars = (recordSealedBytes*8 + 5) / 6 // base64url without padding
	maxRecordETag     = 64
	// recordIDChunk is the most characters of an id record's suffix in one path segment
	// (MinIO refuses keys with a segment above 255 bytes).
	recordIDChunk = 200
)

// IsReserved reports whether key is under ReservedPrefix.
func IsReserved(key string) bool { return strings.HasPrefix(key, ReservedPrefix) }

// UploadRecordsOf is the prefix of the records of the backend upload backendID.
func UploadRecordsOf(backendID string) string { return UploadRecordsPrefix + backendID + "/" }

// PartRecordsOf is the prefix of the part records of the backend upload backendID.
func PartRecordsOf(backendID string) string { return UploadRecordsOf(backendID) + recordPartDir }

// IDRecordsOf is the prefix of the id record of the backend upload backendID.
func IDRecordsOf(backendID string) string { return UploadRecordsOf(backendID) + recordIDDir }

// IDRecordKey is the key of the id record of the format-2 upload id u, and false when it
// would be longer than MaxKeyLength (no record is written then).
func IDRecordKey(u UploadID) (string, bool) {
	id := u.String()
	suffix := id[len(u.Backend):]
	var b strings.Builder
	b.WriteString(IDRecordsOf(u.Backend))
	for len(suffix) > recordIDChunk {
		b.WriteString(suffix[:recordIDChunk])
		b.WriteByte('/')
		suffix = suffix[recordIDChunk:]
	}
	b.WriteString(suffix)
	return b.String(), b.Len() <= MaxKeyLength
}

// idSuffixOf joins the chunks of an id record's suffix; false if they are not cut canonically
// (every chunk but the last of exactly recordIDChunk characters, none empty).
func idSuffixOf(rest string) (string, bool) {
	chunks := strings.Split(rest, "/")
	for i, c := range chunks {
		if c == "" || len(c) > recordIDChunk || (i < len(chunks)-1 && len(c) != recordIDChunk) {
			return "", false
		}
	}
	return strings.Join(chunks, ""), true
}

// RecordETag is the form of a backend part ETag in a record (quotes removed), and false when
// the ETag cannot be part of a record name (empty, longer than 64 characters or other than
// ASCII letters, digits and '-').
func RecordETag(etag string) (string, bool) {
	e := strings.TrimSuffix(strings.TrimPrefix(etag, `"`), `"`)
	if e == "" || len(e) > maxRecordETag {
		return "", false
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return "", false
		}
	}
	return e, true
}

// partRecordAAD is the AAD of a part record's sealed MD5.
func partRecordAAD(bucket, key, backendID string, part int, etag string) []byte {
	aad := []byte(infoPartETag)
	aad = appendLP(aad, bucket)
	aad = appendLP(aad, key)
	aad = appendLP(aad, backendID)
	aad = binary.BigEndian.AppendUint32(aad, uint32(part))
	return appendLP(aad, etag)
}

func (k *ObjectKey) partRecordAEAD() cipher.AEAD {
	return newAEAD(deriveKey(k.k[:], nil, []byte(infoPartETag)))
}

// PartRecordKey is the key of the record of part number part of the backend upload backendID
// of object key in bucket: the backend answered UploadPart with backendETag, and md5 (16
// bytes) is the part's plaintext MD5, sealed under k. It returns false when the record cannot
// be written (an ETag RecordETag refuses, a name above MaxKeyLength).
func (k *ObjectKey) PartRecordKey(bucket, key, backendID string, part int, backendETag string, md5 []byte) (string, bool, error) {
	return k.partRecordKey(rand.Reader, bucket, key, backendID, part, backendETag, md5)
}

func (k *ObjectKey) partRecordKey(rnd io.Reader, bucket, key, backendID string, part int, backendETag string, md5 []byte) (string, bool, error) {
	if k == nil || len(md5) != 16 || part < 1 || part > MaxPartNumber {
		return "", false, errf(ErrMalformed, "part record: no key, part %d or an MD5 of %d bytes", part, len(md5))
	}
	etag, ok := RecordETag(backendETag)
	if !ok {
		return "", false, nil
	}
	nonce := make([]byte, nonceSize, recordSealedBytes)
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return "", false, err
	}
	sealed := k.partRecordAEAD().Seal(nonce, nonce, md5, partRecordAAD(bucket, key, backendID, part, etag))
	name := fmt.Sprintf("%s%05d/%s/%s", PartRecordsOf(backendID), part, etag, base64.RawURLEncoding.EncodeToString(sealed))
	return name, len(name) <= MaxKeyLength, nil
}

// UploadRecord is a parsed upload record name.
type UploadRecord struct {
	// IDSuffix is the upload id suffix of an id record, its chunks joined ("" for a part
	// record).
	IDSuffix string
	// Part and ETag are the part number and backend part ETag of a part record (0 and "" for
	// an id record).
	Part int
	ETag string
	// sealed is the sealed MD5 of a part record.
	sealed []byte
}

// ParseUploadRecord parses the key name of a record of the backend upload backendID. An id
// record's suffix must make, after backendID, a format-2 upload id of that backend id; a part
// record must have a 5-digit part number in 1..10000, an ETag RecordETag accepts and a sealed
// MD5 of the right length in canonical base64url. Errors wrap ErrMalformed.
func ParseUploadRecord(backendID, name string) (UploadRecord, error) {
	rest, ok := strings.CutPrefix(name, UploadRecordsOf(backendID))
	if !ok || backendID == "" {
		return UploadRecord{}, errf(ErrMalformed, "upload record: not a record of this upload")
	}
	if chunks, ok := strings.CutPrefix(rest, recordIDDir); ok {
		suffix, canonical := idSuffixOf(chunks)
		u, err := ParseUploadID(backendID + suffix)
		if !canonical || err != nil || u.Backend != backendID {
			return UploadRecord{}, errf(ErrMalformed, "upload record: invalid upload id suffix")
		}
		return UploadRecord{IDSuffix: suffix}, nil
	}
	rest, ok = strings.CutPrefix(rest, recordPartDir)
	fields := strings.Split(rest, "/")
	if !ok || len(fields) != 3 || len(fields[0]) != 5 {
		return UploadRecord{}, errf(ErrMalformed, "upload record: unknown record")
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n < 1 || n > MaxPartNumber || strings.Trim(fields[0], "0123456789") != "" {
		return UploadRecord{}, errf(ErrMalformed, "upload record: invalid part number")
	}
	etag, ok := RecordETag(fields[1])
	if !ok || etag != fields[1] {
		return UploadRecord{}, errf(ErrMalformed, "upload record: invalid part ETag")
	}
	if len(fields[2]) != recordSealedChars {
		return UploadRecord{}, errf(ErrMalformed, "upload record: sealed MD5 of %d characters", len(fields[2]))
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(fields[2])
	if err != nil || len(sealed) != recordSealedBytes || base64.RawURLEncoding.EncodeToString(sealed) != fields[2] {
		return UploadRecord{}, errf(ErrMalformed, "upload record: invalid sealed MD5")
	}
	return UploadRecord{Part: n, ETag: etag, sealed: sealed}, nil
}

// OpenPartRecord opens the sealed MD5 of part record r of the backend upload backendID of
// object key in bucket, under k. A record that was altered, or made for another bucket, key,
// upload, part number or backend ETag, fails with an error wrapping ErrAuth.
func (k *ObjectKey) OpenPartRecord(bucket, key, backendID string, r UploadRecord) ([]byte, error) {
	if k == nil || r.Part == 0 || len(r.sealed) != recordSealedBytes {
		return nil, errf(ErrMalformed, "part record: no key, or not a part record")
	}
	md5, err := k.partRecordAEAD().Open(nil, r.sealed[:nonceSize], r.sealed[nonceSize:], partRecordAAD(bucket, key, backendID, r.Part, r.ETag))
	if err != nil {
		return nil, errf(ErrAuth, "part record of part %d does not open", r.Part)
	}
	return md5, nil
}
