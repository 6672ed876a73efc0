package checksum

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The errors of Combine and CombineAll. They are returned wrapped with the details (the
// algorithm, the lengths); test for them with errors.Is.
var (
	// ErrNotCRC: the algorithm is not one of the CRCs (CRC32, CRC32C, CRC64NVME). Only CRCs
	// combine.
	ErrNotCRC = errors.New("checksum: only the CRCs combine")
	// ErrValueSize: a checksum value is not the algorithm's Size bytes long.
	ErrValueSize = errors.New("checksum: value of the wrong size")
	// ErrNegativeLength: a length is negative.
	ErrNegativeLength = errors.New("checksum: negative length")
	// ErrPartCount: CombineAll was given a different number of checksums and lengths.
	ErrPartCount = errors.New("checksum: as many lengths as checksums needed")
)

// crcPoly is the arithmetic of one reflected CRC: polynomials of degree below width over
// GF(2), modulo the CRC's polynomial p, stored bit-reflected as hash/crc32 and hash/crc64 store
// their registers: the top bit (1<<(width-1)) is x^0 and bit 0 is x^(width-1).
type crcPoly struct {
	width uint   // 32 or 64
	poly  uint64 // p without its x^width term, reflected (0xedb88320 for CRC-32)
	// x2n[k] is x^(2^k) mod p. Lengths are int64 bytes, so x^(8n) needs k up to 3+62: the table
	// has all of them rather than wrapping k around (as zlib's 32 entries do), which would be
	// right only if x^(2^width) == x mod p, true for some polynomials and not a thing to rely on.
	x2n [66]uint64
}

func newCRCPoly(width uint, poly uint64) *crcPoly {
	c := &crcPoly{width: width, poly: poly}
	p := uint64(1) << (width - 2) // x^1
	for k := range c.x2n {
		c.x2n[k] = p
		p = c.multmodp(p, p)
	}
	return c
}

var (
	crc32Arith     = newCRCPoly(32, 0xedb88320) // crc32.IEEE
	crc32cArith    = newCRCPoly(32, 0x82f63b78) // crc32.Castagnoli
	crc64NVMEArith = newCRCPoly(64, crc64NVMEPoly)
)

// crcPolyOf returns a's arithmetic, or nil if a is not a CRC.
func crcPolyOf(a Algorithm) *crcPoly {
	switch a {
	case CRC32:
		return crc32Arith
	case CRC32C:
		return crc32cArith
	case CRC64NVME:
		return crc64NVMEArith
	}
	return nil
}

// multmodp returns a·b mod p (zlib's multmodp): for each power x^i present in a, from x^0 up,
// it adds b·x^i, b being multiplied by x (one reflected shift, reduced by p) at each step.
func (c *crcPoly) multmodp(a, b uint64) uint64 {
	var prod uint64
	for m := uint64(1) << (c.width - 1); m != 0; m >>= 1 {
		if a&m != 0 {
			prod ^= b
			if a&(m-1) == 0 {
				break // no higher power of x left in a
			}
		}
		if b&1 != 0 {
			b = b>>1 ^ c.poly
		} else {
			b >>= 1
		}
	}
	return prod
}

// x2nmodp returns x^(n·2^k) mod p (zlib's x2nmodp), multiplying the x^(2^j) of n's bits:
// O(log n) multiplications. n ≥ 0 and k+bits(n) ≤ len(x2n).
func (c *crcPoly) x2nmodp(n int64, k uint) uint64 {
	p := uint64(1) << (c.width - 1) // x^0
	for ; n != 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = c.multmodp(c.x2n[k], p)
		}
	}
	return p
}

// combine returns the CRC of A‖B from the CRCs of A and B and B's length in bytes.
//
// With register s after A, the CRC's register after B is s·x^(8·len(B)) + crc0(B), crc0 being
// the CRC of B from a zero register without the final xor. With the initial value equal to the
// final xor (all ones for the three CRCs) those terms cancel:
// crc(A‖B) = crc(A)·x^(8·len(B)) + crc(B) mod p.
func (c *crcPoly) combine(crcA, crcB uint64, lenB int64) uint64 {
	return c.multmodp(c.x2nmodp(lenB, 3), crcA) ^ crcB
}

func (c *crcPoly) get(v []byte) uint64 {
	if c.width == 32 {
		return uint64(binary.BigEndian.Uint32(v))
	}
	return binary.BigEndian.Uint64(v)
}

func (c *crcPoly) put(v uint64) []byte {
	if c.width == 32 {
		return binary.BigEndian.AppendUint32(nil, uint32(v))
	}
	return binary.BigEndian.AppendUint64(nil, v)
}

// Combine returns a's checksum of the concatenation A‖B given a's checksum of A (first), of B
// (second) and B's length in bytes, for the CRCs (CRC32, CRC32C, CRC64NVME): what S3's
// FULL_OBJECT multipart checksums are made of. Checksum values are in the form hash.Hash's Sum
// gives them (big-endian), the bytes S3 base64-encodes. It takes O(log secondLen) time and
// reads no data.
//
// The errors (wrapped; see errors.Is) are ErrNotCRC if a is not a CRC, ErrValueSize if first
// or second is not a.Size() bytes long, and ErrNegativeLength if secondLen < 0.
func Combine(a Algorithm, first, second []byte, secondLen int64) ([]byte, error) {
	c := crcPolyOf(a)
	if c == nil {
		return nil, fmt.Errorf("%w: %v", ErrNotCRC, describe(a))
	}
	if len(first) != a.Size() || len(second) != a.Size() {
		return nil, fmt.Errorf("%w: %s values of %d and %d bytes, want %d", ErrValueSize, a, len(first), len(second), a.Size())
	}
	if secondLen < 0 {
		return nil, fmt.Errorf("%w: %d", ErrNegativeLength, secondLen)
	}
	return c.put(c.combine(c.get(first), c.get(second), secondLen)), nil
}

// CombineAll returns a's checksum of the concatenation of parts given each part's checksum
// (sums) and length in bytes (lens), in order: Combine folded over the parts. For no parts it
// is the CRC of the empty string (all zero bytes: the CRCs' initial value equals their final
// xor).
//
// The errors (wrapped; see errors.Is) are those of Combine (ErrNotCRC, ErrValueSize for any
// part, ErrNegativeLength for any length) and ErrPartCount if len(sums) != len(lens).
func CombineAll(a Algorithm, sums [][]byte, lens []int64) ([]byte, error) {
	c := crcPolyOf(a)
	if c == nil {
		return nil, fmt.Errorf("%w: %v", ErrNotCRC, describe(a))
	}
	if len(sums) != len(lens) {
		return nil, fmt.Errorf("%w: %d checksums, %d lengths", ErrPartCount, len(sums), len(lens))
	}
	var crc uint64 // the CRC of the empty string
	for i, s := range sums {
		if len(s) != a.Size() {
			return nil, fmt.Errorf("%w: %s value of part %d is %d bytes, want %d", ErrValueSize, a, i, len(s), a.Size())
		}
		if lens[i] < 0 {
			return nil, fmt.Errorf("%w: part %d: %d", ErrNegativeLength, i, lens[i])
		}
		crc = c.combine(crc, c.get(s), lens[i])
	}
	return c.put(crc), nil
}

// describe names a in an error: S3's name, or its number if it has none.
func describe(a Algorithm) string {
	if a.Known() {
		return a.String()
	}
	return fmt.Sprintf("algorithm %d", byte(a))
}
