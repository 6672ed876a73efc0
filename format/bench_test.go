package format_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"io"
	"testing"

	"github.com/s3seal/s3seal/format"
)

const benchSize = 64 << 20

// rawSeal seals a benchSize plaintext held in memory in 64 KiB chunks into one reused output
// buffer: the cost floor of any segmented AES-256-GCM stream (the plaintext is read from
// memory once, the ciphertext written to a cache-resident buffer, as io.Discard consumes it).
func rawSeal(b *testing.B, aead cipher.AEAD, plain, buf []byte) {
	var nonce [12]byte
	for i := int64(0); i < benchSize/S; i++ {
		binary.BigEndian.PutUint64(nonce[:], uint64(i))
		aead.Seal(buf[:0], nonce[:], plain[i*S:(i+1)*S], nil)
	}
}

// rawOpen opens a benchSize stored stream held in memory in 64 KiB segments into one reused
// output buffer (GCM open is slower than seal: it authenticates before it decrypts).
func rawOpen(b *testing.B, aead cipher.AEAD, stored, buf []byte) {
	var nonce [12]byte
	for i := int64(0); i < benchSize/S; i++ {
		if _, err := aead.Open(buf[:0], nonce[:], stored[i*(S+16):(i+1)*(S+16)], nil); err != nil {
			b.Fatal(err)
		}
	}
}

// rawStored is benchSize zero bytes sealed segment by segment with a zero nonce, for rawOpen.
func rawStored(aead cipher.AEAD) []byte {
	var nonce [12]byte
	seg := aead.Seal(nil, nonce[:], make([]byte, S), nil)
	return bytes.Repeat(seg, benchSize/S)
}

func rawAEAD(b *testing.B) cipher.AEAD {
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return aead
}

func BenchmarkRawAESGCM(b *testing.B) {
	aead := rawAEAD(b)
	buf := make([]byte, S+16)
	plain := make([]byte, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		rawSeal(b, aead, plain, buf)
	}
}

func BenchmarkRawAESGCMOpen(b *testing.B) {
	aead := rawAEAD(b)
	stored := rawStored(aead)
	buf := make([]byte, S)
	b.SetBytes(benchSize)
	for b.Loop() {
		rawOpen(b, aead, stored, buf)
	}
}

func benchEncryptOnce(b *testing.B, k *format.ObjectKey, plain []byte) {
	r, err := format.NewEncryptReader(bytes.NewReader(plain), k, int64(len(plain)), format.EncryptOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		b.Fatal(err)
	}
}

func benchDecryptOnce(b *testing.B, s *format.Stream, stored []byte) {
	if _, err := io.Copy(io.Discard, s.DecryptAll(bytes.NewReader(stored))); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkEncrypt(b *testing.B) {
	k := newKey(b)
	plain := make([]byte, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		benchEncryptOnce(b, k, plain)
	}
}

func BenchmarkEncryptMD5(b *testing.B) {
	k := newKey(b)
	plain := make([]byte, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		r, err := format.NewEncryptReader(bytes.NewReader(plain), k, benchSize, format.EncryptOptions{ComputeMD5: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func benchStored(b *testing.B) (*format.Stream, []byte) {
	k := newKey(b)
	stored := encryptSingle(b, k, make([]byte, benchSize), format.EncryptOptions{})
	s, err := k.SingleStream(benchSize)
	if err != nil {
		b.Fatal(err)
	}
	return s, stored
}

func BenchmarkDecrypt(b *testing.B) {
	s, stored := benchStored(b)
	b.SetBytes(benchSize)
	for b.Loop() {
		benchDecryptOnce(b, s, stored)
	}
}

// BenchmarkPipelineRatio times raw AES-GCM and both readers in the same run and reports the
// readers' throughput relative to raw AES-GCM (1.0 = as fast as the cipher alone): enc/raw
// against raw seal, dec/raw against raw open (the same operation the decrypt reader performs),
// and dec/rawseal against raw seal for completeness.
func BenchmarkPipelineRatio(b *testing.B) {
	aead := rawAEAD(b)
	buf := make([]byte, S+16)
	k := newKey(b)
	plain := make([]byte, benchSize)
	s, stored := benchStored(b)
	timeIt := func(f func()) float64 {
		b.StartTimer()
		start := nowNanos()
		f()
		d := nowNanos() - start
		b.StopTimer()
		return float64(d)
	}
	rawSt := rawStored(aead)
	var raw, rawO, enc, dec float64
	b.StopTimer()
	b.SetBytes(benchSize)
	for i := 0; i < b.N; i++ {
		raw += timeIt(func() { rawSeal(b, aead, plain, buf) })
		rawO += timeIt(func() { rawOpen(b, aead, rawSt, buf) })
		enc += timeIt(func() { benchEncryptOnce(b, k, plain) })
		dec += timeIt(func() { benchDecryptOnce(b, s, stored) })
	}
	b.ReportMetric(raw/enc, "enc/raw")
	b.ReportMetric(rawO/dec, "dec/raw")
	b.ReportMetric(raw/dec, "dec/rawseal")
}
