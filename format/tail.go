package format

import (
	"bytes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"io"
	"math"
)

// The tail of a format-3 multipart object (docs/FORMAT.md 3.6): the sealed part manifest as the
// object's last bytes, uploaded by the gateway as the backend upload's last part before the
// backend completes it, so that CompleteMultipartUpload writes nothing twice.
//
//	Tail     = sealed ‖ be32(len(sealed)) ‖ "s3seal/3"
//	MK3      = HKDF(OK, -, "s3seal/3 manifest", 32)
//	sealed   = N(12) ‖ AES-GCM(MK3, N, body, "s3seal/3 manifest")
//	body     = be32(K) ‖ etag_md5(16) ‖ digest(32) ‖ be32(R) ‖ R × ( be32(first) ‖ be32(count) ‖ be64(p) ) ‖ be16(E) ‖ ext
//	ext      = "" (E = 0), or the object's checksum: kind(1) ‖ value (E = 1 + the algorithm's size)
//	digest   = SHA-256( "s3seal/3 parts" ‖ Header_1 ‖ … ‖ Header_K )
//
// The runs always list the whole layout, so a reader needs no part sizes from the backend:
// stored object = Part_1 ‖ … ‖ Part_K ‖ Tail, whatever the backend's own part boundaries.

const (
	infoManifestV3       = "s3seal/3 manifest"
	manifestDigestLabel3 = "s3seal/3 parts"
	// TailMagic ends every format-3 multipart object.
	TailMagic = "s3seal/3"
	// TailFooterSize is the length field and the magic at the very end of a tail.
	TailFooterSize = 4 + int64(len(TailMagic))
	// TailReadSize is what a reader reads of an object's end to find its tail in one request
	// (a tail of up to 249 runs, 98 + 16·249 = 4,082 bytes, fits, 245 with a SHA-512 checksum;
	// a longer one costs a second read).
	TailReadSize  = 4096
	tailBodyFixed = 4 + 16 + 32 + 4
	tailBodyEnd   = 2 // the extension length
	// maxTailExt is the longest extension: a SHA-512 checksum.
	maxTailExt = 1 + 64
	// maxTailSealed bounds the sealed manifest: MaxPartNumber runs and the longest extension.
	maxTailSealed = nonceSize + tailBodyFixed + MaxPartNumber*manifestRunSize + tailBodyEnd + maxTailExt + TagSize
)

// ManifestPart is what a format-3 manifest records of one part: its number, plaintext size and
// salt (which make its header), and its plaintext MD5 (nil when the writer computed none; a
// writer computes the MD5 of every part or of none).
type ManifestPart struct {
	Number    int
	PlainSize int64
	Salt      [32]byte
	MD5       []byte
}

// header is the part's 48-byte format-3 header.
func (p ManifestPart) header() []byte {
	pi := partInfo(Version3, kindMultipart, p.Number, p.PlainSize)
	return append(pi[:], p.Salt[:]...)
}

// Tail is an opened format-3 tail.
type Tail struct {
	// Parts is the number of parts K.
	Parts int
	// ETagMD5 is the MD5 of the parts' plaintext MD5s, or nil when the writer computed none.
	ETagMD5 []byte
	// Size is the length of the tail in the stored object.
	Size int64
	// Checksum is the object's checksum (Kind.Algorithm none: the upload had none).
	Checksum ObjectChecksum
	runs     []manifestRun
	digest   [32]byte
}

func (k *ObjectKey) tailAEAD() cipher.AEAD {
	return newAEAD(deriveKey(k.k[:], nil, []byte(infoManifestV3)))
}

// headersDigest3 is the digest of a format-3 layout's part headers.
func headersDigest3(headers [][]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(manifestDigestLabel3))
	for _, b := range headers {
		h.Write(b)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// SealTail returns the tail of a format-3 object made of parts (in order; numbers strictly
// increasing) and the multipart ETag's MD5 it records (nil when the parts carry no MD5s).
func (k *ObjectKey) SealTail(parts []ManifestPart) (tail, etagMD5 []byte, err error) {
	return k.sealTail(rand.Reader, parts, ObjectChecksum{})
}

// SealTailChecksum is SealTail for an object with checksum ck (its value computed from the
// parts' checksums by the caller).
func (k *ObjectKey) SealTailChecksum(parts []ManifestPart, ck ObjectChecksum) (tail, etagMD5 []byte, err error) {
	return k.sealTail(rand.Reader, parts, ck)
}

func (k *ObjectKey) sealTail(rnd io.Reader, parts []ManifestPart, ck ObjectChecksum) ([]byte, []byte, error) {
	if k == nil || k.version != Version3 && k.version != 0 {
		return nil, nil, errf(ErrVersion, "tail: not a format-3 object key")
	}
	if len(parts) == 0 || len(parts) > MaxPartNumber {
		return nil, nil, errf(ErrMalformed, "tail: %d parts", len(parts))
	}
	headers := make([][]byte, len(parts))
	l := make(Layout, len(parts))
	withMD5 := parts[0].MD5 != nil
	etag := md5.New()
	for i, p := range parts {
		if p.Number < 1 || p.Number > MaxPartNumber || (i > 0 && p.Number <= parts[i-1].Number) || p.PlainSize < 0 || p.PlainSize > MaxPlainSize {
			return nil, nil, errf(ErrMalformed, "tail: part %d (index %d) out of order or of invalid size", p.Number, i)
		}
		if (p.MD5 != nil) != withMD5 || (withMD5 && len(p.MD5) != 16) {
			return nil, nil, errf(ErrMalformed, "tail: the MD5s of every part or of none")
		}
		headers[i] = p.header()
		l[i] = PartLayout{Number: p.Number, PlainSize: p.PlainSize}
		etag.Write(p.MD5)
	}
	var etagMD5 []byte
	if withMD5 {
		etagMD5 = etag.Sum(nil)
	}
	runs := allRuns(l)
	body := make([]byte, 0, tailBodyFixed+manifestRunSize*len(runs)+tailBodyEnd)
	body = binary.BigEndian.AppendUint32(body, uint32(len(parts)))
	var sum [16]byte
	copy(sum[:], etagMD5)
	body = append(body, sum[:]...)
	d := headersDigest3(headers)
	body = append(body, d[:]...)
	body = binary.BigEndian.AppendUint32(body, uint32(len(runs)))
	for _, r := range runs {
		body = binary.BigEndian.AppendUint32(body, uint32(r.first))
		body = binary.BigEndian.AppendUint32(body, uint32(r.count))
		body = binary.BigEndian.AppendUint64(body, uint64(r.plain))
	}
	if ck.Kind.Algorithm == ChecksumNone {
		body = binary.BigEndian.AppendUint16(body, 0)
	} else {
		if _, ok := checksumKindOf(ck.Kind.byteForm()); !ok || len(ck.Value) != ck.Kind.Algorithm.Size() {
			return nil, nil, errf(ErrMalformed, "tail: checksum %+v of %d bytes", ck.Kind, len(ck.Value))
		}
		body = binary.BigEndian.AppendUint16(body, uint16(1+len(ck.Value)))
		body = append(append(body, ck.Kind.byteForm()), ck.Value...)
	}
	out := make([]byte, nonceSize, nonceSize+len(body)+TagSize+int(TailFooterSize))
	if _, err := io.ReadFull(rnd, out); err != nil {
		return nil, nil, err
	}
	out = k.tailAEAD().Seal(out, out[:nonceSize], body, []byte(infoManifestV3))
	out = binary.BigEndian.AppendUint32(out, uint32(len(out)))
	return append(out, TailMagic...), etagMD5, nil
}

// allRuns cuts a layout into runs of consecutive part numbers of equal plaintext size.
func allRuns(l Layout) []manifestRun { return cutRuns(l, MaxPartNumber) }

// TailLength reads the footer at the end of end (the last bytes of a stored object of
// storedSize bytes) and returns the tail's total length. Errors wrap ErrAuth: an object of
// format 3 without a well-formed footer was not completed by a gateway.
func TailLength(end []byte, storedSize int64) (int64, error) {
	if int64(len(end)) < TailFooterSize || !bytes.Equal(end[len(end)-len(TailMagic):], []byte(TailMagic)) {
		return 0, errf(ErrAuth, "tail: no format-3 tail at the end of the object")
	}
	n := int64(binary.BigEndian.Uint32(end[int64(len(end))-TailFooterSize:]))
	if n < nonceSize+tailBodyFixed+tailBodyEnd+TagSize || n > maxTailSealed || n+TailFooterSize > storedSize {
		return 0, errf(ErrAuth, "tail: sealed manifest of %d bytes in an object of %d", n, storedSize)
	}
	return n + TailFooterSize, nil
}

// OpenTail opens a tail (exactly the bytes TailLength measured) under k and checks that its
// layout fits an object of storedSize bytes. Errors wrap ErrAuth (does not open, does not fit)
// or ErrMalformed.
func (k *ObjectKey) OpenTail(tail []byte, storedSize int64) (*Tail, error) {
	if k == nil {
		return nil, errf(ErrMalformed, "tail: nil object key")
	}
	n, err := TailLength(tail, storedSize)
	if err != nil {
		return nil, err
	}
	if int64(len(tail)) != n {
		return nil, errf(ErrMalformed, "tail: %d bytes given, the footer says %d", len(tail), n)
	}
	sealed := tail[:int64(len(tail))-TailFooterSize]
	body, err := k.tailAEAD().Open(nil, sealed[:nonceSize], sealed[nonceSize:], []byte(infoManifestV3))
	if err != nil {
		return nil, errf(ErrAuth, "tail: does not open under the object key (tampered, or from another object)")
	}
	t := &Tail{Parts: int(binary.BigEndian.Uint32(body)), Size: n}
	if sum := body[4:20]; subtle.ConstantTimeCompare(sum, make([]byte, 16)) != 1 {
		t.ETagMD5 = append([]byte(nil), sum...)
	}
	copy(t.digest[:], body[20:52])
	nruns := int64(binary.BigEndian.Uint32(body[52:56]))
	rest := body[tailBodyFixed:]
	if t.Parts < 1 || t.Parts > MaxPartNumber || nruns < 1 || nruns > int64(t.Parts) || int64(len(rest)) < nruns*manifestRunSize+tailBodyEnd {
		return nil, errf(ErrMalformed, "tail: %d parts, %d runs in %d bytes", t.Parts, nruns, len(rest))
	}
	ext := rest[nruns*manifestRunSize+tailBodyEnd:]
	if int(binary.BigEndian.Uint16(rest[nruns*manifestRunSize:])) != len(ext) {
		return nil, errf(ErrMalformed, "tail: extension length %d, %d bytes follow", binary.BigEndian.Uint16(rest[nruns*manifestRunSize:]), len(ext))
	}
	if len(ext) > 0 {
		kind, ok := checksumKindOf(ext[0])
		if !ok || kind.Algorithm == ChecksumNone || len(ext) != 1+kind.Algorithm.Size() {
			return nil, errf(ErrVersion, "tail: extensions this reader does not know")
		}
		t.Checksum = ObjectChecksum{Kind: kind, Value: append([]byte(nil), ext[1:]...)}
	}
	total, next := 0, 1
	stored := n
	for i := int64(0); i < nruns; i++ {
		r := rest[i*manifestRunSize:]
		run := manifestRun{int(binary.BigEndian.Uint32(r)), int(binary.BigEndian.Uint32(r[4:])), int64(binary.BigEndian.Uint64(r[8:]))}
		if run.first < next || run.count < 1 || run.count > MaxPartNumber || run.first > MaxPartNumber-run.count+1 || run.plain < 0 || run.plain > MaxPlainSize {
			return nil, errf(ErrMalformed, "tail: run %d invalid", i)
		}
		ps := PartEncryptedSize(run.plain)
		if ps > (math.MaxInt64-stored)/int64(run.count) {
			return nil, errf(ErrMalformed, "tail: run %d overflows", i)
		}
		stored += ps * int64(run.count)
		next = run.first + run.count
		total += run.count
		t.runs = append(t.runs, run)
	}
	if total != t.Parts {
		return nil, errf(ErrMalformed, "tail: runs list %d parts, the count is %d", total, t.Parts)
	}
	if stored != storedSize {
		return nil, errf(ErrAuth, "tail: the manifest's parts and tail make %d bytes, the object has %d", stored, storedSize)
	}
	return t, nil
}

// Layout returns the part numbers and stored sizes the tail lists (every part).
func (t *Tail) Layout() (numbers []int, storedSizes []int64) { return runsLayout(t.runs) }

// Check compares the layout read from the stored bytes (every part's salt in ID) with the
// tail: the same number of parts and the same headers in the same order. A mismatch wraps
// ErrAuth.
func (t *Tail) Check(l Layout) error {
	if len(l) != t.Parts {
		return errf(ErrAuth, "tail: the object has %d parts, the manifest %d", len(l), t.Parts)
	}
	headers := make([][]byte, len(l))
	for i, p := range l {
		headers[i] = ManifestPart{Number: p.Number, PlainSize: p.PlainSize, Salt: p.ID}.header()
	}
	d := headersDigest3(headers)
	if subtle.ConstantTimeCompare(d[:], t.digest[:]) != 1 {
		return errf(ErrAuth, "tail: the parts are not the ones completed (dropped, reordered, replaced or duplicated)")
	}
	return nil
}
