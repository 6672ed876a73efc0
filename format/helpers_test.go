package format_test

import (
	"bytes"
	"crypto/rand"
	"io"
	mrand "math/rand/v2"
	"testing"

	"github.com/s3seal/s3seal/format"
)

const S = format.SegmentSize

// pattern returns n bytes of the documented generator "byte i mod 251".
func pattern(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func randomBytes(t testing.TB, n int64) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func newKey(t testing.TB) *format.ObjectKey {
	k, err := format.NewObjectKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// encryptSingle returns the stored bytes of plain under k.
func encryptSingle(t testing.TB, k *format.ObjectKey, plain []byte, o format.EncryptOptions) []byte {
	t.Helper()
	r, err := format.NewEncryptReader(bytes.NewReader(plain), k, int64(len(plain)), o)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("encrypt %d bytes: %v", len(plain), err)
	}
	if int64(len(out)) != r.Size() || r.Size() != format.EncryptedSize(int64(len(plain))) {
		t.Fatalf("encrypt %d bytes: got %d stored bytes, Size() %d, EncryptedSize %d", len(plain), len(out), r.Size(), format.EncryptedSize(int64(len(plain))))
	}
	return out
}

// encryptPart returns the stored bytes (header included) of one part.
func encryptPart(t testing.TB, upub []byte, part int, plain []byte, o format.EncryptOptions) []byte {
	t.Helper()
	r, err := format.NewPartEncryptReader(bytes.NewReader(plain), upub, part, int64(len(plain)), o)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("encrypt part %d of %d bytes: %v", part, len(plain), err)
	}
	if int64(len(out)) != r.Size() || r.Size() != format.PartEncryptedSize(int64(len(plain))) {
		t.Fatalf("part %d: got %d stored bytes, Size() %d", part, len(out), r.Size())
	}
	return out
}

// decryptSingle decrypts a whole single-part object; it returns the output produced before
// any error as well.
func decryptSingle(k *format.ObjectKey, stored []byte) ([]byte, []byte, error) {
	p, err := format.DecryptedSize(int64(len(stored)))
	if err != nil {
		return nil, nil, err
	}
	s, err := k.SingleStream(p)
	if err != nil {
		return nil, nil, err
	}
	d := s.DecryptAll(bytes.NewReader(stored))
	out, err := io.ReadAll(d)
	return out, d.MD5(), err
}

// oneByteReader returns at most one byte per Read, to exercise short reads.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

func rng(t testing.TB) *mrand.Rand {
	seed := mrand.Uint64()
	t.Logf("random seed %d", seed)
	return mrand.New(mrand.NewPCG(seed, seed^0x5eed))
}

var roundTripSizes = []int64{0, 1, S - 1, S, S + 1, 3 * S, 3*S + 7}
