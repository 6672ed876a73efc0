package format_test

import (
	"errors"
	"testing"

	"github.com/s3seal/s3seal/format"
)

func TestLayoutLocate(t *testing.T) {
	r := rng(t)
	for range 200 {
		nparts := 1 + r.IntN(5)
		var numbers []int
		var plains, stored []int64
		num := 0
		for range nparts {
			num += 1 + r.IntN(3)
			p := r.Int64N(40) // small parts, some empty
			if r.IntN(10) == 0 {
				p = S - 5 + r.Int64N(10) // around a segment boundary
			}
			numbers = append(numbers, num)
			plains = append(plains, p)
			stored = append(stored, format.PartEncryptedSize(p))
		}
		l, err := format.NewLayout(numbers, stored)
		if err != nil {
			t.Fatal(err)
		}
		// Owner of every plaintext byte, by brute force.
		var owner []int
		var within []int64
		var so, po int64
		for i := range l {
			if l[i].Number != numbers[i] || l[i].StoredOffset != so || l[i].StoredSize != stored[i] || l[i].PlainOffset != po || l[i].PlainSize != plains[i] {
				t.Fatalf("part %d: %+v", i, l[i])
			}
			so += stored[i]
			po += plains[i]
			for j := int64(0); j < plains[i]; j++ {
				owner = append(owner, i)
				within = append(within, j)
			}
		}
		if l.PlainSize() != po || l.StoredSize() != so {
			t.Fatalf("sizes %d %d, want %d %d", l.PlainSize(), l.StoredSize(), po, so)
		}
		total := int64(len(owner))
		for range 30 {
			off := r.Int64N(total + 1)
			n := r.Int64N(total - off + 1)
			got := l.Locate(off, n)
			// Expand the answer to bytes and compare.
			var gotOwner []int
			var gotWithin []int64
			for k, pr := range got {
				if pr.Length <= 0 || pr.Off < 0 || pr.Off+pr.Length > l[pr.Index].PlainSize {
					t.Fatalf("Locate(%d, %d)[%d] = %+v", off, n, k, pr)
				}
				if k > 0 && pr.Index <= got[k-1].Index {
					t.Fatalf("Locate(%d, %d): parts not increasing: %+v", off, n, got)
				}
				for j := int64(0); j < pr.Length; j++ {
					gotOwner = append(gotOwner, pr.Index)
					gotWithin = append(gotWithin, pr.Off+j)
				}
			}
			if int64(len(gotOwner)) != n {
				t.Fatalf("Locate(%d, %d) covers %d bytes", off, n, len(gotOwner))
			}
			for j := range gotOwner {
				if gotOwner[j] != owner[off+int64(j)] || gotWithin[j] != within[off+int64(j)] {
					t.Fatalf("Locate(%d, %d): byte %d maps to part %d+%d, want %d+%d", off, n, j, gotOwner[j], gotWithin[j], owner[off+int64(j)], within[off+int64(j)])
				}
			}
		}
		for _, bad := range [][2]int64{{-1, 1}, {0, total + 1}, {total, 1}, {1, -1}} {
			if got := l.Locate(bad[0], bad[1]); got != nil {
				t.Fatalf("Locate(%d, %d) out of bounds = %+v", bad[0], bad[1], got)
			}
		}
	}
}

func TestNewLayoutErrors(t *testing.T) {
	good := format.PartEncryptedSize(10)
	cases := map[string]struct {
		numbers []int
		sizes   []int64
	}{
		"no parts":          {nil, nil},
		"length mismatch":   {[]int{1, 2}, []int64{good}},
		"part 0":            {[]int{0}, []int64{good}},
		"part 10001":        {[]int{10001}, []int64{good}},
		"repeated number":   {[]int{1, 1}, []int64{good, good}},
		"decreasing":        {[]int{3, 2}, []int64{good, good}},
		"invalid size":      {[]int{1}, []int64{90}},
		"size below header": {[]int{1}, []int64{47}},
	}
	for name, c := range cases {
		if _, err := format.NewLayout(c.numbers, c.sizes); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
