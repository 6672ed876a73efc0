package format_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/specdecode"
)

// Fixed keys of the fuzz targets (so seeds stay valid across runs).
func fuzzOK() []byte { return bytes.Repeat([]byte{0x42}, 32) }
func fuzzDK() []byte { return bytes.Repeat([]byte{0x24}, 32) }

func fuzzKey(t testing.TB) *format.ObjectKey {
	k, err := format.NewObjectKeyFrom(bytes.NewReader(fuzzOK()))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func isTyped(err error) bool {
	for _, s := range []error{format.ErrAuth, format.ErrMalformed, format.ErrVersion, format.ErrSize, format.ErrRange} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		e, err := format.DecodeEnvelope(s)
		if err != nil {
			if !isTyped(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if e.Encode() != s {
			t.Fatalf("decode/encode not canonical: %q -> %q", s, e.Encode())
		}
		k, err := e.Open(fuzzDK(), "bucket", "object")
		if err != nil && !errors.Is(err, format.ErrAuth) {
			t.Fatalf("Open: %v", err)
		}
		if err == nil && !sameKey(k, fuzzKey(t)) {
			t.Fatal("an envelope opened to a key that was never sealed")
		}
	})
}

// FuzzDecryptAll feeds arbitrary stored bytes to the decryptor under a fixed key. Single-part
// encryption is deterministic, so any accepted input must be exactly the encryption of what
// it decrypted to.
func FuzzDecryptAll(f *testing.F) {
	f.Fuzz(func(t *testing.T, stored []byte) {
		k := fuzzKey(t)
		out, sum, err := decryptSingle(k, stored)
		if err != nil {
			if !isTyped(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again := encryptSingle(t, k, out, format.EncryptOptions{ComputeMD5: sum != nil})
		if !bytes.Equal(again, stored) {
			t.Fatalf("accepted %d stored bytes that are not the encryption of their plaintext", len(stored))
		}
	})
}

func FuzzParsePartHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, h []byte) {
		n, p, err := format.ParsePartHeader(h)
		if err != nil {
			if !isTyped(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(h) != 48 || n < 1 || n > 10000 || p < 0 || p > format.MaxPlainSize || (h[0] != 1 && h[0] != 2 && h[0] != 3) || h[1] != 1 {
			t.Fatalf("accepted header %x as part %d size %d", h, n, p)
		}
		s, err := fuzzKey(t).PartStream(h, n)
		if err != nil {
			if !isTyped(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if s.PlainSize() != p || s.StoredSize() != format.EncryptedSize(p) {
			t.Fatalf("stream sizes %d/%d for plaintext %d", s.PlainSize(), s.StoredSize(), p)
		}
	})
}

func FuzzDecodeUploadID(f *testing.F) {
	f.Fuzz(func(t *testing.T, id string) {
		b, u, err := format.DecodeUploadID(id)
		if err != nil {
			if !isTyped(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if b == "" || len(u) != 32 || format.EncodeUploadID(b, u) != id {
			t.Fatalf("DecodeUploadID(%q) = %q, %x", id, b, u)
		}
	})
}

// FuzzParseUploadID: an upload id that parses re-encodes to the same string, names a backend
// id and carries an envelope of kind 1 and of the version its tag names (".s2": 2, ".s3": 3);
// the independent decoder accepts no id that format refuses, and reads the same fields from
// the ids both accept.
func FuzzParseUploadID(f *testing.F) {
	f.Fuzz(func(t *testing.T, id string) {
		u, err := format.ParseUploadID(id)
		su, serr := specdecode.ParseUploadID(id)
		if err != nil {
			if !isTyped(err) {
				t.Fatalf("untyped error %v", err)
			}
			if serr == nil {
				t.Fatalf("specdecode parsed %q, format refused it: %v", id, err)
			}
			return
		}
		if u.Backend == "" || u.Envelope == nil || (u.Envelope.Version() != format.Version2 && u.Envelope.Version() != format.Version3) || u.Envelope.Kind != format.KindMultipart {
			t.Fatalf("ParseUploadID(%q) = %+v", id, u)
		}
		if tag := fmt.Sprintf(".s%d", u.Envelope.Version()); !strings.HasPrefix(id[len(u.Backend):], tag) {
			t.Fatalf("ParseUploadID(%q): envelope of version %d after the tag %q", id, u.Envelope.Version(), id[len(u.Backend):][:3])
		}
		if u.String() != id {
			t.Fatalf("ParseUploadID/String not canonical: %q -> %q", id, u.String())
		}
		if serr == nil && (su.Backend != u.Backend || su.Ctx != u.Context || base64.StdEncoding.EncodeToString(su.Envelope) != u.Envelope.Encode()) {
			t.Fatalf("format read %+v, specdecode %+v", u, su)
		}
	})
}

// fuzzManifestValue seals body as a manifest under fuzzOK with a zero nonce, following
// FORMAT.md 3.5.2 (so that the fuzzer reaches the body parser).
func fuzzManifestValue(body []byte) string {
	mk, err := hkdf.Key(sha256.New, fuzzOK(), nil, "s3seal/2 manifest", 32)
	if err != nil {
		panic(err)
	}
	b, _ := aes.NewCipher(mk)
	a, _ := cipher.NewGCM(b)
	return base64.StdEncoding.EncodeToString(a.Seal([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 12), body, []byte("s3seal/2 manifest")))
}

// FuzzOpenManifest opens arbitrary manifest values (seal true: data is sealed as the body
// under the fuzz key first) and checks that an opened manifest is consistent: 1..10000 parts,
// a Layout that is empty or lists exactly those parts with increasing numbers and valid part
// sizes, which Check accepts only with the right digest; and that the independent decoder
// agrees on what opens and what it says.
func FuzzOpenManifest(f *testing.F) {
	f.Fuzz(func(t *testing.T, seal bool, data []byte) {
		value := string(data)
		if seal {
			value = fuzzManifestValue(data)
		}
		k := fuzzKey(t)
		m, err := k.OpenManifest(value)
		sm, serr := specdecode.OpenManifest(fuzzOK(), value)
		if err != nil {
			if !isTyped(err) {
				t.Fatalf("untyped error %v", err)
			}
			if serr == nil {
				t.Fatalf("specdecode opened a manifest format refuses: %v", err)
			}
			return
		}
		if serr != nil {
			t.Fatalf("format opened a manifest specdecode refuses: %v", serr)
		}
		if m.Parts < 1 || m.Parts > format.MaxPartNumber || m.Parts != sm.K || !bytes.Equal(m.ETagMD5, sm.ETagMD5) {
			t.Fatalf("manifest of %d parts, ETag %x; specdecode %d, %x", m.Parts, m.ETagMD5, sm.K, sm.ETagMD5)
		}
		numbers, sizes := m.Layout()
		if len(numbers) != len(sizes) || (len(numbers) != 0 && len(numbers) != m.Parts) {
			t.Fatalf("layout of %d numbers and %d sizes for %d parts", len(numbers), len(sizes), m.Parts)
		}
		if len(numbers) == 0 {
			if len(sm.Runs) != 0 {
				t.Fatalf("format lists no layout, specdecode %d runs", len(sm.Runs))
			}
			return
		}
		l, err := format.NewLayout(numbers, sizes)
		if err != nil {
			t.Fatalf("the manifest's layout %v %v is not a layout: %v", numbers, sizes, err)
		}
		i := 0
		for _, r := range sm.Runs {
			for j := range int(r.Count) {
				if numbers[i] != int(r.First)+j || sizes[i] != format.PartEncryptedSize(int64(r.Size)) {
					t.Fatalf("part %d: format %d of %d stored bytes, specdecode run %+v", i, numbers[i], sizes[i], r)
				}
				i++
			}
		}
		if i != len(numbers) {
			t.Fatalf("specdecode's runs list %d parts, format's layout %d", i, len(numbers))
		}
		// The salts are all zero here: Check passes exactly when the digest is of those headers.
		h := sha256.New()
		h.Write([]byte("s3seal/2 parts"))
		for _, p := range l {
			var pi [16]byte
			pi[0], pi[1] = 2, 1
			binary.BigEndian.PutUint32(pi[4:], uint32(p.Number))
			binary.BigEndian.PutUint64(pi[8:], uint64(p.PlainSize))
			h.Write(pi[:])
			h.Write(p.ID[:])
		}
		if err := m.Check(l); (err == nil) != bytes.Equal(h.Sum(nil), sm.D) {
			t.Fatalf("Check: %v, digest %x", err, sm.D)
		}
	})
}

// fuzzTail seals body as a tail under fuzzOK with a zero nonce, following FORMAT.md 3.6 (so
// that the fuzzer reaches the body parser): sealed ‖ be32(len(sealed)) ‖ "s3seal/3".
func fuzzTail(body []byte) []byte {
	mk, err := hkdf.Key(sha256.New, fuzzOK(), nil, "s3seal/3 manifest", 32)
	if err != nil {
		panic(err)
	}
	b, _ := aes.NewCipher(mk)
	a, _ := cipher.NewGCM(b)
	sealed := a.Seal(make([]byte, 12), make([]byte, 12), body, []byte("s3seal/3 manifest"))
	return append(binary.BigEndian.AppendUint32(sealed, uint32(len(sealed))), "s3seal/3"...)
}

// tailImpliedSize is the stored size a tail body's runs make with a tail of tailLen bytes
// (FORMAT.md 3.6: the parts and the tail), read from the body as it stands, or 0 when the
// body is too short to say; the fuzz target uses it so that sealed bodies reach the checks
// after the size.
func tailImpliedSize(body []byte, tailLen int) int64 {
	if len(body) < 56 {
		return 0
	}
	size := int64(tailLen)
	runs := body[56:]
	for i := uint32(0); i < binary.BigEndian.Uint32(body[52:]) && len(runs) >= 16; i++ {
		count, p := int64(binary.BigEndian.Uint32(runs[4:])), int64(binary.BigEndian.Uint64(runs[8:]))
		ps := format.PartEncryptedSize(p)
		if ps < 0 || count > format.MaxPartNumber {
			return 0
		}
		size += count * ps
		runs = runs[16:]
	}
	return size
}

// FuzzOpenTail reads arbitrary object ends as format-3 tails (seal true: data is sealed as the
// body under the fuzz key first, and a size of 0 is the one its runs imply): TailLength finds
// the footer or refuses with ErrAuth; OpenTail of what it measured agrees with the independent
// decoder on what opens and what it says (parts, ETag, layout, digest), and an opened tail's
// layout is a layout that, with the tail, makes exactly the stored size.
func FuzzOpenTail(f *testing.F) {
	f.Fuzz(func(t *testing.T, seal bool, data []byte, size int64) {
		end := data
		if seal {
			end = fuzzTail(data)
			if size == 0 {
				size = tailImpliedSize(data, len(end))
			}
		}
		k := fuzzKey(t)
		n, err := format.TailLength(end, size)
		if err != nil {
			if !errors.Is(err, format.ErrAuth) {
				t.Fatalf("TailLength: %v, want ErrAuth", err)
			}
			if _, serr := specdecode.OpenTail(fuzzOK(), end, size); serr == nil {
				t.Fatalf("specdecode opened a tail whose footer format refuses: %v", err)
			}
			return
		}
		if n < 12+86 || n > size || !bytes.HasSuffix(end, []byte("s3seal/3")) || int64(binary.BigEndian.Uint32(end[len(end)-12:])) != n-12 {
			t.Fatalf("TailLength %d of %d bytes, stored size %d", n, len(end), size)
		}
		if n > int64(len(end)) {
			// A reader reads the rest first; the decoder refuses the short end too.
			if _, serr := specdecode.OpenTail(fuzzOK(), end, size); serr == nil {
				t.Fatalf("specdecode opened a tail of %d bytes from %d", n, len(end))
			}
			return
		}
		tail, err := k.OpenTail(end[int64(len(end))-n:], size)
		st, serr := specdecode.OpenTail(fuzzOK(), end, size)
		if err != nil {
			if !isTyped(err) {
				t.Fatalf("untyped error %v", err)
			}
			if serr == nil {
				t.Fatalf("specdecode opened a tail format refuses: %v", err)
			}
			return
		}
		if serr != nil {
			t.Fatalf("format opened a tail specdecode refuses: %v", serr)
		}
		if tail.Parts < 1 || tail.Parts > format.MaxPartNumber || tail.Parts != st.K || !bytes.Equal(tail.ETagMD5, st.ETagMD5) || tail.Size != n || st.Size != n {
			t.Fatalf("tail of %d parts, ETag %x, %d bytes; specdecode %d, %x, %d", tail.Parts, tail.ETagMD5, tail.Size, st.K, st.ETagMD5, st.Size)
		}
		numbers, sizes := tail.Layout()
		if len(numbers) != tail.Parts || len(sizes) != tail.Parts {
			t.Fatalf("layout of %d numbers and %d sizes for %d parts", len(numbers), len(sizes), tail.Parts)
		}
		l, err := format.NewLayout(numbers, sizes)
		if err != nil {
			t.Fatalf("the tail's layout %v %v is not a layout: %v", numbers, sizes, err)
		}
		if l.StoredSize()+n != size {
			t.Fatalf("layout of %d stored bytes and a tail of %d in an object of %d", l.StoredSize(), n, size)
		}
		i := 0
		for _, r := range st.Runs {
			for j := range int(r.Count) {
				if numbers[i] != int(r.First)+j || sizes[i] != format.PartEncryptedSize(int64(r.Size)) {
					t.Fatalf("part %d: format %d of %d stored bytes, specdecode run %+v", i, numbers[i], sizes[i], r)
				}
				i++
			}
		}
		// The salts are all zero here: Check passes exactly when the digest is of those headers.
		h := sha256.New()
		h.Write([]byte("s3seal/3 parts"))
		for _, p := range l {
			var pi [16]byte
			pi[0], pi[1] = 3, 1
			binary.BigEndian.PutUint32(pi[4:], uint32(p.Number))
			binary.BigEndian.PutUint64(pi[8:], uint64(p.PlainSize))
			h.Write(pi[:])
			h.Write(p.ID[:])
		}
		if err := tail.Check(l); (err == nil) != bytes.Equal(h.Sum(nil), st.D) {
			t.Fatalf("Check: %v, digest %x", err, st.D)
		}
		if len(l) > 1 {
			if err := tail.Check(l[1:]); !errors.Is(err, format.ErrAuth) {
				t.Fatalf("Check of a layout without its first part: %v", err)
			}
		}
	})
}

// TestGenerateFuzzCorpus writes the seed corpora under testdata/fuzz (run with -args -update).
func TestGenerateFuzzCorpus(t *testing.T) {
	if !format.Updating() {
		t.Skip("run with -args -update to regenerate the fuzz seed corpora")
	}
	k := fuzzKey(t)
	e, err := format.SealEnvelope(k, fuzzDK(), format.SealParams{Kind: format.KindSingle, Wrap: format.WrapProvider,
		KeyID: "alias/fuzz", WrappedKey: []byte("wrapped"), Bucket: "bucket", Object: "object"})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := format.SealEnvelope(k, fuzzDK(), format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapCustomerKey, Bucket: "bucket", Object: "object"})
	writeSeeds(t, "FuzzDecodeEnvelope", "string", e.Encode(), c.Encode(), "", "AQ==", e.Encode()[:40])

	var stored []string
	for _, n := range []int64{0, 1, 100} {
		for _, md5 := range []bool{false, true} {
			stored = append(stored, string(encryptSingle(t, k, pattern(n), format.EncryptOptions{ComputeMD5: md5})))
		}
	}
	stored = append(stored, string(encryptSingle(t, k, pattern(S+5), format.EncryptOptions{ComputeMD5: true})))
	stored = append(stored, string(make([]byte, 48)), "x")
	writeSeeds(t, "FuzzDecryptAll", "[]byte", stored...)

	upub, _ := k.UploadPublicKey()
	part := encryptPart(t, upub, 3, pattern(10), format.EncryptOptions{})
	writeSeeds(t, "FuzzParsePartHeader", "[]byte", string(part[:48]), string(part[:47]), string(make([]byte, 48)))

	writeSeeds(t, "FuzzDecodeUploadID", "string", format.EncodeUploadID("ZmFrZS11cGxvYWQ", upub),
		format.EncodeUploadID("", upub), "plain-backend-id", ".s1"+string(make([]byte, 43)))

	// Format 2: upload ids of an envelope of each wrap, with and without a context (keys bound
	// to format 2: a new key makes format 3, whose seeds TestGenerateFuzzCorpusV3 writes).
	v2 := format.AsVersion(fuzzKey(t), format.Version2)
	e2, err := format.SealEnvelope(v2, fuzzDK(), format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapProvider,
		KeyID: "alias/fuzz", WrappedKey: []byte("wrapped"), Bucket: "bucket", Object: "object"})
	if err != nil || e2.Version() != format.Version2 {
		t.Fatalf("format-2 envelope: %v", err)
	}
	c2, _ := format.SealEnvelope(format.AsVersion(fuzzKey(t), format.Version2), fuzzDK(), format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapCustomerKey, Bucket: "bucket", Object: "object"})
	id := format.UploadID{Backend: "ZmFrZS11cGxvYWQ", Envelope: e2, Context: "eyJhIjoiYiJ9"}.String()
	writeSeeds(t, "FuzzParseUploadID", "string", id, format.UploadID{Backend: "b.c", Envelope: c2}.String(),
		id[:len(id)-5], "x.s2", "x.s2AAA", format.EncodeUploadID("backend", upub))

	// Manifests of a short layout, of a layout of more than 16 runs, without MD5s; and bodies.
	var parts [][]byte
	for i := range 3 {
		parts = append(parts, encryptPartV2(t, v2, i+1, pattern(int64(10*(i/2)))))
	}
	l, err := layoutOfParts(v2, parts)
	if err != nil {
		t.Fatal(err)
	}
	short, _ := v2.SealManifest(l, bytes.Repeat([]byte{7}, 16))
	var numbers []int
	var sizes []int64
	for i := range 20 {
		numbers = append(numbers, i+1)
		sizes = append(sizes, format.PartEncryptedSize(int64(i%2)))
	}
	many, _ := format.NewLayout(numbers, sizes)
	long, _ := v2.SealManifest(many, nil)
	// Salts all zero, as the fuzz target assumes: Check passes on this one.
	zl, _ := format.NewLayout([]int{1, 2, 5}, []int64{format.PartEncryptedSize(S + 1), format.PartEncryptedSize(S + 1), format.PartEncryptedSize(0)})
	zero, _ := v2.SealManifest(zl, nil)
	writeManifestSeeds(t, map[string][]byte{
		"seed-short": []byte(short), "seed-many": []byte(long), "seed-empty": nil, "seed-cut": []byte(short[:40]),
		"seed-body-one-run": manifestBody(3, 1, 3, 0), "seed-body-two-runs": manifestBody(4, 1, 3, 65537, 4, 1, 7),
		"seed-body-no-runs": manifestBody(2), "seed-zero-salts": []byte(zero),
	}, map[string]bool{"seed-body-one-run": true, "seed-body-two-runs": true, "seed-body-no-runs": true})
}

// TestGenerateFuzzCorpusV3 writes the format-3 seeds (run with -args -update): FuzzOpenTail's,
// and the ".s3" seeds of FuzzParseUploadID (named v3-NN beside the format-2 seeds).
func TestGenerateFuzzCorpusV3(t *testing.T) {
	if !format.Updating() {
		t.Skip("run with -args -update to regenerate the fuzz seed corpora")
	}
	k := fuzzKey(t) // a new key: format 3
	e3, err := format.SealEnvelope(k, fuzzDK(), format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapProvider,
		KeyID: "alias/fuzz", WrappedKey: []byte("wrapped"), Bucket: "bucket", Object: "object"})
	if err != nil || e3.Version() != format.Version3 {
		t.Fatalf("format-3 envelope: %v", err)
	}
	c3, _ := format.SealEnvelope(fuzzKey(t), fuzzDK(), format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapCustomerKey, Bucket: "bucket", Object: "object"})
	e2, _ := format.SealEnvelope(format.AsVersion(fuzzKey(t), format.Version2), fuzzDK(), format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapCustomerKey, Bucket: "bucket", Object: "object"})
	id := format.UploadID{Backend: "ZmFrZS11cGxvYWQ", Envelope: e3, Context: "eyJhIjoiYiJ9"}.String()
	id2 := format.UploadID{Backend: "b", Envelope: e2}.String()
	idSSEC := format.UploadID{Backend: "b.c", Envelope: c3}.String()
	writeSeedLines(t, "FuzzParseUploadID", "v3", []string{
		"string(" + strconv.Quote(id) + ")",
		"string(" + strconv.Quote(idSSEC) + ")",
		"string(" + strconv.Quote(strings.Replace(id2, ".s2", ".s3", 1)) + ")",    // a format-2 envelope under .s3
		"string(" + strconv.Quote(strings.Replace(idSSEC, ".s3", ".s2", 1)) + ")", // a format-3 envelope under .s2
		"string(" + strconv.Quote("x.s3AAA") + ")",
	})

	// Tails: of an object (its end with a few bytes before the tail), of a layout of many runs,
	// sealed bodies (size 0: the size their runs imply), and unsealed junk.
	var facts []format.ManifestPart
	var stored []byte
	for i, n := range []int{1, 2, 4} {
		r, err := k.NewPartEncryptReader(bytes.NewReader(pattern(int64(10*(i/2)))), n, int64(10*(i/2)), format.EncryptOptions{ComputeMD5: true})
		if err != nil {
			t.Fatal(err)
		}
		part, _ := io.ReadAll(r)
		f := format.ManifestPart{Number: n, PlainSize: int64(10 * (i / 2)), MD5: r.MD5()}
		copy(f.Salt[:], r.PartHeader()[16:])
		facts = append(facts, f)
		stored = append(stored, part...)
	}
	tail, _, err := k.SealTail(facts)
	if err != nil {
		t.Fatal(err)
	}
	stored = append(stored, tail...)
	var many []format.ManifestPart
	var manySize int64
	for i := range 40 {
		many = append(many, format.ManifestPart{Number: i + 1, PlainSize: int64(i % 2)})
		manySize += format.PartEncryptedSize(int64(i % 2))
	}
	long, _, _ := k.SealTail(many)
	tailBody := func(k uint32, ext uint16, runs ...uint64) []byte {
		b := binary.BigEndian.AppendUint32(nil, k)
		b = append(b, make([]byte, 48)...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(runs)/3))
		for i := 0; i+2 < len(runs); i += 3 {
			b = binary.BigEndian.AppendUint32(b, uint32(runs[i]))
			b = binary.BigEndian.AppendUint32(b, uint32(runs[i+1]))
			b = binary.BigEndian.AppendUint64(b, runs[i+2])
		}
		return binary.BigEndian.AppendUint16(b, ext)
	}
	seed := func(seal bool, data []byte, size int64) string {
		return fmt.Sprintf("bool(%t)\n[]byte(%s)\nint64(%d)", seal, strconv.Quote(string(data)), size)
	}
	footer := append(binary.BigEndian.AppendUint32(nil, 0), "s3seal/3"...)
	writeSeedLines(t, "FuzzOpenTail", "seed", []string{
		seed(false, stored[len(stored)-len(tail)-20:], int64(len(stored))),
		seed(false, long, manySize+int64(len(long))),
		seed(false, tail, int64(len(stored))+1),
		seed(true, tailBody(3, 0, 1, 2, 5, 3, 1, 0), 0),
		seed(true, tailBody(2, 0, 1, 1, 65537, 3, 1, 7), 0),
		seed(true, tailBody(1, 0, 10000, 1, 0), 0),
		seed(true, tailBody(3, 1, 1, 3, 0), 0),
		seed(true, tailBody(2, 0), 0),
		seed(false, footer, 12),
		seed(false, nil, 0),
	})
}

// writeSeedLines writes seeds named prefix-NN of the fuzz target name, each the lines of its
// arguments after the corpus header.
func writeSeedLines(t *testing.T, name, prefix string, seeds []string) {
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds {
		body := "go test fuzz v1\n" + s + "\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%02d", prefix, i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// manifestBody is a manifest body of k parts with runs given as (first, count, size) triples;
// the ETag MD5 and digest are zero.
func manifestBody(k uint32, runs ...uint64) []byte {
	b := binary.BigEndian.AppendUint32(nil, k)
	b = append(b, make([]byte, 48)...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(runs)/3))
	for i := 0; i+2 < len(runs); i += 3 {
		b = binary.BigEndian.AppendUint32(b, uint32(runs[i]))
		b = binary.BigEndian.AppendUint32(b, uint32(runs[i+1]))
		b = binary.BigEndian.AppendUint64(b, runs[i+2])
	}
	return b
}

func encryptPartV2(t *testing.T, k *format.ObjectKey, n int, plain []byte) []byte {
	r, err := k.NewPartEncryptReader(bytes.NewReader(plain), n, int64(len(plain)), format.EncryptOptions{ComputeMD5: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layoutOfParts is the layout of format-2 parts with their salts.
func layoutOfParts(k *format.ObjectKey, parts [][]byte) (format.Layout, error) {
	var numbers []int
	var sizes []int64
	for _, p := range parts {
		n, _, err := format.ParsePartHeader(p[:48])
		if err != nil {
			return nil, err
		}
		numbers = append(numbers, n)
		sizes = append(sizes, int64(len(p)))
	}
	l, err := format.NewLayout(numbers, sizes)
	for i := range l {
		copy(l[i].ID[:], parts[i][16:48])
	}
	return l, err
}

// writeManifestSeeds writes seeds of FuzzOpenManifest (seal flag and data).
func writeManifestSeeds(t *testing.T, seeds map[string][]byte, sealed map[string]bool) {
	dir := filepath.Join("testdata", "fuzz", "FuzzOpenManifest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range seeds {
		body := fmt.Sprintf("go test fuzz v1\nbool(%t)\n[]byte(%s)\n", sealed[name], strconv.Quote(string(data)))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func writeSeeds(t *testing.T, name, typ string, seeds ...string) {
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n%s(%s)\n", typ, strconv.Quote(s))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
