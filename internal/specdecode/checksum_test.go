package specdecode

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// Checksums (FORMAT.md 3.6.6): the table, and the checksum fields of the format-3 vectors and
// what a reader must refuse of them (upload id 3.6.1, part record 3.6.2, tail 3.6.3).

// specPartChecksum is the hex of a part's checksum of the algorithm of kind ck ("" for none).
func specPartChecksum(t *testing.T, ck byte, plain []byte) string {
	t.Helper()
	if ck == 0 {
		return ""
	}
	c, err := Checksum(ck&^0x80, plain)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(c)
}

// specExtension is the tail extension of vector v (section 3.6.3): empty without a checksum,
// else CK ‖ value with value computed from the definitions of section 3.6.6 (written out here,
// apart from ObjectChecksum) and compared with the vector's.
func specExtension(t *testing.T, v multiV3Vec, plains [][]byte) []byte {
	t.Helper()
	ck := byte(v.ChecksumKind)
	if ck == 0 {
		if v.Checksum != "" || v.ChecksumS3 != "" {
			t.Fatalf("a vector without a kind has checksum %q", v.Checksum)
		}
		return nil
	}
	alg := ck &^ 0x80
	var value []byte
	if ck&0x80 != 0 { // FULL_OBJECT: the CRC of the whole plaintext
		value, _ = Checksum(alg, bytes.Join(plains, nil))
	} else { // COMPOSITE: the checksum of the raw part checksums, in part order
		var cat []byte
		for _, p := range plains {
			c, _ := Checksum(alg, p)
			cat = append(cat, c...)
		}
		value, _ = Checksum(alg, cat)
	}
	shown := base64.StdEncoding.EncodeToString(value)
	if ck&0x80 == 0 {
		shown += fmt.Sprintf("-%d", len(plains))
	}
	if hex.EncodeToString(value) != v.Checksum || shown != v.ChecksumS3 {
		t.Fatalf("spec checksum %x (%s), vector %s (%s)", value, shown, v.Checksum, v.ChecksumS3)
	}
	if got, err := ObjectChecksum(ck, plains); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("ObjectChecksum %x, %v; spec %x", got, err, value)
	}
	return append([]byte{ck}, value...)
}

// TestChecksumTable: the twelve kinds of section 3.6.6 and no other byte, the sizes, and each
// algorithm's check value (of "123456789", or of the empty string for the xxHashes).
func TestChecksumTable(t *testing.T) {
	want := map[byte]bool{0x01: true, 0x02: true, 0x04: true, 0x05: true, 0x06: true, 0x07: true, 0x08: true, 0x09: true, 0x0a: true, 0x81: true, 0x82: true, 0x83: true}
	for b := 0; b < 256; b++ {
		if ValidKind(byte(b)) != want[byte(b)] {
			t.Errorf("ValidKind(%#x) = %v", b, !want[byte(b)])
		}
		if ValidKind(byte(b)) && b >= 0x21 && b <= 0x7e {
			t.Errorf("kind %#x is printable ASCII: an upload id could not tell it from C", b)
		}
	}
	for _, c := range []struct {
		alg         byte
		name, input string
		check       string
	}{
		{1, "CRC32", "123456789", "cbf43926"},
		{2, "CRC32C", "123456789", "e3069283"},
		{3, "CRC64NVME", "123456789", "ae8b14860a799888"},
		{4, "SHA1", "123456789", "f7c3bc1d808e04732adf679965ccc34ca7ae3441"},
		{5, "SHA256", "123456789", "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"},
		{6, "SHA512", "123456789", "d9e6762dd1c8eaf6d61b3c6192fc408d4d6d5f1176d0c29169bc24e71c3f274ad27fcd5811b313d681f7e55ec02d73d499c95455b6b5bb503acf574fba8ffe85"},
		{7, "MD5", "123456789", "25f9e794323b453885f5181f1b624d0b"},
		{8, "XXHASH64", "", "ef46db3751d8e999"},
		{9, "XXHASH3", "", "2d06800538d394c2"},
		{10, "XXHASH128", "", "99aa06d3014798d86001c324468d497f"},
	} {
		got, err := Checksum(c.alg, []byte(c.input))
		if err != nil || hex.EncodeToString(got) != c.check || ChecksumSize(c.alg) != len(c.check)/2 || ChecksumName(c.alg) != c.name {
			t.Errorf("%s (%d): %x of %d bytes, %v; want %s", c.name, c.alg, got, ChecksumSize(c.alg), err, c.check)
		}
	}
	for _, alg := range []byte{0, 11, 0x81, 0xff} {
		if _, err := Checksum(alg, nil); err == nil || ChecksumSize(alg) != 0 {
			t.Errorf("algorithm %d has a checksum", alg)
		}
	}
	if _, err := ObjectChecksum(0x03, [][]byte{nil}); err == nil {
		t.Error("a COMPOSITE CRC64NVME object checksum")
	}
}

// checksumVector returns the first format-3 vector of kind ck.
func checksumVector(t *testing.T, ck byte) multiV3Vec {
	t.Helper()
	for _, v := range loadV3Vectors(t) {
		if v.ChecksumKind == int(ck) {
			return v
		}
	}
	t.Fatalf("no format-3 vector of checksum kind %#x", ck)
	return multiV3Vec{}
}

// TestUploadIDChecksumRefusals: after E, a byte outside 0x21–0x7e is CK and must be a valid
// kind; only ".s3" ids carry one; every kind round-trips.
func TestUploadIDChecksumRefusals(t *testing.T) {
	v := checksumVector(t, 0x83) // an id with a context after CK
	if v.Ctx == "" {
		t.Fatal("the FULL_OBJECT CRC64NVME vector has no context")
	}
	bin, _ := base64.StdEncoding.DecodeString(v.Envelope)
	id := func(tag string, rest ...byte) string {
		raw := append(binary.BigEndian.AppendUint16(nil, uint16(len(bin))), bin...)
		return v.BackendUploadID + tag + base64.RawURLEncoding.EncodeToString(append(raw, rest...))
	}
	if got := id(".s3", append([]byte{0x83}, v.Ctx...)...); got != v.UploadID {
		t.Fatalf("spec id %s\nvector  %s", got, v.UploadID)
	}
	for b := 0; b < 256; b++ {
		if b >= 0x21 && b <= 0x7e {
			continue
		}
		u, err := ParseUploadID(id(".s3", append([]byte{byte(b)}, v.Ctx...)...))
		if ValidKind(byte(b)) != (err == nil) || (err == nil && (int(u.Checksum) != b || u.Ctx != v.Ctx)) {
			t.Errorf("CK %#x: %+v, %v", b, u, err)
		}
	}
	for name, c := range map[string]string{
		"two kind bytes":                  id(".s3", append([]byte{0x83, 0x83}, v.Ctx...)...),
		"a kind after the context":        id(".s3", append([]byte(v.Ctx), 0x83)...),
		"a kind in a format-2 id":         strings.Replace(id(".s3", 0x01), ".s3", ".s2", 1),
		"FULL_OBJECT SHA1":                id(".s3", 0x84),
		"COMPOSITE CRC64NVME":             id(".s3", 0x03),
		"a FULL_OBJECT without algorithm": id(".s3", 0x80),
		"no algorithm":                    id(".s3", 0x00),
		"algorithm 11":                    id(".s3", 0x0b),
	} {
		if u, err := ParseUploadID(c); err == nil {
			t.Errorf("%s: parsed as %+v", name, u)
		}
	}
	// A format-2 id with a byte outside 0x21–0x7e in front of C is refused too.
	v2 := loadV2Vectors(t)[0]
	b2, _ := base64.StdEncoding.DecodeString(v2.Envelope)
	raw := append(append(binary.BigEndian.AppendUint16(nil, uint16(len(b2))), b2...), 0x01)
	if _, err := ParseUploadID(v2.BackendUploadID + ".s2" + base64.RawURLEncoding.EncodeToString(raw)); err == nil {
		t.Error("a format-2 id with a kind byte parsed")
	}
}

// TestPartRecordChecksumRefusals: records of the vectors re-sealed from the spec with a
// checksum of every algorithm open to it; other lengths, unknown algorithms and values of
// another size do not.
func TestPartRecordChecksumRefusals(t *testing.T) {
	v := checksumVector(t, 0x05)
	ok, p := unhex(t, v.OK), v.Parts[0]
	seal := func(ck []byte) string {
		name, _, _, _ := specPartRecordV3(ok, v.Bucket, v.Key, v.BackendUploadID, p.Number, v.Record.BackendETag, unhex(t, v.Record.Nonce), unhex(t, p.MD5Hex), unhex(t, p.PartSalt), uint64(p.PlainSize), ck)
		return name
	}
	open := func(name string) (*PartRecord, error) {
		return OpenPartRecordV3(ok, v.Bucket, v.Key, v.BackendUploadID, name)
	}
	if name := seal(append([]byte{5}, unhex(t, v.PartChecksums[0])...)); name != v.Record.Key {
		t.Fatalf("spec record %q\nvector     %q", name, v.Record.Key)
	}
	for alg := byte(1); alg <= 10; alg++ {
		value := bytes.Repeat([]byte{alg}, ChecksumSize(alg))
		r, err := open(seal(append([]byte{alg}, value...)))
		if err != nil || r.ChecksumAlg != alg || !bytes.Equal(r.Checksum, value) || r.Size != uint64(p.PlainSize) {
			t.Errorf("a record with a %s checksum: %+v, %v", ChecksumName(alg), r, err)
		}
	}
	// Section 3.6.2's sealed lengths, and no other, before anything is opened.
	lengths := map[int]bool{84: true, 89: true, 93: true, 101: true, 105: true, 117: true, 149: true}
	for n := 0; n <= 200; n++ {
		if recordLengthV3(n) != lengths[n] {
			t.Errorf("a sealed record of %d bytes: accepted %v", n, !lengths[n])
		}
	}
	if r, err := open(seal(nil)); err != nil || r.ChecksumAlg != 0 || r.Checksum != nil {
		t.Errorf("a record without a checksum: %+v, %v", r, err)
	}
	for name, ck := range map[string][]byte{
		"algorithm 0":                       append([]byte{0}, make([]byte, 4)...),
		"algorithm 11 (CRC32's length)":     append([]byte{11}, make([]byte, 4)...),
		"the kind byte, not the number":     append([]byte{0x81}, make([]byte, 4)...),
		"CRC32 of 8 bytes (a valid length)": append([]byte{1}, make([]byte, 8)...),
		"SHA256 of 31 bytes":                append([]byte{5}, make([]byte, 31)...),
		"an algorithm without a value":      {1},
		"SHA512 and a byte more":            append([]byte{6}, make([]byte, 65)...),
	} {
		if r, err := open(seal(ck)); err == nil {
			t.Errorf("%s: opened to %+v", name, r)
		}
	}
}

// TestTailChecksumRefusals: a tail sealed from the spec with the vector's extension opens; with
// E not the length after it, an unknown kind, a value of another size or another value (the
// latter opens, but its object does not decode) it is refused.
func TestTailChecksumRefusals(t *testing.T) {
	v := checksumVector(t, 0x82)
	o := rebuildV3(t, v)
	parts := bytes.Join(o.parts, nil)
	etag := unhex(t, v.ETagMD5)
	runs := []specRun{}
	for _, p := range v.Parts {
		runs = append(runs, specRun{uint32(p.Number), 1, uint64(p.PlainSize)})
	}
	tail := func(ext []byte) []byte {
		tl, _, _, _ := specSealTailExt(o.ok, make([]byte, 12), o.headers, etag, runs, ext)
		return tl
	}
	value := unhex(t, v.Checksum)
	good := append(parts, tail(append([]byte{0x82}, value...))...)
	if _, tl, err := DecryptMultipartV3(o.ok, good); err != nil || tl.Checksum != 0x82 || !bytes.Equal(tl.ChecksumValue, value) {
		t.Fatalf("the vector's object with its tail re-sealed: %v", err)
	}
	if _, tl, err := DecryptMultipartV3(o.ok, append(parts, tail(nil)...)); err != nil || tl.Checksum != 0 || tl.ChecksumValue != nil {
		t.Fatalf("the object without a checksum: %v", err)
	}
	for name, ext := range map[string][]byte{
		"FULL_OBJECT SHA256":  append([]byte{0x85}, make([]byte, 32)...),
		"COMPOSITE CRC64NVME": append([]byte{0x03}, make([]byte, 8)...),
		"kind 0":              {0, 0, 0, 0, 0},
		"kind 0x7f":           {0x7f, 0, 0, 0, 0},
		"CRC32C cut short":    append([]byte{0x82}, value[:3]...),
		"CRC32C and a byte":   append(append([]byte{0x82}, value...), 0),
		"a kind alone":        {0x82},
	} {
		tl := tail(ext)
		if _, err := OpenTail(o.ok, tl, int64(len(parts)+len(tl))); err == nil {
			t.Errorf("%s: the tail opened", name)
		}
	}
	// E one more, and one less, than the bytes after it (the body re-sealed as it is).
	_, body, _, _ := specSealTailExt(o.ok, make([]byte, 12), o.headers, etag, runs, append([]byte{0x82}, value...))
	e := len(body) - 1 - len(value) - 2
	for _, d := range []int{1, -1} {
		b := bytes.Clone(body)
		binary.BigEndian.PutUint16(b[e:], uint16(1+len(value)+d))
		sealed := gcm(hkdf32(o.ok, nil, "s3seal/3 manifest")).Seal(make([]byte, 12), make([]byte, 12), b, []byte("s3seal/3 manifest"))
		tl := append(binary.BigEndian.AppendUint32(sealed, uint32(len(sealed))), "s3seal/3"...)
		if _, err := OpenTail(o.ok, tl, int64(len(parts)+len(tl))); err == nil {
			t.Errorf("E off by %d: the tail opened", d)
		}
	}
	// Another value of the right size: a tail like any other, but not the plaintext's checksum.
	other := bytes.Clone(value)
	other[0] ^= 1
	bad := append(parts, tail(append([]byte{0x82}, other...))...)
	if _, err := OpenTail(o.ok, bad, int64(len(bad))); err != nil {
		t.Fatalf("a tail with another checksum value does not open: %v", err)
	}
	if _, _, err := DecryptMultipartV3(o.ok, bad); err == nil {
		t.Error("an object whose tail's checksum is not its plaintext's decoded")
	}
	// The same value as COMPOSITE: not the checksum of the parts' checksums.
	if _, _, err := DecryptMultipartV3(o.ok, append(parts, tail(append([]byte{0x02}, value...))...)); err == nil {
		t.Error("the FULL_OBJECT value as a COMPOSITE checksum decoded")
	}
}
