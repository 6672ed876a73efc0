package format_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// fuzzParts turns fuzz bytes into part numbers, stored sizes and 48-byte part headers. Each
// 7-byte record is: a part-number step (int8, may go backwards), a plaintext size (uint32,
// scaled to reach segment boundaries), and a flag byte; flag&1 makes the stored size arbitrary
// (flag and size bits) instead of PartEncryptedSize(plain). Headers carry the number and the
// plaintext size and an ID derived from the record index.
func fuzzParts(data []byte) (numbers []int, stored []int64, plains []int64, valid []bool, headers [][]byte) {
	n := 0
	for i := 0; len(data) >= 7 && i < 64; i++ {
		rec := data[:7]
		data = data[7:]
		n += int(int8(rec[0]))
		plain := int64(binary.BigEndian.Uint32(rec[1:5])) % (5 * format.SegmentSize)
		if rec[5]&2 != 0 {
			plain *= format.SegmentSize // large parts, some far beyond 5 GiB
		}
		s := format.PartEncryptedSize(plain)
		ok := true
		if rec[6]&1 != 0 {
			s = int64(binary.BigEndian.Uint32(rec[1:5])) - 64
			ok = false // decided by the layout; checked below
		}
		numbers = append(numbers, n)
		stored = append(stored, s)
		plains = append(plains, plain)
		valid = append(valid, ok)
		h := make([]byte, format.PartHeaderSize)
		h[0] = format.Version2
		h[1] = 1 // multipart
		binary.BigEndian.PutUint32(h[4:8], uint32(n))
		binary.BigEndian.PutUint64(h[8:16], uint64(plain))
		for j := 16; j < len(h); j++ {
			h[j] = byte(i*31 + j)
		}
		headers = append(headers, h)
	}
	return numbers, stored, plains, valid, headers
}

// FuzzLayout checks NewLayout, Locate and LayoutOfHeaders: a layout is accepted exactly when the
// part numbers strictly increase within 1..MaxPartNumber and every stored size is a part's
// size; offsets are the running sums; Locate's ranges cover exactly [off, off+length) in order,
// each within its part; LayoutOfHeaders agrees with NewLayout and sets the IDs.
func FuzzLayout(f *testing.F) {
	rec := func(step int8, plain uint32, flag5, flag6 byte) []byte {
		b := []byte{byte(step), 0, 0, 0, 0, flag5, flag6}
		binary.BigEndian.PutUint32(b[1:5], plain)
		return b
	}
	cat := func(rs ...[]byte) []byte { return bytes.Join(rs, nil) }
	f.Add(cat(rec(1, 1<<16, 0, 0)), int64(0), int64(1))
	f.Add(cat(rec(1, 5<<16, 0, 0), rec(1, 1<<16, 0, 0), rec(1, 7, 0, 0)), int64(65535), int64(65538))
	f.Add(cat(rec(1, 0, 0, 0), rec(2, 100, 0, 0), rec(1, 0, 0, 0), rec(1, 100, 0, 0)), int64(50), int64(100))
	f.Add(cat(rec(3, 10, 0, 0), rec(-1, 10, 0, 0)), int64(0), int64(5))
	f.Add(cat(rec(1, 10, 0, 1), rec(1, 10, 2, 0)), int64(-1), int64(5))
	f.Add(cat(rec(1, 1<<16+1, 2, 0), rec(1, 3, 2, 0)), int64(1<<32), int64(1<<40))
	f.Add(cat(rec(127, 99, 0, 0)), int64(98), int64(1))
	f.Fuzz(func(t *testing.T, data []byte, off, length int64) {
		numbers, stored, plains, valid, headers := fuzzParts(data)
		l, err := format.NewLayout(numbers, stored)

		wantOK := len(numbers) > 0
		prev := 0
		for i, n := range numbers {
			if n <= prev || n > format.MaxPartNumber {
				wantOK = false
			}
			prev = n
			if valid[i] && stored[i] < 0 {
				t.Fatalf("PartEncryptedSize(%d) = %d", plains[i], stored[i])
			}
		}
		if err != nil {
			if !errors.Is(err, format.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			allValid := true
			for _, v := range valid {
				allValid = allValid && v
			}
			if wantOK && allValid {
				t.Fatalf("NewLayout(%v, %v) rejected a valid layout: %v", numbers, stored, err)
			}
			return
		}
		if !wantOK || len(l) != len(numbers) {
			t.Fatalf("NewLayout(%v, %v) accepted: %+v", numbers, stored, l)
		}
		var so, po int64
		for i, p := range l {
			if p.Number != numbers[i] || p.StoredSize != stored[i] || p.StoredOffset != so || p.PlainOffset != po {
				t.Fatalf("part %d: %+v (want number %d stored %d at %d, plain at %d)", i, p, numbers[i], stored[i], so, po)
			}
			// The plaintext size must be the one the stored size encrypts; an arbitrary stored
			// size was accepted only if it is some part's size.
			if format.PartEncryptedSize(p.PlainSize) != p.StoredSize || (valid[i] && p.PlainSize != plains[i]) {
				t.Fatalf("part %d: plain %d for stored %d (generated plain %d)", i, p.PlainSize, p.StoredSize, plains[i])
			}
			so += p.StoredSize
			po += p.PlainSize
		}
		if l.StoredSize() != so || l.PlainSize() != po {
			t.Fatalf("sizes %d/%d, want %d/%d", l.StoredSize(), l.PlainSize(), so, po)
		}

		total := l.PlainSize()
		for _, q := range [][2]int64{{off, length}, {0, total}, {off % (total + 1), length % (total + 1)}} {
			checkLocate(t, l, q[0], q[1])
		}

		allValid := true
		for _, v := range valid {
			allValid = allValid && v
		}
		if allValid {
			lh, err := format.LayoutOfHeaders(headers)
			if err != nil {
				t.Fatalf("LayoutOfHeaders rejected the headers of a valid layout: %v", err)
			}
			for i := range lh {
				want := l[i]
				copy(want.ID[:], headers[i][16:])
				if lh[i] != want {
					t.Fatalf("LayoutOfHeaders part %d: %+v, want %+v", i, lh[i], want)
				}
			}
		}
	})
}

// checkLocate checks Locate against the definition: nil unless 0 <= off, 0 < length and
// off+length <= total; otherwise ranges, in increasing part order, each non-empty and within
// its part, whose absolute positions are consecutive from off to off+length.
func checkLocate(t *testing.T, l format.Layout, off, length int64) {
	t.Helper()
	total := l.PlainSize()
	got := l.Locate(off, length)
	inside := off >= 0 && length > 0 && off <= total && length <= total-off
	if !inside {
		if got != nil {
			t.Fatalf("Locate(%d, %d) of %d bytes = %+v, want nil", off, length, total, got)
		}
		return
	}
	at, last := off, -1
	for _, r := range got {
		if r.Index <= last || r.Index >= len(l) {
			t.Fatalf("Locate(%d, %d): index %d after %d (%d parts): %+v", off, length, r.Index, last, len(l), got)
		}
		p := l[r.Index]
		if r.Length <= 0 || r.Off < 0 || r.Off > p.PlainSize-r.Length {
			t.Fatalf("Locate(%d, %d): range %+v outside part %+v", off, length, r, p)
		}
		if p.PlainOffset+r.Off != at {
			t.Fatalf("Locate(%d, %d): range %+v starts at %d, want %d: %+v", off, length, r, p.PlainOffset+r.Off, at, got)
		}
		at += r.Length
		last = r.Index
	}
	if at != off+length {
		t.Fatalf("Locate(%d, %d) covers up to %d: %+v", off, length, at, got)
	}
}
