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
		if len(h) != 48 || n < 1 || n > 10000 || p < 0 || p > format.MaxPlainSize || (h[0] != 1 && h[0] != 2) || h[1] != 1 {
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

// FuzzParseUploadID: a format-2 upload id that parses re-encodes to the same string, names a
// backend id and carries an envelope of version 2 and kind 1; the independent decoder accepts
// no id that format refuses, and reads the same fields from the ids both accept.
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
		if u.Backend == "" || u.Envelope == nil || u.Envelope.Version() != format.Version2 || u.Envelope.Kind != format.KindMultipart {
			t.Fatalf("ParseUploadID(%q) = %+v", id, u)
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

	// Format 2: upload ids of an envelope of each wrap, with and without a context.
	v2 := fuzzKey(t)
	e2, err := format.SealEnvelope(v2, fuzzDK(), format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapProvider,
		KeyID: "alias/fuzz", WrappedKey: []byte("wrapped"), Bucket: "bucket", Object: "object"})
	if err != nil || e2.Version() != format.Version2 {
		t.Fatalf("format-2 envelope: %v", err)
	}
	c2, _ := format.SealEnvelope(fuzzKey(t), fuzzDK(), format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapCustomerKey, Bucket: "bucket", Object: "object"})
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
