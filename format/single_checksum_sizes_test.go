package format_test

import (
	"errors"
	"testing"

	"github.com/s3seal/s3seal/format"
)

func TestEncryptedSizeOfByHand(t *testing.T) {
	// FORMAT.md 3.3: p + 16·max(1, ceil(p/S)) + 32 + the digest size, worked out by hand.
	cases := []struct {
		a            format.ChecksumAlgorithm
		plain, store int64
	}{
		{format.ChecksumNone, 0, 48}, {format.ChecksumNone, S + 1, S + 1 + 64},
		{format.ChecksumCRC32, 0, 52}, {format.ChecksumCRC32C, 1, 53}, {format.ChecksumCRC64NVME, S, S + 56},
		{format.ChecksumSHA1, S - 1, S - 1 + 68}, {format.ChecksumSHA256, S + 1, S + 1 + 96},
		{format.ChecksumSHA512, 3*S + 5, 3*S + 5 + 64 + 32 + 64}, {format.ChecksumMD5, 0, 64},
		{format.ChecksumXXHASH64, 2 * S, 2*S + 32 + 40}, {format.ChecksumXXHASH3, 1, 1 + 56},
		{format.ChecksumXXHASH128, 5 << 40, 5<<40 + 16*(5<<40/S) + 48},
	}
	for _, c := range cases {
		if got := format.EncryptedSizeOf(c.plain, c.a); got != c.store {
			t.Errorf("EncryptedSizeOf(%d, %s) = %d, want %d", c.plain, algName(c.a), got, c.store)
		}
		if p, err := format.DecryptedSizeOf(c.store, c.a); err != nil || p != c.plain {
			t.Errorf("DecryptedSizeOf(%d, %s) = %d, %v; want %d", c.store, algName(c.a), p, err, c.plain)
		}
	}
	for _, a := range allChecksums {
		for _, bad := range []int64{-1, format.MaxPlainSize + 1, -1 << 63} {
			if got := format.EncryptedSizeOf(bad, a); got != -1 {
				t.Errorf("EncryptedSizeOf(%d, %s) = %d, want -1", bad, algName(a), got)
			}
		}
	}
}

// TestDecryptedSizeOfInverse: for every algorithm, every stored size up to 3S+5 bytes of
// plaintext is the image of exactly one plaintext size or refused with ErrMalformed; with
// none the functions are the old ones.
func TestDecryptedSizeOfInverse(t *testing.T) {
	for _, a := range allChecksums {
		valid := make(map[int64]int64)
		for p := int64(0); p <= 3*S+5; p++ {
			e := format.EncryptedSizeOf(p, a)
			if prev, dup := valid[e]; dup {
				t.Fatalf("%s: EncryptedSizeOf(%d) = EncryptedSizeOf(%d) = %d", algName(a), p, prev, e)
			}
			valid[e] = p
			if a == format.ChecksumNone && e != format.EncryptedSize(p) {
				t.Fatalf("EncryptedSizeOf(%d, none) = %d, EncryptedSize %d", p, e, format.EncryptedSize(p))
			}
		}
		for e := int64(-3); e <= format.EncryptedSizeOf(3*S+5, a); e++ {
			p, err := format.DecryptedSizeOf(e, a)
			want, ok := valid[e]
			switch {
			case ok && (err != nil || p != want):
				t.Fatalf("DecryptedSizeOf(%d, %s) = %d, %v; want %d", e, algName(a), p, err, want)
			case !ok && !errors.Is(err, format.ErrMalformed):
				t.Fatalf("DecryptedSizeOf(%d, %s) = %d, %v; want ErrMalformed", e, algName(a), p, err)
			}
			if a == format.ChecksumNone {
				op, oerr := format.DecryptedSize(e)
				if op != p || (oerr == nil) != (err == nil) {
					t.Fatalf("DecryptedSize(%d) = %d, %v; DecryptedSizeOf none %d, %v", e, op, oerr, p, err)
				}
			}
		}
		top := format.EncryptedSizeOf(format.MaxPlainSize, a)
		if p, err := format.DecryptedSizeOf(top, a); err != nil || p != format.MaxPlainSize {
			t.Fatalf("DecryptedSizeOf(%d, %s) = %d, %v", top, algName(a), p, err)
		}
		for _, bad := range []int64{top + S + 16, 1<<63 - 1} {
			if _, err := format.DecryptedSizeOf(bad, a); !errors.Is(err, format.ErrMalformed) {
				t.Errorf("DecryptedSizeOf(%d, %s) accepted a size above the maximum", bad, algName(a))
			}
		}
	}
	r := rng(t)
	for range 20000 {
		p := r.Int64N(format.MaxPlainSize + 1)
		for _, a := range allChecksums {
			if got, err := format.DecryptedSizeOf(format.EncryptedSizeOf(p, a), a); err != nil || got != p {
				t.Fatalf("DecryptedSizeOf(EncryptedSizeOf(%d, %s)) = %d, %v", p, algName(a), got, err)
			}
		}
	}
}

// FuzzSizesOf checks EncryptedSizeOf and DecryptedSizeOf against each other and the format's
// rules for any stored size, plaintext size and algorithm number.
func FuzzSizesOf(f *testing.F) {
	f.Add(int64(48), int64(0), byte(0))
	f.Add(int64(52), int64(1), byte(1))
	f.Add(int64(S+16+32+8), int64(S), byte(3))
	f.Add(int64(3*S+5+64+32+64), int64(3*S+5), byte(6))
	f.Add(int64(-1), int64(-1), byte(11))
	f.Add(int64(1<<63-1), int64(format.MaxPlainSize), byte(10))
	f.Fuzz(func(t *testing.T, stored, plain int64, alg byte) {
		a := format.ChecksumAlgorithm(alg)
		known := a == format.ChecksumNone || a.Known()
		p, err := format.DecryptedSizeOf(stored, a)
		switch {
		case err != nil:
			if !errors.Is(err, format.ErrMalformed) || p != 0 {
				t.Fatalf("DecryptedSizeOf(%d, %d) = %d, %v", stored, alg, p, err)
			}
		case !known:
			t.Fatalf("DecryptedSizeOf(%d, unknown %d) = %d", stored, alg, p)
		case p < 0 || p > format.MaxPlainSize || format.EncryptedSizeOf(p, a) != stored:
			t.Fatalf("DecryptedSizeOf(%d, %d) = %d; EncryptedSizeOf of that is %d", stored, alg, p, format.EncryptedSizeOf(p, a))
		}
		e := format.EncryptedSizeOf(plain, a)
		switch {
		case !known || plain < 0 || plain > format.MaxPlainSize:
			if e != -1 {
				t.Fatalf("EncryptedSizeOf(%d, %d) = %d, want -1", plain, alg, e)
			}
		default:
			n := max(1, (plain+S-1)/S)
			if want := plain + 16*n + 32 + int64(a.Size()); e != want {
				t.Fatalf("EncryptedSizeOf(%d, %d) = %d, want %d", plain, alg, e, want)
			}
			if got, err := format.DecryptedSizeOf(e, a); err != nil || got != plain {
				t.Fatalf("DecryptedSizeOf(EncryptedSizeOf(%d, %d) = %d) = %d, %v", plain, alg, e, got, err)
			}
		}
		if a == format.ChecksumNone {
			op, oerr := format.DecryptedSize(stored)
			if op != p || (oerr == nil) != (err == nil) || format.EncryptedSize(plain) != e {
				t.Fatalf("none: the old size functions differ at stored %d, plain %d", stored, plain)
			}
		}
	})
}
