package checksum

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"hash/crc64"
	"math"
	"math/rand/v2"
	"testing"
)

var crcs = []Algorithm{CRC32, CRC32C, CRC64NVME}

// sum is a's checksum of the concatenation of parts, computed directly with a.New().
func sum(a Algorithm, parts ...[]byte) []byte {
	h := a.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestCRCCheckValues checks the three CRCs of the table (and so the polynomials Combine's
// tests compare against) with their check values, the CRC of "123456789", from the CRC
// catalogue (CRC-32/ISO-HDLC, CRC-32/ISCSI, CRC-64/NVME), and that the standard library's
// own tables give the same.
func TestCRCCheckValues(t *testing.T) {
	check := []byte("123456789")
	for _, c := range []struct {
		a    Algorithm
		want uint64
		std  uint64
	}{
		{CRC32, 0xcbf43926, uint64(crc32.ChecksumIEEE(check))},
		{CRC32C, 0xe3069283, uint64(crc32.Checksum(check, crc32.MakeTable(crc32.Castagnoli)))},
		{CRC64NVME, 0xae8b14860a799888, crc64.Checksum(check, crc64.MakeTable(0x9a6c9329ac4bc9b5))},
	} {
		got := sum(c.a, check)
		var v uint64
		if len(got) == 4 {
			v = uint64(binary.BigEndian.Uint32(got))
		} else {
			v = binary.BigEndian.Uint64(got)
		}
		if v != c.want || c.std != c.want {
			t.Errorf("%s(123456789) = %#x (standard library %#x), want %#x", c.a, v, c.std, c.want)
		}
	}
	// The vector tells CRC-64/NVME from the standard library's two 64-bit CRCs.
	for _, p := range []uint64{crc64.ECMA, crc64.ISO} {
		if crc64.Checksum(check, crc64.MakeTable(p)) == 0xae8b14860a799888 {
			t.Fatalf("CRC-64 %#x also gives the CRC-64/NVME check value", p)
		}
	}
}

// combineLengths are the lengths of A and B TestCombine tries: around the 8-byte and
// 64-byte steps and a power of two, and past a megabyte.
var combineLengths = []int{0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 256, 1000, 4095, 4096, 4097, 1<<16 + 1, 1<<20 + 3}

// TestCombine checks Combine(crc(A), crc(B), len(B)) against the CRC of A‖B computed directly,
// for every pair of combineLengths and each CRC.
func TestCombine(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	maxLen := combineLengths[len(combineLengths)-1]
	buf := randomBytes(r, 2*maxLen)
	for _, a := range crcs {
		for _, la := range combineLengths {
			for _, lb := range combineLengths {
				// A different stretch of buf for every pair.
				off := r.IntN(len(buf) - la - lb + 1)
				A, B := buf[off:off+la], buf[off+la:off+la+lb]
				got, err := Combine(a, sum(a, A), sum(a, B), int64(lb))
				if err != nil {
					t.Fatalf("%s, %d+%d bytes: %v", a, la, lb, err)
				}
				if want := sum(a, buf[off:off+la+lb]); !bytes.Equal(got, want) {
					t.Errorf("%s, %d+%d bytes: Combine = %x, CRC of the concatenation %x", a, la, lb, got, want)
				}
			}
		}
	}
}

// TestCombineStandardLibrary checks Combine against hash/crc32 and hash/crc64 used directly
// (not through the table), values in Sum's big-endian form.
func TestCombineStandardLibrary(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	A, B := randomBytes(r, 1000), randomBytes(r, 4097)
	AB := append(append([]byte(nil), A...), B...)
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	be64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	nvme := crc64.MakeTable(0x9a6c9329ac4bc9b5)
	for _, c := range []struct {
		a           Algorithm
		crcA, crcB  []byte
		crcAB       []byte
		description string
	}{
		{CRC32, be32(crc32.ChecksumIEEE(A)), be32(crc32.ChecksumIEEE(B)), be32(crc32.ChecksumIEEE(AB)), "crc32.ChecksumIEEE"},
		{CRC32C, be32(crc32.Checksum(A, castagnoli)), be32(crc32.Checksum(B, castagnoli)), be32(crc32.Checksum(AB, castagnoli)), "crc32.Castagnoli"},
		{CRC64NVME, be64(crc64.Checksum(A, nvme)), be64(crc64.Checksum(B, nvme)), be64(crc64.Checksum(AB, nvme)), "crc64 NVME"},
	} {
		got, err := Combine(c.a, c.crcA, c.crcB, int64(len(B)))
		if err != nil || !bytes.Equal(got, c.crcAB) {
			t.Errorf("%s: Combine = %x, %v; %s of the concatenation %x", c.a, got, err, c.description, c.crcAB)
		}
	}
}

// TestCombineAll checks CombineAll over 0 to 10 parts of random lengths (some empty) against
// the CRC of the concatenation.
func TestCombineAll(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, a := range crcs {
		got, err := CombineAll(a, nil, nil)
		if err != nil || !bytes.Equal(got, sum(a)) || len(got) != a.Size() {
			t.Errorf("%s: CombineAll of no parts = %x, %v; want the CRC of the empty string %x", a, got, err, sum(a))
		}
		for n := 1; n <= 10; n++ {
			for range 4 {
				parts := make([][]byte, n)
				sums := make([][]byte, n)
				lens := make([]int64, n)
				for i := range parts {
					l := 0
					switch r.IntN(4) {
					case 0: // empty part
					case 1:
						l = r.IntN(16)
					default:
						l = r.IntN(100_000)
					}
					parts[i] = randomBytes(r, l)
					sums[i], lens[i] = sum(a, parts[i]), int64(l)
				}
				got, err := CombineAll(a, sums, lens)
				if err != nil {
					t.Fatalf("%s, lengths %v: %v", a, lens, err)
				}
				if want := sum(a, parts...); !bytes.Equal(got, want) {
					t.Errorf("%s, lengths %v: CombineAll = %x, CRC of the concatenation %x", a, lens, got, want)
				}
			}
		}
	}
}

// TestCombineAssociative checks, for lengths no test can write out (up to 5 TiB, and 2^62
// whose x^(8·2^62) is the last of the powers Combine keeps), that
// combine(combine(x,y,ly),z,lz) == combine(x, combine(y,z,lz), ly+lz) for random checksums:
// the powers of x for the bits of ly, lz and ly+lz agree only if each is the square of the
// previous one.
func TestCombineAssociative(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const gib, tib = int64(1) << 30, int64(1) << 40
	lengths := []int64{0, 1, 4095, 8 << 20, 4*gib - 1, 4 * gib, 5 * gib, 5*gib + 3, 5 * tib, 5*tib - 1, 1 << 62, 1<<62 - 1}
	for _, a := range crcs {
		for _, ly := range lengths {
			for _, lz := range lengths {
				if ly > math.MaxInt64-lz {
					continue
				}
				x, y, z := randomBytes(r, a.Size()), randomBytes(r, a.Size()), randomBytes(r, a.Size())
				xy, err1 := Combine(a, x, y, ly)
				left, err2 := Combine(a, xy, z, lz)
				yz, err3 := Combine(a, y, z, lz)
				right, err4 := Combine(a, x, yz, ly+lz)
				if err := errors.Join(err1, err2, err3, err4); err != nil {
					t.Fatalf("%s, %d, %d: %v", a, ly, lz, err)
				}
				if !bytes.Equal(left, right) {
					t.Errorf("%s, lengths %d and %d: (x‖y)‖z = %x, x‖(y‖z) = %x", a, ly, lz, left, right)
				}
				all, err := CombineAll(a, [][]byte{x, y, z}, []int64{7, ly, lz})
				if err != nil || !bytes.Equal(all, left) {
					t.Errorf("%s, lengths %d and %d: CombineAll = %x, %v; want %x", a, ly, lz, all, err, left)
				}
			}
		}
	}
}

// TestCombineZeroLength checks that a part of length 0 leaves the checksum as it was: Combine
// with B empty (whose CRC is zero) is the CRC of A.
func TestCombineZeroLength(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, a := range crcs {
		x := randomBytes(r, a.Size())
		got, err := Combine(a, x, sum(a), 0)
		if err != nil || !bytes.Equal(got, x) {
			t.Errorf("%s: Combine(x, crc(\"\"), 0) = %x, %v; want %x", a, got, err, x)
		}
	}
}

func TestCombineErrors(t *testing.T) {
	four, eight := make([]byte, 4), make([]byte, 8)
	cases := []struct {
		name          string
		a             Algorithm
		first, second []byte
		n             int64
		want          error
	}{
		{"None", None, four, four, 1, ErrNotCRC},
		{"SHA256", SHA256, make([]byte, 32), make([]byte, 32), 1, ErrNotCRC},
		{"MD5", MD5, make([]byte, 16), make([]byte, 16), 1, ErrNotCRC},
		{"XXHASH64", XXHASH64, eight, eight, 1, ErrNotCRC},
		{"XXHASH3", XXHASH3, eight, eight, 1, ErrNotCRC},
		{"unknown number", XXHASH128 + 1, four, four, 1, ErrNotCRC},
		{"255", Algorithm(255), eight, eight, 1, ErrNotCRC},
		{"CRC32 first of 8 bytes", CRC32, eight, four, 1, ErrValueSize},
		{"CRC32C second of 8 bytes", CRC32C, four, eight, 1, ErrValueSize},
		{"CRC32 nil", CRC32, nil, four, 1, ErrValueSize},
		{"CRC64NVME of 4 bytes", CRC64NVME, four, four, 1, ErrValueSize},
		{"CRC64NVME second of 7 bytes", CRC64NVME, eight, make([]byte, 7), 1, ErrValueSize},
		{"CRC32 negative length", CRC32, four, four, -1, ErrNegativeLength},
		{"CRC64NVME most negative length", CRC64NVME, eight, eight, math.MinInt64, ErrNegativeLength},
	}
	for _, c := range cases {
		got, err := Combine(c.a, c.first, c.second, c.n)
		if !errors.Is(err, c.want) || got != nil {
			t.Errorf("%s: Combine = %x, %v; want %v", c.name, got, err, c.want)
		}
		sums := [][]byte{c.first, c.second}
		if c.a.IsCRC() && len(c.first) == c.a.Size() {
			// As the second of two parts: CombineAll checks every part, not only the first.
			sums[0] = make([]byte, c.a.Size())
		}
		got, err = CombineAll(c.a, sums, []int64{1, c.n})
		if !errors.Is(err, c.want) || got != nil {
			t.Errorf("%s: CombineAll = %x, %v; want %v", c.name, got, err, c.want)
		}
	}
	for _, c := range []struct {
		sums [][]byte
		lens []int64
	}{{[][]byte{four}, nil}, {nil, []int64{0}}, {[][]byte{four, four}, []int64{1}}} {
		if got, err := CombineAll(CRC32, c.sums, c.lens); !errors.Is(err, ErrPartCount) || got != nil {
			t.Errorf("CombineAll of %d checksums and %d lengths = %x, %v; want %v", len(c.sums), len(c.lens), got, err, ErrPartCount)
		}
	}
	if _, err := CombineAll(SHA1, nil, nil); !errors.Is(err, ErrNotCRC) {
		t.Errorf("CombineAll(SHA1) of no parts: %v, want %v", err, ErrNotCRC)
	}
	// The sentinels are distinct: errors.Is tells them apart.
	sentinels := []error{ErrNotCRC, ErrValueSize, ErrNegativeLength, ErrPartCount}
	for i, e := range sentinels {
		for j, f := range sentinels {
			if (i == j) != errors.Is(e, f) {
				t.Errorf("errors.Is(%v, %v) = %v", e, f, errors.Is(e, f))
			}
		}
	}
}

// FuzzCombine checks Combine(crc(a), crc(b), len(b)) against the CRC of a‖b, the algorithm
// chosen by alg (modulo 3: CRC32, CRC32C, CRC64NVME).
func FuzzCombine(f *testing.F) {
	f.Add([]byte(""), []byte(""), byte(0))
	f.Add([]byte("1234"), []byte("56789"), byte(2))
	f.Add(bytes.Repeat([]byte{0xff}, 100), []byte{0}, byte(1))
	f.Fuzz(func(t *testing.T, a, b []byte, alg byte) {
		algo := crcs[int(alg)%len(crcs)]
		got, err := Combine(algo, sum(algo, a), sum(algo, b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if want := sum(algo, a, b); !bytes.Equal(got, want) {
			t.Fatalf("%s, %d+%d bytes: Combine = %x, CRC of the concatenation %x", algo, len(a), len(b), got, want)
		}
		all, err := CombineAll(algo, [][]byte{sum(algo, b), sum(algo, a), sum(algo, b)}, []int64{int64(len(b)), int64(len(a)), int64(len(b))})
		if err != nil {
			t.Fatal(err)
		}
		if want := sum(algo, b, a, b); !bytes.Equal(all, want) {
			t.Fatalf("%s: CombineAll of b, a, b = %x, CRC of the concatenation %x", algo, all, want)
		}
	})
}

// BenchmarkCombine is one Combine of an 8 MiB part's CRC64NVME (the widest CRC), a typical
// multipart part size.
func BenchmarkCombine(b *testing.B) {
	x, y := make([]byte, 8), make([]byte, 8)
	x[0], y[7] = 1, 2
	for b.Loop() {
		if _, err := Combine(CRC64NVME, x, y, 8<<20); err != nil {
			b.Fatal(err)
		}
	}
}
