package sigv4

import (
	"bufio"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"hash"
	"io"
	"net/http"
)

// Payload is the verifying, decoding body returned by Auth.Body. It is an
// io.ReadCloser; it is not safe for concurrent use.
type Payload struct {
	src  io.ReadCloser
	mode PayloadMode

	declared int64 // DecodedLength, -1 if unknown
	n        int64 // decoded bytes accepted so far

	sha       hash.Hash // whole-payload SHA-256 (PayloadSigned)
	shaWant   []byte
	md5       hash.Hash
	md5Want   []byte
	md5Sum    []byte
	ck        hash.Hash // additional checksum, nil if none
	integrity integrityHeaders
	ckValue   string // verified base64 checksum, after EOF

	err  error // sticky failure (*Error)
	done bool  // all checks passed; Read returns io.EOF

	chunked *chunkDecoder // non-nil for aws-chunked bodies
}

// Body wraps body (the request body) and returns the decoded payload. It
// removes aws-chunked framing and verifies everything the client declared:
//   - bytes of an aws-chunked chunk are returned only after that chunk's
//     signature (in the chain seeded by the request signature) is verified;
//   - at the end it verifies, as applicable, the signed SHA-256 of the payload
//     (XAmzContentSHA256Mismatch), the final chunk and trailer signatures, the
//     trailer checksum declared in x-amz-trailer, an x-amz-checksum-* header,
//     Content-MD5 (BadDigest / InvalidDigest), and that the decoded length
//     matches DecodedLength (IncompleteBody);
//   - on any failure Read returns a *Error and never io.EOF; io.EOF comes only
//     after all checks passed.
//
// h is the request header. The integrity headers were captured by
// Authenticate, so running StripHeaders before Body does not disable any
// check; h is only consulted for an Auth that did not come from Authenticate.
func (a *Auth) Body(body io.ReadCloser, h http.Header) *Payload {
	if body == nil {
		body = http.NoBody
	}
	p := &Payload{src: body, mode: a.Payload, declared: a.DecodedLength}
	integ := a.integrity
	if !integ.parsed {
		var err *Error
		if integ, err = parseIntegrityHeaders(h, a.Payload); err != nil {
			p.err = err
			return p
		}
	}
	p.integrity = integ
	if integ.contentMD5 != nil {
		p.md5 = md5.New()
		p.md5Want = integ.contentMD5
	}
	if integ.hasChecksum {
		p.ck = integ.checksum.newFn()
	}
	switch a.Payload {
	case PayloadSigned:
		if len(a.payloadSHA256) != sha256.Size {
			p.err = newError(CodeInvalidRequest, "no signed payload digest")
			return p
		}
		p.sha = sha256.New()
		p.shaWant = a.payloadSHA256
	case PayloadUnsigned, PayloadNone:
	case PayloadStreamingSigned, PayloadStreamingSignedTrailer, PayloadStreamingUnsignedTrailer:
		signed := a.Payload != PayloadStreamingUnsignedTrailer
		if signed && len(a.signingKey) == 0 {
			p.err = newError(CodeInvalidRequest, "no signing key for a signed aws-chunked body")
			return p
		}
		p.chunked = &chunkDecoder{
			br:              bufio.NewReaderSize(body, 64<<10),
			signed:          signed,
			withTrailer:     a.Payload != PayloadStreamingSigned,
			key:             append([]byte(nil), a.signingKey...),
			amzDate:         a.amzDate,
			scope:           a.scope,
			prevSig:         a.seedSignature,
			maxChunk:        a.maxChunkSize,
			declared:        a.DecodedLength,
			trailerAlg:      integ.checksum,
			trailerDeclared: integ.trailer,
		}
		if p.chunked.maxChunk <= 0 {
			p.chunked.maxChunk = 16 << 20
		}
	default:
		p.err = newError(CodeInvalidRequest, "unknown payload mode")
	}
	return p
}

// EnableMD5 makes the Payload compute the MD5 of the payload even without a
// Content-MD5 header (for an ETag); call it before the first Read.
func (p *Payload) EnableMD5() {
	if p.md5 == nil && p.n == 0 {
		p.md5 = md5.New()
	}
}

// Read reads decoded, verified payload bytes.
func (p *Payload) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.done {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var err error
	if p.chunked != nil {
		n, err = p.readChunked(b)
	} else {
		n, err = p.readPlain(b)
	}
	if err != nil && err != io.EOF {
		p.fail(err)
		return n, p.err
	}
	if err == io.EOF {
		if ferr := p.finish(); ferr != nil {
			p.fail(ferr)
			return n, p.err
		}
		if n > 0 {
			return n, nil // io.EOF on the next call
		}
		return 0, io.EOF
	}
	return n, nil
}

// fail records the first failure; later Reads return it.
func (p *Payload) fail(err error) {
	if p.err != nil {
		return
	}
	var e *Error
	if errors.As(err, &e) {
		p.err = e
	} else {
		p.err = &Error{Code: CodeIncompleteBody, Message: "reading the request body failed", cause: err}
	}
	if p.chunked != nil {
		p.chunked.zero()
	}
}

func (p *Payload) readPlain(b []byte) (int, error) {
	n, err := p.src.Read(b)
	if n > 0 {
		if p.declared >= 0 && p.n+int64(n) > p.declared {
			return 0, newError(CodeIncompleteBody, "the body is longer than its declared length")
		}
		p.account(b[:n])
	}
	if err == io.EOF {
		return n, io.EOF
	}
	if err != nil {
		return 0, err // bytes of a failed read are withheld
	}
	return n, nil
}

// account feeds accepted decoded bytes to the hashes.
func (p *Payload) account(b []byte) {
	p.n += int64(len(b))
	if p.sha != nil {
		p.sha.Write(b)
	}
	if p.md5 != nil {
		p.md5.Write(b)
	}
	if p.ck != nil {
		p.ck.Write(b)
	}
}

// finish runs the end-of-body checks.
func (p *Payload) finish() *Error {
	if p.declared >= 0 && p.n != p.declared {
		return newError(CodeIncompleteBody, "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	}
	if p.sha != nil && subtle.ConstantTimeCompare(p.sha.Sum(nil), p.shaWant) != 1 {
		return newError(CodeXAmzContentSHA256Mismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	if p.md5 != nil {
		p.md5Sum = p.md5.Sum(nil)
		if p.md5Want != nil && subtle.ConstantTimeCompare(p.md5Sum, p.md5Want) != 1 {
			p.md5Sum = nil
			return newError(CodeBadDigest, "The Content-MD5 you specified did not match what we received.")
		}
	}
	if p.ck != nil {
		want := p.integrity.checksumWant
		if p.integrity.trailer {
			want = p.chunked.trailerChecksum
		}
		got := p.ck.Sum(nil)
		if want == nil || subtle.ConstantTimeCompare(got, want) != 1 {
			return newError(CodeBadDigest, "The "+p.integrity.checksum.name+" you specified did not match the calculated checksum.")
		}
		p.ckValue = base64.StdEncoding.EncodeToString(got)
	}
	p.done = true
	if p.chunked != nil {
		p.chunked.zero()
	}
	return nil
}

// Close closes the underlying body and wipes key material.
func (p *Payload) Close() error {
	if p.chunked != nil {
		p.chunked.zero()
	}
	return p.src.Close()
}

// Checksum returns the client's verified additional checksum (from the
// x-amz-checksum-* header or the trailer): the algorithm as S3 names it
// (CRC32, CRC32C, CRC64NVME, SHA1, SHA256, SHA512, MD5, XXHASH64, XXHASH3, XXHASH128)
// and the base64 value. Both are "" if the client sent none or the body has not
// been read to io.EOF.
func (p *Payload) Checksum() (algorithm, base64Value string) {
	if !p.done || p.ckValue == "" {
		return "", ""
	}
	return p.integrity.checksum.name, p.ckValue
}

// MD5 returns the MD5 of the payload if it was computed (Content-MD5 present,
// or EnableMD5 called), after io.EOF; nil otherwise.
func (p *Payload) MD5() []byte {
	if !p.done || p.md5Sum == nil {
		return nil
	}
	return append([]byte(nil), p.md5Sum...)
}
