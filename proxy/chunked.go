package proxy

import (
	"encoding/base64"
	"encoding/binary"
	"hash"
	"hash/crc32"
	"io"
	"strconv"
)

// Backend payload modes (Backend.Payload).
const (
	// PayloadAuto: CRC trailer over plain HTTP, unsigned over TLS (and for the embedded store).
	PayloadAuto = "auto"
	// PayloadUnsigned signs UNSIGNED-PAYLOAD: no second hash of the ciphertext. The encrypted
	// stream authenticates itself; over TLS the transport protects it in flight.
	PayloadUnsigned = "unsigned"
	// PayloadCRCTrailer sends aws-chunked STREAMING-UNSIGNED-PAYLOAD-TRAILER with an
	// x-amz-checksum-crc32c trailer, so that the backend checks the bytes it stores even over
	// plain HTTP, at CRC cost (tens of GB/s) instead of SHA-256 cost.
	PayloadCRCTrailer = "crc-trailer"
)

// chunkSize is the aws-chunked chunk size the gateway sends.
const chunkSize = 64 << 10

const crcTrailerName = "x-amz-checksum-crc32c"

// chunkedLength is the exact encoded length of n payload bytes in the gateway's aws-chunked
// framing with a CRC32C trailer.
func chunkedLength(n int64) int64 {
	full := n / chunkSize
	total := full * (int64(len(strconv.FormatInt(chunkSize, 16))) + 2 + chunkSize + 2)
	if rest := n % chunkSize; rest > 0 {
		total += int64(len(strconv.FormatInt(rest, 16))) + 2 + rest + 2
	}
	// "0\r\n" + "x-amz-checksum-crc32c:" + 8 base64 chars + "\r\n" + "\r\n"
	return total + 3 + int64(len(crcTrailerName)) + 1 + 8 + 2 + 2
}

// chunkedEncoder frames src (exactly n bytes) as aws-chunked with a CRC32C trailer.
type chunkedEncoder struct {
	src     io.Reader
	left    int64
	crc     hash.Hash32
	buf     []byte
	pending []byte // encoded bytes not yet returned
	done    bool
	err     error
}

func newChunkedEncoder(src io.Reader, n int64) *chunkedEncoder {
	return &chunkedEncoder{
		src:  src,
		left: n,
		crc:  crc32.New(crc32.MakeTable(crc32.Castagnoli)),
		buf:  make([]byte, 0, min(max(n, 0), chunkSize)+32), // the trailer fits in 32 too (fill appends)
	}
}

// Read fills p across chunk boundaries: net/http copies a request body of known length to the
// socket 32 KiB at a time, and a frame is 64 KiB plus a few bytes, so returning one frame's
// rest at a time made every third write a few bytes long (the stream-PUT profile's syscalls).
func (c *chunkedEncoder) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(c.pending) == 0 {
			if n > 0 && (c.err != nil || c.done) {
				return n, nil // the error or EOF comes with the next call
			}
			if c.err != nil {
				return 0, c.err
			}
			if c.done {
				return 0, io.EOF
			}
			c.fill()
			continue
		}
		m := copy(p[n:], c.pending)
		c.pending = c.pending[m:]
		n += m
	}
	return n, nil
}

// fill encodes the next chunk (or the final chunk and trailer) into pending.
func (c *chunkedEncoder) fill() {
	if c.left == 0 {
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], c.crc.Sum32())
		c.buf = append(c.buf[:0], "0\r\n"+crcTrailerName+":"...)
		c.buf = base64.StdEncoding.AppendEncode(c.buf, sum[:])
		c.buf = append(c.buf, "\r\n\r\n"...)
		c.pending, c.done = c.buf, true
		return
	}
	size := min(int64(chunkSize), c.left)
	c.buf = strconv.AppendInt(c.buf[:0], size, 16)
	c.buf = append(c.buf, '\r', '\n')
	head := len(c.buf)
	c.buf = c.buf[:head+int(size)]
	if _, err := io.ReadFull(c.src, c.buf[head:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		c.err = err
		return
	}
	c.crc.Write(c.buf[head:])
	c.left -= size
	c.buf = append(c.buf, '\r', '\n')
	c.pending = c.buf
}
