package format

import "math"

// PartLayout locates one part of a multipart object.
type PartLayout struct {
	Number       int
	StoredOffset int64 // offset of the part header in the stored object
	StoredSize   int64 // header included
	PlainOffset  int64
	PlainSize    int64
	// ID is the last 32 bytes of the part's header (format 2: the part salt; format 1: the
	// ephemeral public key), once a reader has seen and authenticated it; readers check every
	// header they use against it, so a part cannot be swapped for another after the check.
	ID [32]byte
}

// Layout is the list of parts of a multipart object in stored order.
type Layout []PartLayout

// NewLayout builds the layout from the parts' numbers and stored sizes (as reported by the
// backend). Numbers must strictly increase within 1..MaxPartNumber and every stored size must
// be a valid part size; otherwise the error wraps ErrMalformed.
func NewLayout(numbers []int, storedSizes []int64) (Layout, error) {
	if len(numbers) != len(storedSizes) {
		return nil, errf(ErrMalformed, "layout: %d part numbers but %d sizes", len(numbers), len(storedSizes))
	}
	if len(numbers) == 0 {
		return nil, errf(ErrMalformed, "layout: no parts")
	}
	l := make(Layout, len(numbers))
	var stored, plain int64
	prev := 0
	for i, n := range numbers {
		if n <= prev || n > MaxPartNumber {
			return nil, errf(ErrMalformed, "layout: part %d (index %d) after part %d: numbers must increase within 1..%d", n, i, prev, MaxPartNumber)
		}
		p, err := PartDecryptedSize(storedSizes[i])
		if err != nil {
			return nil, errf(ErrMalformed, "layout: part %d: stored size %d is not a valid part size", n, storedSizes[i])
		}
		if stored > math.MaxInt64-storedSizes[i] {
			return nil, errf(ErrMalformed, "layout: part %d: total stored size overflows", n)
		}
		l[i] = PartLayout{Number: n, StoredOffset: stored, StoredSize: storedSizes[i], PlainOffset: plain, PlainSize: p}
		stored += storedSizes[i]
		plain += p
		prev = n
	}
	return l, nil
}

// PlainSize returns the object's plaintext size.
func (l Layout) PlainSize() int64 {
	if len(l) == 0 {
		return 0
	}
	last := l[len(l)-1]
	return last.PlainOffset + last.PlainSize
}

// StoredSize returns the object's stored size.
func (l Layout) StoredSize() int64 {
	if len(l) == 0 {
		return 0
	}
	last := l[len(l)-1]
	return last.StoredOffset + last.StoredSize
}

// PartRange is a plaintext range within one part: Index into the Layout, Off and Length
// relative to that part's plaintext.
type PartRange struct {
	Index       int
	Off, Length int64
}

// Locate returns the part ranges covering the object's plaintext [off, off+length), in order,
// skipping parts with no bytes in the range. It returns nil for an empty range or one that does
// not lie within the object.
func (l Layout) Locate(off, length int64) []PartRange {
	total := l.PlainSize()
	if off < 0 || length <= 0 || off > total || length > total-off {
		return nil
	}
	end := off + length
	var out []PartRange
	for i, p := range l {
		pEnd := p.PlainOffset + p.PlainSize
		if pEnd <= off || p.PlainSize == 0 {
			continue
		}
		if p.PlainOffset >= end {
			break
		}
		a := max(off, p.PlainOffset)
		b := min(end, pEnd)
		out = append(out, PartRange{Index: i, Off: a - p.PlainOffset, Length: b - a})
	}
	return out
}

// LayoutOfHeaders builds the layout of a multipart object from its part headers in stored order
// (each 48 bytes, as read and checked by the caller), with every part's ID set from its header.
// Errors wrap ErrMalformed (an unparsable header, part numbers not increasing).
func LayoutOfHeaders(headers [][]byte) (Layout, error) {
	numbers := make([]int, len(headers))
	sizes := make([]int64, len(headers))
	for i, h := range headers {
		n, plain, err := ParsePartHeader(h)
		if err != nil {
			return nil, err
		}
		numbers[i], sizes[i] = n, PartEncryptedSize(plain)
	}
	l, err := NewLayout(numbers, sizes)
	if err != nil {
		return nil, err
	}
	for i, h := range headers {
		copy(l[i].ID[:], h[partInfoSize:])
	}
	return l, nil
}
