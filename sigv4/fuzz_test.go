package sigv4

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// All fuzz targets check: no panic, every failure is a *Error, and success
// only with the one signature the fuzzer was given (forging another would
// mean breaking HMAC).

func assertStarError(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code == "" {
		t.Fatalf("error %v (%T) is not a *Error with a code", err, err)
	}
}

// fuzzGetRequest is a signed GET at testNow and its signature.
func fuzzGetRequest(t testing.TB) (*http.Request, string) {
	r := newReq(t, http.MethodGet, "http://bucket.example.com/some/key?versionId=7", nil)
	sdkSign(t, r, emptySHA256, testAKID, testSecret, "us-east-1", testNow)
	h := r.Header.Get("Authorization")
	return r, h[strings.LastIndex(h, "Signature=")+len("Signature="):]
}

func FuzzParseAuthorization(f *testing.F) {
	base, sig := fuzzGetRequest(f)
	f.Add(base.Header.Get("Authorization"))
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20250314/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("ab", 32))
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e,SignedHeaders=,Signature=")
	f.Add("AWS4-HMAC-SHA256 ,,,")
	v := testVerifier()
	if _, err := v.Authenticate(toServer(f, base)); err != nil {
		f.Fatalf("seed does not authenticate: %v", err)
	}
	f.Fuzz(func(t *testing.T, authz string) {
		if ah, err := parseAuthorizationV4(authz); err == nil {
			if len(ah.signature) != 32 || len(ah.signedHeaders) == 0 {
				t.Fatalf("parsed an invalid header: %+v", ah)
			}
			for i := 1; i < len(ah.signedHeaders); i++ {
				if ah.signedHeaders[i-1] >= ah.signedHeaders[i] {
					t.Fatal("signed headers not sorted/unique")
				}
			}
		} else {
			assertStarError(t, err)
		}
		r := base.Clone(base.Context())
		r.Header.Set("Authorization", authz)
		var wire bytes.Buffer
		if err := r.Write(&wire); err != nil {
			t.Skip()
		}
		sr, err := http.ReadRequest(bufio.NewReader(&wire))
		if err != nil {
			t.Skip() // not a header net/http would deliver
		}
		if _, err := v.Authenticate(sr); err != nil {
			assertStarError(t, err)
		} else if !strings.Contains(strings.ToLower(authz), sig) {
			t.Fatalf("accepted a header without the valid signature: %q", authz)
		}
	})
}

func FuzzPresignedQuery(f *testing.F) {
	u := presignFixed(f)
	i := strings.IndexByte(u, '?')
	f.Add(u[i+1:])
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=1&X-Amz-Signature=00")
	f.Add("X-Amz-Credential=%zz")
	f.Add("AWSAccessKeyId=a&Expires=1&Signature=%2B%2B")
	sigAt := strings.Index(u, "X-Amz-Signature=") + len("X-Amz-Signature=")
	sig := u[sigAt : sigAt+64]
	v := testVerifier()
	if _, err := v.Authenticate(getURL(f, u)); err != nil {
		f.Fatalf("seed does not authenticate: %v", err)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:9000/bucket/key", nil)
		if err != nil {
			t.Skip()
		}
		r.URL.RawQuery = rawQuery
		r.RequestURI = r.URL.RequestURI()
		if _, err := v.Authenticate(r); err != nil {
			assertStarError(t, err)
		} else if !strings.Contains(strings.ToLower(rawQuery), sig) {
			t.Fatalf("accepted a query without the valid signature: %q", rawQuery)
		}
	})
}

func presignFixed(t testing.TB) string {
	r := newReq(t, http.MethodGet, "http://127.0.0.1:9000/bucket/key?X-Amz-Expires=900", nil)
	u, _, err := sdkSigner().PresignHTTP(t.Context(), creds(testAKID, testSecret), r, unsignedPayload, "s3", "us-east-1", testNow)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var fuzzChunks = [][]byte{[]byte("hello, "), []byte("fuzzy "), []byte("world")}

// fuzzStreams returns, per mode, an authenticated request and a valid body.
func fuzzStreams(t testing.TB) (auths []*Auth, bodies [][]byte) {
	payload := bytes.Join(fuzzChunks, nil)
	crc := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(payload)))
	for _, m := range []struct {
		mode, trailer string
		signed        bool
	}{
		{streamingSignedPayload, "", true},
		{streamingSignedPayloadTrailer, "x-amz-checksum-crc32", true},
		{streamingUnsignedPayloadTrailer, "x-amz-checksum-crc32", false},
	} {
		var body []byte
		r := streamingRequest(t, m.mode, len(payload), m.trailer, nil, func(seed string) []byte {
			w := newChunkWriter(seed, m.signed, testNow)
			for _, c := range fuzzChunks {
				w.chunk(c)
			}
			w.chunk(nil)
			if m.trailer != "" {
				w.trailer(m.trailer + ":" + crc)
			}
			body = w.end()
			return body
		})
		a, err := testVerifier().Authenticate(r)
		if err != nil {
			t.Fatal(err)
		}
		auths, bodies = append(auths, a), append(bodies, body)
	}
	return auths, bodies
}

func FuzzChunkedDecoder(f *testing.F) {
	auths, bodies := fuzzStreams(f)
	for i, b := range bodies {
		if out, err := readAllChecked(auths[i].Body(io.NopCloser(bytes.NewReader(b)), nil)); err != nil || len(out) == 0 {
			f.Fatalf("seed body %d does not decode: %v", i, err)
		}
		f.Add(uint8(i), b)
		f.Add(uint8(i), b[:len(b)/2])
	}
	f.Add(uint8(2), []byte("7\r\nhello, \r\n0\r\n\r\n"))
	payload := bytes.Join(fuzzChunks, nil)
	// Prefixes of the payload at chunk boundaries: all a signed stream may return.
	boundaries := map[int]bool{0: true}
	n := 0
	for _, c := range fuzzChunks {
		n += len(c)
		boundaries[n] = true
	}
	f.Fuzz(func(t *testing.T, mode uint8, body []byte) {
		a := auths[int(mode)%len(auths)]
		p := a.Body(io.NopCloser(bytes.NewReader(body)), nil)
		out, err := readAllChecked(p)
		if err != nil {
			assertStarError(t, err)
		}
		if a.Payload != PayloadStreamingUnsignedTrailer {
			if !boundaries[len(out)] || !bytes.Equal(out, payload[:len(out)]) {
				t.Fatalf("signed stream returned unverified data: %q", out)
			}
			if err == nil && len(out) != len(payload) {
				t.Fatal("success with a short payload")
			}
			return
		}
		if err == nil {
			want := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(out)))
			if alg, val := p.Checksum(); len(out) != len(payload) || alg != "CRC32" || val != want {
				t.Fatalf("unsigned stream accepted %q with checksum %s %s", out, alg, val)
			}
		}
	})
}

func FuzzSigV2(f *testing.F) {
	g := readGolden(f, "v2-upload-cname.txt")
	f.Add(g["request"])
	f.Add(readGolden(f, "v2-object-get.txt")["request"])
	f.Add(readGolden(f, "v2-query-auth.txt")["request"])
	f.Add("GET /?acl&versionId=%zz HTTP/1.1\nHost: a.s3.amazonaws.com\nx-amz-date: x\nAuthorization: AWS a:b")
	v := NewVerifier(Config{Secrets: secrets{exampleAKID: exampleSecret}, SigV2: true, BaseDomains: []string{"s3.amazonaws.com"},
		Now: fixedClock(time.Date(2007, 3, 27, 21, 0, 0, 0, time.UTC)), MaxSkew: 48 * time.Hour})
	for _, name := range []string{"v2-object-get.txt", "v2-query-auth.txt"} {
		if _, err := v.Authenticate(readGolden(f, name).request(f, nil)); err != nil {
			f.Fatalf("seed %s does not authenticate: %v", name, err)
		}
	}
	valid := map[string]bool{"ilyl83RwaSoYIEdixDQcA4OnAnc=": true, "bWq2s1WEIj+Ydj0vQ697zp+IXMU=": true, "NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D": true,
		"DNEZGsoieTZ92F3bUfSPQcbGmlM=": true}
	f.Fuzz(func(t *testing.T, head string) {
		r, err := http.ReadRequest(bufioReader(strings.ReplaceAll(head, "\n", "\r\n") + "\r\n\r\n"))
		if err != nil {
			t.Skip()
		}
		if _, err := v.Authenticate(r); err != nil {
			assertStarError(t, err)
			return
		}
		for sig := range valid {
			if strings.Contains(head, sig) {
				return
			}
		}
		t.Fatalf("accepted a request without a valid signature: %q", head)
	})
}
