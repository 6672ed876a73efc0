package format_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// checkRejected asserts err wraps one of the allowed sentinels and that out is a prefix of
// plain no longer than goodUpTo bytes: nothing from a bad segment or beyond was released.
func checkRejected(t *testing.T, what string, out, plain []byte, err error, goodUpTo int, allowed ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted", what)
	}
	ok := false
	for _, a := range allowed {
		ok = ok || errors.Is(err, a)
	}
	if !ok {
		t.Fatalf("%s: error %v does not wrap any of %v", what, err, allowed)
	}
	if len(out) > goodUpTo || !bytes.Equal(out, plain[:len(out)]) {
		t.Fatalf("%s: released %d bytes (at most %d good bytes allowed), prefix ok=%v", what, len(out), goodUpTo, bytes.Equal(out, plain[:min(len(out), len(plain))]))
	}
}

// decryptDeclared decrypts stored under the stream of the correct plaintext size.
func decryptDeclared(t *testing.T, k *format.ObjectKey, size int64, stored []byte) ([]byte, error) {
	s, err := k.SingleStream(size)
	if err != nil {
		t.Fatal(err)
	}
	return io.ReadAll(s.DecryptAll(bytes.NewReader(stored)))
}

func TestTamperFlipBytes(t *testing.T) {
	k := newKey(t)
	for _, size := range []int64{0, 1, S, 3*S + 7} {
		plain := randomBytes(t, size)
		stored := encryptSingle(t, k, plain, format.EncryptOptions{ComputeMD5: true})
		n := (len(stored) - 32 + S + 15) / (S + 16)
		// Positions: first and last ciphertext byte, first and last tag byte of every
		// segment, and the trailer's first, middle and last byte.
		type pos struct{ at, goodUpTo int }
		var positions []pos
		for i := 0; i < n; i++ {
			start := i * (S + 16)
			end := min(start+S+16, len(stored)-32)
			for _, at := range []int{start, end - 17, end - 16, end - 1} {
				if at >= start {
					positions = append(positions, pos{at, i * S})
				}
			}
		}
		for _, at := range []int{len(stored) - 32, len(stored) - 16, len(stored) - 1} {
			positions = append(positions, pos{at, int(size)})
		}
		for _, p := range positions {
			bad := bytes.Clone(stored)
			bad[p.at] ^= 0x80
			out, err := decryptDeclared(t, k, size, bad)
			checkRejected(t, "flip", out, plain, err, p.goodUpTo, format.ErrAuth)
			out, _, err = decryptSingle(k, bad)
			checkRejected(t, "flip (size from stored length)", out, plain, err, p.goodUpTo, format.ErrAuth)
		}
	}
}

func TestTamperTruncateExtend(t *testing.T) {
	k := newKey(t)
	size := int64(3*S + 7)
	plain := randomBytes(t, size)
	stored := encryptSingle(t, k, plain, format.EncryptOptions{ComputeMD5: true})
	var cuts []int
	for i := 0; i <= 4; i++ {
		b := i * (S + 16)
		cuts = append(cuts, b, b+1, b+S/2, b+S+15)
	}
	cuts = append(cuts, len(stored)-32, len(stored)-1)
	for _, c := range cuts {
		if c <= 0 || c >= len(stored) {
			continue
		}
		// Segments wholly before the cut authenticate and may be released.
		good := min(c/(S+16)*S, 3*S)
		if c >= len(stored)-32 {
			good = int(size)
		}
		out, err := decryptDeclared(t, k, size, stored[:c])
		checkRejected(t, "truncated (declared size)", out, plain, err, good, format.ErrAuth)
		// A reader deriving the size from the truncated stored length gets another part key
		// (or an invalid size): nothing decrypts.
		out, _, err = decryptSingle(k, stored[:c])
		checkRejected(t, "truncated (size from length)", out, plain, err, 0, format.ErrAuth, format.ErrMalformed)
	}
	// Drop the final segment and the trailer and re-append the trailer: the segment before
	// lacks the final flag.
	cut := append(bytes.Clone(stored[:3*(S+16)]), stored[len(stored)-32:]...)
	out, err := decryptDeclared(t, k, 3*S, cut)
	checkRejected(t, "final segment removed", out, plain, err, 0, format.ErrAuth)

	extra := map[string][]byte{
		"one byte":    append(bytes.Clone(stored), 0),
		"a segment":   append(bytes.Clone(stored), stored[:S+16]...),
		"the trailer": append(bytes.Clone(stored), stored[len(stored)-32:]...),
	}
	for name, ext := range extra {
		out, err := decryptDeclared(t, k, size, ext)
		checkRejected(t, "extended by "+name+" (declared size)", out, plain, err, int(size), format.ErrAuth)
		out, _, err = decryptSingle(k, ext)
		checkRejected(t, "extended by "+name, out, plain, err, 0, format.ErrAuth, format.ErrMalformed)
	}
}

func TestTamperReorderWrongSizeWrongKey(t *testing.T) {
	k := newKey(t)
	size := int64(3*S + 7)
	plain := randomBytes(t, size)
	stored := encryptSingle(t, k, plain, format.EncryptOptions{})
	seg := func(i int) []byte { return stored[i*(S+16) : (i+1)*(S+16)] }
	swapped := bytes.Join([][]byte{seg(1), seg(0), stored[2*(S+16):]}, nil)
	out, err := decryptDeclared(t, k, size, swapped)
	checkRejected(t, "segments 0 and 1 swapped", out, plain, err, 0, format.ErrAuth)
	swapped = bytes.Join([][]byte{seg(0), seg(2), seg(1), stored[3*(S+16):]}, nil)
	out, err = decryptDeclared(t, k, size, swapped)
	checkRejected(t, "segments 1 and 2 swapped", out, plain, err, S, format.ErrAuth)

	for _, declared := range []int64{size - 1, size + 1, 3 * S} {
		s, err := k.SingleStream(declared)
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(s.DecryptAll(bytes.NewReader(stored)))
		checkRejected(t, "wrong declared size", out, plain, err, 0, format.ErrAuth)
	}
	out, _, err = decryptSingle(newKey(t), stored)
	checkRejected(t, "wrong key", out, plain, err, 0, format.ErrAuth)

	// Segments of another object under the same key and size do not fit either (different
	// plaintext, same key: only a byte-identical object would).
	other := encryptSingle(t, newKey(t), plain, format.EncryptOptions{})
	mixed := bytes.Join([][]byte{seg(0), other[S+16:]}, nil)
	out, err = decryptDeclared(t, k, size, mixed)
	checkRejected(t, "segment from another object", out, plain, err, S, format.ErrAuth)
}

func TestTamperRange(t *testing.T) {
	k := newKey(t)
	size := int64(3*S + 7)
	plain := randomBytes(t, size)
	stored := encryptSingle(t, k, plain, format.EncryptOptions{})
	s, _ := k.SingleStream(size)
	bad := bytes.Clone(stored)
	bad[2*(S+16)+5] ^= 1 // inside segment 2
	// A range over segments 0..1 does not see the damage; one over 1..2 fails after segment 1.
	off, n, _ := s.Span(10, 2*S-20)
	got, err := io.ReadAll(s.DecryptRange(bytes.NewReader(bad[off:off+n]), 10, 2*S-20))
	if err != nil || !bytes.Equal(got, plain[10:2*S-10]) {
		t.Fatalf("undamaged range: %v", err)
	}
	off, n, _ = s.Span(S+3, 2*S)
	got, err = io.ReadAll(s.DecryptRange(bytes.NewReader(bad[off:off+n]), S+3, 2*S))
	checkRejected(t, "range over a damaged segment", got, plain[S+3:], err, S-3, format.ErrAuth)
	// A short source is a truncation.
	got, err = io.ReadAll(s.DecryptRange(bytes.NewReader(stored[off:off+n-1]), S+3, 2*S))
	checkRejected(t, "range source short", got, plain[S+3:], err, 2*S-3, format.ErrAuth)
	// A source error is passed through unchanged.
	boom := errors.New("backend connection reset")
	got, err = io.ReadAll(s.DecryptRange(io.MultiReader(bytes.NewReader(stored[off:off+S+16]), errReader{boom}), S+3, 2*S))
	if !errors.Is(err, boom) || !bytes.Equal(got, plain[S+3:2*S]) {
		t.Fatalf("source error: %v, %d bytes", err, len(got))
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
