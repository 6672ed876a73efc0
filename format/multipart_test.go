package format_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// object is a multipart object as the backend stores it.
type object struct {
	plain, stored []byte
	numbers       []int
	sizes         []int64 // stored part sizes
}

func buildObject(t *testing.T, k *format.ObjectKey, numbers []int, plainSizes []int64) object {
	upub, _ := k.UploadPublicKey()
	var o object
	for i, n := range numbers {
		p := randomBytes(t, plainSizes[i])
		part := encryptPart(t, upub, n, p, format.EncryptOptions{ComputeMD5: true})
		o.plain = append(o.plain, p...)
		o.stored = append(o.stored, part...)
		o.numbers = append(o.numbers, n)
		o.sizes = append(o.sizes, int64(len(part)))
	}
	return o
}

// readObject decrypts [off, off+n) of a multipart object the way the gateway does: layout from
// the part sizes, Locate, then per part the header, Span and DecryptRange.
func readObject(k *format.ObjectKey, o object, off, n int64) ([]byte, error) {
	l, err := format.NewLayout(o.numbers, o.sizes)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, pr := range l.Locate(off, n) {
		p := l[pr.Index]
		s, err := k.PartStream(o.stored[p.StoredOffset:p.StoredOffset+48], p.Number)
		if err != nil {
			return out, err
		}
		so, sl, err := s.Span(pr.Off, pr.Length)
		if err != nil {
			return out, err
		}
		base := p.StoredOffset + 48
		b, err := io.ReadAll(s.DecryptRange(bytes.NewReader(o.stored[base+so:base+so+sl]), pr.Off, pr.Length))
		out = append(out, b...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// walkObject decrypts a whole multipart object from its bytes alone, following the headers.
func walkObject(k *format.ObjectKey, stored []byte) ([]byte, error) {
	var out []byte
	prev := 0
	for len(stored) > 0 {
		if len(stored) < 48 {
			return out, format.ErrMalformed
		}
		num, p, err := format.ParsePartHeader(stored[:48])
		if err != nil {
			return out, err
		}
		if num <= prev {
			return out, format.ErrAuth
		}
		prev = num
		s, err := k.PartStream(stored[:48], 0)
		if err != nil {
			return out, err
		}
		end := min(int64(len(stored)), format.PartEncryptedSize(p))
		b, err := io.ReadAll(s.DecryptAll(bytes.NewReader(stored[48:end])))
		out = append(out, b...)
		if err != nil {
			return out, err
		}
		stored = stored[end:]
	}
	return out, nil
}

func TestMultipartObject(t *testing.T) {
	k := newKey(t)
	o := buildObject(t, k, []int{1, 2, 5}, []int64{2*S + 3, S, 7})
	got, err := walkObject(k, o.stored)
	if err != nil || !bytes.Equal(got, o.plain) {
		t.Fatalf("walk: %v", err)
	}
	r := rng(t)
	total := int64(len(o.plain))
	for range 200 {
		off := r.Int64N(total + 1)
		n := r.Int64N(total - off + 1)
		got, err := readObject(k, o, off, n)
		if err != nil || !bytes.Equal(got, o.plain[off:off+n]) {
			t.Fatalf("range [%d, +%d): %v", off, n, err)
		}
	}
}

func TestMultipartRetriedPartDiffers(t *testing.T) {
	k := newKey(t)
	upub, _ := k.UploadPublicKey()
	plain := randomBytes(t, S+1)
	a := encryptPart(t, upub, 3, plain, format.EncryptOptions{})
	b := encryptPart(t, upub, 3, plain, format.EncryptOptions{})
	if bytes.Equal(a[16:48], b[16:48]) || bytes.Equal(a[48:64], b[48:64]) {
		t.Fatal("a retried part reused the ephemeral key or the part key")
	}
	for _, part := range [][]byte{a, b} {
		s, err := k.PartStream(part[:48], 3)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(s.DecryptAll(bytes.NewReader(part[48:]))); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("retried part: %v", err)
		}
	}
	// Header of one attempt with the data of the other fails.
	s, _ := k.PartStream(a[:48], 3)
	out, err := io.ReadAll(s.DecryptAll(bytes.NewReader(b[48:])))
	checkRejected(t, "header of another attempt", out, plain, err, 0, format.ErrAuth)
}

func TestMultipartSubstitution(t *testing.T) {
	k := newKey(t)
	o := buildObject(t, k, []int{1, 2, 3}, []int64{S + 10, S + 20, 30})
	other := buildObject(t, newKey(t), []int{1, 2, 3}, []int64{S + 10, S + 20, 30})

	// Part 2 swapped with part 2 of another upload.
	p1, p2 := o.sizes[0], o.sizes[0]+o.sizes[1]
	mixed := bytes.Join([][]byte{o.stored[:p1], other.stored[p1:p2], o.stored[p2:]}, nil)
	out, err := walkObject(k, mixed)
	checkRejected(t, "part from another upload", out, o.plain, err, S+10, format.ErrAuth)
	out, err = readObject(k, object{o.plain, mixed, o.numbers, o.sizes}, 0, int64(len(o.plain)))
	checkRejected(t, "part from another upload (ranged)", out, o.plain, err, S+10, format.ErrAuth)

	// Parts 1 and 2 swapped: each part decrypts, but the numbers decrease.
	swapped := bytes.Join([][]byte{o.stored[p1:p2], o.stored[:p1], o.stored[p2:]}, nil)
	if _, err := walkObject(k, swapped); !errors.Is(err, format.ErrAuth) {
		t.Fatalf("reordered parts: %v", err)
	}
	if _, err := format.NewLayout([]int{2, 1, 3}, []int64{o.sizes[1], o.sizes[0], o.sizes[2]}); !errors.Is(err, format.ErrMalformed) {
		t.Fatalf("layout with decreasing numbers: %v", err)
	}
	// Part number mismatch with what the backend says.
	if _, err := k.PartStream(o.stored[:48], 2); !errors.Is(err, format.ErrAuth) {
		t.Fatalf("part number mismatch: %v", err)
	}
	// Part number rewritten in the header: the part key changes.
	h := bytes.Clone(o.stored[:p1])
	h[7] = 9
	s, err := k.PartStream(h[:48], 9)
	if err != nil {
		t.Fatal(err)
	}
	out, err = io.ReadAll(s.DecryptAll(bytes.NewReader(h[48:])))
	checkRejected(t, "part number rewritten", out, o.plain, err, 0, format.ErrAuth)
	// Every header byte matters.
	for i := 0; i < 48; i++ {
		h := bytes.Clone(o.stored[:p1])
		h[i] ^= 0x40
		s, err := k.PartStream(h[:48], 0)
		if err == nil {
			out, err = io.ReadAll(s.DecryptAll(bytes.NewReader(h[48:])))
			checkRejected(t, "header byte flipped", out, o.plain, err, 0, format.ErrAuth)
		} else if !errors.Is(err, format.ErrMalformed) && !errors.Is(err, format.ErrVersion) && !errors.Is(err, format.ErrAuth) {
			t.Fatalf("header byte %d: %v", i, err)
		}
	}
}

func TestParsePartHeaderErrors(t *testing.T) {
	k := newKey(t)
	o := buildObject(t, k, []int{4}, []int64{9})
	h := o.stored[:48]
	with := func(i int, v byte) []byte { b := bytes.Clone(h); b[i] = v; return b }
	cases := map[string]struct {
		in   []byte
		want error
	}{
		"short":          {h[:47], format.ErrMalformed},
		"long":           {o.stored[:49], format.ErrMalformed},
		"version 0":      {with(0, 0), format.ErrVersion},
		"version 4":      {with(0, 4), format.ErrVersion},
		"kind 0":         {with(1, 0), format.ErrMalformed},
		"kind 7":         {with(1, 7), format.ErrVersion},
		"reserved":       {with(3, 1), format.ErrMalformed},
		"part 0":         {with(7, 0), format.ErrMalformed},
		"part 10001":     {append(append(bytes.Clone(h[:4]), 0, 0, 0x27, 0x11), h[8:]...), format.ErrMalformed},
		"size too large": {with(8, 0x01), format.ErrMalformed},
	}
	for name, c := range cases {
		if _, _, err := format.ParsePartHeader(c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		if _, err := k.PartStream(c.in, 0); !errors.Is(err, c.want) {
			t.Errorf("PartStream %s: %v, want %v", name, err, c.want)
		}
	}
	if n, p, err := format.ParsePartHeader(h); err != nil || n != 4 || p != 9 {
		t.Fatalf("valid header: %d %d %v", n, p, err)
	}
}
