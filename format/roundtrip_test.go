package format_test

import (
	"bytes"
	"crypto/md5"
	"io"
	"testing"
	"testing/iotest"

	"github.com/s3seal/s3seal/format"
)

func TestSingleRoundTrip(t *testing.T) {
	k := newKey(t)
	for _, size := range roundTripSizes {
		plain := randomBytes(t, size)
		sum := md5.Sum(plain)
		for _, withMD5 := range []bool{true, false} {
			stored := encryptSingle(t, k, plain, format.EncryptOptions{ComputeMD5: withMD5})
			got, gotSum, err := decryptSingle(k, stored)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("size %d: plaintext differs", size)
			}
			if withMD5 && !bytes.Equal(gotSum, sum[:]) {
				t.Fatalf("size %d: trailer MD5 %x, want %x", size, gotSum, sum)
			}
			if !withMD5 && gotSum != nil {
				t.Fatalf("size %d: MD5 %x from a trailer without MD5", size, gotSum)
			}
			if bytes.Contains(stored, plain[:min(len(plain), 32)]) && size >= 16 {
				t.Fatalf("size %d: stored bytes contain plaintext", size)
			}
		}
	}
}

func TestEncryptReaderShortReadsAndMD5(t *testing.T) {
	k := newKey(t)
	plain := randomBytes(t, 2*S+5)
	want := encryptSingle(t, k, plain, format.EncryptOptions{ComputeMD5: true})
	// Single-part encryption is deterministic: a source returning one byte at a time and the
	// iotest helpers must give the same stored bytes.
	srcs := map[string]io.Reader{
		"one byte": oneByteReader{bytes.NewReader(plain)},
		"data+EOF": iotest.DataErrReader(bytes.NewReader(plain)),
		"half":     iotest.HalfReader(bytes.NewReader(plain)),
		"empty":    &emptyReads{r: bytes.NewReader(plain)},
	}
	for name, src := range srcs {
		r, err := format.NewEncryptReader(src, k, int64(len(plain)), format.EncryptOptions{ComputeMD5: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.MD5() != nil {
			t.Fatalf("%s: MD5 before EOF", name)
		}
		got, err := io.ReadAll(iotest.OneByteReader(r))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %v, equal=%v", name, err, bytes.Equal(got, want))
		}
		sum := md5.Sum(plain)
		if !bytes.Equal(r.MD5(), sum[:]) {
			t.Fatalf("%s: MD5() %x, want %x", name, r.MD5(), sum)
		}
	}
	r, _ := format.NewEncryptReader(bytes.NewReader(plain), k, int64(len(plain)), format.EncryptOptions{ComputeMD5: true})
	if err := iotest.TestReader(r, want); err != nil {
		t.Fatal(err)
	}
	s, _ := k.SingleStream(int64(len(plain)))
	if err := iotest.TestReader(s.DecryptAll(bytes.NewReader(want)), plain); err != nil {
		t.Fatal(err)
	}
	if err := iotest.TestReader(s.DecryptRange(bytes.NewReader(want[:2*(S+16)]), 5, S+9), plain[5:S+14]); err != nil {
		t.Fatal(err)
	}
}

// emptyReads returns (0, nil) before every real read.
type emptyReads struct {
	r    io.Reader
	flip bool
}

func (e *emptyReads) Read(p []byte) (int, error) {
	if e.flip = !e.flip; e.flip {
		return 0, nil
	}
	return e.r.Read(p)
}

func TestDecryptReaderWriteToMatchesRead(t *testing.T) {
	k := newKey(t)
	plain := randomBytes(t, 3*S+7)
	stored := encryptSingle(t, k, plain, format.EncryptOptions{ComputeMD5: true})
	s, _ := k.SingleStream(int64(len(plain)))
	var buf bytes.Buffer
	d := s.DecryptAll(oneByteReader{bytes.NewReader(stored)})
	if n, err := d.WriteTo(&buf); err != nil || n != int64(len(plain)) || !bytes.Equal(buf.Bytes(), plain) {
		t.Fatalf("WriteTo: %d, %v", n, err)
	}
	sum := md5.Sum(plain)
	if !bytes.Equal(d.MD5(), sum[:]) {
		t.Fatalf("MD5 after WriteTo: %x", d.MD5())
	}
	sum2, err := s.OpenTrailer(stored[s.TrailerOffset():])
	if err != nil || !bytes.Equal(sum2, sum[:]) || s.TrailerOffset() != int64(len(stored))-32 || s.StoredSize() != int64(len(stored)) {
		t.Fatalf("OpenTrailer: %x, %v (offset %d)", sum2, err, s.TrailerOffset())
	}
}

func TestPartRoundTrip(t *testing.T) {
	k := newKey(t)
	upub, err := k.UploadPublicKey()
	if err != nil || len(upub) != 32 {
		t.Fatalf("UploadPublicKey: %d bytes, %v", len(upub), err)
	}
	for i, size := range roundTripSizes {
		plain := randomBytes(t, size)
		part := i + 1
		stored := encryptPart(t, upub, part, plain, format.EncryptOptions{ComputeMD5: true})
		num, p, err := format.ParsePartHeader(stored[:48])
		if err != nil || num != part || p != size {
			t.Fatalf("header: part %d size %d, %v", num, p, err)
		}
		if got, err := format.PartDecryptedSize(int64(len(stored))); err != nil || got != size {
			t.Fatalf("PartDecryptedSize: %d, %v", got, err)
		}
		s, err := k.PartStream(stored[:48], part)
		if err != nil {
			t.Fatal(err)
		}
		d := s.DecryptAll(bytes.NewReader(stored[48:]))
		got, err := io.ReadAll(d)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("part of %d bytes: %v", size, err)
		}
		sum := md5.Sum(plain)
		if !bytes.Equal(d.MD5(), sum[:]) {
			t.Fatalf("part MD5 %x, want %x", d.MD5(), sum)
		}
	}
}
