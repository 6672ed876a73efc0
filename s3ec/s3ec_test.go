package s3ec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	mrand "math/rand/v2"
	"testing"
)

// seal encrypts plain as the S3 Encryption Client v2 does, with the standard library's GCM.
func seal(t testing.TB, key, iv, plain []byte) []byte {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return g.Seal(nil, iv, plain, nil)
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func testObject(t testing.TB, size int) (*Object, []byte, []byte, []byte) {
	key, iv := randBytes(t, 32), randBytes(t, 12)
	plain := randBytes(t, size)
	o := &Object{IV: iv, PlainSize: int64(size), Context: map[string]string{"aws:x-amz-cek-alg": "AES/GCM/NoPadding"}}
	return o, key, plain, seal(t, key, iv, plain)
}

// The tag computed with ghash.go equals the standard library's for every small size and some
// large ones, and the decryption at every offset equals the plaintext.
func TestVerifyAndDecryptMatchStdlib(t *testing.T) {
	sizes := []int{0, 1, 15, 16, 17, 31, 32, 33, 100, 4095, 65536, 65537, 1 << 20}
	for n := 0; n < 70; n++ {
		sizes = append(sizes, n)
	}
	for _, size := range sizes {
		o, key, plain, stored := testObject(t, size)
		if err := o.Verify(key, bytes.NewReader(stored), int64(len(stored))); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		for _, off := range []int{0, 1, 15, 16, 17, size / 2, size} {
			if off > size {
				continue
			}
			for _, end := range []int{off, off + (size-off)/3, size} {
				sp := &memSpool{}
				r, err := o.Open(key, bytes.NewReader(stored), int64(len(stored)), sp, int64(off), int64(end-off))
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				if !bytes.Equal(sp.b, stored[:size]) {
					t.Fatalf("size %d: the spool holds other bytes than the ciphertext", size)
				}
				got, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(got, plain[off:end]) {
					t.Fatalf("size %d range [%d, %d): decryption differs (%v)", size, off, end, err)
				}
			}
		}
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	o, key, _, stored := testObject(t, 70_000)
	check := func(name string, b []byte, size int64, k []byte) {
		t.Helper()
		if err := o.Verify(k, bytes.NewReader(b), size); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: %v, want ErrAuth", name, err)
		}
		if r, err := o.Open(k, bytes.NewReader(b), size, &memSpool{}, 0, o.PlainSize); !errors.Is(err, ErrAuth) || r != nil {
			t.Errorf("Open %s: reader %v, %v, want ErrAuth and no reader", name, r, err)
		}
	}
	for i := 0; i < 200; i++ {
		b := bytes.Clone(stored)
		pos := mrand.IntN(len(b))
		b[pos] ^= 1 << mrand.IntN(8)
		check("flipped byte", b, int64(len(b)), key)
	}
	check("truncated", stored[:len(stored)-1], int64(len(stored)-1), key)
	check("truncated, size as stored", stored[:len(stored)-1], int64(len(stored)), key)
	check("extended", append(bytes.Clone(stored), 0), int64(len(stored)), key)
	check("wrong key", stored, int64(len(stored)), randBytes(t, 32))
	o.PlainSize = 1
	check("size disagrees with metadata", stored, int64(len(stored)), key)
}

// memSpool is an in-memory Spool.
type memSpool struct{ b []byte }

func (s *memSpool) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }
func (s *memSpool) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(s.b).ReadAt(p, off)
}

// onceReader serves its bytes to the first reader only; a second pass over the object (as the
// old verify-then-reread design made) gets the altered bytes.
type onceReader struct {
	honest, altered []byte
	passes          int
	r               *bytes.Reader
}

func (o *onceReader) pass() io.Reader {
	o.passes++
	if o.passes == 1 {
		o.r = bytes.NewReader(o.honest)
	} else {
		o.r = bytes.NewReader(o.altered)
	}
	return o.r
}

// Open releases plaintext from the bytes it verified, read in one pass: the spool holds the
// honest ciphertext and the plaintext equals the original even though later reads of the source
// would be altered (CTR is malleable: XOR flips chosen plaintext bytes).
func TestOpenReleasesOnlyVerifiedBytes(t *testing.T) {
	key, iv := randBytes(t, 32), randBytes(t, 12)
	plain := []byte("PAY ALICE $000100")
	o := &Object{IV: iv, PlainSize: int64(len(plain)), Context: map[string]string{"aws:x-amz-cek-alg": "AES/GCM/NoPadding"}}
	stored := seal(t, key, iv, plain)
	altered := bytes.Clone(stored)
	for i, c := range []byte("PAY MALLORY $999999")[:len(plain)] {
		altered[i] ^= plain[i] ^ c
	}
	src := &onceReader{honest: stored, altered: altered}
	r, err := o.Open(key, src.pass(), int64(len(stored)), &memSpool{}, 4, 5)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "ALICE" || src.passes != 1 || src.r.Len() != 0 {
		t.Fatalf("got %q (%v) after %d passes, %d bytes unread", got, err, src.passes, src.r.Len())
	}
	// The altered bytes themselves, verified, are refused with no reader.
	if r, err := o.Open(key, src.pass(), int64(len(stored)), &memSpool{}, 0, int64(len(plain))); !errors.Is(err, ErrAuth) || r != nil {
		t.Fatalf("altered object: reader %v, %v", r, err)
	}
}

type failingSpool struct{ memSpool }

func (failingSpool) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// A spool that cannot be written fails Open without calling it tampering; a range outside the
// object is refused before anything is read.
func TestOpenErrors(t *testing.T) {
	o, key, _, stored := testObject(t, 1000)
	if _, err := o.Open(key, bytes.NewReader(stored), int64(len(stored)), &failingSpool{}, 0, 10); err == nil || errors.Is(err, ErrAuth) {
		t.Errorf("failing spool: %v", err)
	}
	for _, rg := range [][2]int64{{-1, 1}, {0, 1001}, {1000, 1}, {999, -1}, {1001, 0}} {
		src := bytes.NewReader(stored)
		if _, err := o.Open(key, src, int64(len(stored)), &memSpool{}, rg[0], rg[1]); err == nil || src.Len() != len(stored) {
			t.Errorf("range %v: %v, %d bytes read", rg, err, len(stored)-src.Len())
		}
	}
}

func TestParse(t *testing.T) {
	iv := base64.StdEncoding.EncodeToString(make([]byte, 12))
	good := map[string]string{
		MetaKey: base64.StdEncoding.EncodeToString([]byte("blob")), MetaIV: iv,
		MetaCEKAlg: "AES/GCM/NoPadding", MetaWrapAlg: "kms+context", MetaTagLen: "128",
		MetaMatDesc:   `{"aws:x-amz-cek-alg":"AES/GCM/NoPadding","team":"x"}`,
		MetaPlainSize: "12",
	}
	get := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	o, err := Parse(get(good))
	if err != nil || o == nil || o.PlainSize != 12 || o.Context["team"] != "x" || string(o.WrappedKey) != "blob" {
		t.Fatalf("Parse: %+v %v", o, err)
	}
	if o, err := Parse(get(map[string]string{})); o != nil || err != nil {
		t.Errorf("no metadata: %v %v", o, err)
	}
	bad := map[string]string{
		MetaCEKAlg: "AES/CBC/PKCS5Padding", MetaWrapAlg: "kms", MetaTagLen: "96", MetaIV: "AAAA",
		MetaMatDesc: `{"team":"x"}`, MetaPlainSize: "-3", MetaKey: "***",
	}
	for k, v := range bad {
		m := map[string]string{}
		for kk, vv := range good {
			m[kk] = vv
		}
		m[k] = v
		if _, err := Parse(get(m)); err == nil {
			t.Errorf("%s=%q accepted", k, v)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("YmxvYg==", "AAAAAAAAAAAAAAAA", `{"aws:x-amz-cek-alg":"AES/GCM/NoPadding"}`, "12")
	f.Fuzz(func(t *testing.T, key, iv, matdesc, size string) {
		m := map[string]string{MetaKey: key, MetaIV: iv, MetaMatDesc: matdesc, MetaPlainSize: size,
			MetaCEKAlg: "AES/GCM/NoPadding", MetaWrapAlg: "kms+context"}
		o, err := Parse(func(k string) string { return m[k] })
		if err == nil && o != nil && (len(o.IV) != 12 || len(o.WrappedKey) == 0) {
			t.Fatalf("accepted invalid metadata: %+v", o)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	o, key, _, stored := testObject(b, 8<<20)
	b.SetBytes(int64(len(stored)))
	for i := 0; i < b.N; i++ {
		if err := o.Verify(key, bytes.NewReader(stored), int64(len(stored))); err != nil {
			b.Fatal(err)
		}
	}
}
