package format_test

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// Format-3 checksums (docs/FORMAT.md 3.6.6): the kind in the upload id (3.6.1), the part's
// checksum in its record (3.6.2), the object's in the tail (3.6.3).

// validKinds are the twelve kinds S3 offers: COMPOSITE of every algorithm but CRC64NVME,
// FULL_OBJECT of the three CRCs.
func validKinds(t *testing.T) []format.ChecksumKind {
	var ks []format.ChecksumKind
	for a := format.ChecksumCRC32; a.Known(); a++ {
		if a != format.ChecksumCRC64NVME {
			ks = append(ks, format.ChecksumKind{Algorithm: a})
		}
		if a.IsCRC() {
			ks = append(ks, format.ChecksumKind{Algorithm: a, FullObject: true})
		}
	}
	if len(ks) != 12 {
		t.Fatalf("%d valid kinds, FORMAT.md lists 12", len(ks))
	}
	return ks
}

// kindByte is FORMAT.md's byte of a kind: the algorithm's number, plus 0x80 for FULL_OBJECT.
func kindByte(c format.ChecksumKind) byte {
	b := byte(c.Algorithm)
	if c.FullObject {
		b |= 0x80
	}
	return b
}

// plainChecksum is algorithm a's checksum of b (nil for none).
func plainChecksum(a format.ChecksumAlgorithm, b []byte) []byte {
	if a == format.ChecksumNone {
		return nil
	}
	h := a.New()
	h.Write(b)
	return h.Sum(nil)
}

// uploadIDRaw is the decoded suffix of an upload id (after the 3-character tag) and the
// length of its envelope.
func uploadIDRaw(t *testing.T, id string) ([]byte, int) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(id[strings.LastIndexByte(id, '.')+3:])
	if err != nil || len(raw) < 2 {
		t.Fatalf("id %q: %v", id, err)
	}
	return raw, int(binary.BigEndian.Uint16(raw))
}

// rawUploadID is an upload id with the given tag whose suffix encodes be16(len(env)) ‖ env ‖ rest.
func rawUploadID(backend, tag string, env *format.Envelope, rest []byte) string {
	e, _ := base64.StdEncoding.DecodeString(env.Encode())
	raw := append(binary.BigEndian.AppendUint16(nil, uint16(len(e))), e...)
	return backend + tag + base64.RawURLEncoding.EncodeToString(append(raw, rest...))
}

func multipartEnvelope(t *testing.T, ver int) *format.Envelope {
	t.Helper()
	e, err := format.SealEnvelope(format.AsVersion(newKey(t), ver), randomBytes(t, 32), format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapProvider, KeyID: "arn:x", WrappedKey: randomBytes(t, 96), Bucket: "b", Object: "o"})
	if err != nil || e.Version() != ver {
		t.Fatalf("envelope of version %d: %v", ver, err)
	}
	return e
}

// TestUploadIDChecksumKinds: every kind S3 offers goes into a format-3 upload id as one byte
// between the envelope and the context, and parses back, with and without a context, also
// through the id record; an id without a kind has no such byte.
func TestUploadIDChecksumKinds(t *testing.T) {
	e3 := multipartEnvelope(t, format.Version3)
	for _, ctx := range []string{"", "eyJhIjoiYiJ9"} {
		plain := format.UploadID{Backend: "Zm9v.up", Envelope: e3, Context: ctx}.String()
		if plain != rawUploadID("Zm9v.up", ".s3", e3, []byte(ctx)) {
			t.Fatalf("an id without a checksum is not be16(len(E)) ‖ E ‖ C: %q", plain)
		}
		for _, k := range validKinds(t) {
			if b := format.ChecksumKindByte(k); b != kindByte(k) {
				t.Fatalf("%+v: byte form %#x, FORMAT.md says %#x", k, b, kindByte(k))
			}
			u := format.UploadID{Backend: "Zm9v.up", Envelope: e3, Context: ctx, Checksum: k}
			id := u.String()
			if id != rawUploadID("Zm9v.up", ".s3", e3, append([]byte{kindByte(k)}, ctx...)) {
				t.Fatalf("%+v, context %q: id %q is not be16(len(E)) ‖ E ‖ CK ‖ C", k, ctx, id)
			}
			raw, n := uploadIDRaw(t, id)
			if raw[2+n] != kindByte(k) || string(raw[3+n:]) != ctx {
				t.Fatalf("%+v: byte %#x after the envelope", k, raw[2+n])
			}
			got, err := format.ParseUploadID(id)
			if err != nil || got.Checksum != k || got.Context != ctx || got.Backend != "Zm9v.up" || got.Envelope.Encode() != e3.Encode() {
				t.Fatalf("%+v, context %q: parsed as %+v, %v", k, ctx, got, err)
			}
			// The id record holds the same suffix, kind included.
			key, fits := format.IDRecordKey(u)
			r, err := format.ParseUploadRecord("Zm9v.up", key)
			if !fits || err != nil || r.IDSuffix != id[len("Zm9v.up"):] {
				t.Fatalf("%+v: id record %q parsed as %+v, %v", k, key, r, err)
			}
		}
	}
}

// TestUploadIDChecksumRefusals: after a format-3 envelope, a byte outside 0x21–0x7e must be a
// kind S3 offers (0x84, FULL_OBJECT SHA1, and 0x03, COMPOSITE CRC64NVME, are not), and comes
// once, before the context; a format-2 id carries none.
func TestUploadIDChecksumRefusals(t *testing.T) {
	e3, e2 := multipartEnvelope(t, format.Version3), multipartEnvelope(t, format.Version2)
	valid := map[byte]bool{}
	for _, k := range validKinds(t) {
		valid[kindByte(k)] = true
	}
	accepted := 0
	for b := 0; b < 256; b++ {
		if b >= 0x21 && b <= 0x7e {
			continue // the start of the context
		}
		id := rawUploadID("up", ".s3", e3, []byte{byte(b), 'x'})
		u, err := format.ParseUploadID(id)
		switch {
		case valid[byte(b)] && (err != nil || kindByte(u.Checksum) != byte(b) || u.Context != "x"):
			t.Errorf("kind %#x: %+v, %v", b, u, err)
		case !valid[byte(b)] && !errors.Is(err, format.ErrMalformed):
			t.Errorf("byte %#x after the envelope: %+v, %v, want ErrMalformed", b, u.Checksum, err)
		case err == nil:
			accepted++
		}
	}
	if accepted != 12 {
		t.Errorf("%d kind bytes accepted, want 12", accepted)
	}
	// String writes whatever kind it is given; ParseUploadID refuses the ones S3 does not offer.
	for _, k := range []format.ChecksumKind{
		{Algorithm: format.ChecksumSHA1, FullObject: true},   // 0x84
		{Algorithm: format.ChecksumCRC64NVME},                // 0x03
		{Algorithm: format.ChecksumSHA256, FullObject: true}, // 0x85
		{Algorithm: 11},
	} {
		id := format.UploadID{Backend: "up", Envelope: e3, Checksum: k}.String()
		if _, err := format.ParseUploadID(id); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("an id of kind %#x: %v, want ErrMalformed", kindByte(k), err)
		}
	}
	for name, rest := range map[string][]byte{
		"two kinds":                  {0x05, 0x05, 'x'},
		"a kind after the context":   {'x', 0x05},
		"a kind inside the context":  {'x', 0x05, 'y'},
		"a kind and a space":         {0x05, ' '},
		"FULL_OBJECT without number": {0x80},
	} {
		if _, err := format.ParseUploadID(rawUploadID("up", ".s3", e3, rest)); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	// Format 2: no kind byte is written, and one found is refused as context.
	id2 := format.UploadID{Backend: "up", Envelope: e2, Context: "x", Checksum: format.ChecksumKind{Algorithm: format.ChecksumCRC32}}.String()
	if id2 != rawUploadID("up", ".s2", e2, []byte("x")) {
		t.Errorf("a format-2 id with a kind byte: %q", id2)
	}
	if u, err := format.ParseUploadID(id2); err != nil || u.Checksum != (format.ChecksumKind{}) {
		t.Errorf("format-2 id: %+v, %v", u, err)
	}
	if _, err := format.ParseUploadID(rawUploadID("up", ".s2", e2, []byte{0x01, 'x'})); !errors.Is(err, format.ErrMalformed) {
		t.Errorf("a format-2 id with a kind byte parsed: %v", err)
	}
}

// recordChars is the length in characters of a format-3 record's sealed value with a checksum
// of size bytes (FORMAT.md 3.6.2: 85 + size bytes; 112 characters without).
func recordChars(size int) int {
	n := 12 + 56 + 16
	if size > 0 {
		n += 1 + size
	}
	return (n*8 + 5) / 6
}

// TestPartRecordChecksums: a format-3 record seals a checksum of every algorithm and opens to
// the same facts; without one it opens to none; a checksum of an unknown algorithm or of the
// wrong size is not sealed.
func TestPartRecordChecksums(t *testing.T) {
	k := fuzzKey(t) // a new key: format 3
	plain := []byte("part one")
	sum := md5.Sum(plain)
	base := format.PartFacts{MD5: sum[:], PlainSize: int64(len(plain))}
	copy(base.Salt[:], randomBytes(t, 32))
	open := func(name string) (format.PartFacts, error) {
		r, err := format.ParseUploadRecord("up-1", name)
		if err != nil {
			return format.PartFacts{}, err
		}
		return k.OpenPartRecord("b", "dir/o", "up-1", r)
	}
	for a := format.ChecksumAlgorithm(0); a <= format.ChecksumXXHASH128; a++ {
		f := base
		if a != format.ChecksumNone {
			f.Checksum = format.PartChecksum{Algorithm: a, Value: plainChecksum(a, plain)}
		}
		name, fits, err := k.PartRecordKey("b", "dir/o", "up-1", 3, `"etag-3"`, f)
		if err != nil || !fits {
			t.Fatalf("%s: %v", a, err)
		}
		if sealed := name[strings.LastIndexByte(name, '/')+1:]; len(sealed) != recordChars(a.Size()) {
			t.Errorf("%s: sealed value of %d characters, want %d", a, len(sealed), recordChars(a.Size()))
		}
		got, err := open(name)
		if err != nil || got.Checksum.Algorithm != a || !bytes.Equal(got.Checksum.Value, f.Checksum.Value) ||
			!bytes.Equal(got.MD5, f.MD5) || got.Salt != f.Salt || got.PlainSize != f.PlainSize {
			t.Errorf("%s: sealed %+v, opened %+v, %v", a, f, got, err)
		}
		if a != format.ChecksumNone && len(got.Checksum.Value) != a.Size() {
			t.Errorf("%s: checksum of %d bytes", a, len(got.Checksum.Value))
		}
		// Under a format-2 key a format-3 record, checksum or not, does not open.
		r, _ := format.ParseUploadRecord("up-1", name)
		if _, err := format.AsVersion(fuzzKey(t), format.Version2).OpenPartRecord("b", "dir/o", "up-1", r); !errors.Is(err, format.ErrAuth) {
			t.Errorf("%s: a format-3 record under a format-2 key: %v", a, err)
		}
	}
	for name, c := range map[string]format.PartChecksum{
		"algorithm 11":       {Algorithm: 11, Value: make([]byte, 4)},
		"CRC32 of 8 bytes":   {Algorithm: format.ChecksumCRC32, Value: make([]byte, 8)},
		"SHA256 of 31 bytes": {Algorithm: format.ChecksumSHA256, Value: make([]byte, 31)},
		"SHA512 of 65 bytes": {Algorithm: format.ChecksumSHA512, Value: make([]byte, 65)},
		"MD5 without value":  {Algorithm: format.ChecksumMD5},
	} {
		f := base
		f.Checksum = c
		if _, _, err := k.PartRecordKey("b", "dir/o", "up-1", 3, `"etag-3"`, f); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("%s sealed: %v, want ErrMalformed", name, err)
		}
	}
}

// TestPartRecordSealedLengths: ParseUploadRecord accepts exactly the sealed lengths FORMAT.md
// lists (format 2's 44 bytes; format 3's 84, or 85 + an algorithm's size), and a real record
// stretched to another algorithm's length parses but does not open.
func TestPartRecordSealedLengths(t *testing.T) {
	want := map[int]bool{44: true, 84: true}
	for a := format.ChecksumCRC32; a.Known(); a++ {
		want[85+a.Size()] = true
	}
	if len(want) != 8 { // sizes 4, 8, 16, 20, 32, 64
		t.Fatalf("%d lengths", len(want))
	}
	for n := 0; n <= 200; n++ {
		name := format.PartRecordsOf("up") + "00001/e/" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, n))
		_, err := format.ParseUploadRecord("up", name)
		if want[n] != (err == nil) || (err != nil && !errors.Is(err, format.ErrMalformed)) {
			t.Errorf("a sealed value of %d bytes: %v", n, err)
		}
	}
	k := fuzzKey(t)
	f := format.PartFacts{PlainSize: 1, Checksum: format.PartChecksum{Algorithm: format.ChecksumSHA256, Value: make([]byte, 32)}}
	name, _, err := k.PartRecordKey("b", "o", "up", 1, "e", f)
	if err != nil {
		t.Fatal(err)
	}
	at := strings.LastIndexByte(name, '/') + 1
	sealed, _ := base64.RawURLEncoding.DecodeString(name[at:])
	for _, s := range [][]byte{
		append(bytes.Clone(sealed), make([]byte, 32)...), // 149: SHA512's length
		sealed[:len(sealed)-16],                          // 101: MD5's length
		sealed[:84],                                      // 84: no checksum
	} {
		r, err := format.ParseUploadRecord("up", name[:at]+base64.RawURLEncoding.EncodeToString(s))
		if err != nil {
			t.Fatalf("%d bytes: %v", len(s), err)
		}
		if _, err := k.OpenPartRecord("b", "o", "up", r); !errors.Is(err, format.ErrAuth) {
			t.Errorf("the record cut or stretched to %d bytes: %v, want ErrAuth", len(s), err)
		}
	}
	for _, s := range [][]byte{append(bytes.Clone(sealed), 0), sealed[:len(sealed)-1]} {
		if _, err := format.ParseUploadRecord("up", name[:at]+base64.RawURLEncoding.EncodeToString(s)); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("the record's sealed value of %d bytes: %v, want ErrMalformed", len(s), err)
		}
	}
}

// TestPartRecordChecksumFacts: what OpenPartRecord refuses after the seal opens: bytes after
// be64(p) that are not a known algorithm's number and exactly its size in bytes.
func TestPartRecordChecksumFacts(t *testing.T) {
	k := fuzzKey(t)
	facts := make([]byte, 56)
	binary.BigEndian.PutUint64(facts[48:], 9)
	seal := func(tail ...byte) (format.PartFacts, error) {
		name := format.SealPartRecordFacts(k, make([]byte, 12), "b", "o", "up", 2, "e", append(bytes.Clone(facts), tail...))
		r, err := format.ParseUploadRecord("up", name)
		if err != nil {
			return format.PartFacts{}, err
		}
		return k.OpenPartRecord("b", "o", "up", r)
	}
	if f, err := seal(1, 1, 2, 3, 4); err != nil || f.Checksum.Algorithm != format.ChecksumCRC32 || !bytes.Equal(f.Checksum.Value, []byte{1, 2, 3, 4}) || f.PlainSize != 9 {
		t.Fatalf("a CRC32 record sealed by hand: %+v, %v", f, err)
	}
	if f, err := seal(); err != nil || f.Checksum.Algorithm != format.ChecksumNone || f.Checksum.Value != nil {
		t.Fatalf("a record without a checksum sealed by hand: %+v, %v", f, err)
	}
	for name, tail := range map[string][]byte{
		"algorithm 0":                   {0, 1, 2, 3, 4},
		"algorithm 11":                  {11, 1, 2, 3, 4},
		"the kind byte 0x81":            {0x81, 1, 2, 3, 4},
		"CRC32 of 8 bytes":              {1, 1, 2, 3, 4, 5, 6, 7, 8},
		"CRC64NVME of 4 bytes":          {3, 1, 2, 3, 4},
		"XXHASH128 of 8 bytes":          append([]byte{10}, make([]byte, 8)...),
		"SHA1 of 16 bytes (MD5's size)": append([]byte{4}, make([]byte, 16)...),
	} {
		if f, err := seal(tail...); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("%s: opened to %+v, %v; want ErrMalformed", name, f.Checksum, err)
		}
	}
}

// TestTailChecksumKinds: the tail seals and opens the checksum of every kind S3 offers, shown
// as S3 does; every other kind byte is neither sealed nor, found in a sealed body, opened.
func TestTailChecksumKinds(t *testing.T) {
	k := fuzzKey(t)
	parts := []format.ManifestPart{{Number: 1, PlainSize: 5 << 20}, {Number: 3, PlainSize: 7}}
	size := func(tail []byte) int64 {
		return int64(len(tail)) + format.PartEncryptedSize(5<<20) + format.PartEncryptedSize(7)
	}
	valid := map[byte]bool{}
	for _, kind := range validKinds(t) {
		valid[kindByte(kind)] = true
		ck := format.ObjectChecksum{Kind: kind, Value: randomBytes(t, int64(kind.Algorithm.Size()))}
		tail, _, err := k.SealTailChecksum(parts, ck)
		if err != nil {
			t.Fatalf("%+v: %v", kind, err)
		}
		plainTail, _, _ := k.SealTail(parts)
		if len(tail) != len(plainTail)+1+kind.Algorithm.Size() {
			t.Errorf("%+v: tail of %d bytes, %d without a checksum", kind, len(tail), len(plainTail))
		}
		tl, err := k.OpenTail(tail, size(tail))
		if err != nil || tl.Checksum.Kind != kind || !bytes.Equal(tl.Checksum.Value, ck.Value) {
			t.Fatalf("%+v: opened to %+v, %v", kind, tl, err)
		}
		want := base64.StdEncoding.EncodeToString(ck.Value)
		if !kind.FullObject {
			want += "-2"
		}
		if got := tl.Checksum.String(tl.Parts); got != want || tl.Checksum.Kind.Type() != map[bool]string{true: "FULL_OBJECT", false: "COMPOSITE"}[kind.FullObject] {
			t.Errorf("%+v shown as %s (%s), want %s", kind, got, tl.Checksum.Kind.Type(), want)
		}
	}
	tail, _, _ := k.SealTail(parts)
	if tl, err := k.OpenTail(tail, size(tail)); err != nil || tl.Checksum.Kind != (format.ChecksumKind{}) || tl.Checksum.Value != nil || tl.Checksum.Kind.Type() != "" {
		t.Errorf("a tail without a checksum: %+v, %v", tl, err)
	}
	for b := 1; b < 256; b++ {
		if valid[byte(b)] {
			continue
		}
		kind := format.ChecksumKind{Algorithm: format.ChecksumAlgorithm(b &^ 0x80), FullObject: b&0x80 != 0}
		n := max(kind.Algorithm.Size(), 4)
		// 0x80 is no algorithm: SealTailChecksum seals no checksum then (FullObject and the
		// value are not looked at); a reader refuses it all the same.
		if _, _, err := k.SealTailChecksum(parts, format.ObjectChecksum{Kind: kind, Value: make([]byte, n)}); b != 0x80 && !errors.Is(err, format.ErrMalformed) {
			t.Errorf("kind %#x sealed: %v", b, err)
		}
		body := tailBody(2, append([]byte{byte(b)}, make([]byte, n)...), 1, 1, 5<<20, 3, 1, 7)
		tl := fuzzTail(body)
		if _, err := k.OpenTail(tl, size(tl)); !errors.Is(err, format.ErrVersion) {
			t.Errorf("a tail with kind %#x: %v, want ErrVersion", b, err)
		}
	}
}

// tailBody is a format-3 tail body of K parts (no MD5s, a zero digest) with the runs given as
// (first, count, size) triples and the extension ext.
func tailBody(k uint32, ext []byte, runs ...uint64) []byte {
	b := binary.BigEndian.AppendUint32(nil, k)
	b = append(b, make([]byte, 48)...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(runs)/3))
	for i := 0; i+2 < len(runs); i += 3 {
		b = binary.BigEndian.AppendUint32(b, uint32(runs[i]))
		b = binary.BigEndian.AppendUint32(b, uint32(runs[i+1]))
		b = binary.BigEndian.AppendUint64(b, runs[i+2])
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(ext)))
	return append(b, ext...)
}
