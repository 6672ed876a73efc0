package format

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"io"
)

// The part manifest of a format-2 multipart object (docs/FORMAT.md 3.5.2): written by the
// gateway after CompleteMultipartUpload as the metadata value MetaManifest, it authenticates the
// set of parts, which nothing in the parts themselves can: their count, their numbers, sizes
// and salts (through a digest of all part headers in order), the plaintext multipart ETag, and
// (when it is short) the layout itself.
//
//	MK       = HKDF(OK, -, "s3seal/2 manifest", 32)
//	value    = base64( 0x02 ‖ nonce(12) ‖ AES-GCM(MK, nonce, body, "s3seal/2 manifest") )
//	body     = be32(K) ‖ etag_md5(16) ‖ digest(32) ‖ be16(R) ‖ R × ( be32(first) ‖ be32(count) ‖ be64(plain size) )
//	digest   = SHA-256( "s3seal/2 parts" ‖ Header_1 ‖ … ‖ Header_K )
//
// A reader of a format-2 multipart object refuses it when the manifest is missing, does not
// open, or does not match the parts found in the stored bytes.

const (
	manifestDigestLabel = "s3seal/2 parts"
	manifestFixed       = 4 + 16 + 32 + 2
	manifestRunSize     = 4 + 4 + 8
	nonceSize           = 12
	// MaxManifestRuns is the most runs of equal-size consecutive parts a manifest lists; a
	// layout with more is not listed (readers learn it from the backend and check it against
	// the digest).
	MaxManifestRuns = 16
)

// Manifest is an opened part manifest.
type Manifest struct {
	// Parts is the number of parts K.
	Parts int
	// ETagMD5 is the MD5 of the parts' plaintext MD5s (S3's multipart ETag is its hex and
	// "-K"), or nil when the writer computed no MD5s.
	ETagMD5 []byte
	runs    []manifestRun
	digest  [32]byte
}

type manifestRun struct {
	first, count int
	plain        int64
}

// layoutDigest is the digest of the part headers of a format-2 layout.
func layoutDigest(l Layout) [32]byte {
	h := sha256.New()
	h.Write([]byte(manifestDigestLabel))
	for _, p := range l {
		pi := partInfo(Version2, kindMultipart, p.Number, p.PlainSize)
		h.Write(pi[:])
		h.Write(p.ID[:])
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// runsOf cuts a layout into runs of consecutive part numbers of equal plaintext size (nil if
// there would be more than MaxManifestRuns).
func runsOf(l Layout) []manifestRun { return cutRuns(l, MaxManifestRuns) }

// cutRuns cuts a layout into runs of consecutive part numbers of equal plaintext size (nil if
// there would be more than limit).
func cutRuns(l Layout, limit int) []manifestRun {
	var runs []manifestRun
	for _, p := range l {
		if n := len(runs); n > 0 {
			r := &runs[n-1]
			if r.plain == p.PlainSize && r.first+r.count == p.Number {
				r.count++
				continue
			}
		}
		if len(runs) == limit {
			return nil
		}
		runs = append(runs, manifestRun{p.Number, 1, p.PlainSize})
	}
	return runs
}

func (k *ObjectKey) manifestAEAD() cipher.AEAD {
	return newAEAD(deriveKey(k.k[:], nil, []byte(infoManifestV2)))
}

// SealManifest returns the MetaManifest value for the format-2 layout l (whose parts carry
// their salts in ID) and the multipart ETag's MD5 (nil for none).
func (k *ObjectKey) SealManifest(l Layout, etagMD5 []byte) (string, error) {
	return k.sealManifest(rand.Reader, l, etagMD5)
}

func (k *ObjectKey) sealManifest(rnd io.Reader, l Layout, etagMD5 []byte) (string, error) {
	if k == nil || len(l) == 0 || len(l) > MaxPartNumber {
		return "", errf(ErrMalformed, "manifest: no key, or %d parts", len(l))
	}
	if etagMD5 != nil && len(etagMD5) != 16 {
		return "", errf(ErrMalformed, "manifest: ETag MD5 of %d bytes", len(etagMD5))
	}
	runs := runsOf(l)
	body := make([]byte, 0, manifestFixed+manifestRunSize*len(runs))
	body = binary.BigEndian.AppendUint32(body, uint32(len(l)))
	var md5 [16]byte
	copy(md5[:], etagMD5)
	body = append(body, md5[:]...)
	d := layoutDigest(l)
	body = append(body, d[:]...)
	body = binary.BigEndian.AppendUint16(body, uint16(len(runs)))
	for _, r := range runs {
		body = binary.BigEndian.AppendUint32(body, uint32(r.first))
		body = binary.BigEndian.AppendUint32(body, uint32(r.count))
		body = binary.BigEndian.AppendUint64(body, uint64(r.plain))
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(body)+TagSize)
	out[0] = Version2
	if _, err := io.ReadFull(rnd, out[1:1+nonceSize]); err != nil {
		return "", err
	}
	out = k.manifestAEAD().Seal(out, out[1:1+nonceSize], body, []byte(infoManifestV2))
	return base64.StdEncoding.EncodeToString(out), nil
}

// OpenManifest opens a MetaManifest value. It fails with ErrAuth when the value was not sealed
// under k, and ErrMalformed or ErrVersion when it cannot be parsed.
func (k *ObjectKey) OpenManifest(s string) (*Manifest, error) {
	if k == nil {
		return nil, errf(ErrMalformed, "manifest: nil object key")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(b) != s {
		return nil, errf(ErrMalformed, "manifest: invalid or non-canonical base64")
	}
	if len(b) < 1+nonceSize+manifestFixed+TagSize {
		return nil, errf(ErrMalformed, "manifest: %d bytes", len(b))
	}
	if b[0] != Version2 {
		return nil, errf(ErrVersion, "manifest: version %d", b[0])
	}
	body, err := k.manifestAEAD().Open(nil, b[1:1+nonceSize], b[1+nonceSize:], []byte(infoManifestV2))
	if err != nil {
		return nil, errf(ErrAuth, "manifest: does not open under the object key (tampered, or from another object)")
	}
	m := &Manifest{Parts: int(binary.BigEndian.Uint32(body))}
	if md5 := body[4:20]; subtle.ConstantTimeCompare(md5, make([]byte, 16)) != 1 {
		m.ETagMD5 = append([]byte(nil), md5...)
	}
	copy(m.digest[:], body[20:52])
	nruns := int(binary.BigEndian.Uint16(body[52:54]))
	rest := body[manifestFixed:]
	if m.Parts < 1 || m.Parts > MaxPartNumber || nruns > MaxManifestRuns || len(rest) != nruns*manifestRunSize {
		return nil, errf(ErrMalformed, "manifest: %d parts, %d runs in %d bytes", m.Parts, nruns, len(rest))
	}
	total, next := 0, 1
	for i := 0; i < nruns; i++ {
		r := rest[i*manifestRunSize:]
		run := manifestRun{int(binary.BigEndian.Uint32(r)), int(binary.BigEndian.Uint32(r[4:])), int64(binary.BigEndian.Uint64(r[8:]))}
		if run.first < next || run.count < 1 || run.count > MaxPartNumber || run.first > MaxPartNumber-run.count+1 || run.plain < 0 || run.plain > MaxPlainSize {
			return nil, errf(ErrMalformed, "manifest: run %d invalid", i)
		}
		next = run.first + run.count
		total += run.count
		m.runs = append(m.runs, run)
	}
	if nruns > 0 && total != m.Parts {
		return nil, errf(ErrMalformed, "manifest: runs list %d parts, the count is %d", total, m.Parts)
	}
	return m, nil
}

// Layout returns the part numbers and stored sizes the manifest lists, or nil when it lists
// none (more than MaxManifestRuns runs): then the reader learns them from the backend.
func (m *Manifest) Layout() (numbers []int, storedSizes []int64) { return runsLayout(m.runs) }

// runsLayout lists the part numbers and stored sizes of runs.
func runsLayout(runs []manifestRun) (numbers []int, storedSizes []int64) {
	for _, r := range runs {
		for i := 0; i < r.count; i++ {
			numbers = append(numbers, r.first+i)
			storedSizes = append(storedSizes, PartEncryptedSize(r.plain))
		}
	}
	return numbers, storedSizes
}

// Check compares the layout found in the stored bytes (with every part's salt in ID) with the
// manifest: same number of parts and the same part headers in the same order. A mismatch
// (parts dropped, added, reordered, duplicated or replaced) wraps ErrAuth.
func (m *Manifest) Check(l Layout) error {
	if len(l) != m.Parts {
		return errf(ErrAuth, "manifest: the object has %d parts, the manifest %d", len(l), m.Parts)
	}
	d := layoutDigest(l)
	if subtle.ConstantTimeCompare(d[:], m.digest[:]) != 1 {
		return errf(ErrAuth, "manifest: the parts are not the ones completed (dropped, reordered, replaced or duplicated)")
	}
	return nil
}
