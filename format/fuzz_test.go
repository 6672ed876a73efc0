package format_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/s3seal/s3seal/format"
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
		if len(h) != 48 || n < 1 || n > 10000 || p < 0 || p > format.MaxPlainSize || h[0] != 1 || h[1] != 1 {
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
