package format_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// readAllOnce reads r to its end or first error, then checks the error is sticky.
func readAllOnce(t *testing.T, r io.Reader) ([]byte, error) {
	t.Helper()
	out, err := io.ReadAll(r)
	if err != nil {
		if n, err2 := r.Read(make([]byte, 10)); n != 0 || err2 != err {
			t.Fatalf("error not sticky: second Read gave %d, %v after %v", n, err2, err)
		}
	}
	return out, err
}

func TestWriterSourceShorterOrLonger(t *testing.T) {
	k := newKey(t)
	upub, _ := k.UploadPublicKey()
	size := int64(3*S + 7)
	plain := randomBytes(t, size+1)
	cases := []struct {
		name      string
		have      int64 // bytes the source holds
		wantBytes int64 // stored bytes that may be emitted: only complete non-final segments
	}{
		{"empty source", 0, 0},
		{"one byte short", size - 1, 3 * (S + 16)},
		{"ends at a segment boundary", 2 * S, 2 * (S + 16)},
		{"ends mid-segment", S + 100, S + 16},
		{"one byte long", size + 1, 3 * (S + 16)},
	}
	for _, c := range cases {
		for _, part := range []bool{false, true} {
			var r *format.EncryptReader
			var err error
			src := bytes.NewReader(plain[:c.have])
			want := c.wantBytes
			if part {
				r, err = format.NewPartEncryptReader(src, upub, 1, size, format.EncryptOptions{ComputeMD5: true})
				want += 48
			} else {
				r, err = format.NewEncryptReader(src, k, size, format.EncryptOptions{ComputeMD5: true})
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := readAllOnce(t, r)
			if !errors.Is(err, format.ErrSize) {
				t.Fatalf("%s (part=%v): error %v, want ErrSize", c.name, part, err)
			}
			if c.have < size && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s: short source error %v does not wrap io.ErrUnexpectedEOF", c.name, err)
			}
			if int64(len(out)) != want {
				t.Fatalf("%s (part=%v): emitted %d bytes, want %d (no final segment, no trailer)", c.name, part, len(out), want)
			}
			if r.MD5() != nil {
				t.Fatalf("%s: MD5 of an aborted stream", c.name)
			}
		}
	}
	// Size 0 with a non-empty source emits nothing.
	r, _ := format.NewEncryptReader(bytes.NewReader([]byte{1}), k, 0, format.EncryptOptions{})
	if out, err := readAllOnce(t, r); !errors.Is(err, format.ErrSize) || len(out) != 0 {
		t.Fatalf("size 0, 1-byte source: %d bytes, %v", len(out), err)
	}
}

// failAtEnd yields its data and then fails instead of returning io.EOF, as a body reader does
// when the client's final chunk signature does not verify.
type failAtEnd struct {
	r   io.Reader
	err error
}

func (f *failAtEnd) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

type wrappedErr struct{ msg string }

func (w *wrappedErr) Error() string { return w.msg }

func TestWriterSourceErrorAtEnd(t *testing.T) {
	k := newKey(t)
	upub, _ := k.UploadPublicKey()
	for _, size := range []int64{0, 5, S, 2*S + 3} {
		plain := randomBytes(t, size)
		sigErr := &wrappedErr{"chunk signature mismatch"}
		srcs := []io.Reader{
			&failAtEnd{bytes.NewReader(plain), sigErr},
			&failAtEnd{oneByteReader{bytes.NewReader(plain)}, sigErr},
		}
		for i, src := range srcs {
			var r *format.EncryptReader
			var err error
			nseg := max(1, (size+S-1)/S)
			nonFinal := (nseg - 1) * (S + 16) // complete non-final segments only
			if i == 1 {
				r, err = format.NewPartEncryptReader(src, upub, 7, size, format.EncryptOptions{})
				nonFinal += 48
			} else {
				r, err = format.NewEncryptReader(src, k, size, format.EncryptOptions{})
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := readAllOnce(t, r)
			var we *wrappedErr
			if !errors.As(err, &we) || we != sigErr {
				t.Fatalf("size %d: error %v, want the source's error unchanged", size, err)
			}
			if int64(len(out)) != nonFinal {
				t.Fatalf("size %d: emitted %d bytes, want %d (final segment withheld)", size, len(out), nonFinal)
			}
		}
	}
	// An error in the middle is passed through as well, through WriteTo.
	boom := errors.New("boom")
	r, _ := format.NewEncryptReader(io.MultiReader(bytes.NewReader(make([]byte, S+5)), errReader{boom}), k, 3*S, format.EncryptOptions{})
	var buf bytes.Buffer
	if n, err := io.Copy(&buf, r); !errors.Is(err, boom) || n != S+16 {
		t.Fatalf("mid-stream error through WriteTo: %d, %v", n, err)
	}
}

func TestWriterArguments(t *testing.T) {
	k := newKey(t)
	upub, _ := k.UploadPublicKey()
	if _, err := format.NewEncryptReader(bytes.NewReader(nil), k, -1, format.EncryptOptions{}); !errors.Is(err, format.ErrSize) {
		t.Errorf("negative size: %v", err)
	}
	for _, n := range []int{0, -1, 10001} {
		if _, err := format.NewPartEncryptReader(bytes.NewReader(nil), upub, n, 0, format.EncryptOptions{}); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("part number %d: %v", n, err)
		}
	}
	for _, bad := range [][]byte{nil, upub[:31], make([]byte, 32)} {
		if _, err := format.NewPartEncryptReader(bytes.NewReader(nil), bad, 1, 0, format.EncryptOptions{}); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("upload public key %x: %v", bad, err)
		}
	}
}
