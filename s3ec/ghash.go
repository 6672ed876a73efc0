package s3ec

import "encoding/binary"

// GHASH (NIST SP 800-38D, section 6.4), written here because Go's crypto/cipher offers GCM only
// as a one-shot AEAD: verifying the tag of a many-gigabyte object in constant memory needs the
// hash on its own. It is tested against crypto/cipher's GCM.
//
// A field element is held as two words: hi bit 63 is the coefficient of x^0 ... lo bit 0 the
// coefficient of x^127 (GCM's bit order, read as two big-endian words).

type element struct{ hi, lo uint64 }

func load(b []byte) element {
	return element{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:16])}
}

func (e element) store(b []byte) {
	binary.BigEndian.PutUint64(b[:8], e.hi)
	binary.BigEndian.PutUint64(b[8:16], e.lo)
}

// timesX multiplies by x modulo x^128 + x^7 + x^2 + x + 1.
func (e element) timesX() element {
	carry := e.lo & 1 // coefficient of x^127
	r := element{e.hi >> 1, e.lo>>1 | e.hi<<63}
	if carry != 0 {
		r.hi ^= 0xe1 << 56 // x^128 = 1 + x + x^2 + x^7
	}
	return r
}

// ghash computes GHASH_H over a stream of 16-byte blocks.
type ghash struct {
	table  [16]element // table[n] = n(x)·H for every 4-bit polynomial n (bit 3 = x^0)
	reduce [16]uint64  // what the 4 coefficients shifted past x^127 add to hi
	y      element
	buf    [16]byte
	nbuf   int
	n      uint64 // bytes hashed
}

func newGHASH(h []byte) *ghash {
	g := &ghash{}
	var pow [4]element // x^j · H
	pow[0] = load(h)
	for j := 1; j < 4; j++ {
		pow[j] = pow[j-1].timesX()
	}
	for n := 0; n < 16; n++ {
		var e element
		for j := 0; j < 4; j++ {
			if n>>(3-j)&1 != 0 {
				e.hi ^= pow[j].hi
				e.lo ^= pow[j].lo
			}
		}
		g.table[n] = e
	}
	// Shifting by 4 moves coefficients x^124..x^127 (lo bits 3..0) to x^128..x^131; each
	// x^(128+j) becomes x^j·(1 + x + x^2 + x^7).
	for v := 0; v < 16; v++ {
		var r uint64
		for j := 0; j < 4; j++ {
			if v>>(3-j)&1 != 0 {
				for _, e := range []int{0, 1, 2, 7} {
					r ^= 1 << (63 - (j + e))
				}
			}
		}
		g.reduce[v] = r
	}
	return g
}

// mulH sets y = (y ⊕ x)·H, by Horner's rule over the 32 nibbles of y ⊕ x, last first.
func (g *ghash) mulH(x element) {
	y := element{g.y.hi ^ x.hi, g.y.lo ^ x.lo}
	var z element
	for k := 31; k >= 0; k-- {
		out := z.lo & 0xf
		z = element{z.hi >> 4, z.lo>>4 | z.hi<<60}
		z.hi ^= g.reduce[out]
		var nib uint64
		if k < 16 {
			nib = y.hi >> (60 - 4*k) & 0xf
		} else {
			nib = y.lo >> (60 - 4*(k-16)) & 0xf
		}
		z.hi ^= g.table[nib].hi
		z.lo ^= g.table[nib].lo
	}
	g.y = z
}

// Write hashes p as ciphertext (zero-padded to whole blocks at the end by sum).
func (g *ghash) Write(p []byte) {
	g.n += uint64(len(p))
	if g.nbuf > 0 {
		c := copy(g.buf[g.nbuf:], p)
		g.nbuf += c
		p = p[c:]
		if g.nbuf < 16 {
			return
		}
		g.mulH(load(g.buf[:]))
		g.nbuf = 0
	}
	for len(p) >= 16 {
		g.mulH(load(p))
		p = p[16:]
	}
	g.nbuf = copy(g.buf[:], p)
}

// sum finishes GHASH(A = empty, C) with the length block.
func (g *ghash) sum() [16]byte {
	if g.nbuf > 0 {
		clear(g.buf[g.nbuf:])
		g.mulH(load(g.buf[:]))
		g.nbuf = 0
	}
	g.mulH(element{0, g.n * 8})
	var out [16]byte
	g.y.store(out[:])
	return out
}
