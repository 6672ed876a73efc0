package sigv4

import (
	"bufio"
	"crypto/hmac"
	"encoding/hex"
	"io"
	"math"
	"strings"
)

// aws-chunked framing (signed):
//
//	hex(size);chunk-signature=<64 hex>\r\n<data>\r\n ... 0;chunk-signature=<64 hex>\r\n
//	[name:value\r\n ... x-amz-trailer-signature:<64 hex>\r\n]   (signed trailer mode)
//	\r\n
//
// unsigned trailer mode: hex(size)\r\n<data>\r\n ... 0\r\n[name:value\r\n ...]\r\n
//
// Liberal only where real SDKs differ: the final empty line may be missing
// (the body simply ends), and in trailer modes one empty line may sit between
// the final chunk and the trailers. Everything else is strict.

const (
	maxChunkHeaderLine = 256
	maxTrailerLine     = 1024
	maxTrailerLines    = 16
	trailerSignature   = "x-amz-trailer-signature"
)

type chunkState int

const (
	stateHeader chunkState = iota // expecting a chunk header line
	stateData                     // inside unsigned chunk data
	stateDone                     // final chunk and trailers verified
)

// chunkDecoder holds the aws-chunked decoding state of a Payload.
type chunkDecoder struct {
	br          *bufio.Reader
	signed      bool // chunks carry chained signatures
	withTrailer bool // a trailer section follows the final chunk
	key         []byte
	amzDate     string
	scope       string
	prevSig     string // hex signature of the previous chunk (seed: request signature)
	maxChunk    int64
	declared    int64 // x-amz-decoded-content-length

	state   chunkState
	total   int64 // sum of the chunk sizes seen
	remain  int64 // unsigned mode: bytes left in the current chunk
	buf     []byte
	pending []byte // verified bytes not yet returned
	line    []byte

	trailerAlg      checksumAlgorithm // declared in x-amz-trailer
	trailerDeclared bool
	trailerChecksum []byte // decoded checksum from the trailer
}

func (d *chunkDecoder) zero() {
	clear(d.key)
	clear(d.buf[:cap(d.buf)])
	d.pending = nil
}

func errFraming(msg string) *Error {
	return newError(CodeInvalidRequest, "malformed aws-chunked body: "+msg)
}

func errTruncated() *Error {
	return newError(CodeIncompleteBody, "The request body ended before the aws-chunked encoding was complete.")
}

// sentinelError is a constant error value.
type sentinelError string

func (e sentinelError) Error() string { return string(e) }

// errLineAtEOF: the body ended exactly where a line would start.
const errLineAtEOF = sentinelError("end of body at a line start")

// readLine reads one CRLF-terminated line of at most max bytes (without the
// CRLF). It returns errLineAtEOF if the body ends before the line starts.
func (d *chunkDecoder) readLine(max int) ([]byte, error) {
	d.line = d.line[:0]
	for {
		c, err := d.br.ReadByte()
		if err == io.EOF {
			if len(d.line) == 0 {
				return nil, errLineAtEOF
			}
			return nil, errTruncated()
		}
		if err != nil {
			return nil, err
		}
		switch c {
		case '\r':
			c2, err := d.br.ReadByte()
			if err == io.EOF {
				return nil, errTruncated()
			}
			if err != nil {
				return nil, err
			}
			if c2 != '\n' {
				return nil, errFraming("CR not followed by LF")
			}
			return d.line, nil
		case '\n':
			return nil, errFraming("line ends in a bare LF")
		}
		if len(d.line) >= max {
			return nil, errFraming("line too long")
		}
		d.line = append(d.line, c)
	}
}

// expectCRLF consumes the CRLF after chunk data.
func (d *chunkDecoder) expectCRLF() error {
	line, err := d.readLine(0)
	if err == errLineAtEOF {
		return errTruncated()
	}
	if err != nil {
		return err
	}
	if len(line) != 0 {
		return errFraming("chunk data not followed by CRLF")
	}
	return nil
}

func parseChunkSize(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range s {
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(v)
	}
	if n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

// readChunkHeader parses "hex;chunk-signature=<sig>" (signed) or "hex".
func (d *chunkDecoder) readChunkHeader() (size int64, sig []byte, err error) {
	line, err := d.readLine(maxChunkHeaderLine)
	if err == errLineAtEOF {
		return 0, nil, errTruncated()
	}
	if err != nil {
		return 0, nil, err
	}
	sizePart := line
	if d.signed {
		i := strings.IndexByte(string(line), ';')
		if i < 0 {
			return 0, nil, errFraming("chunk header without chunk-signature")
		}
		sizePart = line[:i]
		sigHex, ok := strings.CutPrefix(string(line[i+1:]), "chunk-signature=")
		if !ok {
			return 0, nil, errFraming("chunk header without chunk-signature")
		}
		if sig, err = hex.DecodeString(sigHex); err != nil || len(sig) != 32 {
			return 0, nil, errFraming("chunk-signature is not 64 hexadecimal characters")
		}
	}
	size, ok := parseChunkSize(sizePart)
	if !ok {
		return 0, nil, errFraming("chunk size is not a hexadecimal number")
	}
	return size, sig, nil
}

// verifyChunk checks one chunk signature and advances the chain.
func (d *chunkDecoder) verifyChunk(data, sig []byte) error {
	got := signature(d.key, chunkStringToSign(d.amzDate, d.scope, d.prevSig, hexSHA256(data)))
	if !hmac.Equal(got, sig) {
		return newError(CodeSignatureDoesNotMatch, "The chunk signature we calculated does not match the signature you provided.")
	}
	d.prevSig = hex.EncodeToString(got)
	return nil
}

// readSignedChunk reads size bytes into the reused buffer, growing it only as
// data actually arrives, then verifies the chunk signature.
func (d *chunkDecoder) readSignedChunk(size int64, sig []byte) ([]byte, error) {
	if size > d.maxChunk {
		return nil, newError(CodeInvalidRequest, "aws-chunked chunk larger than the server's limit")
	}
	data := d.buf[:0]
	for int64(len(data)) < size {
		if len(data) == cap(data) {
			c := int64(max(2*cap(data), 64<<10))
			grown := make([]byte, len(data), min(c, size))
			copy(grown, data)
			clear(data)
			data = grown
		}
		n, err := d.br.Read(data[len(data):min(int64(cap(data)), size)])
		data = data[:len(data)+n]
		if err == io.EOF && int64(len(data)) < size {
			return nil, errTruncated()
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
	}
	d.buf = data
	if err := d.expectCRLF(); err != nil {
		return nil, err
	}
	if err := d.verifyChunk(data, sig); err != nil {
		return nil, err
	}
	return data, nil
}

// readChunked returns decoded bytes; only verified data for signed chunks.
func (p *Payload) readChunked(b []byte) (int, error) {
	d := p.chunked
	for {
		if len(d.pending) > 0 {
			n := copy(b, d.pending)
			d.pending = d.pending[n:]
			return n, nil
		}
		switch d.state {
		case stateDone:
			return 0, io.EOF
		case stateData:
			n, err := d.br.Read(b[:min(int64(len(b)), d.remain)])
			if err != nil && err != io.EOF {
				return 0, err
			}
			d.remain -= int64(n)
			if d.remain > 0 && err == io.EOF {
				return 0, errTruncated()
			}
			if d.remain == 0 {
				if err := d.expectCRLF(); err != nil {
					return 0, err
				}
				d.state = stateHeader
			}
			p.account(b[:n])
			return n, nil
		}
		size, sig, err := d.readChunkHeader()
		if err != nil {
			return 0, err
		}
		if size > d.declared-d.total {
			return 0, newError(CodeIncompleteBody, "the aws-chunked body is longer than x-amz-decoded-content-length")
		}
		d.total += size
		if size == 0 {
			if err := d.readEnd(sig); err != nil {
				return 0, err
			}
			d.state = stateDone
			return 0, io.EOF
		}
		if !d.signed {
			d.remain, d.state = size, stateData
			continue
		}
		data, err := d.readSignedChunk(size, sig)
		if err != nil {
			return 0, err
		}
		p.account(data)
		d.pending = data
	}
}

// readEnd handles everything after the final chunk header: its signature,
// the trailers, the final CRLF, and the end of the body.
func (d *chunkDecoder) readEnd(finalSig []byte) error {
	if d.total != d.declared {
		return newError(CodeIncompleteBody, "the aws-chunked body is shorter than x-amz-decoded-content-length")
	}
	if d.signed {
		if err := d.verifyChunk(nil, finalSig); err != nil {
			return err
		}
	}
	if d.withTrailer {
		if err := d.readTrailers(); err != nil {
			return err
		}
	} else if line, err := d.readLine(0); err != nil && err != errLineAtEOF {
		return err
	} else if err == nil && len(line) != 0 {
		return errFraming("final chunk not followed by CRLF")
	}
	if _, err := d.br.ReadByte(); err != io.EOF {
		if err != nil {
			return err
		}
		return errFraming("data after the final chunk")
	}
	return nil
}
