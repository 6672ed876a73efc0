package format

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
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
	infoPartRecordV3  = "s3seal/3 part record"
	recordFactsSize   = 16 + partSaltSize + 8
	recordIDDir       = "id/"
	recordPartDir     = "part/"
	heldPartDir       = "held/"
	recordSealedBytes = nonceSize + 16 + TagSize
	// A format-3 record seals the part's MD5, salt and plaintext size.
	recordSealedBytesV3 = nonceSize + recordFactsSize + TagSize
	// With a checksum, a format-3 record also seals its algorithm's number and its value
	// (at most SHA-512's 64 bytes).
	recordSealedCharsMax = ((recordSealedBytesV3+1+64)*8 + 5) / 6
	maxRecordETag        = 64
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

// HeldPartsOf is the prefix of the held parts (docs/FORMAT.md 3.6) of the backend upload
// backendID.
func HeldPartsOf(backendID string) string { return UploadRecordsOf(backendID) + heldPartDir }

// HeldPartKey is the key of a held copy of part number part of the backend upload backendID;
// id is 16 random bytes, so that a retried part never overwrites the part it retries.
func HeldPartKey(backendID string, part int, id [16]byte) string {
	return fmt.Sprintf("%s%05d/%x", HeldPartsOf(backendID), part, id)
}

// ParseHeldPartKey returns the part number of a held part's key (false if name is not one of
// the backend upload backendID).
func ParseHeldPartKey(backendID, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, HeldPartsOf(backendID))
	num, id, found := strings.Cut(rest, "/")
	if !ok || !found || len(num) != 5 || len(id) != 32 || strings.Trim(num, "0123456789") != "" || strings.Trim(id, "0123456789abcdef") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > MaxPartNumber {
		return 0, false
	}
	return n, true
}

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

// partRecordAAD is the AAD of a part record's sealed value (label: the format's).
func partRecordAAD(label, bucket, key, backendID string, part int, etag string) []byte {
	aad := []byte(label)
	aad = appendLP(aad, bucket)
	aad = appendLP(aad, key)
	aad = appendLP(aad, backendID)
	aad = binary.BigEndian.AppendUint32(aad, uint32(part))
	return appendLP(aad, etag)
}

func (k *ObjectKey) partRecordAEAD(label string) cipher.AEAD {
	return newAEAD(deriveKey(k.k[:], nil, []byte(label)))
}

// PartFacts is what a part record seals: the part's plaintext MD5 (nil when the writer
// computed none) and, in format 3, its header (PartInfo and salt), from which the gateway
// builds the part manifest at Complete without reading the part back.
type PartFacts struct {
	MD5       []byte
	PlainSize int64
	Salt      [32]byte
	// Checksum is the part's plaintext checksum of the upload's algorithm (format 3; zero
	// when the upload has none).
	Checksum PartChecksum
}

// PartChecksum is a part's checksum: its algorithm and value (Algorithm.Size() bytes).
type PartChecksum struct {
	Algorithm ChecksumAlgorithm
	Value     []byte
}

// PartRecordKey is the key of the record of part number part of the backend upload backendID
// of object key in bucket: the backend answered UploadPart with backendETag (or, for a held
// part, the PUT of its held copy), and f is sealed under k. It returns false when the record
// cannot be written (an ETag RecordETag refuses, a name above MaxKeyLength). A key of a
// format-2 upload seals the MD5 alone (format 2's record, FORMAT.md 3.5.3).
func (k *ObjectKey) PartRecordKey(bucket, key, backendID string, part int, backendETag string, f PartFacts) (string, bool, error) {
	return k.partRecordKey(rand.Reader, bucket, key, backendID, part, backendETag, f)
}

func (k *ObjectKey) partRecordKey(rnd io.Reader, bucket, key, backendID string, part int, backendETag string, f PartFacts) (string, bool, error) {
	if k == nil || part < 1 || part > MaxPartNumber || (f.MD5 != nil && len(f.MD5) != 16) {
		return "", false, errf(ErrMalformed, "part record: no key, part %d or an MD5 of %d bytes", part, len(f.MD5))
	}
	etag, ok := RecordETag(backendETag)
	if !ok {
		return "", false, nil
	}
	label, plain := infoPartRecordV3, make([]byte, 0, recordFactsSize)
	if k.version == Version2 {
		if f.MD5 == nil {
			return "", false, errf(ErrMalformed, "part record: a format-2 record holds an MD5")
		}
		label, plain = infoPartETag, f.MD5
	} else {
		if f.PlainSize < 0 || f.PlainSize > MaxPlainSize {
			return "", false, errf(ErrMalformed, "part record: plaintext size %d", f.PlainSize)
		}
		var sum [16]byte
		copy(sum[:], f.MD5)
		plain = append(append(plain, sum[:]...), f.Salt[:]...)
		plain = binary.BigEndian.AppendUint64(plain, uint64(f.PlainSize))
		if c := f.Checksum; c.Algorithm != ChecksumNone {
			if !c.Algorithm.Known() || len(c.Value) != c.Algorithm.Size() {
				return "", false, errf(ErrMalformed, "part record: checksum %d of %d bytes", c.Algorithm, len(c.Value))
			}
			plain = append(append(plain, byte(c.Algorithm)), c.Value...)
		}
	}
	nonce := make([]byte, nonceSize, nonceSize+len(plain)+TagSize)
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return "", false, err
	}
	sealed := k.partRecordAEAD(label).Seal(nonce, nonce, plain, partRecordAAD(label, bucket, key, backendID, part, etag))
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
	if len(fields[2]) > recordSealedCharsMax {
		return UploadRecord{}, errf(ErrMalformed, "upload record: sealed value of %d characters", len(fields[2]))
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(fields[2])
	if err != nil || !recordSealedLength(len(sealed)) || base64.RawURLEncoding.EncodeToString(sealed) != fields[2] {
		return UploadRecord{}, errf(ErrMalformed, "upload record: invalid sealed value")
	}
	return UploadRecord{Part: n, ETag: etag, sealed: sealed}, nil
}

// recordSealedLength reports whether n bytes can be a sealed record: format 2's, or format 3's
// without a checksum or with one of an algorithm's length (its number byte and value).
func recordSealedLength(n int) bool {
	if n == recordSealedBytes || n == recordSealedBytesV3 {
		return true
	}
	for a := ChecksumCRC32; a.Known(); a++ {
		if n == recordSealedBytesV3+1+a.Size() {
			return true
		}
	}
	return false
}

// OpenPartRecord opens the sealed value of part record r of the backend upload backendID of
// object key in bucket, under k: a format-3 record under a format-3 key, a format-2 record (an
// MD5 alone) under a format-2 key. A record that was altered, or made for another bucket, key,
// upload, part number or backend ETag, fails with an error wrapping ErrAuth.
func (k *ObjectKey) OpenPartRecord(bucket, key, backendID string, r UploadRecord) (PartFacts, error) {
	v3 := len(r.sealed) != recordSealedBytes
	if k == nil || r.Part == 0 || !recordSealedLength(len(r.sealed)) {
		return PartFacts{}, errf(ErrMalformed, "part record: no key, or not a part record")
	}
	if v3 != (k.version != Version2) {
		return PartFacts{}, errf(ErrAuth, "part record of part %d: of another format than its upload", r.Part)
	}
	label := infoPartRecordV3
	if !v3 {
		label = infoPartETag
	}
	plain, err := k.partRecordAEAD(label).Open(nil, r.sealed[:nonceSize], r.sealed[nonceSize:], partRecordAAD(label, bucket, key, backendID, r.Part, r.ETag))
	if err != nil {
		return PartFacts{}, errf(ErrAuth, "part record of part %d does not open", r.Part)
	}
	if !v3 {
		return PartFacts{MD5: plain}, nil
	}
	f := PartFacts{PlainSize: int64(binary.BigEndian.Uint64(plain[16+partSaltSize:]))}
	if f.PlainSize < 0 || f.PlainSize > MaxPlainSize {
		return PartFacts{}, errf(ErrMalformed, "part record of part %d: size %d", r.Part, f.PlainSize)
	}
	copy(f.Salt[:], plain[16:16+partSaltSize])
	if ck := plain[recordFactsSize:]; len(ck) > 0 {
		a := ChecksumAlgorithm(ck[0])
		if !a.Known() || len(ck) != 1+a.Size() {
			return PartFacts{}, errf(ErrMalformed, "part record of part %d: checksum %d of %d bytes", r.Part, a, len(ck)-1)
		}
		f.Checksum = PartChecksum{Algorithm: a, Value: ck[1:len(ck):len(ck)]}
	}
	if subtle.ConstantTimeCompare(plain[:16], make([]byte, 16)) != 1 {
		f.MD5 = plain[:16:16]
	}
	return f, nil
}
