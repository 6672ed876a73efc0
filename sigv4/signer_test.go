package sigv4

// Test-side request builders. Requests are signed by aws-sdk-go-v2's signer
// (an implementation independent of this package); aws-chunked bodies are
// framed and signed by chunkWriter below, which deliberately shares no code
// with the package and is itself checked against AWS's chunked example.

import (
	"bufio"
	"bytes"
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

const (
	testAKID   = "AKIDTEST0000000000001"
	testSecret = "test/secret+key/0123456789abcdefghijklmno"
)

var testNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

func testVerifier() *Verifier {
	return NewVerifier(Config{
		Region:  "us-east-1",
		Secrets: secrets{testAKID: testSecret, exampleAKID: exampleSecret},
		Now:     fixedClock(testNow),
		SigV2:   true,
	})
}

func sdkSigner() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
}

func creds(akid, secret string) aws.Credentials {
	return aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}
}

// sdkSign signs a client request in place with the SDK signer.
func sdkSign(t testing.TB, r *http.Request, payloadHash, akid, secret, region string, at time.Time) {
	t.Helper()
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if err := sdkSigner().SignHTTP(context.Background(), creds(akid, secret), r, payloadHash, "s3", region, at); err != nil {
		t.Fatal(err)
	}
}

// toServer sends r through the HTTP/1.1 wire format and parses it back the
// way net/http's server does.
func toServer(t testing.TB, r *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	return sr
}

func newReq(t testing.TB, method, url string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// signedPut is a PUT with x-amz-content-sha256 = hex SHA-256 of body.
func signedPut(t testing.TB, url string, body []byte, hdr map[string]string) *http.Request {
	t.Helper()
	r := newReq(t, http.MethodPut, url, body)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	sum := sha256.Sum256(body)
	sdkSign(t, r, hex.EncodeToString(sum[:]), testAKID, testSecret, "us-east-1", testNow)
	return r
}

func hmacHex(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

func testSigningKey(secret string, at time.Time, region string) []byte {
	k := []byte("AWS4" + secret)
	for _, p := range []string{at.UTC().Format("20060102"), region, "s3", "aws4_request"} {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(p))
		k = m.Sum(nil)
	}
	return k
}

// chunkWriter frames and signs an aws-chunked body.
type chunkWriter struct {
	key     []byte
	amzDate string
	scope   string
	prev    string
	signed  bool
	buf     bytes.Buffer
}

func newChunkWriter(seed string, signed bool, at time.Time) *chunkWriter {
	return &chunkWriter{
		key: testSigningKey(testSecret, at, "us-east-1"), amzDate: at.UTC().Format("20060102T150405Z"),
		scope: at.UTC().Format("20060102") + "/us-east-1/s3/aws4_request", prev: seed, signed: signed,
	}
}

func (c *chunkWriter) chunk(data []byte) *chunkWriter {
	if c.signed {
		h := sha256.Sum256(data)
		sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.amzDate + "\n" + c.scope + "\n" + c.prev + "\n" +
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n" + hex.EncodeToString(h[:])
		c.prev = hmacHex(c.key, sts)
		fmt.Fprintf(&c.buf, "%x;chunk-signature=%s\r\n", len(data), c.prev)
	} else {
		fmt.Fprintf(&c.buf, "%x\r\n", len(data))
	}
	if len(data) > 0 {
		c.buf.Write(data)
		c.buf.WriteString("\r\n")
	}
	return c
}

// trailer writes trailing headers ("name:value"), signed when c.signed.
func (c *chunkWriter) trailer(lines ...string) *chunkWriter {
	var canon strings.Builder
	for _, l := range lines {
		c.buf.WriteString(l + "\r\n")
		canon.WriteString(l + "\n")
	}
	if c.signed {
		h := sha256.Sum256([]byte(canon.String()))
		sts := "AWS4-HMAC-SHA256-TRAILER\n" + c.amzDate + "\n" + c.scope + "\n" + c.prev + "\n" + hex.EncodeToString(h[:])
		c.buf.WriteString("x-amz-trailer-signature:" + hmacHex(c.key, sts) + "\r\n")
	}
	return c
}

func (c *chunkWriter) end() []byte {
	c.buf.WriteString("\r\n")
	return c.buf.Bytes()
}

// streamingRequest builds a signed aws-chunked PUT: mode is the
// x-amz-content-sha256 value, trailer the x-amz-trailer value (or ""), and
// build writes the body given the seed signature.
func streamingRequest(t testing.TB, mode string, decodedLen int, trailer string, extra map[string]string,
	build func(seed string) []byte) *http.Request {
	t.Helper()
	r := newReq(t, http.MethodPut, "http://127.0.0.1:9000/bucket/key", nil)
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(decodedLen))
	if trailer != "" {
		r.Header.Set("X-Amz-Trailer", trailer)
	}
	for k, v := range extra {
		r.Header.Set(k, v)
	}
	sdkSign(t, r, mode, testAKID, testSecret, "us-east-1", testNow)
	authz := r.Header.Get("Authorization")
	seed := authz[strings.LastIndex(authz, "Signature=")+len("Signature="):]
	body := build(seed)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return toServer(t, r)
}

// readAllChecked reads p to the end and returns what was read and the error
// (nil on a clean io.EOF).
func readAllChecked(p *Payload) ([]byte, error) {
	var out []byte
	buf := make([]byte, 1000)
	for {
		n, err := p.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// TestChunkWriterMatchesAWSExample anchors the test-side chunk signer to the
// documented chunk signatures, so the tests built on it check something real.
func TestChunkWriterMatchesAWSExample(t *testing.T) {
	g := readGolden(t, "v4-chunked-put.txt")
	c := &chunkWriter{key: testSigningKey(exampleSecret, exampleTime, "us-east-1"), amzDate: "20130524T000000Z",
		scope: "20130524/us-east-1/s3/aws4_request", prev: g["signature"], signed: true}
	c.chunk(bytes.Repeat([]byte("a"), 65536)).chunk(bytes.Repeat([]byte("a"), 1024)).chunk(nil)
	want, _ := chunkedBody(t, g)
	if got := c.end(); !bytes.Equal(got, want) {
		t.Fatal("test chunk writer disagrees with the AWS example")
	}
}
