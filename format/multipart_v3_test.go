package format_test

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// v3Object is a format-3 multipart object written through an envelope, as the gateway does:
// parts encrypted one by one, the tail sealed from what the part records hold (number, size,
// salt, MD5), and the stored object = the parts ‖ the tail.
type v3Object struct {
	key     *format.ObjectKey // opened from the envelope (bound to format 3)
	kek     []byte
	env     *format.Envelope
	parts   [][]byte // stored bytes of each part, header first
	facts   []format.ManifestPart
	plain   []byte
	md5s    [][]byte
	tail    []byte
	etagMD5 []byte // as SealTail returned it
}

func (o v3Object) stored() []byte { return append(bytes.Join(o.parts, nil), o.tail...) }

func newV3Object(t *testing.T, numbers []int, sizes []int64, withMD5 bool) v3Object {
	t.Helper()
	kek := randomBytes(t, 32)
	env, err := format.SealEnvelope(newKey(t), kek, format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapProvider, KeyID: "k", WrappedKey: []byte{1}, Bucket: "b", Object: "o"})
	if err != nil || env.Version() != format.Version3 {
		t.Fatalf("a new multipart envelope of version %d: %v", env.Version(), err)
	}
	k, err := env.Open(kek, "b", "o")
	if err != nil {
		t.Fatal(err)
	}
	o := v3Object{key: k, kek: kek, env: env}
	for i, n := range numbers {
		p := randomBytes(t, sizes[i])
		part, f := newV3Part(t, k, n, p, withMD5)
		o.parts = append(o.parts, part)
		o.facts = append(o.facts, f)
		o.plain = append(o.plain, p...)
		o.md5s = append(o.md5s, f.MD5)
	}
	o.tail, o.etagMD5, err = k.SealTail(o.facts)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// newV3Part encrypts one part and returns its stored bytes and what its record would hold.
func newV3Part(t *testing.T, k *format.ObjectKey, n int, p []byte, withMD5 bool) ([]byte, format.ManifestPart) {
	t.Helper()
	r, err := k.NewPartEncryptReader(bytes.NewReader(p), n, int64(len(p)), format.EncryptOptions{ComputeMD5: withMD5})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	h := r.PartHeader()
	if len(h) != 48 || !bytes.Equal(h, stored[:48]) || h[0] != format.Version3 {
		t.Fatalf("PartHeader %x, stored header %x", h, stored[:48])
	}
	f := format.ManifestPart{Number: n, PlainSize: int64(len(p)), MD5: r.MD5()}
	copy(f.Salt[:], h[16:])
	return stored, f
}

// readV3 reads a whole format-3 object as FORMAT.md 3.6 tells a reader to: the end of the
// object (one read of at most TailReadSize bytes, a second one for a longer tail), the footer,
// the tail opened under OK, the layout from its runs, every part boundary (header and trailer)
// checked against it, the digest over the headers read; only then the data.
func readV3(k *format.ObjectKey, stored []byte) ([]byte, *format.Tail, error) {
	size := int64(len(stored))
	end := stored[size-min(size, format.TailReadSize):]
	n, err := format.TailLength(end, size)
	if err != nil {
		return nil, nil, err
	}
	tail, err := k.OpenTail(stored[size-n:], size)
	if err != nil {
		return nil, nil, err
	}
	numbers, sizes := tail.Layout()
	l, err := format.NewLayout(numbers, sizes)
	if err != nil {
		return nil, nil, err
	}
	var headers [][]byte
	var streams []*format.Stream
	for _, p := range l {
		h := stored[p.StoredOffset : p.StoredOffset+48]
		s, err := k.PartStream(h, p.Number)
		if err != nil {
			return nil, nil, err
		}
		if s.PlainSize() != p.PlainSize {
			return nil, nil, fmt.Errorf("%w: part %d of %d bytes, the tail says %d", format.ErrAuth, p.Number, s.PlainSize(), p.PlainSize)
		}
		end := p.StoredOffset + p.StoredSize
		if _, err := s.OpenTrailer(stored[end-32 : end]); err != nil {
			return nil, nil, err
		}
		headers = append(headers, h)
		streams = append(streams, s)
	}
	hl, err := format.LayoutOfHeaders(headers)
	if err != nil {
		return nil, nil, err
	}
	if err := tail.Check(hl); err != nil {
		return nil, nil, err
	}
	var out []byte
	for i, p := range l {
		b, err := io.ReadAll(streams[i].DecryptAll(bytes.NewReader(stored[p.StoredOffset+48 : p.StoredOffset+p.StoredSize])))
		if err != nil {
			return nil, nil, err
		}
		out = append(out, b...)
	}
	return out, tail, nil
}

func TestV3RoundTrip(t *testing.T) {
	cases := []struct {
		numbers []int
		sizes   []int64
	}{
		{[]int{1}, []int64{0}},
		{[]int{1, 3}, []int64{S + 3, 5}},
		{[]int{1, 2, 3, 4}, []int64{2*S + 1, 2*S + 1, 2*S + 1, 7}},
		{[]int{2, 5, 9999, 10000}, []int64{S, 1, S, 0}},
		{[]int{10000}, []int64{3*S + 7}},
	}
	for _, c := range cases {
		for _, withMD5 := range []bool{true, false} {
			t.Run(fmt.Sprintf("%v %v md5 %t", c.numbers, c.sizes, withMD5), func(t *testing.T) {
				o := newV3Object(t, c.numbers, c.sizes, withMD5)
				stored := o.stored()
				got, tail, err := readV3(o.key, stored)
				if err != nil || !bytes.Equal(got, o.plain) {
					t.Fatalf("read back %d of %d bytes: %v", len(got), len(o.plain), err)
				}
				if tail.Parts != len(c.numbers) || tail.Size != int64(len(o.tail)) {
					t.Fatalf("tail of %d parts, %d bytes; want %d, %d", tail.Parts, tail.Size, len(c.numbers), len(o.tail))
				}
				var want []byte
				if withMD5 {
					s := md5.Sum(bytes.Join(o.md5s, nil))
					want = s[:]
				}
				if !bytes.Equal(tail.ETagMD5, want) || !bytes.Equal(o.etagMD5, want) {
					t.Fatalf("ETag MD5 %x (SealTail %x), want %x", tail.ETagMD5, o.etagMD5, want)
				}
				numbers, sizes := tail.Layout()
				for i, n := range c.numbers {
					if numbers[i] != n || sizes[i] != int64(len(o.parts[i])) {
						t.Fatalf("tail layout %v %v", numbers, sizes)
					}
				}
				// The tail is the last bytes, its footer the last 12 of them.
				if !bytes.HasSuffix(stored, []byte(format.TailMagic)) || format.TailFooterSize != 12 ||
					int(binary.BigEndian.Uint32(o.tail[len(o.tail)-12:])) != len(o.tail)-12 {
					t.Fatalf("tail footer %x", o.tail[len(o.tail)-12:])
				}
				// A tail lists every part: 98 bytes and 16 a run.
				if n := (len(o.tail) - 98) / 16; len(o.tail) != 98+16*n || n < 1 || n > len(c.numbers) {
					t.Fatalf("tail of %d bytes", len(o.tail))
				}
			})
		}
	}
}

// TestV3LongTail: a tail longer than TailReadSize (a run a part: 300 runs) needs the second
// read; it still opens and lists every part.
func TestV3LongTail(t *testing.T) {
	var numbers []int
	var sizes []int64
	for i := range 300 {
		numbers = append(numbers, i+1)
		sizes = append(sizes, int64(i%2))
	}
	o := newV3Object(t, numbers, sizes, true)
	if len(o.tail) <= format.TailReadSize || len(o.tail) != 98+16*300 {
		t.Fatalf("tail of %d bytes", len(o.tail))
	}
	stored := o.stored()
	end := stored[len(stored)-format.TailReadSize:]
	n, err := format.TailLength(end, int64(len(stored)))
	if err != nil || n != int64(len(o.tail)) {
		t.Fatalf("TailLength %d, %v", n, err)
	}
	if _, err := o.key.OpenTail(end, int64(len(stored))); !errors.Is(err, format.ErrMalformed) {
		t.Errorf("OpenTail of the first %d bytes only: %v", len(end), err)
	}
	got, tail, err := readV3(o.key, stored)
	if err != nil || !bytes.Equal(got, o.plain) || tail.Parts != 300 {
		t.Fatalf("read back: %v", err)
	}
}

// TestV3TailTamper: the tail is authenticated as a whole and bound to the object's size.
func TestV3TailTamper(t *testing.T) {
	o := newV3Object(t, []int{1, 2, 4}, []int64{S + 1, S + 1, 9}, true)
	stored := o.stored()
	size := int64(len(stored))
	tailAt := len(stored) - len(o.tail)
	refused := func(what string, b []byte) {
		t.Helper()
		if got, _, err := readV3(o.key, b); !errors.Is(err, format.ErrAuth) || got != nil {
			t.Errorf("%s: %v (%d bytes), want ErrAuth and nothing", what, err, len(got))
		}
	}
	// Every bit of the tail, one at a time.
	for i := tailAt; i < len(stored); i++ {
		for bit := range 8 {
			b := bytes.Clone(stored)
			b[i] ^= 1 << bit
			refused(fmt.Sprintf("tail byte %d bit %d", i-tailAt, bit), b)
		}
	}
	// The footer's length lies.
	at := len(stored) - 12
	for _, n := range []uint32{0, 1, uint32(len(o.tail) - 13), uint32(len(o.tail) - 11), uint32(len(o.tail) + 4), uint32(size - 12), uint32(size - 11), uint32(size), 1 << 31, ^uint32(0)} {
		b := bytes.Clone(stored)
		binary.BigEndian.PutUint32(b[at:], n)
		refused(fmt.Sprintf("footer length %d", n), b)
	}
	// Truncated, cut, extended.
	for _, cut := range []int{1, 8, 12, 13, len(o.tail) - 1, len(o.tail), len(o.tail) + 1} {
		refused(fmt.Sprintf("last %d bytes cut", cut), stored[:len(stored)-cut])
	}
	refused("a byte appended", append(bytes.Clone(stored), 0))
	refused("the footer doubled", append(bytes.Clone(stored), stored[at:]...))
	refused("a byte before the tail", append(append(bytes.Clone(stored[:tailAt]), 0), o.tail...))
	refused("the tail twice", append(bytes.Clone(stored), o.tail...))
	refused("parts only", stored[:tailAt])
	refused("tail only", o.tail)
	// The tail of another object of the same layout (another OK).
	other := newV3Object(t, []int{1, 2, 4}, []int64{S + 1, S + 1, 9}, true)
	refused("tail of another object", append(bytes.Clone(stored[:tailAt]), other.tail...))
	if _, err := o.key.OpenTail(other.tail, size); !errors.Is(err, format.ErrAuth) {
		t.Errorf("OpenTail of another object's tail: %v", err)
	}
	// The stored size is checked: the tail fits exactly one size.
	for _, s := range []int64{size - 1, size + 1, size + format.PartEncryptedSize(0), int64(len(o.tail))} {
		if _, err := o.key.OpenTail(o.tail, s); !errors.Is(err, format.ErrAuth) {
			t.Errorf("OpenTail for a stored size of %d (the object has %d): %v", s, size, err)
		}
	}
	if _, err := o.key.OpenTail(o.tail, size); err != nil {
		t.Fatal(err)
	}
	// OpenTail wants the tail exactly.
	if _, err := o.key.OpenTail(stored[tailAt-1:], size); !errors.Is(err, format.ErrMalformed) {
		t.Errorf("OpenTail with a byte too many: %v", err)
	}
	if _, err := format.TailLength(o.tail[:11], size); !errors.Is(err, format.ErrAuth) {
		t.Errorf("TailLength of 11 bytes: %v", err)
	}
	var nilKey *format.ObjectKey
	if _, err := nilKey.OpenTail(o.tail, size); !errors.Is(err, format.ErrMalformed) {
		t.Errorf("OpenTail under no key: %v", err)
	}
}

// TestV3PartsTamper: the attacks of the hostile-backend review on the parts of a format-3
// object. The reader refuses each with ErrAuth, and Check, given the layout of the headers
// found, refuses each that keeps the tail's part count.
func TestV3PartsTamper(t *testing.T) {
	o := newV3Object(t, []int{1, 2, 3}, []int64{2*S + 5, 2*S + 5, 7}, true)
	tail, err := o.key.OpenTail(o.tail, int64(len(o.stored())))
	if err != nil {
		t.Fatal(err)
	}
	headersOf := func(parts [][]byte) [][]byte {
		var hs [][]byte
		for _, p := range parts {
			hs = append(hs, p[:48])
		}
		return hs
	}
	if l, err := format.LayoutOfHeaders(headersOf(o.parts)); err != nil || tail.Check(l) != nil {
		t.Fatalf("the valid layout: %v", err)
	}
	retry, _ := newV3Part(t, o.key, 2, randomBytes(t, 2*S+5), true)
	p := o.parts
	attacks := map[string][][]byte{
		"first dropped":     {p[1], p[2]},
		"middle dropped":    {p[0], p[2]},
		"last dropped":      {p[0], p[1]},
		"retried part":      {p[0], retry, p[2]},
		"part duplicated":   {p[0], p[1], p[1], p[2]},
		"reordered":         {p[1], p[0], p[2]},
		"last two swapped":  {p[0], p[2], p[1]},
		"retried part kept": {p[0], p[1], retry, p[2]},
	}
	for name, parts := range attacks {
		stored := append(bytes.Join(parts, nil), o.tail...)
		if got, _, err := readV3(o.key, stored); !errors.Is(err, format.ErrAuth) || got != nil {
			t.Errorf("%s: read %v, want ErrAuth", name, err)
		}
		// Check alone, on the layout of the headers as found (built by hand where the part
		// numbers do not increase, which LayoutOfHeaders refuses by itself).
		var l format.Layout
		for _, part := range parts {
			n, ps, err := format.ParsePartHeader(part[:48])
			if err != nil {
				t.Fatal(err)
			}
			pl := format.PartLayout{Number: n, PlainSize: ps, StoredSize: int64(len(part))}
			copy(pl.ID[:], part[16:48])
			l = append(l, pl)
		}
		if err := tail.Check(l); !errors.Is(err, format.ErrAuth) {
			t.Errorf("%s: Check %v, want ErrAuth", name, err)
		}
	}
	// The retried part is itself a valid part: only the tail tells it apart.
	if s, err := o.key.PartStream(retry[:48], 2); err != nil {
		t.Fatal(err)
	} else if _, err := io.ReadAll(s.DecryptAll(bytes.NewReader(retry[48:]))); err != nil {
		t.Fatalf("the retried part does not decrypt: %v", err)
	}
	// A part header downgraded to format 2 (or 1), or claiming another part number or size.
	for name, edit := range map[string]func(h []byte){
		"version 2":  func(h []byte) { h[0] = format.Version2 },
		"version 1":  func(h []byte) { h[0] = format.Version },
		"number 3":   func(h []byte) { h[7] = 3 },
		"size + 1":   func(h []byte) { h[15]++ },
		"salt":       func(h []byte) { h[40] ^= 1 },
		"part kind0": func(h []byte) { h[1] = 0 },
	} {
		parts := [][]byte{bytes.Clone(p[0]), p[1], p[2]}
		edit(parts[0])
		stored := append(bytes.Join(parts, nil), o.tail...)
		if got, _, err := readV3(o.key, stored); err == nil || got != nil {
			t.Errorf("first header, %s: read", name)
		}
	}
	// A format-2 key (an object whose envelope says 2) does not read format-3 parts.
	k2, _ := format.NewObjectKeyOfVersion(bytes.NewReader(format.ObjectKeyBytes(o.key)), format.Version2)
	if _, err := k2.PartStream(p[0][:48], 1); !errors.Is(err, format.ErrAuth) {
		t.Errorf("a format-3 header under a format-2 key: %v", err)
	}
}

// TestV3SealTailRefusals: SealTail takes the parts in order, each once, with the MD5s of all
// or of none, under a key of format 3.
func TestV3SealTailRefusals(t *testing.T) {
	k := format.AsVersion(newKey(t), format.Version3)
	sum := md5.Sum(nil)
	p := func(n int, size int64, md []byte) format.ManifestPart {
		return format.ManifestPart{Number: n, PlainSize: size, MD5: md}
	}
	for name, parts := range map[string][]format.ManifestPart{
		"none":            nil,
		"number 0":        {p(0, 1, nil)},
		"number 10001":    {p(10001, 1, nil)},
		"decreasing":      {p(2, 1, nil), p(1, 1, nil)},
		"duplicated":      {p(2, 1, nil), p(2, 1, nil)},
		"negative size":   {p(1, -1, nil)},
		"size above 2^48": {p(1, format.MaxPlainSize+1, nil)},
		"MD5 of some":     {p(1, 1, sum[:]), p(2, 1, nil)},
		"MD5 of others":   {p(1, 1, nil), p(2, 1, sum[:])},
		"MD5 of 15 bytes": {p(1, 1, sum[:15])},
	} {
		if _, _, err := k.SealTail(parts); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	for _, ver := range []int{format.Version, format.Version2} {
		kv := format.AsVersion(newKey(t), ver)
		if _, _, err := kv.SealTail([]format.ManifestPart{p(1, 1, nil)}); !errors.Is(err, format.ErrVersion) {
			t.Errorf("a tail under a key of format %d: %v", ver, err)
		}
	}
	// 10,000 parts make a tail (one run).
	var many []format.ManifestPart
	for i := range format.MaxPartNumber {
		many = append(many, p(i+1, 5<<20, nil))
	}
	tail, etag, err := k.SealTail(many)
	if err != nil || etag != nil || len(tail) != 98+16 {
		t.Fatalf("a tail of 10,000 parts: %d bytes, %v", len(tail), err)
	}
	if _, _, err := k.SealTail(append(many, p(10001, 1, nil))); !errors.Is(err, format.ErrMalformed) {
		t.Errorf("10,001 parts: %v", err)
	}
	size := format.MaxPartNumber*format.PartEncryptedSize(5<<20) + int64(len(tail))
	tl, err := k.OpenTail(tail, size)
	if err != nil || tl.Parts != format.MaxPartNumber {
		t.Fatalf("OpenTail of 10,000 parts: %v", err)
	}
	numbers, _ := tl.Layout()
	if len(numbers) != format.MaxPartNumber || numbers[9999] != 10000 {
		t.Fatalf("layout of %d parts", len(numbers))
	}
}

// TestV3PartNumber10000: the last part number S3 allows is a valid part, in a tail, in a record
// and as a held part.
func TestV3PartNumber10000(t *testing.T) {
	o := newV3Object(t, []int{10000}, []int64{0}, false)
	got, tail, err := readV3(o.key, o.stored())
	if err != nil || len(got) != 0 || tail.Parts != 1 || tail.ETagMD5 != nil {
		t.Fatalf("part 10000 of 0 bytes: %v", err)
	}
	if n, _ := tail.Layout(); len(n) != 1 || n[0] != 10000 {
		t.Fatalf("layout %v", n)
	}
	if _, err := o.key.NewPartEncryptReader(bytes.NewReader(nil), 10001, 0, format.EncryptOptions{}); !errors.Is(err, format.ErrMalformed) {
		t.Errorf("part 10001: %v", err)
	}
	f := format.PartFacts{PlainSize: 0, Salt: o.facts[0].Salt}
	name, fits, err := o.key.PartRecordKey("b", "o", "up", 10000, `"etag-1"`, f)
	if err != nil || !fits || !strings.HasPrefix(name, format.PartRecordsOf("up")+"10000/etag-1/") {
		t.Fatalf("record of part 10000: %q %v", name, err)
	}
	r, err := format.ParseUploadRecord("up", name)
	if err != nil || r.Part != 10000 {
		t.Fatalf("record parsed as %+v, %v", r, err)
	}
	got2, err := o.key.OpenPartRecord("b", "o", "up", r)
	if err != nil || got2.MD5 != nil || got2.Salt != f.Salt || got2.PlainSize != 0 {
		t.Fatalf("record opens to %+v, %v", got2, err)
	}
	if _, _, err := o.key.PartRecordKey("b", "o", "up", 10001, `"e"`, f); !errors.Is(err, format.ErrMalformed) {
		t.Errorf("record of part 10001: %v", err)
	}
	held := format.HeldPartKey("up", 10000, [16]byte{0xab})
	if n, ok := format.ParseHeldPartKey("up", held); !ok || n != 10000 {
		t.Errorf("held part %q: %d %t", held, n, ok)
	}
}

// TestV3Records: format-3 part records seal the MD5 (zeros without one), the salt and the
// plaintext size; a record opens only under a key of its own format.
func TestV3Records(t *testing.T) {
	ok := randomBytes(t, 32)
	k3, _ := format.NewObjectKeyOfVersion(bytes.NewReader(ok), format.Version3)
	k2, _ := format.NewObjectKeyOfVersion(bytes.NewReader(ok), format.Version2)
	fresh, _ := format.NewObjectKeyFrom(bytes.NewReader(ok)) // a new key: format 3
	sum := md5.Sum([]byte("x"))
	f := format.PartFacts{MD5: sum[:], PlainSize: format.MaxPlainSize}
	copy(f.Salt[:], randomBytes(t, 32))
	name3, _, err := k3.PartRecordKey("b", "o", "up", 2, "e", f)
	if err != nil {
		t.Fatal(err)
	}
	name2, _, err := k2.PartRecordKey("b", "o", "up", 2, "e", f)
	if err != nil {
		t.Fatal(err)
	}
	nameNew, _, err := fresh.PartRecordKey("b", "o", "up", 2, "e", f)
	if err != nil {
		t.Fatal(err)
	}
	r3, err3 := format.ParseUploadRecord("up", name3)
	r2, err2 := format.ParseUploadRecord("up", name2)
	rn, errn := format.ParseUploadRecord("up", nameNew)
	if err3 != nil || err2 != nil || errn != nil {
		t.Fatal(err3, err2, errn)
	}
	if got, err := k3.OpenPartRecord("b", "o", "up", rn); err != nil || got.PlainSize != f.PlainSize || got.Salt != f.Salt || !bytes.Equal(got.MD5, f.MD5) {
		t.Fatalf("a new key's record under the format-3 key: %+v, %v", got, err)
	}
	if got, err := k2.OpenPartRecord("b", "o", "up", r2); err != nil || !bytes.Equal(got.MD5, f.MD5) || got.PlainSize != 0 || got.Salt != [32]byte{} {
		t.Fatalf("format-2 record: %+v, %v", got, err)
	}
	if _, err := k3.OpenPartRecord("b", "o", "up", r2); !errors.Is(err, format.ErrAuth) {
		t.Errorf("a format-2 record under a format-3 key: %v", err)
	}
	if _, err := k2.OpenPartRecord("b", "o", "up", r3); !errors.Is(err, format.ErrAuth) {
		t.Errorf("a format-3 record under a format-2 key: %v", err)
	}
	// A format-2 record's sealed MD5 relabelled: the format-3 label is in the key and the AAD.
	// (The lengths differ too, so only a re-sealing gateway could even try.)
	if len(name3)-len(name2) != 112-59 {
		t.Errorf("record names of %d and %d characters", len(name3), len(name2))
	}
	// Without an MD5: sealed as zeros, opened as nil.
	nf := format.PartFacts{PlainSize: 12, Salt: f.Salt}
	name, _, err := k3.PartRecordKey("b", "o", "up", 2, "e", nf)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := format.ParseUploadRecord("up", name)
	if got, err := k3.OpenPartRecord("b", "o", "up", r); err != nil || got.MD5 != nil || got.PlainSize != 12 {
		t.Fatalf("record without an MD5: %+v, %v", got, err)
	}
	if _, _, err := k2.PartRecordKey("b", "o", "up", 2, "e", nf); !errors.Is(err, format.ErrMalformed) {
		t.Errorf("a format-2 record without an MD5: %v", err)
	}
	// Sizes a part cannot have are not sealed.
	for _, s := range []int64{-1, format.MaxPlainSize + 1} {
		if _, _, err := k3.PartRecordKey("b", "o", "up", 2, "e", format.PartFacts{PlainSize: s}); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("a record of size %d: %v", s, err)
		}
	}
	// Moved records: another part, ETag, upload, object.
	rest := strings.TrimPrefix(name3, format.UploadRecordsOf("up"))
	for what, c := range map[string][4]string{
		"another part":   {"b", "o", "up", strings.Replace(name3, "/00002/", "/00003/", 1)},
		"another ETag":   {"b", "o", "up", strings.Replace(name3, "/e/", "/f/", 1)},
		"another upload": {"b", "o", "up2", format.UploadRecordsOf("up2") + rest},
		"another object": {"b", "o2", "up", name3},
		"another bucket": {"b2", "o", "up", name3},
	} {
		r, err := format.ParseUploadRecord(c[2], c[3])
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if _, err := k3.OpenPartRecord(c[0], c[1], c[2], r); !errors.Is(err, format.ErrAuth) {
			t.Errorf("%s: %v, want ErrAuth", what, err)
		}
	}
}

// TestUploadIDV3: a format-3 envelope makes a ".s3" id, a format-2 one a ".s2" id; each parses
// back to its envelope, and a tag that does not name the envelope's version is refused.
func TestUploadIDV3(t *testing.T) {
	kek := randomBytes(t, 32)
	seal := func(ver int) *format.Envelope {
		e, err := format.SealEnvelope(format.AsVersion(newKey(t), ver), kek, format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapProvider, KeyID: "arn:x", WrappedKey: randomBytes(t, 96), Bucket: "b", Object: "o"})
		if err != nil || e.Version() != ver {
			t.Fatalf("envelope of version %d: %v", ver, err)
		}
		return e
	}
	e3, e2 := seal(format.Version3), seal(format.Version2)
	if e, _ := format.SealEnvelope(newKey(t), kek, format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapCustomerKey, Bucket: "b", Object: "o"}); e.Version() != format.Version3 {
		t.Fatalf("a new multipart envelope of version %d", e.Version())
	}
	for _, c := range []struct {
		env *format.Envelope
		tag string
	}{{e3, ".s3"}, {e2, ".s2"}} {
		id := format.UploadID{Backend: "Zm9v.bar-baz", Envelope: c.env, Context: "eyJhIjoiYiJ9"}.String()
		if !strings.HasPrefix(id, "Zm9v.bar-baz"+c.tag) {
			t.Fatalf("id %q", id)
		}
		u, err := format.ParseUploadID(id)
		if err != nil || u.Backend != "Zm9v.bar-baz" || u.Context != "eyJhIjoiYiJ9" || u.Envelope.Encode() != c.env.Encode() || u.Envelope.Version() != c.env.Version() {
			t.Fatalf("%s round trip: %+v %v", c.tag, u, err)
		}
		k, err := u.Envelope.Open(kek, "b", "o")
		if err != nil {
			t.Fatal(err)
		}
		if fresh := format.AsVersion(newKey(t), 0); format.KeyVersion(k) != c.env.Version() || format.KeyVersion(fresh) != 0 {
			t.Fatalf("key of version %d from an envelope of version %d", format.KeyVersion(k), c.env.Version())
		}
		// Another tag on the same bytes: refused with ErrVersion (the tag names the version).
		other := map[string]string{".s3": ".s2", ".s2": ".s3"}[c.tag]
		swapped := strings.Replace(id, c.tag, other, 1)
		if _, err := format.ParseUploadID(swapped); !errors.Is(err, format.ErrVersion) {
			t.Errorf("%s id retagged %s: %v", c.tag, other, err)
		}
		for _, tag := range []string{".s4", ".s1", ".S3", ".s", ".s33"} {
			if _, err := format.ParseUploadID(strings.Replace(id, c.tag, tag, 1)); err == nil {
				t.Errorf("%s id retagged %s parsed", c.tag, tag)
			}
		}
		// Canonical base64url only: the last character's unused bits set, padding, a newline.
		enc := id[strings.LastIndexByte(id, '.')+3:]
		raw, _ := base64.RawURLEncoding.DecodeString(enc)
		if len(raw)%3 == 0 { // no unused bits: add a byte of context
			id = format.UploadID{Backend: "Zm9v.bar-baz", Envelope: c.env, Context: "eyJhIjoiYiJ9x"}.String()
		}
		if _, err := format.ParseUploadID(id); err != nil {
			t.Fatal(err)
		}
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		last := strings.IndexByte(alphabet, id[len(id)-1])
		for _, bad := range []string{id[:len(id)-1] + string(alphabet[last^1]), id + "=", id[:len(id)-4] + "\n" + id[len(id)-4:], id[:len(id)-1]} {
			if _, err := format.ParseUploadID(bad); !errors.Is(err, format.ErrMalformed) {
				t.Errorf("%s id %q: %v, want ErrMalformed", c.tag, bad[len(bad)-6:], err)
			}
		}
	}
	// A format-1 envelope is not carried by either tag.
	e1, _ := format.SealEnvelope(format.AsVersion(newKey(t), format.Version), kek, format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapCustomerKey, Bucket: "b", Object: "o"})
	id1 := format.UploadID{Backend: "b", Envelope: e1}.String()
	if _, err := format.ParseUploadID(id1); !errors.Is(err, format.ErrVersion) {
		t.Errorf("an id carrying a format-1 envelope (%q): %v", id1[:4], err)
	}
	for _, bad := range []string{"x.s3", "x.s3AAA", ".s3" + strings.Repeat("A", 20), "x.s3!!"} {
		if _, err := format.ParseUploadID(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestHeldPartKey: held parts are named under the upload's records, 5-digit part number and
// 32 lowercase hex digits; ParseHeldPartKey accepts only that canonical form, of its upload.
func TestHeldPartKey(t *testing.T) {
	id := [16]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10}
	name := format.HeldPartKey("up-1", 42, id)
	if name != format.HeldPartsOf("up-1")+"00042/0123456789abcdeffedcba9876543210" || !format.IsReserved(name) ||
		!strings.HasPrefix(name, format.UploadRecordsOf("up-1")) {
		t.Fatalf("held part key %q", name)
	}
	for _, n := range []int{1, 42, 9999, 10000} {
		if got, ok := format.ParseHeldPartKey("up-1", format.HeldPartKey("up-1", n, id)); !ok || got != n {
			t.Errorf("part %d parsed as %d %t", n, got, ok)
		}
	}
	p := format.HeldPartsOf("up-1")
	hexID := "0123456789abcdeffedcba9876543210"
	for _, bad := range []string{
		"", name + "/", name + "0", name[:len(name)-1], name + "/x",
		p + "0042/" + hexID, p + "000042/" + hexID, p + "00000/" + hexID, p + "10001/" + hexID, p + "99999/" + hexID,
		p + "+0042/" + hexID, p + "-0042/" + hexID, p + " 0042/" + hexID, p + "0x042/" + hexID,
		p + "00042/" + strings.ToUpper(hexID), p + "00042/" + strings.Replace(hexID, "0", "g", 1),
		p + "00042//" + hexID, p + "00042", p + "00042/", p,
		format.HeldPartsOf("up-2") + "00042/" + hexID, format.HeldPartsOf("up") + "-1/00042/" + hexID,
		format.PartRecordsOf("up-1") + "00042/" + hexID, "up-1/held/00042/" + hexID,
	} {
		if n, ok := format.ParseHeldPartKey("up-1", bad); ok {
			t.Errorf("%q parsed as held part %d", bad, n)
		}
	}
	// A held part is not an upload record.
	if _, err := format.ParseUploadRecord("up-1", name); !errors.Is(err, format.ErrMalformed) {
		t.Errorf("ParseUploadRecord of a held part: %v", err)
	}
}

// TestV3TailBodies: bodies a writer would never seal, sealed under the object key anyway, are
// refused by OpenTail with a typed error.
func TestV3TailBodies(t *testing.T) {
	k := fuzzKey(t)
	body := func(k uint32, ext uint16, runs ...uint64) []byte {
		b := binary.BigEndian.AppendUint32(nil, k)
		b = append(b, make([]byte, 48)...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(runs)/3))
		for i := 0; i+2 < len(runs); i += 3 {
			b = binary.BigEndian.AppendUint32(b, uint32(runs[i]))
			b = binary.BigEndian.AppendUint32(b, uint32(runs[i+1]))
			b = binary.BigEndian.AppendUint64(b, runs[i+2])
		}
		return binary.BigEndian.AppendUint16(b, ext)
	}
	sizeOf := func(tail []byte, runs ...uint64) int64 {
		s := int64(len(tail))
		for i := 0; i+2 < len(runs); i += 3 {
			s += int64(runs[i+1]) * format.PartEncryptedSize(int64(runs[i+2]))
		}
		return s
	}
	good := []uint64{1, 2, 5, 3, 1, 0}
	tail := fuzzTail(body(3, 0, good...))
	if tl, err := k.OpenTail(tail, sizeOf(tail, good...)); err != nil || tl.Parts != 3 || tl.ETagMD5 != nil {
		t.Fatalf("a valid body: %v", err)
	}
	for name, c := range map[string]struct {
		body []byte
		runs []uint64
		want error
	}{
		"no parts":                            {body(0, 0), nil, format.ErrMalformed},
		"no runs":                             {body(2, 0), nil, format.ErrMalformed},
		"runs short of K":                     {body(4, 0, good...), good, format.ErrMalformed},
		"runs past K":                         {body(2, 0, good...), good, format.ErrMalformed},
		"K above 10000":                       {body(10001, 0, 1, 10001, 0), []uint64{1, 10001, 0}, format.ErrMalformed},
		"run past 10000":                      {body(2, 0, 10000, 2, 0), []uint64{10000, 2, 0}, format.ErrMalformed},
		"run of 0 parts":                      {body(1, 0, 1, 0, 0, 2, 1, 0), []uint64{2, 1, 0}, format.ErrMalformed},
		"runs overlapping":                    {body(3, 0, 1, 2, 0, 2, 1, 0), []uint64{1, 2, 0, 2, 1, 0}, format.ErrMalformed},
		"runs decreasing":                     {body(2, 0, 3, 1, 0, 1, 1, 0), []uint64{3, 1, 0, 1, 1, 0}, format.ErrMalformed},
		"part 0":                              {body(1, 0, 0, 1, 0), []uint64{0, 1, 0}, format.ErrMalformed},
		"size above 2^48":                     {body(1, 0, 1, 1, 1<<48+1), nil, format.ErrMalformed},
		"an extension declared, none follows": {body(3, 1, good...), good, format.ErrMalformed},
		"an unknown extension":                {append(body(3, 2, good...), 0x7f, 0), good, format.ErrVersion},
		"a checksum cut short":                {append(body(3, 4, good...), 1, 0, 0, 0), good, format.ErrVersion},
		"FULL_OBJECT SHA256":                  {append(body(3, 33, good...), append([]byte{0x85}, make([]byte, 32)...)...), good, format.ErrVersion},
		"a byte after the body":               {append(body(3, 0, good...), 0), good, format.ErrMalformed},
		"the extension cut":                   {body(3, 0, good...)[:len(body(3, 0, good...))-1], good, format.ErrMalformed},
	} {
		tl := fuzzTail(c.body)
		if _, err := k.OpenTail(tl, sizeOf(tl, c.runs...)); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// TestV3TailChecksum: an object checksum sealed in the tail's extension opens as it was sealed,
// for both types, and a kind S3 does not offer is not sealed.
func TestV3TailChecksum(t *testing.T) {
	k := fuzzKey(t)
	parts := []format.ManifestPart{{Number: 1, PlainSize: 5 << 20}, {Number: 2, PlainSize: 7}}
	size := func(tail []byte) int64 {
		return int64(len(tail)) + format.PartEncryptedSize(5<<20) + format.PartEncryptedSize(7)
	}
	for _, ck := range []format.ObjectChecksum{
		{Kind: format.ChecksumKind{Algorithm: format.ChecksumCRC64NVME, FullObject: true}, Value: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{Kind: format.ChecksumKind{Algorithm: format.ChecksumSHA512}, Value: bytes.Repeat([]byte{9}, 64)},
	} {
		tail, _, err := k.SealTailChecksum(parts, ck)
		if err != nil {
			t.Fatal(err)
		}
		tl, err := k.OpenTail(tail, size(tail))
		if err != nil || tl.Checksum.Kind != ck.Kind || !bytes.Equal(tl.Checksum.Value, ck.Value) {
			t.Fatalf("%v: opened %+v, %v", ck.Kind, tl, err)
		}
	}
	for _, bad := range []format.ObjectChecksum{
		{Kind: format.ChecksumKind{Algorithm: format.ChecksumSHA256, FullObject: true}, Value: make([]byte, 32)},
		{Kind: format.ChecksumKind{Algorithm: format.ChecksumCRC64NVME}, Value: make([]byte, 8)},
		{Kind: format.ChecksumKind{Algorithm: format.ChecksumCRC32}, Value: make([]byte, 8)},
	} {
		if _, _, err := k.SealTailChecksum(parts, bad); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("%+v sealed: %v", bad, err)
		}
	}
}
