package format_test

import (
	"bytes"
	"crypto/md5"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/s3seal/s3seal/format"
)

// writeToAll decrypts stored through WriteTo (what io.Copy and the gateway use), after first taking
// firstRead bytes through Read as the gateway's streamPlain does; it returns what was written
// before any error, and the trailer's MD5.
func writeToAll(t *testing.T, k *format.ObjectKey, size int64, stored []byte, firstRead int) ([]byte, []byte, error) {
	t.Helper()
	s, err := k.SingleStream(size)
	if err != nil {
		t.Fatal(err)
	}
	d := s.DecryptAll(bytes.NewReader(stored))
	var out bytes.Buffer
	if firstRead > 0 {
		head := make([]byte, firstRead)
		n, err := io.ReadFull(d, head)
		out.Write(head[:n])
		if err != nil {
			return out.Bytes(), nil, err
		}
	}
	_, err = d.WriteTo(&out)
	return out.Bytes(), d.MD5(), err
}

// TestWriteToSizes: WriteTo gives the plaintext and its MD5 for every size around the segment
// boundaries, whether or not Read took the first bytes.
func TestWriteToSizes(t *testing.T) {
	k := newKey(t)
	for _, size := range []int64{0, 1, S - 1, S, S + 1, 2 * S, 2*S + 1, 3*S + 7, 9 * S} {
		plain := randomBytes(t, size)
		stored := encryptSingle(t, k, plain, format.EncryptOptions{ComputeMD5: true})
		want := md5.Sum(plain)
		for _, first := range []int{0, 1, S} {
			if first > 0 && int64(first) >= size {
				continue // Read would take everything: nothing left for WriteTo
			}
			out, sum, err := writeToAll(t, k, size, stored, first)
			if err != nil || !bytes.Equal(out, plain) || !bytes.Equal(sum, want[:]) {
				t.Fatalf("size %d, first %d: %d bytes (equal %v), md5 %x, err %v", size, first, len(out), bytes.Equal(out, plain), sum, err)
			}
		}
	}
}

// TestWriteToTamper: through WriteTo, a flipped byte, a truncation, extra bytes or swapped
// segments fail the stream, and nothing of the bad segment or after it is written.
func TestWriteToTamper(t *testing.T) {
	k := newKey(t)
	const size = 5*S + 7
	plain := randomBytes(t, size)
	stored := encryptSingle(t, k, plain, format.EncryptOptions{ComputeMD5: true})
	for seg := 0; seg < 6; seg++ {
		for _, first := range []int{0, S} {
			bad := bytes.Clone(stored)
			bad[seg*(S+16)+3] ^= 1
			out, _, err := writeToAll(t, k, size, bad, first)
			checkRejected(t, "flip", out, plain, err, seg*S, format.ErrAuth)
		}
	}
	for _, tc := range []struct {
		name     string
		stored   []byte
		goodUpTo int
	}{
		{"trailer flipped", append(bytes.Clone(stored[:len(stored)-1]), stored[len(stored)-1]^1), size},
		{"cut in segment 3", stored[:3*(S+16)+100], 3 * S},
		{"cut before trailer", stored[:len(stored)-32], size},
		{"extra byte", append(bytes.Clone(stored), 0), size},
		{"segments 2 and 3 swapped", swapSegments(stored, 2, 3), 2 * S},
	} {
		out, _, err := writeToAll(t, k, size, tc.stored, 0)
		checkRejected(t, tc.name, out, plain, err, tc.goodUpTo, format.ErrAuth)
	}
}

func swapSegments(stored []byte, a, b int) []byte {
	out := bytes.Clone(stored)
	const n = S + 16
	copy(out[a*n:(a+1)*n], stored[b*n:(b+1)*n])
	copy(out[b*n:(b+1)*n], stored[a*n:(a+1)*n])
	return out
}

// failingWriter accepts ok writes and fails the next.
type failingWriter struct {
	ok  int
	got bytes.Buffer
}

var errClientGone = errors.New("client went away")

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.ok == 0 {
		return 0, errClientGone
	}
	w.ok--
	return w.got.Write(p)
}

// TestWriteToWriterFails: when the client write fails, WriteTo returns that error at once
// with the count of what was written, and leaves no goroutine behind.
func TestWriteToWriterFails(t *testing.T) {
	k := newKey(t)
	const size = 8 * S
	plain := randomBytes(t, size)
	stored := encryptSingle(t, k, plain, format.EncryptOptions{})
	before := runtime.NumGoroutine()
	for ok := 0; ok < 4; ok++ {
		s, _ := k.SingleStream(size)
		d := s.DecryptAll(bytes.NewReader(stored))
		w := &failingWriter{ok: ok}
		n, err := d.WriteTo(w)
		if !errors.Is(err, errClientGone) || n != int64(ok*S) || !bytes.Equal(w.got.Bytes(), plain[:ok*S]) {
			t.Fatalf("fail after %d writes: n %d, err %v, written equal %v", ok, n, err, bytes.Equal(w.got.Bytes(), plain[:w.got.Len()]))
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines after the failed writes, %d before", g, before)
	}
}
