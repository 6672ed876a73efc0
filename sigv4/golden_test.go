package sigv4

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chunkedBody rebuilds an aws-chunked body from a "chunks" section
// ("<hex size> <fill byte> <signature>" per line) and an optional trailer.
func chunkedBody(t testing.TB, g golden) (body, payload []byte) {
	t.Helper()
	var b bytes.Buffer
	for _, line := range strings.Split(g["chunks"], "\n") {
		f := strings.Fields(line)
		n, err := strconv.ParseInt(f[0], 16, 64)
		if err != nil || len(f) != 3 {
			t.Fatalf("bad chunk line %q", line)
		}
		data := bytes.Repeat([]byte(f[1]), int(n))
		payload = append(payload, data...)
		fmt.Fprintf(&b, "%s;chunk-signature=%s\r\n", f[0], f[2])
		if n > 0 {
			b.Write(data)
			b.WriteString("\r\n")
		}
	}
	if tr, ok := g["trailer"]; ok {
		b.WriteString(strings.ReplaceAll(tr, "\n", "\r\n") + "\r\n")
		b.WriteString("x-amz-trailer-signature:" + g["trailer-signature"] + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes(), payload
}

func TestGoldenV4(t *testing.T) {
	for _, name := range []string{
		"v4-get-object.txt", "v4-put-object.txt", "v4-get-bucket-lifecycle.txt",
		"v4-list-objects.txt", "v4-presigned-get.txt", "v4-chunked-put.txt", "v4-chunked-trailer-put.txt",
	} {
		t.Run(name, func(t *testing.T) {
			g := readGolden(t, name)
			var body, payload []byte
			if _, ok := g["chunks"]; ok {
				body, payload = chunkedBody(t, g)
			} else if b, ok := g["body"]; ok {
				body, payload = []byte(b), []byte(b)
			}
			r := g.request(t, body)
			if r.ContentLength >= 0 && r.ContentLength != int64(len(body)) && name != "v4-get-object.txt" {
				t.Fatalf("rebuilt body is %d bytes, Content-Length says %d", len(body), r.ContentLength)
			}

			// Step by step: canonical request, string to sign, signature.
			params, perr := parseQuery(r.URL.RawQuery)
			if perr != nil {
				t.Fatal(perr)
			}
			var signed []string
			var payloadHash, skip string
			if h := r.Header.Get("Authorization"); h != "" {
				ah, err := parseAuthorizationV4(h)
				if err != nil {
					t.Fatal(err)
				}
				signed, payloadHash = ah.signedHeaders, r.Header.Get("X-Amz-Content-Sha256")
			} else {
				sh, _ := singleParam(params, "X-Amz-SignedHeaders")
				signed, payloadHash, skip = strings.Split(sh, ";"), unsignedPayload, "X-Amz-Signature"
			}
			creq, err := canonicalRequestV4(r, r.Host, params, signed, payloadHash, skip)
			if err != nil {
				t.Fatal(err)
			}
			if creq != g["canonical-request"] {
				t.Fatalf("canonical request:\n%s\nwant:\n%s", creq, g["canonical-request"])
			}
			scope := credentialScope("20130524", "us-east-1", "s3")
			sts := stringToSign("20130524T000000Z", scope, creq)
			if sts != g["string-to-sign"] {
				t.Fatalf("string to sign:\n%s\nwant:\n%s", sts, g["string-to-sign"])
			}
			key := deriveSigningKey(exampleSecret, "20130524", "us-east-1", "s3")
			if got := hex.EncodeToString(signature(key, sts)); got != g["signature"] {
				t.Fatalf("signature %s, want %s", got, g["signature"])
			}
			if want, ok := g["chunk-string-to-sign"]; ok {
				got := chunkStringToSign("20130524T000000Z", scope, g["signature"], hexSHA256(payload[:65536]))
				if got != want {
					t.Fatalf("chunk string to sign:\n%s\nwant:\n%s", got, want)
				}
			}
			if want, ok := g["trailer-string-to-sign"]; ok {
				lines := []trailerLine{{"x-amz-checksum-crc32c", "sOO8/Q=="}}
				got := trailerStringToSign("20130524T000000Z", scope, "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
					hexSHA256([]byte(canonicalTrailer(lines))))
				if got != want {
					t.Fatalf("trailer string to sign:\n%s\nwant:\n%s", got, want)
				}
			}

			// End to end: Authenticate and Body with the clock at the example time.
			now := exampleTime
			if skip != "" {
				now = now.Add(12 * time.Hour)
			}
			a, aerr := exampleVerifier(now).Authenticate(r)
			if aerr != nil {
				t.Fatalf("Authenticate: %v", aerr)
			}
			if a.AccessKeyID != exampleAKID {
				t.Fatalf("AccessKeyID %q", a.AccessKeyID)
			}
			if a.DecodedLength != int64(len(payload)) && !(len(payload) == 0 && a.DecodedLength <= 0) {
				t.Fatalf("DecodedLength %d, want %d", a.DecodedLength, len(payload))
			}
			p := a.Body(r.Body, r.Header)
			got, rerr := io.ReadAll(p)
			if rerr != nil {
				t.Fatalf("Body: %v", rerr)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("decoded %d bytes, want %d", len(got), len(payload))
			}
			if _, ok := g["trailer"]; ok {
				if alg, val := p.Checksum(); alg != "CRC32C" || val != "sOO8/Q==" {
					t.Fatalf("Checksum() = %s %s", alg, val)
				}
			}
		})
	}
}

func TestGoldenV4Modes(t *testing.T) {
	cases := map[string]struct {
		m Method
		p PayloadMode
	}{
		"v4-get-object.txt":          {HeaderV4, PayloadSigned},
		"v4-presigned-get.txt":       {PresignedV4, PayloadUnsigned},
		"v4-chunked-put.txt":         {HeaderV4, PayloadStreamingSigned},
		"v4-chunked-trailer-put.txt": {HeaderV4, PayloadStreamingSignedTrailer},
	}
	for name, c := range cases {
		g := readGolden(t, name)
		a, err := exampleVerifier(exampleTime.Add(time.Minute)).Authenticate(g.request(t, nil))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if a.Method != c.m || a.Payload != c.p {
			t.Fatalf("%s: %v %v, want %v %v", name, a.Method, a.Payload, c.m, c.p)
		}
	}
}

// TestGoldenV2 checks AWS's SigV2 examples; v2-upload-cname.txt (a CNAME bucket, which the
// gateway does not serve) is refused instead, see TestSigV2NoCNAMEBucket.
func TestGoldenV2(t *testing.T) {
	for _, name := range []string{
		"v2-object-get.txt", "v2-object-put.txt", "v2-list.txt", "v2-fetch-acl.txt",
		"v2-list-all-buckets.txt", "v2-unicode-keys.txt", "v2-query-auth.txt",
	} {
		t.Run(name, func(t *testing.T) {
			g := readGolden(t, name)
			now, err := time.Parse(time.RFC3339, g["now"])
			if err != nil {
				t.Fatal(err)
			}
			r := g.request(t, nil)
			v := exampleVerifier(now)
			date := r.Header.Get("Date")
			if exp := r.URL.Query().Get("Expires"); exp != "" {
				date = exp
			}
			if got := stringToSignV2(r, date, v.canonicalResourceV2(r, r.Host)); got != g["string-to-sign"] {
				t.Fatalf("string to sign:\n%q\nwant:\n%q", got, g["string-to-sign"])
			}
			a, aerr := v.Authenticate(r)
			if aerr != nil {
				t.Fatalf("Authenticate: %v", aerr)
			}
			want := HeaderV2
			if r.Header.Get("Authorization") == "" {
				want = PresignedV2
			}
			if a.Method != want || a.AccessKeyID != exampleAKID || a.Payload != PayloadNone {
				t.Fatalf("auth = %+v", a)
			}
			// The same request is refused when SigV2 is off.
			off := NewVerifier(Config{Secrets: secrets{exampleAKID: exampleSecret}, Now: fixedClock(now)})
			_, err = off.Authenticate(r)
			wantCode(t, err, CodeInvalidRequest)
		})
	}
}
