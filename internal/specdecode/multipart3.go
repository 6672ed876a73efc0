package specdecode

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Format 3 of multipart objects (section 3.6): the part headers and keys of format 2 with
// version 3 in PartInfo, the part manifest sealed in the object's last bytes (the tail), and
// part records that carry each part's salt and size.

// Tail is an opened tail (section 3.6.3).
type Tail struct {
	K       int
	ETagMD5 []byte // nil when the writer computed no MD5s (16 zero bytes)
	D       []byte
	Runs    []Run // the whole layout: at least one run
	Size    int64 // len(SealedManifest) + 12: the tail's length in the stored object
	// Checksum is CK, the kind of the object's checksum (section 3.6.6), 0 when the extension is
	// empty; ChecksumValue is its value.
	Checksum      byte
	ChecksumValue []byte
}

// ETag is S3's multipart ETag of the plaintext, without quotes ("" without MD5s).
func (t *Tail) ETag() string {
	if t.ETagMD5 == nil {
		return ""
	}
	return fmt.Sprintf("%x-%d", t.ETagMD5, t.K)
}

// partSize3 is PartEncryptedSize(p) of section 3.4: header, segments and trailer.
func partSize3(p uint64) uint64 { return 48 + p + 16*max(1, (p+S-1)/S) + 32 }

// OpenTail reads the tail from end, the last bytes of a stored object of storedSize bytes (at
// least the whole tail; any bytes before it are ignored): the footer be32(L) ‖ "s3seal/3", the
// L bytes of the sealed manifest before it, opened under MK3 = HKDF(OK, -, "s3seal/3
// manifest"); then the body, whose runs must list the whole layout and, with the tail, make
// exactly storedSize bytes, and whose extension must be empty or an object checksum.
func OpenTail(ok, end []byte, storedSize int64) (*Tail, error) {
	if len(end) < 12 || string(end[len(end)-8:]) != "s3seal/3" {
		return nil, errors.New("tail: no footer")
	}
	l := uint64(binary.BigEndian.Uint32(end[len(end)-12:]))
	if storedSize < 0 || l+12 > uint64(storedSize) {
		return nil, errors.New("tail: longer than the object")
	}
	if l+12 > uint64(len(end)) {
		return nil, errors.New("tail: longer than the bytes given")
	}
	if l < 12+16 {
		return nil, errors.New("tail: sealed manifest too short")
	}
	sealed := end[uint64(len(end))-12-l : len(end)-12]
	body, err := gcm(hkdf32(ok, nil, "s3seal/3 manifest")).Open(nil, sealed[:12], sealed[12:], []byte("s3seal/3 manifest"))
	if err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	if len(body) < 4+16+32+4+2 {
		return nil, errors.New("tail: body too short")
	}
	t := &Tail{K: int(binary.BigEndian.Uint32(body)), D: body[20:52], Size: int64(l) + 12}
	if t.K < 1 || t.K > 10000 {
		return nil, fmt.Errorf("tail: %d parts", t.K)
	}
	if !bytes.Equal(body[4:20], make([]byte, 16)) {
		t.ETagMD5 = body[4:20]
	}
	r := uint64(binary.BigEndian.Uint32(body[52:]))
	if r < 1 || r > 10000 || uint64(len(body)) < 56+16*r+2 {
		return nil, errors.New("tail: bad run count or length")
	}
	// be16(E) ‖ ext: E must be the number of bytes after it.
	ext := body[56+16*r+2:]
	if int(binary.BigEndian.Uint16(body[56+16*r:])) != len(ext) {
		return nil, errors.New("tail: extension length is not that of the bytes after it")
	}
	if t.Checksum, t.ChecksumValue, err = parseExtension(ext); err != nil {
		return nil, err
	}
	next, total, size := uint64(1), uint64(0), l+12
	for i := uint64(0); i < r; i++ {
		e := body[56+16*i:]
		run := Run{First: binary.BigEndian.Uint32(e), Count: binary.BigEndian.Uint32(e[4:]), Size: binary.BigEndian.Uint64(e[8:])}
		last := uint64(run.First) + uint64(run.Count) - 1
		if run.Count == 0 || uint64(run.First) < next || last > 10000 || run.Size > 1<<48 {
			return nil, fmt.Errorf("tail: bad run %d", i)
		}
		// At most 10,000 parts of at most 2^48 + 2^33 bytes each: no overflow.
		next, total, size = last+1, total+uint64(run.Count), size+uint64(run.Count)*partSize3(run.Size)
		t.Runs = append(t.Runs, run)
	}
	if total != uint64(t.K) {
		return nil, errors.New("tail: runs do not add up to K")
	}
	if size != uint64(storedSize) {
		return nil, fmt.Errorf("tail: the parts and the tail make %d bytes, the object has %d", size, storedSize)
	}
	return t, nil
}

// DecryptMultipartV3 decrypts a whole format-3 multipart object (section 3.6): it opens the
// tail at the end of stored, takes the layout from its runs, checks every part header against
// it (version 3, number, size), decrypts every part under its salted PK (trailers included),
// and checks the digest D of the headers. When the tail holds an object checksum, it also
// checks that it is the one section 3.6.6 defines over the parts' plaintexts (not a reader's
// duty: a check of the writer). It returns the plaintext and the opened tail; nothing is
// returned unless every check passed.
func DecryptMultipartV3(ok, stored []byte) (plain []byte, t *Tail, err error) {
	t, err = OpenTail(ok, stored, int64(len(stored)))
	if err != nil {
		return nil, nil, err
	}
	d := sha256.New()
	d.Write([]byte("s3seal/3 parts"))
	var md5s []byte
	var parts [][]byte
	allMD5 := true
	off := uint64(0)
	for _, r := range t.Runs {
		for j := uint32(0); j < r.Count; j++ {
			num, p := r.First+j, r.Size
			h := stored[off : off+48]
			if h[0] != 3 || h[1] != 1 || h[2] != 0 || h[3] != 0 || binary.BigEndian.Uint32(h[4:8]) != num || binary.BigEndian.Uint64(h[8:16]) != p {
				return nil, nil, fmt.Errorf("multipart v3: the header at byte %d is not that of part %d of %d bytes", off, num, p)
			}
			size := partSize3(p)
			pk := hkdf32(ok, h[16:48], "s3seal/2 part"+string(h[:16]))
			pt, sum, err := decryptStream(pk, p, stored[off+48:off+size])
			if err != nil {
				return nil, nil, fmt.Errorf("part %d: %w", num, err)
			}
			d.Write(h)
			if sum == nil {
				allMD5 = false
			}
			md5s = append(md5s, sum...)
			parts = append(parts, pt)
			plain = append(plain, pt...)
			off += size
		}
	}
	// OpenTail checked that the parts and the tail make the object: off is where the tail is.
	if off+uint64(t.Size) != uint64(len(stored)) {
		return nil, nil, errors.New("multipart v3: the parts do not end where the tail starts")
	}
	if subtle.ConstantTimeCompare(d.Sum(nil), t.D) != 1 {
		return nil, nil, errors.New("multipart v3: part headers do not match the tail's digest")
	}
	// As for format 2, checked when every trailer holds an MD5.
	if t.ETagMD5 != nil && allMD5 {
		if sum := md5.Sum(md5s); !bytes.Equal(sum[:], t.ETagMD5) {
			return nil, nil, errors.New("multipart v3: tail ETag is not the MD5 of the parts' MD5s")
		}
	}
	if t.Checksum != 0 {
		if c, err := ObjectChecksum(t.Checksum, parts); err != nil || !bytes.Equal(c, t.ChecksumValue) {
			return nil, nil, fmt.Errorf("multipart v3: the tail's %s %s checksum is not that of the plaintext", ChecksumType(t.Checksum), ChecksumName(t.Checksum&^0x80))
		}
	}
	return plain, t, nil
}

// PartRecord is an opened format-3 part record (section 3.6.2).
type PartRecord struct {
	Part int
	ETag string // the backend's part ETag, as in the record's name
	MD5  []byte // nil for 16 zero bytes (no MD5 computed)
	Salt []byte // the part's PartSalt
	Size uint64 // the part's plaintext size
	// ChecksumAlg and Checksum are the part's checksum (section 3.6.6): the algorithm's number and
	// value; 0 and nil when the record has none.
	ChecksumAlg byte
	Checksum    []byte
}

// Header is the part header the record describes (version 3).
func (r *PartRecord) Header() []byte {
	h := []byte{3, 1, 0, 0}
	h = binary.BigEndian.AppendUint32(h, uint32(r.Part))
	h = binary.BigEndian.AppendUint64(h, r.Size)
	return append(h, r.Salt...)
}

// OpenPartRecordV3 parses the name of a format-3 part record of the backend upload backendID,
//
//	U+10FFFF s3seal/uploads/<backendID>/part/<5-digit part number>/<backend ETag>/<sealed>
//
// (112 characters sealed, more with a checksum) and opens it under RK3 = HKDF(OK, -, "s3seal/3
// part record") for bucket and key: MD5(16) ‖ PartSalt(32) ‖ be64(plain size) [‖ alg ‖ value].
func OpenPartRecordV3(ok []byte, bucket, key, backendID, name string) (*PartRecord, error) {
	rest, found := strings.CutPrefix(name, "\U0010FFFFs3seal/uploads/"+backendID+"/part/")
	f := strings.Split(rest, "/")
	if !found || len(f) != 3 || len(f[0]) != 5 || strings.Trim(f[0], "0123456789") != "" {
		return nil, errors.New("part record: not a part record of this upload")
	}
	part, _ := strconv.Atoi(f[0])
	if part < 1 || part > 10000 || f[1] == "" || len(f[1]) > 64 ||
		strings.Trim(f[1], "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "" {
		return nil, errors.New("part record: invalid part number or ETag")
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(f[2])
	if err != nil || !recordLengthV3(len(sealed)) || base64.RawURLEncoding.EncodeToString(sealed) != f[2] {
		return nil, errors.New("part record: invalid sealed value")
	}
	aad := append([]byte("s3seal/3 part record"), lp(bucket)...)
	aad = append(aad, lp(key)...)
	aad = append(aad, lp(backendID)...)
	aad = binary.BigEndian.AppendUint32(aad, uint32(part))
	aad = append(aad, lp(f[1])...)
	v, err := gcm(hkdf32(ok, nil, "s3seal/3 part record")).Open(nil, sealed[:12], sealed[12:], aad)
	if err != nil {
		return nil, errors.New("part record: sealed value does not open")
	}
	r := &PartRecord{Part: part, ETag: f[1], Salt: v[16:48], Size: binary.BigEndian.Uint64(v[48:])}
	if r.Size > 1<<48 {
		return nil, errors.New("part record: plaintext size above 2^48")
	}
	if ck := v[56:]; len(ck) > 0 {
		if ChecksumSize(ck[0]) == 0 || len(ck) != 1+ChecksumSize(ck[0]) {
			return nil, fmt.Errorf("part record: checksum of algorithm %d in %d bytes", ck[0], len(ck)-1)
		}
		r.ChecksumAlg, r.Checksum = ck[0], ck[1:]
	}
	if !bytes.Equal(v[:16], make([]byte, 16)) {
		r.MD5 = v[:16]
	}
	return r, nil
}

// recordLengthV3 reports whether n bytes can be a sealed format-3 record (section 3.6.2): 84
// without a checksum, 85 + an algorithm's size with one.
func recordLengthV3(n int) bool {
	if n == 12+56+16 {
		return true
	}
	for alg := byte(1); ChecksumSize(alg) != 0; alg++ {
		if n == 12+56+1+ChecksumSize(alg)+16 {
			return true
		}
	}
	return false
}
