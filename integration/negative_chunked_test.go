package integration

// A client-side aws-chunked encoder and chunk signer for the negative matrix (the sigv4
// package's own is in its test files, which cannot be imported). It follows AWS's "Signature
// Calculations for the Authorization Header: Transferring Payload in Multiple Chunks"
// (sigv4-streaming.html) and the trailer variant (sigv4-streaming-trailers.html); the seed
// signature comes from aws-sdk-go-v2's signer, and TestNegativeChunkSignerVectors checks the
// chunk and trailer signatures against the worked examples of those pages.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// aws-chunked payload modes (x-amz-content-sha256 values).
const (
	negStreamingSigned        = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	negStreamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	negStreamingUnsigned      = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	negEmptySHA256            = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	negSigPlaceholder         = "0000000000000000000000000000000000000000000000000000000000000000"
)

func negHMAC(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

func negHexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// negChunkSigner computes the chained signatures of an aws-chunked body.
type negChunkSigner struct {
	key     []byte // the SigV4 signing key of the day, region and service
	amzDate string // X-Amz-Date of the request
	scope   string // date/region/service/aws4_request
	prev    string // the previous signature (the seed signature at first)
}

func newNegChunkSigner(secret, amzDate, region, service, seed string) *negChunkSigner {
	day := amzDate[:8]
	k := negHMAC([]byte("AWS4"+secret), day)
	k = negHMAC(k, region)
	k = negHMAC(k, service)
	k = negHMAC(k, "aws4_request")
	return &negChunkSigner{key: k, amzDate: amzDate, scope: day + "/" + region + "/" + service + "/aws4_request", prev: seed}
}

// chunk signs the next chunk's data (empty for the final chunk).
func (s *negChunkSigner) chunk(data []byte) string {
	sts := strings.Join([]string{"AWS4-HMAC-SHA256-PAYLOAD", s.amzDate, s.scope, s.prev, negEmptySHA256, negHexSHA256(data)}, "\n")
	s.prev = hex.EncodeToString(negHMAC(s.key, sts))
	return s.prev
}

// trailer signs the trailing headers, each given as "name:value".
func (s *negChunkSigner) trailer(lines ...string) string {
	canon := strings.Join(lines, "\n") + "\n"
	sts := strings.Join([]string{"AWS4-HMAC-SHA256-TRAILER", s.amzDate, s.scope, s.prev, negHexSHA256([]byte(canon))}, "\n")
	s.prev = hex.EncodeToString(negHMAC(s.key, sts))
	return s.prev
}

// negChunkedBody is an aws-chunked body before encoding, so that tests can tamper with it.
type negChunkedBody struct {
	Mode       string
	Chunks     [][]byte // chunk data as it will be sent
	Sigs       []string // signed modes: one per chunk plus the final chunk's
	Trailer    string   // "x-amz-checksum-crc32c:<base64>", or "" for none
	TrailerSig string   // signed trailer mode
}

func (b *negChunkedBody) signed() bool { return b.Mode != negStreamingUnsigned }

// encode renders the body on the wire.
func (b *negChunkedBody) encode() []byte {
	var w bytes.Buffer
	for i, c := range append(b.Chunks, nil) {
		fmt.Fprintf(&w, "%x", len(c))
		if b.signed() {
			w.WriteString(";chunk-signature=" + b.Sigs[i])
		}
		w.WriteString("\r\n")
		if len(c) > 0 {
			w.Write(c)
			w.WriteString("\r\n")
		}
	}
	if b.Trailer != "" {
		w.WriteString(b.Trailer + "\r\n")
		if b.signed() {
			w.WriteString("x-amz-trailer-signature:" + b.TrailerSig + "\r\n")
		}
	}
	w.WriteString("\r\n")
	return w.Bytes()
}

// negStreamingPut builds a PUT of plain to url as an aws-chunked body in mode, in chunkSize
// chunks, header-signed with sig (its payload field is ignored). trailer is the trailing
// checksum line ("x-amz-checksum-crc32c:<base64>") for the trailer modes. edit, if not nil,
// may tamper with the signed body; it must not change the encoded length (Content-Length is
// signed).
func negStreamingPut(t *testing.T, url string, sig negSig, mode string, plain []byte, chunkSize int, trailer string, edit func(*negChunkedBody)) *http.Request {
	t.Helper()
	b := &negChunkedBody{Mode: mode, Trailer: trailer}
	for off := 0; off < len(plain); off += chunkSize {
		b.Chunks = append(b.Chunks, plain[off:min(off+chunkSize, len(plain))])
	}
	if b.signed() {
		b.Sigs = make([]string, len(b.Chunks)+1)
		for i := range b.Sigs {
			b.Sigs[i] = negSigPlaceholder
		}
		b.TrailerSig = negSigPlaceholder
	}
	length := len(b.encode())

	req, err := http.NewRequest(http.MethodPut, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(length)
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(plain)))
	if trailer != "" {
		name, _, _ := strings.Cut(trailer, ":")
		req.Header.Set("X-Amz-Trailer", name)
	}
	sig.payload = mode
	negSign(t, req, sig)

	if b.signed() {
		seed := req.Header.Get("Authorization")
		seed = seed[strings.LastIndex(seed, "Signature=")+len("Signature="):]
		cs := newNegChunkSigner(sig.cred.secret, req.Header.Get("X-Amz-Date"), sig.regionOr(), sig.serviceOr(), seed)
		for i, c := range b.Chunks {
			b.Sigs[i] = cs.chunk(c)
		}
		b.Sigs[len(b.Chunks)] = cs.chunk(nil)
		if trailer != "" {
			b.TrailerSig = cs.trailer(trailer)
		}
	}
	if edit != nil {
		edit(b)
	}
	body := b.encode()
	if len(body) != length {
		t.Fatalf("negStreamingPut: the edit changed the body length from %d to %d", length, len(body))
	}
	req.Body = negBody(body)
	req.GetBody = func() (io.ReadCloser, error) { return negBody(body), nil }
	return req
}

// negSig says how a request is signed.
type negSig struct {
	cred    negCred
	region  string    // default us-east-1
	service string    // default s3
	at      time.Time // default now
	payload string    // x-amz-content-sha256; default the SHA-256 of the body
}

func (s negSig) regionOr() string  { return cmp.Or(s.region, "us-east-1") }
func (s negSig) serviceOr() string { return cmp.Or(s.service, "s3") }

// negBody is a request body over b.
func negBody(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

// negSign signs req in place (Authorization header) with aws-sdk-go-v2's SigV4 signer, as S3
// clients do (no double escaping of the path). The x-amz-content-sha256 header is set to
// sig.payload, which must be set.
func negSign(t *testing.T, req *http.Request, sig negSig) {
	t.Helper()
	at := sig.at
	if at.IsZero() {
		at = time.Now()
	}
	req.Header.Set("X-Amz-Content-Sha256", sig.payload)
	creds := aws.Credentials{AccessKeyID: sig.cred.id, SecretAccessKey: sig.cred.secret}
	err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		SignHTTP(context.Background(), creds, req, sig.payload, sig.serviceOr(), sig.regionOr(), at.UTC())
	if err != nil {
		t.Fatal(err)
	}
}

// TestNegativeChunkSignerVectors: the chunk signer reproduces the worked examples of AWS's
// streaming pages (the published seed, chunk and trailer signatures), so that a negative
// result through the gateway is not the signer's fault.
func TestNegativeChunkSignerVectors(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	a64k, a1k := bytes.Repeat([]byte("a"), 65536), bytes.Repeat([]byte("a"), 1024)

	// sigv4-streaming.html, "Example: PUT Object".
	s := newNegChunkSigner(secret, "20130524T000000Z", "us-east-1", "s3",
		"4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
	for i, want := range []string{
		"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
		"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
		"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
	} {
		if got := s.chunk([][]byte{a64k, a1k, nil}[i]); got != want {
			t.Errorf("chunk %d: signature %s, AWS's example has %s", i, got, want)
		}
	}

	// sigv4-streaming-trailers.html: the same body, signed trailer x-amz-checksum-crc32c.
	s = newNegChunkSigner(secret, "20130524T000000Z", "us-east-1", "s3",
		"106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e")
	for i, want := range []string{
		"b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
		"1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
		"2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
	} {
		if got := s.chunk([][]byte{a64k, a1k, nil}[i]); got != want {
			t.Errorf("trailer example chunk %d: signature %s, AWS's example has %s", i, got, want)
		}
	}
	// The page's trailer string to sign (whose last line is the SHA-256 of the canonical
	// trailer) signs to this value; see sigv4/testdata/README.md for the page's errata.
	if got, want := s.trailer("x-amz-checksum-crc32c:sOO8/Q=="), "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"; got != want {
		t.Errorf("trailer signature %s, want %s", got, want)
	}

	// The encoder frames the body as the example shows (66824 bytes).
	b := &negChunkedBody{Mode: negStreamingSigned, Chunks: [][]byte{a64k, a1k}, Sigs: []string{negSigPlaceholder, negSigPlaceholder, negSigPlaceholder}}
	if n := len(b.encode()); n != 66824 {
		t.Errorf("encoded example body is %d bytes, AWS's Content-Length is 66824", n)
	}
}
