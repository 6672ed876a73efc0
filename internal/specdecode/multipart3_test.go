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

// The format-3 multipart vectors (FORMAT.md 3.6 and 9), re-encrypted from their inputs with a
// spec-only encryptor below (parts, tail, part record) and decoded with this package; then
// refusals built from them.

type recordV3Vec struct {
	Part                                     int
	BackendETag, Nonce, RK3, Facts, AAD, Key string
}

type multiV3Vec struct {
	envVec
	Version                                              int
	Name, BackendUploadID, Ctx, UploadID, UploadIDSuffix string
	PlainMD5, ETagMD5, ETag, ManifestNonce               string
	MK3, PartsDigest, ManifestBody, Tail                 string
	StoredSHA256, StoredHex, IDRecordKey                 string
	StoredSize                                           int64
	Parts                                                []partV2Vec
	Record                                               recordV3Vec
	// An upload created with a checksum (section 3.6.6): CK, the object's checksum (hex) and as
	// S3 shows it, and each part's checksum (hex, in the order of Parts); zero values otherwise.
	ChecksumKind         int
	Checksum, ChecksumS3 string
	PartChecksums        []string
}

func loadV3Vectors(t *testing.T) []multiV3Vec {
	b, err := os.ReadFile("../../testdata/format/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		V3 []json.RawMessage `json:"multipart_v3"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var out []multiV3Vec
	for _, raw := range f.V3 {
		var v multiV3Vec
		var parts []json.RawMessage
		var rec json.RawMessage
		fs := v.fields()
		for k, p := range map[string]any{"version": &v.Version, "name": &v.Name, "backend_upload_id": &v.BackendUploadID,
			"ctx": &v.Ctx, "upload_id": &v.UploadID, "upload_id_suffix": &v.UploadIDSuffix, "plain_md5": &v.PlainMD5,
			"etag_md5": &v.ETagMD5, "etag": &v.ETag, "manifest_nonce": &v.ManifestNonce, "mk3": &v.MK3,
			"parts_digest": &v.PartsDigest, "manifest_body": &v.ManifestBody, "tail": &v.Tail, "stored_size": &v.StoredSize,
			"stored_sha256": &v.StoredSHA256, "id_record_key": &v.IDRecordKey, "parts": &parts, "part_record": &rec} {
			fs[k] = p
		}
		decodeInto(t, raw, fs)
		var opt struct {
			StoredHex    string `json:"stored_hex"`
			ChecksumKind int    `json:"checksum_kind"`
			Checksum     string `json:"checksum"`
			ChecksumS3   string `json:"checksum_s3"`
		}
		if err := json.Unmarshal(raw, &opt); err != nil {
			t.Fatal(err)
		}
		v.StoredHex, v.ChecksumKind, v.Checksum, v.ChecksumS3 = opt.StoredHex, opt.ChecksumKind, opt.Checksum, opt.ChecksumS3
		for _, pr := range parts {
			var p partV2Vec
			decodeInto(t, pr, map[string]any{"number": &p.Number, "part_salt": &p.PartSalt, "header": &p.Header,
				"pk": &p.PK, "stored_sha256": &p.StoredSHA256, "md5": &p.MD5Hex, "plain_offset": &p.PlainOffset,
				"plain_size": &p.PlainSize, "stored_size": &p.StoredSize, "compute_md5": &p.ComputeMD5})
			var ck struct {
				Checksum string `json:"checksum"`
			}
			if err := json.Unmarshal(pr, &ck); err != nil {
				t.Fatal(err)
			}
			v.Parts = append(v.Parts, p)
			v.PartChecksums = append(v.PartChecksums, ck.Checksum)
		}
		r := &v.Record
		decodeInto(t, rec, map[string]any{"part": &r.Part, "backend_etag": &r.BackendETag, "nonce": &r.Nonce,
			"rk3": &r.RK3, "facts": &r.Facts, "aad": &r.AAD, "key": &r.Key})
		out = append(out, v)
	}
	if len(out) < 2 {
		t.Fatalf("expected at least 2 format-3 multipart vectors, got %d", len(out))
	}
	return out
}

// specPartV3 writes a format-3 part (section 3.6): Header (PartInfo of version 3) ‖ stream
// under PK = HKDF(OK, PartSalt, "s3seal/2 part" ‖ PartInfo).
func specPartV3(ok []byte, number int, salt, plain []byte, withMD5 bool) (part, pk []byte) {
	pi := []byte{3, 1, 0, 0}
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

// specSealTail writes the tail of section 3.6.3 for the given headers and runs, without an
// extension.
func specSealTail(ok, n []byte, headers [][]byte, etag []byte, runs []specRun) (tail, body, mk3, d []byte) {
	return specSealTailExt(ok, n, headers, etag, runs, nil)
}

// specSealTailExt writes the tail of section 3.6.3 whose body ends with be16(len(ext)) ‖ ext.
func specSealTailExt(ok, n []byte, headers [][]byte, etag []byte, runs []specRun, ext []byte) (tail, body, mk3, d []byte) {
	h := sha256.New()
	h.Write([]byte("s3seal/3 parts"))
	for _, x := range headers {
		h.Write(x)
	}
	d = h.Sum(nil)
	body = binary.BigEndian.AppendUint32(nil, uint32(len(headers)))
	body = append(body, etag...)
	body = append(body, d...)
	body = binary.BigEndian.AppendUint32(body, uint32(len(runs)))
	for _, r := range runs {
		body = binary.BigEndian.AppendUint32(body, r.first)
		body = binary.BigEndian.AppendUint32(body, r.count)
		body = binary.BigEndian.AppendUint64(body, r.p)
	}
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)
	mk3 = hkdf32(ok, nil, "s3seal/3 manifest")
	sealed := gcm(mk3).Seal(bytes.Clone(n), n, body, []byte("s3seal/3 manifest"))
	tail = append(binary.BigEndian.AppendUint32(sealed, uint32(len(sealed))), "s3seal/3"...)
	return tail, body, mk3, d
}

// specPartRecordV3 writes the name of a format-3 part record (section 3.6.2); ck is the part's
// checksum, alg ‖ value, or empty.
func specPartRecordV3(ok []byte, bucket, key, backendID string, part int, etag string, n, md5, salt []byte, size uint64, ck []byte) (name string, rk3, facts, aad []byte) {
	rk3 = hkdf32(ok, nil, "s3seal/3 part record")
	facts = append(append(bytes.Clone(md5), salt...), binary.BigEndian.AppendUint64(nil, size)...)
	facts = append(facts, ck...)
	aad = append([]byte("s3seal/3 part record"), lp(bucket)...)
	aad = append(aad, lp(key)...)
	aad = append(aad, lp(backendID)...)
	aad = binary.BigEndian.AppendUint32(aad, uint32(part))
	aad = append(aad, lp(etag)...)
	sealed := gcm(rk3).Seal(bytes.Clone(n), n, facts, aad)
	name = fmt.Sprintf("\U0010FFFFs3seal/uploads/%s/part/%05d/%s/%s", backendID, part, etag, base64.RawURLEncoding.EncodeToString(sealed))
	return name, rk3, facts, aad
}

// v3Object is a vector rebuilt from the spec: its parts' stored bytes, tail and plaintext.
type v3Object struct {
	ok      []byte
	parts   [][]byte
	tail    []byte
	plain   []byte
	headers [][]byte
}

func (o v3Object) stored() []byte { return append(bytes.Join(o.parts, nil), o.tail...) }

func rebuildV3(t *testing.T, v multiV3Vec) v3Object {
	t.Helper()
	o := v3Object{ok: unhex(t, v.OK)}
	var md5s []byte
	var runs []specRun
	var plains [][]byte
	for i, p := range v.Parts {
		pp := plainAt(p.PlainOffset, p.PlainSize)
		plains = append(plains, pp)
		if got := specPartChecksum(t, byte(v.ChecksumKind), pp); got != v.PartChecksums[i] {
			t.Fatalf("part %d: spec checksum %q, vector %q", p.Number, got, v.PartChecksums[i])
		}
		part, pk := specPartV3(o.ok, p.Number, unhex(t, p.PartSalt), pp, p.ComputeMD5)
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
		// Runs of consecutive numbers and equal sizes, merged as a writer does.
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
	tail, body, mk3, d := specSealTailExt(o.ok, unhex(t, v.ManifestNonce), o.headers, etag, runs, specExtension(t, v, plains))
	if hex.EncodeToString(mk3) != v.MK3 || hex.EncodeToString(d) != v.PartsDigest || hex.EncodeToString(body) != v.ManifestBody {
		t.Fatalf("tail intermediates: spec MK3 %x D %x body %x", mk3, d, body)
	}
	if hex.EncodeToString(tail) != v.Tail {
		t.Fatalf("tail: spec %x\nvector %s", tail, v.Tail)
	}
	o.tail = tail
	return o
}

func TestMultipartV3Vectors(t *testing.T) {
	for _, v := range loadV3Vectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			if v.Version != 3 || v.Kind != 1 {
				t.Fatalf("version %d kind %d", v.Version, v.Kind)
			}
			if got := specSealEnvelopeV(t, v.envVec, 3); got != v.Envelope {
				t.Fatalf("envelope: spec %s\nvector %s", got, v.Envelope)
			}
			e, err := Open(v.Envelope, unhex(t, v.DK), v.Bucket, v.Key)
			if err != nil || e.Version != 3 || e.Kind != 1 || hex.EncodeToString(e.OK) != v.OK {
				t.Fatalf("Open: %+v, %v", e, err)
			}
			// Upload id: ".s3" and the spec's encoding of be16(len(E)) ‖ E ‖ [CK] ‖ C.
			bin, _ := base64.StdEncoding.DecodeString(v.Envelope)
			raw := append(binary.BigEndian.AppendUint16(nil, uint16(len(bin))), bin...)
			if v.ChecksumKind != 0 {
				raw = append(raw, byte(v.ChecksumKind))
			}
			suffix := ".s3" + base64.RawURLEncoding.EncodeToString(append(raw, v.Ctx...))
			if suffix != v.UploadIDSuffix || v.BackendUploadID+suffix != v.UploadID {
				t.Fatalf("upload id suffix: spec %s\nvector %s", suffix, v.UploadIDSuffix)
			}
			u, err := ParseUploadID(v.UploadID)
			if err != nil || u.Backend != v.BackendUploadID || u.Version != 3 || u.Ctx != v.Ctx || !bytes.Equal(u.Envelope, bin) || int(u.Checksum) != v.ChecksumKind {
				t.Fatalf("ParseUploadID: %+v, %v", u, err)
			}
			if id, err := IDRecordSuffix(v.BackendUploadID, v.IDRecordKey); err != nil || id != v.UploadID {
				t.Fatalf("id record gives %q, %v", id, err)
			}

			o := rebuildV3(t, v)
			stored := o.stored()
			if sha(stored) != v.StoredSHA256 || int64(len(stored)) != v.StoredSize || (v.StoredHex != "" && hex.EncodeToString(stored) != v.StoredHex) {
				t.Fatal("object stored bytes differ from the vector")
			}
			// The reader's first step: the last min(size, 4096) bytes hold the tail.
			end := stored[len(stored)-min(len(stored), 4096):]
			tl, err := OpenTail(e.OK, end, int64(len(stored)))
			if err != nil || tl.Size != int64(len(o.tail)) || tl.K != len(v.Parts) || tl.ETag() != v.ETag ||
				int(tl.Checksum) != v.ChecksumKind || hex.EncodeToString(tl.ChecksumValue) != v.Checksum {
				t.Fatalf("OpenTail: %+v, %v", tl, err)
			}
			if v.ChecksumKind != 0 && ShowChecksum(tl.Checksum, tl.ChecksumValue, tl.K) != v.ChecksumS3 {
				t.Fatalf("checksum shown as %s, vector %s", ShowChecksum(tl.Checksum, tl.ChecksumValue, tl.K), v.ChecksumS3)
			}
			got, tl, err := DecryptMultipartV3(e.OK, stored)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, o.plain) || tl.K != len(v.Parts) || tl.ETag() != v.ETag || hex.EncodeToString(tl.D) != v.PartsDigest {
				t.Fatalf("decrypted %d bytes, K %d, ETag %q", len(got), tl.K, tl.ETag())
			}
			if s := md5.Sum(got); hex.EncodeToString(s[:]) != v.PlainMD5 {
				t.Fatalf("plaintext MD5 %x, vector %s", s, v.PlainMD5)
			}
			if d, err := Decrypt(e, stored, ""); err != nil || !bytes.Equal(d, o.plain) {
				t.Fatalf("Decrypt: %v", err)
			}

			// The first part's record, written from the spec, and opened.
			p, r := v.Parts[0], v.Record
			md := make([]byte, 16)
			if p.MD5Hex != "" {
				md = unhex(t, p.MD5Hex)
			}
			var ck []byte
			if v.ChecksumKind != 0 {
				ck = append([]byte{byte(v.ChecksumKind) &^ 0x80}, unhex(t, v.PartChecksums[0])...)
			}
			name, rk3, facts, aad := specPartRecordV3(e.OK, v.Bucket, v.Key, v.BackendUploadID, r.Part, r.BackendETag, unhex(t, r.Nonce), md, unhex(t, p.PartSalt), uint64(p.PlainSize), ck)
			if hex.EncodeToString(rk3) != r.RK3 || hex.EncodeToString(facts) != r.Facts || hex.EncodeToString(aad) != r.AAD || name != r.Key || r.Part != p.Number {
				t.Fatalf("part record: spec %q RK3 %x facts %x AAD %x\nvector %q", name, rk3, facts, aad, r.Key)
			}
			// Section 3.6.2's lengths: 112 characters, or that of the checksum's size.
			chars := map[int]int{0: 112, 4: 119, 8: 124, 16: 135, 20: 140, 32: 156, 64: 199}[max(len(ck)-1, 0)]
			if sealed := name[strings.LastIndexByte(name, '/')+1:]; len(sealed) != chars {
				t.Fatalf("sealed record of %d characters, want %d", len(sealed), chars)
			}
			rec, err := OpenPartRecordV3(e.OK, v.Bucket, v.Key, v.BackendUploadID, r.Key)
			if err != nil || rec.Part != p.Number || rec.ETag != r.BackendETag || !bytes.Equal(rec.Header(), unhex(t, p.Header)) || hex.EncodeToString(rec.MD5) != p.MD5Hex ||
				hex.EncodeToString(rec.Checksum) != v.PartChecksums[0] || int(rec.ChecksumAlg) != v.ChecksumKind&^0x80 {
				t.Fatalf("OpenPartRecordV3: %+v, %v", rec, err)
			}
			rest := strings.TrimPrefix(r.Key, "\U0010FFFFs3seal/uploads/"+v.BackendUploadID+"/")
			num := fmt.Sprintf("/part/%05d/", r.Part)
			for what, c := range map[string][3]string{
				"another upload": {v.Key, v.BackendUploadID + "x", "\U0010FFFFs3seal/uploads/" + v.BackendUploadID + "x/" + rest},
				"another part":   {v.Key, v.BackendUploadID, strings.Replace(r.Key, num, fmt.Sprintf("/part/%05d/", r.Part%10000+1), 1)},
				"another ETag":   {v.Key, v.BackendUploadID, strings.Replace(r.Key, "/"+r.BackendETag+"/", "/x"+r.BackendETag[1:]+"/", 1)},
				"another object": {v.Key + "x", v.BackendUploadID, r.Key},
			} {
				if _, err := OpenPartRecordV3(e.OK, v.Bucket, c[0], c[1], c[2]); err == nil {
					t.Errorf("a record moved to %s opened", what)
				}
			}
			// A format-2 reader does not take the format-3 record, nor the reverse.
			if _, _, _, err := OpenPartRecord(e.OK, v.Bucket, v.Key, v.BackendUploadID, r.Key); err == nil {
				t.Error("OpenPartRecord (format 2) opened a format-3 record")
			}
		})
	}
}

// TestMultipartV3Refusals: every way a backend can rearrange a format-3 object's parts, or
// alter, cut, strip or swap its tail, or downgrade it, is refused.
func TestMultipartV3Refusals(t *testing.T) {
	vs := loadV3Vectors(t)
	var v, other multiV3Vec
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
	o := rebuildV3(t, v)
	p := o.parts
	stored := o.stored()
	if _, _, err := DecryptMultipartV3(o.ok, stored); err != nil {
		t.Fatalf("the valid object: %v", err)
	}
	// A second upload of part 2 (same number and size, new salt).
	retry, _ := specPartV3(o.ok, v.Parts[1].Number, hkdf32([]byte("another salt"), nil, "test"), plainAt(v.Parts[1].PlainOffset, v.Parts[1].PlainSize), true)
	last := len(p) - 1
	with := func(parts ...[]byte) []byte { return append(bytes.Join(parts, nil), o.tail...) }
	header2 := bytes.Clone(stored)
	header2[len(p[0])] = 2 // version byte of the second part's header: 3 -> 2
	footer := bytes.Clone(stored)
	binary.BigEndian.PutUint32(footer[len(footer)-12:], binary.BigEndian.Uint32(footer[len(footer)-12:])+16)
	otherTail, _ := hex.DecodeString(other.Tail)
	cases := map[string][]byte{
		"first dropped":           with(p[1:]...),
		"middle dropped":          with(append([][]byte{p[0]}, p[2:]...)...),
		"last dropped":            with(p[:last]...),
		"reordered":               with(append([][]byte{p[1], p[0]}, p[2:]...)...),
		"duplicated":              with(append([][]byte{p[0], p[1], p[1]}, p[2:]...)...),
		"second upload of a part": with(append([][]byte{p[0], retry}, p[2:]...)...),
		"tail missing":            bytes.Join(p, nil),
		"tail of another object":  append(bytes.Join(p, nil), otherTail...),
		"footer length + 16":      footer,
		"header version 2":        header2,
		"truncated":               stored[:len(stored)-1],
		"tail cut":                stored[:len(stored)-12],
		"extended":                append(bytes.Clone(stored), 0),
		"a byte before the tail":  append(append(bytes.Join(p, nil), 0), o.tail...),
	}
	for i := len(stored) - len(o.tail); i < len(stored); i++ {
		b := bytes.Clone(stored)
		b[i] ^= 0x10
		cases[fmt.Sprintf("tail byte %d altered", i-(len(stored)-len(o.tail)))] = b
	}
	for name, c := range cases {
		if _, _, err := DecryptMultipartV3(o.ok, c); err == nil {
			t.Errorf("%s: decrypted", name)
		}
	}
	// The retried part alone is a valid part: only the tail tells it apart.
	if _, _, err := decryptStream(hkdf32(o.ok, retry[16:48], "s3seal/2 part"+string(retry[:16])), uint64(v.Parts[1].PlainSize), retry[48:]); err != nil {
		t.Fatalf("the second upload of part %d is not itself a valid part: %v", v.Parts[1].Number, err)
	}
	// A tail with an extension, or runs that do not list the whole layout, sealed under MK3.
	etag, _ := hex.DecodeString(v.ETagMD5)
	_, body, _, _ := specSealTail(o.ok, make([]byte, 12), o.headers, etag, nil)
	seal := func(body []byte) []byte {
		sealed := gcm(hkdf32(o.ok, nil, "s3seal/3 manifest")).Seal(make([]byte, 12), make([]byte, 12), body, []byte("s3seal/3 manifest"))
		return append(binary.BigEndian.AppendUint32(sealed, uint32(len(sealed))), "s3seal/3"...)
	}
	if _, _, err := DecryptMultipartV3(o.ok, append(bytes.Join(p, nil), seal(body)...)); err == nil {
		t.Error("a tail without runs: decrypted")
	}
	tl, _ := hex.DecodeString(v.Tail)
	good, err := OpenTail(o.ok, tl, int64(len(stored)))
	if err != nil {
		t.Fatal(err)
	}
	full, _ := hex.DecodeString(v.ManifestBody)
	ext := bytes.Clone(full)
	ext[len(ext)-1] = 1
	if _, _, err := DecryptMultipartV3(o.ok, append(bytes.Join(p, nil), seal(ext)...)); err == nil {
		t.Error("a tail with an extension length of 1: decrypted")
	}
	if _, _, err := DecryptMultipartV3(o.ok, append(bytes.Join(p, nil), seal(full)...)); err != nil {
		t.Fatalf("the vector's body sealed with another nonce: %v (%d runs)", err, len(good.Runs))
	}
	// Format-2 decoding refuses version-3 headers; an envelope downgraded to version 2 does
	// not open; Decrypt refuses a format-3 object that carries manifest metadata.
	if _, _, err := DecryptMultipartV2(o.ok, bytes.Join(p, nil), "x"); err == nil {
		t.Error("DecryptMultipartV2 read a format-3 object")
	}
	bin, _ := base64.StdEncoding.DecodeString(v.Envelope)
	bin[0] = 2
	if _, err := Open(base64.StdEncoding.EncodeToString(bin), unhex(t, v.DK), v.Bucket, v.Key); err == nil {
		t.Error("envelope with version byte 2 opened")
	}
	bin[0], bin[1] = 3, 0
	if _, err := Open(base64.StdEncoding.EncodeToString(bin), unhex(t, v.DK), v.Bucket, v.Key); err == nil || !strings.Contains(err.Error(), "version 3") {
		t.Errorf("envelope of version 3, kind 0: %v", err)
	}
	e, err := Open(v.Envelope, unhex(t, v.DK), v.Bucket, v.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decrypt(e, stored, "AAAA"); err == nil {
		t.Error("Decrypt read a format-3 object with manifest metadata")
	}
}

// TestParseUploadIDV3Refusals: the tag names the envelope's version.
func TestParseUploadIDV3Refusals(t *testing.T) {
	v3 := loadV3Vectors(t)[0]
	v2 := loadV2Vectors(t)[0]
	for _, c := range []struct{ name, id string }{
		{".s2 tag on a format-3 envelope", strings.Replace(v3.UploadID, ".s3", ".s2", 1)},
		{".s3 tag on a format-2 envelope", strings.Replace(v2.UploadID, ".s2", ".s3", 1)},
		{".s4 tag", strings.Replace(v3.UploadID, ".s3", ".s4", 1)},
		{"no backend id", v3.UploadIDSuffix},
	} {
		if _, err := ParseUploadID(c.id); err == nil {
			t.Errorf("%s: parsed", c.name)
		}
	}
	if u, err := ParseUploadID(v2.UploadID); err != nil || u.Version != 2 {
		t.Errorf("a format-2 id: %+v, %v", u, err)
	}
}
