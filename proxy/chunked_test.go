package proxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// decodeChunked parses aws-chunked framing with an unsigned trailer, as specified in AWS's
// "Using trailing checksums" documentation, independently of the encoder.
func decodeChunked(t *testing.T, enc []byte) (data []byte, trailer map[string]string) {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(enc))
	for {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasSuffix(line, "\r\n") {
			t.Fatalf("chunk header %q: %v", line, err)
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(line, "\r\n"), 16, 64)
		if err != nil {
			t.Fatalf("chunk size %q", line)
		}
		if n == 0 {
			break
		}
		chunk := make([]byte, n+2)
		if _, err := io.ReadFull(r, chunk); err != nil || string(chunk[n:]) != "\r\n" {
			t.Fatalf("chunk body: %v", err)
		}
		data = append(data, chunk[:n]...)
	}
	trailer = map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("trailer: %v", err)
		}
		if line == "\r\n" {
			break
		}
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\r\n"), ":")
		trailer[k] = v
	}
	if rest, _ := io.ReadAll(r); len(rest) != 0 {
		t.Fatalf("%d bytes after the final CRLF", len(rest))
	}
	return data, trailer
}

func TestChunkedEncoder(t *testing.T) {
	for _, n := range []int64{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 17, 1 << 20} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(rand.IntN(256))
		}
		enc, err := io.ReadAll(newChunkedEncoder(bytes.NewReader(src), n))
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if int64(len(enc)) != chunkedLength(n) {
			t.Errorf("n=%d: encoded %d bytes, chunkedLength says %d", n, len(enc), chunkedLength(n))
		}
		data, tr := decodeChunked(t, enc)
		if !bytes.Equal(data, src) {
			t.Errorf("n=%d: payload differs", n)
		}
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], crc32.Checksum(src, crc32.MakeTable(crc32.Castagnoli)))
		if tr["x-amz-checksum-crc32c"] != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Errorf("n=%d: trailer %v", n, tr)
		}
	}
}

// Reads of 32 KiB (what net/http's body copy asks for) come back full until the end: no short
// read at each frame boundary, so no few-byte socket write per frame.
func TestChunkedEncoderFillsReads(t *testing.T) {
	const n = 5*chunkSize + 123
	enc := newChunkedEncoder(bytes.NewReader(make([]byte, n)), n)
	buf := make([]byte, 32<<10)
	var total int64
	for {
		m, err := enc.Read(buf)
		total += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if m != len(buf) && total != chunkedLength(n) {
			t.Fatalf("short read of %d bytes at %d of %d", m, total, chunkedLength(n))
		}
	}
	if total != chunkedLength(n) {
		t.Fatalf("%d bytes, want %d", total, chunkedLength(n))
	}
}

// A failing source must never let the encoder finish the stream: no final chunk, no trailer.
func TestChunkedEncoderStopsOnError(t *testing.T) {
	boom := errors.New("signature mismatch")
	src := io.MultiReader(bytes.NewReader(make([]byte, 100_000)), iotestErr{boom})
	enc := newChunkedEncoder(src, 200_000)
	out, err := io.ReadAll(enc)
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want the source's", err)
	}
	if bytes.Contains(out, []byte("\r\n0\r\n")) || bytes.Contains(out, []byte("crc32c")) {
		t.Errorf("stream was completed despite the error")
	}
	short := newChunkedEncoder(bytes.NewReader(make([]byte, 10)), 20)
	if _, err := io.ReadAll(short); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short source: %v", err)
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }
