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
	"strings"
)

// Format 2 of multipart objects (section 3.5): salted part keys, the upload id that carries the
// envelope (3.5.1) and the sealed part manifest (3.5.2).

// UploadID is a parsed upload id of format 2 (section 3.5.1) or 3 (section 3.6.1).
type UploadID struct {
	Backend  string // the backend's upload id
	Version  int    // 2 or 3: the tag's, and the envelope's
	Envelope []byte // E: the binary envelope (of that version, kind 1), as section 4 before base64
	Ctx      string // C: the value of x-amz-meta-s3seal-ctx, or empty
	// Checksum is CK, the upload's checksum kind (section 3.6.6; ".s3" ids only), 0 for none.
	Checksum byte
}

// ParseUploadID parses `<backend upload id> ".s2" base64url-unpadded(be16(len(E)) ‖ E ‖ C)`,
// or `<backend upload id> ".s3" base64url-unpadded(be16(len(E)) ‖ E ‖ [CK] ‖ C)`. E must parse
// as an envelope of kind 1 and of the version the tag names (2 for ".s2", 3 for ".s3"); it is
// not opened here. In an ".s3" id a byte after E outside 0x21–0x7e is CK, which must be a
// valid kind (section 3.6.1).
func ParseUploadID(id string) (*UploadID, error) {
	dot := strings.LastIndexByte(id, '.')
	if dot <= 0 {
		return nil, errors.New("upload id: no backend id or no suffix")
	}
	suffix := id[dot:]
	var ver byte
	switch {
	case strings.HasPrefix(suffix, ".s2"):
		ver = 2
	case strings.HasPrefix(suffix, ".s3"):
		ver = 3
	default:
		return nil, errors.New("upload id: not a format-2 or format-3 upload id")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(suffix[3:])
	if err != nil {
		return nil, fmt.Errorf("upload id: %w", err)
	}
	if base64.RawURLEncoding.EncodeToString(b) != suffix[3:] {
		return nil, errors.New("upload id: non-canonical base64url")
	}
	if len(b) < 2 {
		return nil, errors.New("upload id: truncated")
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, errors.New("upload id: envelope runs past the end")
	}
	env, ctx := b[2:2+n], b[2+n:]
	f, err := parseEnvelope(env)
	if err != nil {
		return nil, fmt.Errorf("upload id: %w", err)
	}
	if f.version != ver || f.kind != 1 {
		return nil, fmt.Errorf("upload id: envelope is not of version %d and kind 1", ver)
	}
	var ck byte
	if ver == 3 && len(ctx) > 0 && (ctx[0] < 0x21 || ctx[0] > 0x7e) {
		if ck, ctx = ctx[0], ctx[1:]; !ValidKind(ck) {
			return nil, fmt.Errorf("upload id: invalid checksum kind %#x", ck)
		}
	}
	for _, c := range ctx {
		if c < 0x21 || c > 0x7e {
			return nil, errors.New("upload id: context is not printable ASCII without space")
		}
	}
	return &UploadID{Backend: id[:dot], Version: int(ver), Envelope: bytes.Clone(env), Ctx: string(ctx), Checksum: ck}, nil
}

// Run is one run of the manifest's layout: Count parts numbered consecutively from First, each
// of Size plaintext bytes.
type Run struct {
	First, Count uint32
	Size         uint64
}

// Manifest is an opened part manifest (section 3.5.2).
type Manifest struct {
	K       int
	ETagMD5 []byte // nil when the writer computed no MD5s (16 zero bytes)
	D       []byte
	Runs    []Run // empty when the layout is not listed (R = 0)
}

// ETag is S3's multipart ETag of the plaintext, without quotes ("" without MD5s).
func (m *Manifest) ETag() string {
	if m.ETagMD5 == nil {
		return ""
	}
	return fmt.Sprintf("%x-%d", m.ETagMD5, m.K)
}

// OpenManifest opens the base64 value of x-amz-meta-s3seal-parts under the object key ok.
func OpenManifest(ok []byte, value string) (*Manifest, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(value)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if base64.StdEncoding.EncodeToString(b) != value {
		return nil, errors.New("manifest: non-canonical base64")
	}
	if len(b) < 1+12+16 || b[0] != 2 {
		return nil, errors.New("manifest: bad version or too short")
	}
	mk := hkdf32(ok, nil, "s3seal/2 manifest")
	body, err := gcm(mk).Open(nil, b[1:13], b[13:], []byte("s3seal/2 manifest"))
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if len(body) < 4+16+32+2 {
		return nil, errors.New("manifest: body too short")
	}
	m := &Manifest{K: int(binary.BigEndian.Uint32(body)), D: body[20:52]}
	if m.K < 1 || m.K > 10000 {
		return nil, fmt.Errorf("manifest: %d parts", m.K)
	}
	if !bytes.Equal(body[4:20], make([]byte, 16)) {
		m.ETagMD5 = body[4:20]
	}
	r := int(binary.BigEndian.Uint16(body[52:]))
	if r > 16 || len(body) != 54+16*r {
		return nil, errors.New("manifest: bad run count or length")
	}
	next, total := uint64(1), uint64(0) // the lowest part number the next run may start at
	for i := 0; i < r; i++ {
		e := body[54+16*i:]
		run := Run{First: binary.BigEndian.Uint32(e), Count: binary.BigEndian.Uint32(e[4:]), Size: binary.BigEndian.Uint64(e[8:])}
		last := uint64(run.First) + uint64(run.Count) - 1
		if run.Count == 0 || uint64(run.First) < next || last > 10000 || run.Size > 1<<48 {
			return nil, fmt.Errorf("manifest: bad run %d", i)
		}
		next, total = last+1, total+uint64(run.Count)
		m.Runs = append(m.Runs, run)
	}
	if r > 0 && total != uint64(m.K) {
		return nil, errors.New("manifest: runs do not add up to K")
	}
	return m, nil
}

// DecryptMultipartV2 decrypts a whole format-2 multipart object (section 3.5): it opens the
// manifest, walks the parts (headers of version 2, keys from OK and each part's salt, trailers),
// checks them against the manifest's layout, then the part count K and the header digest D.
// It returns the plaintext and the opened manifest; nothing is returned unless every check
// passed.
func DecryptMultipartV2(ok, stored []byte, manifest string) (plain []byte, m *Manifest, err error) {
	if manifest == "" {
		return nil, nil, errors.New("multipart v2: no manifest")
	}
	m, err = OpenManifest(ok, manifest)
	if err != nil {
		return nil, nil, err
	}
	// The layout from the runs, part by part (nil with R = 0: the headers say).
	var layout []Run
	for _, r := range m.Runs {
		for j := uint32(0); j < r.Count; j++ {
			layout = append(layout, Run{First: r.First + j, Count: 1, Size: r.Size})
		}
	}
	d := sha256.New()
	d.Write([]byte("s3seal/2 parts"))
	var md5s []byte
	allMD5 := true
	last, count := uint32(0), 0
	for len(stored) > 0 {
		if len(stored) < 48 {
			return nil, nil, errors.New("multipart v2: truncated part header")
		}
		h := stored[:48]
		num, p := binary.BigEndian.Uint32(h[4:8]), binary.BigEndian.Uint64(h[8:16])
		if h[0] != 2 || h[1] != 1 || h[2] != 0 || h[3] != 0 || num <= last || num > 10000 || p > 1<<48 {
			return nil, nil, fmt.Errorf("multipart v2: bad header after part %d", last)
		}
		if layout != nil {
			if count >= len(layout) || layout[count].First != num || layout[count].Size != p {
				return nil, nil, fmt.Errorf("multipart v2: part %d does not match the manifest's layout", num)
			}
		}
		last = num
		count++
		n := max(1, (p+S-1)/S)
		size := p + 16*n + 32
		if uint64(len(stored)-48) < size {
			return nil, nil, fmt.Errorf("part %d: truncated", num)
		}
		pk := hkdf32(ok, h[16:48], "s3seal/2 part"+string(h[:16]))
		pt, sum, err := decryptStream(pk, p, stored[48:48+size])
		if err != nil {
			return nil, nil, fmt.Errorf("part %d: %w", num, err)
		}
		d.Write(h)
		if sum == nil {
			allMD5 = false
		}
		md5s = append(md5s, sum...)
		plain = append(plain, pt...)
		stored = stored[48+size:]
	}
	if count != m.K {
		return nil, nil, fmt.Errorf("multipart v2: %d parts, the manifest says %d", count, m.K)
	}
	if subtle.ConstantTimeCompare(d.Sum(nil), m.D) != 1 {
		return nil, nil, errors.New("multipart v2: part headers do not match the manifest's digest")
	}
	// Section 3.5.2 does not ask a reader to check ETagMD5; this decoder does, when it can:
	// with every trailer's MD5 present, a recorded ETagMD5 must be their MD5.
	if m.ETagMD5 != nil && allMD5 {
		if sum := md5.Sum(md5s); !bytes.Equal(sum[:], m.ETagMD5) {
			return nil, nil, errors.New("multipart v2: manifest ETag is not the MD5 of the parts' MD5s")
		}
	}
	return plain, m, nil
}

// Decrypt decrypts a whole object of an opened envelope: single-part (version 1, kind 0),
// multipart of format 1 (version 1, kind 1, no manifest allowed), of format 2 (version 2,
// kind 1, manifest required) or of format 3 (version 3, kind 1, the manifest in the tail: no
// manifest metadata allowed). manifest is the value of x-amz-meta-s3seal-parts or empty.
func Decrypt(e *Envelope, stored []byte, manifest string) ([]byte, error) {
	switch {
	case e.Version == 1 && e.Kind == 0 && manifest == "":
		p, _, err := DecryptSingle(e.OK, stored)
		return p, err
	case e.Version == 1 && e.Kind == 1 && manifest == "":
		return DecryptMultipart(e.OK, stored)
	case e.Version == 2 && e.Kind == 1:
		p, _, err := DecryptMultipartV2(e.OK, stored, manifest)
		return p, err
	case e.Version == 3 && e.Kind == 1 && manifest == "":
		p, _, err := DecryptMultipartV3(e.OK, stored)
		return p, err
	}
	return nil, fmt.Errorf("object of version %d, kind %d with manifest %t", e.Version, e.Kind, manifest != "")
}
