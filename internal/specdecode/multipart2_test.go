package specdecode

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// The format-2 multipart vectors (FORMAT.md 3.5 and 9), re-encrypted from their inputs with a
// spec-only encryptor below and decoded with this package; then refusals built from them.

type partV2Vec struct {
	Number                                     int
	PartSalt, Header, PK, StoredSHA256, MD5Hex string
	PlainOffset, PlainSize, StoredSize         int64
	ComputeMD5                                 bool
}

type multiV2Vec struct {
	envVec
	Version                                              int
	Name, BackendUploadID, Ctx, UploadID, UploadIDSuffix string
	StoredSHA256, PlainMD5, ETagMD5, ETag, ManifestNonce string
	MK, PartsDigest, ManifestBody, Manifest              string
	StoredSize                                           int64
	Parts                                                []partV2Vec
}

func loadV2Vectors(t *testing.T) []multiV2Vec {
	b, err := os.ReadFile("../../testdata/format/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		V2 []json.RawMessage `json:"multipart_v2"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var out []multiV2Vec
	for _, raw := range f.V2 {
		var v multiV2Vec
		var parts []json.RawMessage
		fs := v.fields()
		for k, p := range map[string]any{"version": &v.Version, "name": &v.Name, "backend_upload_id": &v.BackendUploadID,
			"ctx": &v.Ctx, "upload_id": &v.UploadID, "upload_id_suffix": &v.UploadIDSuffix, "stored_sha256": &v.StoredSHA256,
			"plain_md5": &v.PlainMD5, "etag_md5": &v.ETagMD5, "etag": &v.ETag, "manifest_nonce": &v.ManifestNonce,
			"mk": &v.MK, "parts_digest": &v.PartsDigest, "manifest_body": &v.ManifestBody, "manifest": &v.Manifest,
			"stored_size": &v.StoredSize, "parts": &parts} {
			fs[k] = p
		}
		decodeInto(t, raw, fs)
		for _, pr := range parts {
			var p partV2Vec
			decodeInto(t, pr, map[string]any{"number": &p.Number, "part_salt": &p.PartSalt, "header": &p.Header,
				"pk": &p.PK, "stored_sha256": &p.StoredSHA256, "md5": &p.MD5Hex, "plain_offset": &p.PlainOffset,
				"plain_size": &p.PlainSize, "stored_size": &p.StoredSize, "compute_md5": &p.ComputeMD5})
			v.Parts = append(v.Parts, p)
		}
		out = append(out, v)
	}
	if len(out) < 2 {
		t.Fatalf("expected at least 2 format-2 multipart vectors, got %d", len(out))
	}
	return out
}

// specSealEnvelopeV sets the version byte of section 4 (specSealEnvelope writes version 1).
func specSealEnvelopeV(t *testing.T, v envVec, ver byte) string {
	ok, dk, es := unhex(t, v.OK), unhex(t, v.DK), unhex(t, v.ES)
	wrapped := unhex(t, v.WrappedKey)
	b := []byte{ver, byte(v.Kind), byte(v.Wrap), 16}
	b = binary.BigEndian.AppendUint16(b, uint16(len(v.KeyID)))
	b = append(b, v.KeyID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(wrapped)))
	b = append(b, wrapped...)
	b = append(b, es...)
	b = append(b, hkdf32(ok, nil, "s3seal/1 commit")...)
	aad := append(append(append([]byte("s3seal/1 envelope"), b...), lp(v.Bucket)...), lp(v.Key)...)
	b = gcm(hkdf32(dk, es, "s3seal/1 wrap")).Seal(b, make([]byte, 12), ok, aad)
	return base64.StdEncoding.EncodeToString(b)
}

// specPartV2 writes a format-2 part (section 3.5): Header ‖ stream under the salted PK.
func specPartV2(ok []byte, number int, salt, plain []byte, withMD5 bool) (part, pk []byte) {
	pi := []byte{2, 1, 0, 0}
	pi = binary.BigEndian.AppendUint32(pi, uint32(number))
	pi = binary.BigEndian.AppendUint64(pi, uint64(len(plain)))
	pk = hkdf32(ok, salt, "s3seal/2 part"+string(pi))
	stream := specEncryptStream(pk, plain)
	if !withMD5 { // reseal the trailer over 16 zero bytes
		n := max(1, (len(plain)+S-1)/S)
		stream = gcm(pk).Seal(stream[:len(stream)-32], nonce(uint64(n), 2), make([]byte, 16), nil)
	}
	return append(append(pi, salt...), stream...), pk
}

type specRun struct {
	first, count uint32
	p            uint64
}

// specSealManifest writes the manifest of section 3.5.2 for the given headers.
func specSealManifest(ok, n []byte, headers [][]byte, etag []byte, runs []specRun) (value string, body, mk, d []byte) {
	h := sha256.New()
	h.Write([]byte("s3seal/2 parts"))
	for _, x := range headers {
		h.Write(x)
	}
	d = h.Sum(nil)
	body = binary.BigEndian.AppendUint32(nil, uint32(len(headers)))
	body = append(body, etag...)
	body = append(body, d...)
	body = binary.BigEndian.AppendUint16(body, uint16(len(runs)))
	for _, r := range runs {
		body = binary.BigEndian.AppendUint32(body, r.first)
		body = binary.BigEndian.AppendUint32(body, r.count)
		body = binary.BigEndian.AppendUint64(body, r.p)
	}
	mk = hkdf32(ok, nil, "s3seal/2 manifest")
	out := gcm(mk).Seal(append([]byte{2}, n...), n, body, []byte("s3seal/2 manifest"))
	return base64.StdEncoding.EncodeToString(out), body, mk, d
}

// v2Object is a vector rebuilt from the spec: its parts' stored bytes and its plaintext.
type v2Object struct {
	ok      []byte
	parts   [][]byte
	plain   []byte
	headers [][]byte
}

func rebuildV2(t *testing.T, v multiV2Vec) v2Object {
	t.Helper()
	o := v2Object{ok: unhex(t, v.OK)}
	var md5s []byte
	var runs []specRun
	for _, p := range v.Parts {
		pp := plainAt(p.PlainOffset, p.PlainSize)
		part, pk := specPartV2(o.ok, p.Number, unhex(t, p.PartSalt), pp, p.ComputeMD5)
		if hex.EncodeToString(pk) != p.PK || hex.EncodeToString(part[:48]) != p.Header {
			t.Fatalf("part %d: spec PK %x header %x, vector %s %s", p.Number, pk, part[:48], p.PK, p.Header)
		}
		if sha(part) != p.StoredSHA256 || int64(len(part)) != p.StoredSize {
			t.Fatalf("part %d: spec encryptor gives %d bytes sha256 %s, vector %d %s", p.Number, len(part), sha(part), p.StoredSize, p.StoredSHA256)
		}
		if p.ComputeMD5 {
			s := md5.Sum(pp)
			if hex.EncodeToString(s[:]) != p.MD5Hex {
				t.Fatalf("part %d MD5 %x, vector %s", p.Number, s, p.MD5Hex)
			}
			md5s = append(md5s, s[:]...)
		} else if p.MD5Hex != "" {
			t.Fatalf("part %d without MD5 records %s", p.Number, p.MD5Hex)
		}
		// Runs of consecutive numbers and equal sizes, as 3.5.2 describes the layout.
		if r := len(runs) - 1; r >= 0 && runs[r].p == uint64(p.PlainSize) && runs[r].first+runs[r].count == uint32(p.Number) {
			runs[r].count++
		} else {
			runs = append(runs, specRun{uint32(p.Number), 1, uint64(p.PlainSize)})
		}
		o.parts = append(o.parts, part)
		o.headers = append(o.headers, part[:48])
		o.plain = append(o.plain, pp...)
	}
	etag := make([]byte, 16)
	if v.ETag != "" {
		s := md5.Sum(md5s)
		etag = s[:]
		if want := fmt.Sprintf("%x-%d", etag, len(v.Parts)); v.ETag != want {
			t.Fatalf("vector ETag %s, spec %s", v.ETag, want)
		}
	}
	if hex.EncodeToString(etag) != v.ETagMD5 {
		t.Fatalf("vector ETag MD5 %s, spec %x", v.ETagMD5, etag)
	}
	value, body, mk, d := specSealManifest(o.ok, unhex(t, v.ManifestNonce), o.headers, etag, runs)
	if hex.EncodeToString(mk) != v.MK || hex.EncodeToString(d) != v.PartsDigest || hex.EncodeToString(body) != v.ManifestBody {
		t.Fatalf("manifest intermediates: spec MK %x D %x body %x", mk, d, body)
	}
	if value != v.Manifest {
		t.Fatalf("manifest: spec %s\nvector %s", value, v.Manifest)
	}
	return o
}

func TestMultipartV2Vectors(t *testing.T) {
	for _, v := range loadV2Vectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			if v.Version != 2 || v.Kind != 1 {
				t.Fatalf("version %d kind %d", v.Version, v.Kind)
			}
			if got := specSealEnvelopeV(t, v.envVec, 2); got != v.Envelope {
				t.Fatalf("envelope: spec %s\nvector %s", got, v.Envelope)
			}
			e, err := Open(v.Envelope, unhex(t, v.DK), v.Bucket, v.Key)
			if err != nil || e.Version != 2 || e.Kind != 1 || hex.EncodeToString(e.OK) != v.OK {
				t.Fatalf("Open: %+v, %v", e, err)
			}
			// Upload id: the spec's encoding of be16(len(E)) ‖ E ‖ C.
			bin, _ := base64.StdEncoding.DecodeString(v.Envelope)
			raw := append(binary.BigEndian.AppendUint16(nil, uint16(len(bin))), bin...)
			suffix := ".s2" + base64.RawURLEncoding.EncodeToString(append(raw, v.Ctx...))
			if suffix != v.UploadIDSuffix || v.BackendUploadID+suffix != v.UploadID {
				t.Fatalf("upload id suffix: spec %s\nvector %s", suffix, v.UploadIDSuffix)
			}
			u, err := ParseUploadID(v.UploadID)
			if err != nil || u.Backend != v.BackendUploadID || u.Ctx != v.Ctx || !bytes.Equal(u.Envelope, bin) {
				t.Fatalf("ParseUploadID: %+v, %v", u, err)
			}

			o := rebuildV2(t, v)
			stored := bytes.Join(o.parts, nil)
			if sha(stored) != v.StoredSHA256 || int64(len(stored)) != v.StoredSize {
				t.Fatal("object stored bytes differ from the vector")
			}
			got, m, err := DecryptMultipartV2(e.OK, stored, v.Manifest)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, o.plain) || m.K != len(v.Parts) || m.ETag() != v.ETag {
				t.Fatalf("decrypted %d bytes, K %d, ETag %q", len(got), m.K, m.ETag())
			}
			if s := md5.Sum(got); hex.EncodeToString(s[:]) != v.PlainMD5 {
				t.Fatalf("plaintext MD5 %x, vector %s", s, v.PlainMD5)
			}
			if d, err := Decrypt(e, stored, v.Manifest); err != nil || !bytes.Equal(d, o.plain) {
				t.Fatalf("Decrypt: %v", err)
			}
		})
	}
}

// TestMultipartV2Refusals: every way a backend can rearrange a format-2 object's parts, or
// strip or swap its manifest, or downgrade it, is refused.
func TestMultipartV2Refusals(t *testing.T) {
	vs := loadV2Vectors(t)
	var v, other multiV2Vec
	for _, x := range vs {
		if len(x.Parts) >= 3 && v.Name == "" {
			v = x
		} else if other.Name == "" {
			other = x
		}
	}
	if v.Name == "" || other.Name == "" {
		t.Fatal("need a vector of at least 3 parts and another one")
	}
	o := rebuildV2(t, v)
	p := o.parts
	stored := bytes.Join(p, nil)
	if _, _, err := DecryptMultipartV2(o.ok, stored, v.Manifest); err != nil {
		t.Fatalf("the valid object: %v", err)
	}
	// A second upload of part 2 (same number and size, new salt).
	retry, _ := specPartV2(o.ok, v.Parts[1].Number, hkdf32([]byte("another salt"), nil, "test"), plainAt(v.Parts[1].PlainOffset, v.Parts[1].PlainSize), true)
	last := len(p) - 1
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	header1 := bytes.Clone(stored)
	header1[len(p[0])] = 1 // version byte of the second part's header: 2 -> 1
	mb, _ := base64.StdEncoding.DecodeString(v.Manifest)
	mb[len(mb)/2] ^= 1 // a byte of the sealed body, still canonical base64
	altered := base64.StdEncoding.EncodeToString(mb)
	cases := []struct {
		name     string
		stored   []byte
		manifest string
	}{
		{"first dropped", join(p[1:]...), v.Manifest},
		{"middle dropped", join(append([][]byte{p[0]}, p[2:]...)...), v.Manifest},
		{"last dropped", join(p[:last]...), v.Manifest},
		{"reordered", join(append([][]byte{p[1], p[0]}, p[2:]...)...), v.Manifest},
		{"duplicated", join(append([][]byte{p[0], p[1], p[1]}, p[2:]...)...), v.Manifest},
		{"second upload of a part", join(append([][]byte{p[0], retry}, p[2:]...)...), v.Manifest},
		{"manifest missing", stored, ""},
		{"manifest altered", stored, altered},
		{"manifest of another object", stored, other.Manifest},
		{"header version 1", header1, v.Manifest},
		{"truncated", stored[:len(stored)-1], v.Manifest},
		{"extended", append(bytes.Clone(stored), 0), v.Manifest},
	}
	for _, c := range cases {
		if _, _, err := DecryptMultipartV2(o.ok, c.stored, c.manifest); err == nil {
			t.Errorf("%s: decrypted", c.name)
		}
	}
	// The same with a manifest that lists no layout (R = 0): only K and D can tell.
	etag, _ := hex.DecodeString(v.ETagMD5)
	noRuns, _, _, _ := specSealManifest(o.ok, make([]byte, 12), o.headers, etag, nil)
	if _, _, err := DecryptMultipartV2(o.ok, stored, noRuns); err != nil {
		t.Fatalf("the valid object with a manifest without runs: %v", err)
	}
	for _, c := range cases {
		if c.manifest != v.Manifest {
			continue
		}
		if _, _, err := DecryptMultipartV2(o.ok, c.stored, noRuns); err == nil {
			t.Errorf("%s, manifest without runs: decrypted", c.name)
		}
	}
	// The retried part alone is a valid part: only the manifest tells it apart.
	if _, _, err := decryptStream(hkdf32(o.ok, retry[16:48], "s3seal/2 part"+string(retry[:16])), uint64(v.Parts[1].PlainSize), retry[48:]); err != nil {
		t.Fatalf("the second upload of part %d is not itself a valid part: %v", v.Parts[1].Number, err)
	}
	// Format-1 decoding refuses version-2 headers, and an envelope downgraded to version 1
	// does not open.
	if _, err := DecryptMultipart(o.ok, stored); err == nil {
		t.Error("DecryptMultipart read a format-2 object")
	}
	bin, _ := base64.StdEncoding.DecodeString(v.Envelope)
	bin[0] = 1
	if _, err := Open(base64.StdEncoding.EncodeToString(bin), unhex(t, v.DK), v.Bucket, v.Key); err == nil {
		t.Error("envelope with version byte 1 opened")
	}
	// Version 2 with kind 0 is refused before any key is used.
	bin[0], bin[1] = 2, 0
	if _, err := Open(base64.StdEncoding.EncodeToString(bin), unhex(t, v.DK), v.Bucket, v.Key); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("envelope of version 2, kind 0: %v", err)
	}
	// Decrypt follows the envelope's version: a format-2 envelope needs the manifest.
	e, err := Open(v.Envelope, unhex(t, v.DK), v.Bucket, v.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decrypt(e, stored, ""); err == nil {
		t.Error("Decrypt read a format-2 object without its manifest")
	}
}

func TestParseUploadIDRefusals(t *testing.T) {
	v := loadV2Vectors(t)[0]
	if _, err := ParseUploadID(v.UploadID); err != nil {
		t.Fatal(err)
	}
	bin, _ := base64.StdEncoding.DecodeString(v.Envelope)
	enc := func(raw []byte) string { return "b.s2" + base64.RawURLEncoding.EncodeToString(raw) }
	withLen := func(n int, rest []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(n)), rest...) }
	v1env := bytes.Clone(bin)
	v1env[0] = 1
	single := bytes.Clone(bin)
	single[1] = 0
	for name, id := range map[string]string{
		"no backend id":         v.UploadIDSuffix,
		"no suffix":             v.BackendUploadID,
		"format-1 suffix":       "b.s1" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		"padded":                v.UploadID + "=",
		"newline inside":        v.UploadID[:len(v.UploadID)-4] + "\n" + v.UploadID[len(v.UploadID)-4:],
		"standard alphabet":     "b.s2" + base64.RawStdEncoding.EncodeToString(withLen(len(bin), bin)) + "+/",
		"length past the end":   enc(withLen(len(bin)+1, bin)),
		"envelope of version 1": enc(withLen(len(v1env), v1env)),
		"envelope of kind 0":    enc(withLen(len(single), single)),
		"envelope cut":          enc(withLen(len(bin)-1, bin[:len(bin)-1])),
		"context not ASCII":     enc(append(withLen(len(bin), bin), 0xff)),
		"empty":                 "",
	} {
		if _, err := ParseUploadID(id); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	// A trailing bit that is not zero is not canonical: with a length not a multiple of 3,
	// the last character carries unused low bits.
	raw := withLen(len(bin), bin)
	if len(raw)%3 == 0 {
		raw = append(raw, 'x')
	}
	id := enc(raw)
	if _, err := ParseUploadID(id); err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	bad := id[:len(id)-1] + string(alphabet[strings.IndexByte(alphabet, id[len(id)-1])^1])
	if _, err := ParseUploadID(bad); err == nil {
		t.Error("non-canonical base64url parsed")
	}
}
