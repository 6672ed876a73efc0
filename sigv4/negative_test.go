package sigv4

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"hash/crc32"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const testURL = "http://127.0.0.1:9000/bucket/key"

func TestAuthenticateRejects(t *testing.T) {
	body := []byte("hello, world")
	cases := []struct {
		name string
		req  func(t *testing.T) *http.Request
		code string
	}{
		{"wrong secret", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			sdkSign(t, r, emptySHA256, testAKID, "not-the-secret", "us-east-1", testNow)
			return toServer(t, r)
		}, CodeSignatureDoesNotMatch},
		{"unknown key", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			sdkSign(t, r, emptySHA256, "AKIDUNKNOWN", testSecret, "us-east-1", testNow)
			return toServer(t, r)
		}, CodeInvalidAccessKeyID},
		{"tampered signed header", func(t *testing.T) *http.Request {
			r := signedPut(t, testURL, body, map[string]string{"X-Amz-Meta-Owner": "alice"})
			r.Header.Set("X-Amz-Meta-Owner", "mallory")
			return toServer(t, r)
		}, CodeSignatureDoesNotMatch},
		{"tampered path", func(t *testing.T) *http.Request {
			r := signedPut(t, testURL, body, nil)
			r.URL.Path = "/bucket/other"
			return toServer(t, r)
		}, CodeSignatureDoesNotMatch},
		{"tampered method", func(t *testing.T) *http.Request {
			r := signedPut(t, testURL, body, nil)
			r.Method = http.MethodPost
			return toServer(t, r)
		}, CodeSignatureDoesNotMatch},
		{"tampered query param", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL+"?versionId=1", nil)
			sdkSign(t, r, emptySHA256, testAKID, testSecret, "us-east-1", testNow)
			r.URL.RawQuery = "versionId=2"
			return toServer(t, r)
		}, CodeSignatureDoesNotMatch},
		{"added query param", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			sdkSign(t, r, emptySHA256, testAKID, testSecret, "us-east-1", testNow)
			r.URL.RawQuery = "acl"
			return toServer(t, r)
		}, CodeSignatureDoesNotMatch},
		{"tampered host", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			sdkSign(t, r, emptySHA256, testAKID, testSecret, "us-east-1", testNow)
			r.Host = "127.0.0.1:9001"
			return toServer(t, r)
		}, CodeSignatureDoesNotMatch},
		{"unsigned x-amz header", func(t *testing.T) *http.Request {
			r := signedPut(t, testURL, body, nil)
			r.Header.Set("X-Amz-Acl", "public-read")
			return toServer(t, r)
		}, CodeAccessDenied},
		{"skewed clock", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			sdkSign(t, r, emptySHA256, testAKID, testSecret, "us-east-1", testNow.Add(-16*time.Minute))
			return toServer(t, r)
		}, CodeRequestTimeTooSkewed},
		{"clock ahead", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			sdkSign(t, r, emptySHA256, testAKID, testSecret, "us-east-1", testNow.Add(16*time.Minute))
			return toServer(t, r)
		}, CodeRequestTimeTooSkewed},
		{"wrong region", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			sdkSign(t, r, emptySHA256, testAKID, testSecret, "eu-west-1", testNow)
			return toServer(t, r)
		}, CodeAuthorizationHeaderMalformed},
		{"wrong service", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
			if err := sdkSigner().SignHTTP(context.Background(), creds(testAKID, testSecret), r, emptySHA256, "ec2", "us-east-1", testNow); err != nil {
				t.Fatal(err)
			}
			return toServer(t, r)
		}, CodeAuthorizationHeaderMalformed},
		{"wrong terminator", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			sdkSign(t, r, emptySHA256, testAKID, testSecret, "us-east-1", testNow)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/aws4_request", "/aws5_request", 1))
			return toServer(t, r)
		}, CodeAuthorizationHeaderMalformed},
		{"scope date differs from x-amz-date", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			sdkSign(t, r, emptySHA256, testAKID, testSecret, "us-east-1", testNow)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20250314/", "/20250313/", 1))
			return toServer(t, r)
		}, CodeAuthorizationHeaderMalformed},
		{"malformed authorization", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
			return toServer(t, r)
		}, CodeAuthorizationHeaderMalformed},
		{"missing x-amz-content-sha256", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			if err := sdkSigner().SignHTTP(context.Background(), creds(testAKID, testSecret), r, emptySHA256, "s3", "us-east-1", testNow); err != nil {
				t.Fatal(err)
			}
			return toServer(t, r)
		}, CodeInvalidRequest},
		{"invalid x-amz-content-sha256", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			sdkSign(t, r, "nope", testAKID, testSecret, "us-east-1", testNow)
			return toServer(t, r)
		}, CodeInvalidArgument},
		{"session token", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
			c := creds(testAKID, testSecret)
			c.SessionToken = "token"
			if err := sdkSigner().SignHTTP(context.Background(), c, r, emptySHA256, "s3", "us-east-1", testNow); err != nil {
				t.Fatal(err)
			}
			return toServer(t, r)
		}, CodeInvalidToken},
		{"two auth mechanisms", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL+"?X-Amz-Signature=00", nil)
			sdkSign(t, r, emptySHA256, testAKID, testSecret, "us-east-1", testNow)
			return toServer(t, r)
		}, CodeInvalidArgument},
		{"anonymous", func(t *testing.T) *http.Request {
			return toServer(t, newReq(t, http.MethodGet, testURL, nil))
		}, CodeAccessDenied},
		{"sigv4a", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodGet, testURL, nil)
			r.Header.Set("Authorization", "AWS4-ECDSA-P256-SHA256 Credential=x")
			return toServer(t, r)
		}, CodeNotImplemented},
		{"invalid Content-MD5", func(t *testing.T) *http.Request {
			return toServer(t, signedPut(t, testURL, body, map[string]string{"Content-Md5": "not base64!"}))
		}, CodeInvalidDigest},
		{"two checksum headers", func(t *testing.T) *http.Request {
			return toServer(t, signedPut(t, testURL, body, map[string]string{
				"X-Amz-Checksum-Crc32": "AAAAAA==", "X-Amz-Checksum-Crc32c": "AAAAAA=="}))
		}, CodeInvalidRequest},
		{"sdk checksum algorithm without checksum", func(t *testing.T) *http.Request {
			return toServer(t, signedPut(t, testURL, body, map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "CRC32"}))
		}, CodeInvalidRequest},
		{"trailer without trailer mode", func(t *testing.T) *http.Request {
			return toServer(t, signedPut(t, testURL, body, map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc32"}))
		}, CodeInvalidRequest},
		{"streaming without decoded length", func(t *testing.T) *http.Request {
			r := newReq(t, http.MethodPut, testURL, []byte("0\r\n\r\n"))
			sdkSign(t, r, streamingUnsignedPayloadTrailer, testAKID, testSecret, "us-east-1", testNow)
			return toServer(t, r)
		}, CodeMissingContentLength},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := testVerifier().Authenticate(c.req(t))
			wantCode(t, err, c.code)
		})
	}
}

func presign(t *testing.T, method, rawURL string, expires string, at time.Time, secret string) string {
	t.Helper()
	u := rawURL
	if expires != "" {
		u += "?X-Amz-Expires=" + expires
	}
	r := newReq(t, method, u, nil)
	signed, _, err := sdkSigner().PresignHTTP(context.Background(), creds(testAKID, secret), r, unsignedPayload, "s3", "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func getURL(t testing.TB, u string) *http.Request {
	return toServer(t, newReq(t, http.MethodGet, u, nil))
}

func TestPresignedV4(t *testing.T) {
	v := testVerifier()
	good := presign(t, http.MethodGet, testURL, "3600", testNow.Add(-10*time.Minute), testSecret)
	a, err := v.Authenticate(getURL(t, good))
	if err != nil {
		t.Fatalf("valid presigned URL: %v", err)
	}
	if a.Method != PresignedV4 || a.Payload != PayloadUnsigned || a.AccessKeyID != testAKID {
		t.Fatalf("auth = %+v", a)
	}
	cases := []struct {
		name, url, code, msg string
	}{
		{"expired", presign(t, http.MethodGet, testURL, "60", testNow.Add(-2*time.Minute), testSecret), CodeAccessDenied, "Request has expired"},
		{"not yet valid", presign(t, http.MethodGet, testURL, "60", testNow.Add(time.Hour), testSecret), CodeAccessDenied, "Request is not valid yet"},
		// Messages are S3's (as the versitygw suite checks them).
		{"expires too long", presign(t, http.MethodGet, testURL, "604801", testNow, testSecret), CodeAuthorizationQueryParamsError,
			"X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds"},
		{"expires negative", presign(t, http.MethodGet, testURL, "-3", testNow, testSecret), CodeAuthorizationQueryParamsError, "X-Amz-Expires must be non-negative"},
		{"expires not a number", presign(t, http.MethodGet, testURL, "1h", testNow, testSecret), CodeAuthorizationQueryParamsError, "X-Amz-Expires should be a number"},
		{"credential malformed", strings.Replace(good, "%2Fus-east-1%2F", "%2F", 1), CodeAuthorizationQueryParamsError,
			`Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`},
		{"expires zero", presign(t, http.MethodGet, testURL, "0", testNow, testSecret), CodeAuthorizationQueryParamsError, ""},
		{"wrong secret", presign(t, http.MethodGet, testURL, "60", testNow, "bad"), CodeSignatureDoesNotMatch, ""},
		{"tampered expires", strings.Replace(good, "X-Amz-Expires=3600", "X-Amz-Expires=7200", 1), CodeSignatureDoesNotMatch, ""},
		{"tampered path", strings.Replace(good, "/bucket/key", "/bucket/kez", 1), CodeSignatureDoesNotMatch, ""},
		{"added param", good + "&acl=", CodeSignatureDoesNotMatch, ""},
		{"missing signature", strings.Split(good, "&X-Amz-Signature=")[0], CodeAuthorizationQueryParamsError,
			"Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."},
		{"duplicate date", good + "&X-Amz-Date=20250314T150926Z", CodeAuthorizationQueryParamsError, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Authenticate(getURL(t, c.url))
			wantCode(t, err, c.code)
			if c.msg != "" && err.(*Error).Message != c.msg {
				t.Fatalf("message %q, want %q", err.(*Error).Message, c.msg)
			}
		})
	}
	// A presigned PUT used with an unsigned x-amz header is refused.
	put := presign(t, http.MethodPut, testURL, "60", testNow, testSecret)
	r := newReq(t, http.MethodPut, put, []byte("x"))
	r.Header.Set("X-Amz-Acl", "public-read")
	_, err = v.Authenticate(toServer(t, r))
	wantCode(t, err, CodeAccessDenied)
}

// TestCanonicalPaths signs awkward keys with the SDK signer and checks they
// verify, and that the path is part of the signature.
func TestCanonicalPaths(t *testing.T) {
	keys := []string{"a b", "a+b", "ünïcødé/ключ", "100%", "dir//double", "trailing/", "a~b-c_d.e", "(x)!$&'*,;=:@", "~/.."}
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			r := newReq(t, http.MethodGet, "http://127.0.0.1:9000/", nil)
			r.URL.Path = "/bucket/" + key
			r.URL.RawPath = "/bucket/" + uriEncode(key, true)
			r.URL.RawQuery = url.Values{"prefix": {key}, "delimiter": {"/"}, "empty": {""}}.Encode()
			sdkSign(t, r, emptySHA256, testAKID, testSecret, "us-east-1", testNow)
			if _, err := testVerifier().Authenticate(toServer(t, r)); err != nil {
				t.Fatalf("%q: %v", key, err)
			}
		})
	}
}

func TestPlainBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 1000)
	md := md5.Sum(body)
	crc := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))
	crcB64 := base64.StdEncoding.EncodeToString([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
	v := testVerifier()

	t.Run("ok with MD5 and CRC32C header", func(t *testing.T) {
		r := toServer(t, signedPut(t, testURL, body, map[string]string{
			"Content-Md5": base64.StdEncoding.EncodeToString(md[:]), "X-Amz-Checksum-Crc32c": crcB64,
			"X-Amz-Sdk-Checksum-Algorithm": "CRC32C"}))
		a, err := v.Authenticate(r)
		if err != nil {
			t.Fatal(err)
		}
		p := a.Body(r.Body, r.Header)
		got, err := readAllChecked(p)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("err %v, %d bytes", err, len(got))
		}
		if alg, val := p.Checksum(); alg != "CRC32C" || val != crcB64 {
			t.Fatalf("Checksum() = %s %s", alg, val)
		}
		if !bytes.Equal(p.MD5(), md[:]) {
			t.Fatal("MD5() mismatch")
		}
	})

	tamper := func(r *http.Request, b []byte) { r.Body = nopCloser(bytes.NewReader(b)) }
	cases := []struct {
		name   string
		hdr    map[string]string
		mutate func(r *http.Request)
		code   string
	}{
		{"sha256 mismatch", nil, func(r *http.Request) { b := append([]byte{}, body...); b[500] ^= 1; tamper(r, b) }, CodeXAmzContentSHA256Mismatch},
		{"md5 mismatch", map[string]string{"Content-Md5": base64.StdEncoding.EncodeToString(make([]byte, 16))}, nil, CodeBadDigest},
		{"crc32c header mismatch", map[string]string{"X-Amz-Checksum-Crc32c": "AAAAAA=="}, nil, CodeBadDigest},
		{"shorter than declared", nil, func(r *http.Request) { tamper(r, body[:len(body)-1]) }, CodeIncompleteBody},
		{"longer than declared", nil, func(r *http.Request) { tamper(r, append(append([]byte{}, body...), 'x')) }, CodeIncompleteBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := toServer(t, signedPut(t, testURL, body, c.hdr))
			a, err := v.Authenticate(r)
			if err != nil {
				t.Fatal(err)
			}
			if c.mutate != nil {
				c.mutate(r)
			}
			p := a.Body(r.Body, r.Header)
			_, err = readAllChecked(p)
			wantCode(t, err, c.code)
			if _, err2 := p.Read(make([]byte, 10)); err2 != err {
				t.Fatalf("error not sticky: %v", err2)
			}
			if alg, _ := p.Checksum(); alg != "" || p.MD5() != nil {
				t.Fatal("Checksum/MD5 reported after a failure")
			}
		})
	}
}

type nopReadCloser struct{ *bytes.Reader }

func (nopReadCloser) Close() error { return nil }

func nopCloser(r *bytes.Reader) nopReadCloser { return nopReadCloser{r} }

func TestStripHeadersAndQuery(t *testing.T) {
	h := http.Header{}
	for _, k := range []string{"Authorization", "X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token",
		"X-Amz-Decoded-Content-Length", "X-Amz-Trailer", "X-Amz-Sdk-Checksum-Algorithm", "X-Amz-Checksum-Crc32",
		"X-Amz-Checksum-Crc64nvme", "Content-Md5", "Expect"} {
		h.Set(k, "x")
	}
	h.Set("X-Amz-Meta-Keep", "1")
	h.Set("Content-Type", "text/plain")
	h.Add("Content-Encoding", "aws-chunked, gzip")
	StripHeaders(h)
	if len(h) != 3 || h.Get("Content-Encoding") != "gzip" || h.Get("X-Amz-Meta-Keep") != "1" {
		t.Fatalf("after StripHeaders: %v", h)
	}
	h2 := http.Header{"Content-Encoding": {"aws-chunked"}}
	StripHeaders(h2)
	if _, ok := h2["Content-Encoding"]; ok {
		t.Fatal("empty Content-Encoding kept")
	}
	q := url.Values{}
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
		"X-Amz-Signature", "X-Amz-Security-Token", "AWSAccessKeyId", "Expires", "Signature"} {
		q.Set(k, "x")
	}
	q.Set("versionId", "3")
	StripQuery(q)
	if len(q) != 1 || q.Get("versionId") != "3" {
		t.Fatalf("after StripQuery: %v", q)
	}
}
