package format_test

import (
	"errors"
	"testing"

	"github.com/s3seal/s3seal/format"
)

func TestEncryptedSizeByHand(t *testing.T) {
	// Values worked out by hand from docs/FORMAT.md 3.3: p + 16·max(1, ceil(p/S)) + 32.
	cases := []struct{ plain, stored int64 }{
		{0, 48}, {1, 49}, {S - 1, S - 1 + 48}, {S, S + 48}, {S + 1, S + 1 + 64},
		{3 * S, 3*S + 80}, {3*S + 7, 3*S + 7 + 96}, {5 << 40, 5<<40 + 16*(5<<40/S) + 32},
	}
	for _, c := range cases {
		if got := format.EncryptedSize(c.plain); got != c.stored {
			t.Errorf("EncryptedSize(%d) = %d, want %d", c.plain, got, c.stored)
		}
		if got := format.PartEncryptedSize(c.plain); got != c.stored+48 {
			t.Errorf("PartEncryptedSize(%d) = %d, want %d", c.plain, got, c.stored+48)
		}
	}
	for _, bad := range []int64{-1, format.MaxPlainSize + 1} {
		if format.EncryptedSize(bad) != -1 || format.PartEncryptedSize(bad) != -1 {
			t.Errorf("size of invalid plaintext size %d not -1", bad)
		}
	}
}

func TestDecryptedSizeInverse(t *testing.T) {
	valid := make(map[int64]int64)
	for p := int64(0); p <= 5*S; p++ {
		e := format.EncryptedSize(p)
		if prev, dup := valid[e]; dup {
			t.Fatalf("EncryptedSize(%d) = EncryptedSize(%d) = %d", p, prev, e)
		}
		valid[e] = p
	}
	// Every stored size up to the largest one is either the image of exactly one plaintext
	// size or rejected with ErrMalformed.
	for e := int64(-3); e <= format.EncryptedSize(5*S); e++ {
		p, err := format.DecryptedSize(e)
		want, ok := valid[e]
		switch {
		case ok && (err != nil || p != want):
			t.Fatalf("DecryptedSize(%d) = %d, %v; want %d", e, p, err, want)
		case !ok && !errors.Is(err, format.ErrMalformed):
			t.Fatalf("DecryptedSize(%d) = %d, %v; want ErrMalformed", e, p, err)
		}
		pp, perr := format.PartDecryptedSize(e + 48)
		if ok != (perr == nil) || (ok && pp != want) {
			t.Fatalf("PartDecryptedSize(%d) = %d, %v", e+48, pp, perr)
		}
	}
	r := rng(t)
	for range 100000 {
		p := r.Int64N(format.MaxPlainSize + 1)
		e := format.EncryptedSize(p)
		if got, err := format.DecryptedSize(e); err != nil || got != p {
			t.Fatalf("DecryptedSize(EncryptedSize(%d)=%d) = %d, %v", p, e, got, err)
		}
		if got, err := format.PartDecryptedSize(format.PartEncryptedSize(p)); err != nil || got != p {
			t.Fatalf("PartDecryptedSize(PartEncryptedSize(%d)) = %d, %v", p, got, err)
		}
		// Sizes 1..15 bytes past a full segment boundary, and 16 past it, are never valid.
		q := r.Int64N(1<<30) + 1
		for _, bad := range []int64{q*(S+16) + 32 + 1 + r.Int64N(15), q*(S+16) + 32 + 16} {
			if _, err := format.DecryptedSize(bad); !errors.Is(err, format.ErrMalformed) {
				t.Fatalf("DecryptedSize(%d) accepted", bad)
			}
		}
	}
	for _, bad := range []int64{format.EncryptedSize(format.MaxPlainSize) + S + 16, 1<<63 - 1} {
		if _, err := format.DecryptedSize(bad); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("DecryptedSize(%d) accepted a size above the maximum", bad)
		}
	}
}
