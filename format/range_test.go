package format_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// neededSpan computes the stored span of a plaintext range by walking the segments one by
// one: segment j is needed iff it shares a byte with [off, off+n).
func neededSpan(plain, off, n int64) (int64, int64) {
	if n == 0 {
		return 0, 0
	}
	nseg := max(1, (plain+S-1)/S)
	first, end := int64(-1), int64(0)
	for j := int64(0); j < nseg; j++ {
		segStart, segEnd := j*S, min((j+1)*S, plain)
		if segStart < off+n && off < segEnd {
			if first < 0 {
				first = j * (S + 16)
			}
			end = j*(S+16) + (segEnd - segStart) + 16
		}
	}
	return first, end - first
}

func checkRanges(t *testing.T, s *format.Stream, stored, plain []byte, ranges [][2]int64) {
	t.Helper()
	for _, rg := range ranges {
		off, n := rg[0], rg[1]
		so, sl, err := s.Span(off, n)
		if err != nil {
			t.Fatalf("Span(%d, %d): %v", off, n, err)
		}
		wo, wl := neededSpan(int64(len(plain)), off, n)
		if so != wo || sl != wl {
			t.Fatalf("Span(%d, %d) of %d = [%d, +%d), want [%d, +%d)", off, n, len(plain), so, sl, wo, wl)
		}
		if n > 0 && so+sl > s.TrailerOffset() {
			t.Fatalf("Span(%d, %d) reaches into the trailer", off, n)
		}
		got, err := io.ReadAll(s.DecryptRange(oneByteReader{bytes.NewReader(stored[so : so+sl])}, off, n))
		if err != nil || !bytes.Equal(got, plain[off:off+n]) {
			t.Fatalf("DecryptRange(%d, %d) of %d: %v, %d bytes", off, n, len(plain), err, len(got))
		}
	}
}

func TestRandomRanges(t *testing.T) {
	r := rng(t)
	k := newKey(t)
	upub, _ := k.UploadPublicKey()
	sizes := append([]int64{}, roundTripSizes...)
	for range 6 {
		sizes = append(sizes, r.Int64N(6*S))
	}
	for _, size := range sizes {
		plain := randomBytes(t, size)
		ranges := [][2]int64{{0, size}, {0, 0}, {size, 0}}
		for range 40 {
			off := r.Int64N(size + 1)
			ranges = append(ranges, [2]int64{off, r.Int64N(size - off + 1)})
		}
		for _, b := range []int64{S - 1, S, S + 1, 2*S - 1} { // ranges touching boundaries
			if b < size {
				ranges = append(ranges, [2]int64{b, 1}, [2]int64{b, size - b}, [2]int64{0, b + 1})
			}
		}
		stored := encryptSingle(t, k, plain, format.EncryptOptions{})
		s, _ := k.SingleStream(size)
		checkRanges(t, s, stored, plain, ranges)

		part := encryptPart(t, upub, 2, plain, format.EncryptOptions{})
		ps, err := k.PartStream(part[:48], 2)
		if err != nil {
			t.Fatal(err)
		}
		checkRanges(t, ps, part[48:], plain, ranges)
	}
}

func TestRangeOutOfBounds(t *testing.T) {
	k := newKey(t)
	s, _ := k.SingleStream(100)
	for _, rg := range [][2]int64{{-1, 1}, {0, -1}, {0, 101}, {101, 0}, {50, 51}, {1, 1<<63 - 1}} {
		if _, _, err := s.Span(rg[0], rg[1]); !errors.Is(err, format.ErrRange) {
			t.Errorf("Span(%d, %d): %v", rg[0], rg[1], err)
		}
		if _, err := io.ReadAll(s.DecryptRange(bytes.NewReader(nil), rg[0], rg[1])); !errors.Is(err, format.ErrRange) {
			t.Errorf("DecryptRange(%d, %d): %v", rg[0], rg[1], err)
		}
	}
}
