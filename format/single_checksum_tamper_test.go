package format_test

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// The checksum algorithm is stored beside the envelope, unauthenticated (MetaChecksum): these
// tests change, add and remove it, with and without the stored bytes cut or padded to the
// size the claimed algorithm expects, and require every read to fail before any plaintext.

// failedRead requires err to wrap ErrAuth or ErrMalformed and no plaintext to be out.
func failedRead(t *testing.T, what string, out []byte, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted (%d bytes)", what, len(out))
	}
	if !errors.Is(err, format.ErrAuth) && !errors.Is(err, format.ErrMalformed) {
		t.Fatalf("%s: error %v wraps neither ErrAuth nor ErrMalformed", what, err)
	}
	if len(out) != 0 {
		t.Fatalf("%s: %d plaintext bytes released before the error %v", what, len(out), err)
	}
}

// probeRanges are non-empty plaintext ranges of a p-byte stream: first and last byte, the whole
// stream, each segment's first byte and a range across every segment boundary.
func probeRanges(p int64) [][2]int64 {
	if p == 0 {
		return nil
	}
	rs := [][2]int64{{0, 1}, {p - 1, 1}, {0, p}}
	for off := int64(S); off < p; off += S {
		rs = append(rs, [2]int64{off, 1}, [2]int64{off - 1, 2})
	}
	return rs
}

// openAs reads stored as a reader does that found meta in MetaChecksum: the algorithm from
// ParseChecksumMeta, the plaintext size from DecryptedSizeOf of the stored size (fromSize) and/or
// each of the sizes given (a size the reader knew from elsewhere), then a whole read, the trailer
// and every probe range. Each must fail with ErrAuth or ErrMalformed and release nothing. It
// returns how many reads it made.
func openAs(t *testing.T, what string, k *format.ObjectKey, stored []byte, meta string, fromSize bool, sizes ...int64) int {
	t.Helper()
	a, err := format.ParseChecksumMeta(meta)
	if err != nil {
		t.Fatal(err)
	}
	if fromSize {
		p, err := format.DecryptedSizeOf(int64(len(stored)), a)
		if err != nil {
			if !errors.Is(err, format.ErrMalformed) {
				t.Fatalf("%s as %q: DecryptedSizeOf: %v", what, meta, err)
			}
		} else {
			sizes = append(sizes, p)
		}
	}
	reads := 0
	for _, p := range sizes {
		s, err := k.SingleStreamOf(p, a)
		if err != nil {
			t.Fatal(err)
		}
		w := what + " as " + algName(a) + " of " + itoaSize(p)
		out, err := io.ReadAll(s.DecryptAll(bytes.NewReader(stored)))
		failedRead(t, w+": DecryptAll", out, err)
		reads++
		var wt bytes.Buffer
		_, err = s.DecryptAll(bytes.NewReader(stored)).WriteTo(&wt)
		failedRead(t, w+": DecryptAll.WriteTo", wt.Bytes(), err)
		if off := s.TrailerOffset(); off <= int64(len(stored)) {
			m, c, err := s.OpenTrailerChecksum(stored[off:])
			if err == nil || m != nil || c != nil {
				t.Fatalf("%s: trailer opened: %x %x %v", w, m, c, err)
			}
			failedRead(t, w+": trailer", nil, err)
		}
		for _, rg := range probeRanges(p) {
			so, sl, err := s.Span(rg[0], rg[1])
			if err != nil {
				t.Fatal(err)
			}
			src := stored[min(so, int64(len(stored))):min(so+sl, int64(len(stored)))]
			out, err := io.ReadAll(s.DecryptRange(bytes.NewReader(src), rg[0], rg[1]))
			failedRead(t, w+": range "+itoaSize(rg[0])+"+"+itoaSize(rg[1]), out, err)
			reads++
		}
	}
	return reads
}

func itoaSize(i int64) string { return strconv.FormatInt(i, 10) }

func metaOf(a format.ChecksumAlgorithm) string { return a.String() } // "" for none

// resized returns stored cut or padded (with pad's bytes) to n bytes.
func resized(stored []byte, n int64, pad []byte) []byte {
	if n <= int64(len(stored)) {
		return bytes.Clone(stored[:n])
	}
	return append(bytes.Clone(stored), pad[:n-int64(len(stored))]...)
}

// TestChecksumMetaChanged: an object written with one algorithm (or none) and read as any
// other: the required cases are CRC32 read as CRC32C (same size) and as none, and none read as
// CRC32; every ordered pair of the eleven is read. The stored bytes are read as they are, and
// cut or padded to the size the claimed algorithm expects (which the backend's attacker can
// do), at the size DecryptedSizeOf gives and at the true plaintext size.
func TestChecksumMetaChanged(t *testing.T) {
	k := newKey(t)
	pad := randomBytes(t, 64)
	required := map[[2]format.ChecksumAlgorithm]bool{
		{format.ChecksumCRC32, format.ChecksumCRC32C}: false,
		{format.ChecksumCRC32, format.ChecksumNone}:   false,
		{format.ChecksumNone, format.ChecksumCRC32}:   false,
	}
	for _, size := range checksumSizes {
		plain := randomBytes(t, size)
		for _, w := range allChecksums {
			stored, _ := encryptChecksum(t, k, plain, format.EncryptOptions{ComputeMD5: true, Checksum: w}, false)
			for _, r := range allChecksums {
				if r == w {
					continue
				}
				what := algName(w) + "/" + itoaSize(size)
				reads := openAs(t, what, k, stored, metaOf(r), true, size)
				fit := resized(stored, format.EncryptedSizeOf(size, r), pad)
				p, err := format.DecryptedSizeOf(int64(len(fit)), r)
				if err != nil || p != size {
					t.Fatalf("%s resized for %s: DecryptedSizeOf = %d, %v", what, algName(r), p, err)
				}
				reads += openAs(t, what+" resized", k, fit, metaOf(r), true)
				if reads < 2 {
					t.Fatalf("%s as %s: only %d reads made", what, algName(r), reads)
				}
				if _, ok := required[[2]format.ChecksumAlgorithm{w, r}]; ok {
					required[[2]format.ChecksumAlgorithm{w, r}] = true
				}
			}
		}
	}
	for pair, done := range required {
		if !done {
			t.Errorf("written with %s read as %s: not tested", algName(pair[0]), algName(pair[1]))
		}
	}
}

// TestChecksumTrailerTampered: a flipped trailer byte (MD5, checksum or tag) and a trailer cut to
// 32 bytes (with the algorithm kept or removed) fail the whole read with ErrAuth and never yield
// a checksum. A whole read releases the segments it verified before it reaches the trailer, as
// for every object (FORMAT.md 3.2); ranged reads do not read the trailer.
func TestChecksumTrailerTampered(t *testing.T) {
	k := newKey(t)
	for _, a := range allChecksums[1:] {
		for _, size := range []int64{0, 1, S + 1} {
			plain := randomBytes(t, size)
			stored, _ := encryptChecksum(t, k, plain, format.EncryptOptions{ComputeMD5: true, Checksum: a}, false)
			s, err := k.SingleStreamOf(size, a)
			if err != nil {
				t.Fatal(err)
			}
			what := algName(a) + "/" + itoaSize(size)
			to := int(s.TrailerOffset())
			for _, at := range []int{to, to + 15, to + 16, to + 16 + a.Size() - 1, to + 16 + a.Size(), len(stored) - 1} {
				bad := bytes.Clone(stored)
				bad[at] ^= 0x01
				d := s.DecryptAll(bytes.NewReader(bad))
				out, err := io.ReadAll(d)
				if !errors.Is(err, format.ErrAuth) || !bytes.Equal(out, plain[:len(out)]) || d.Checksum() != nil || d.MD5() != nil {
					t.Fatalf("%s: trailer byte %d flipped: %v, Checksum %x", what, at-to, err, d.Checksum())
				}
				if m, c, err := s.OpenTrailerChecksum(bad[to:]); !errors.Is(err, format.ErrAuth) || m != nil || c != nil {
					t.Fatalf("%s: trailer byte %d flipped: OpenTrailerChecksum %x %x %v", what, at-to, m, c, err)
				}
			}
			cut := stored[:len(stored)-a.Size()]
			d := s.DecryptAll(bytes.NewReader(cut))
			if out, err := io.ReadAll(d); !errors.Is(err, format.ErrAuth) || !bytes.Equal(out, plain[:len(out)]) || d.Checksum() != nil {
				t.Fatalf("%s: trailer cut to 32 bytes: %v", what, err)
			}
			if _, _, err := s.OpenTrailerChecksum(cut[to:]); !errors.Is(err, format.ErrMalformed) {
				t.Fatalf("%s: OpenTrailerChecksum of 32 bytes: %v", what, err)
			}
			if _, err := s.OpenTrailer(cut[to:]); !errors.Is(err, format.ErrMalformed) {
				t.Fatalf("%s: OpenTrailer of 32 bytes: %v", what, err)
			}
			// Cut and the algorithm removed: the stored size is the no-checksum size of the
			// same plaintext size, but the part key differs.
			if p, err := format.DecryptedSize(int64(len(cut))); err != nil || p != size {
				t.Fatalf("%s cut: DecryptedSize = %d, %v", what, p, err)
			}
			openAs(t, what+" cut", k, cut, "", true)
			// Cut with the algorithm kept: the size gives another plaintext size, or none.
			openAs(t, what+" cut", k, cut, a.String(), true)
			// Extended by a byte.
			d = s.DecryptAll(bytes.NewReader(append(bytes.Clone(stored), 0)))
			if _, err := io.ReadAll(d); !errors.Is(err, format.ErrAuth) || d.Checksum() != nil {
				t.Fatalf("%s: extended by a byte: %v", what, err)
			}
		}
	}
}
