package sigv4

import (
	"bytes"
	"crypto/md5"
	"io"
	"net/http"
	"testing"
)

func TestForwardedHost(t *testing.T) {
	for _, signedHost := range []string{"public.example.com", "public.example.com:8443"} {
		r := newReq(t, http.MethodGet, "https://"+signedHost+"/bucket/key", nil)
		sdkSign(t, r, emptySHA256, testAKID, testSecret, "us-east-1", testNow)
		sr := toServer(t, r)
		sr.Host = "10.0.0.5:8080"
		fwd := signedHost
		if signedHost == "public.example.com" {
			fwd += ":443" // some balancers append the default port
		}
		sr.Header.Set("X-Forwarded-Host", fwd+", internal.lb")
		sr.Header.Set("X-Forwarded-Proto", "https")
		_, err := testVerifier().Authenticate(sr)
		wantCode(t, err, CodeSignatureDoesNotMatch)
		trusting := NewVerifier(Config{Secrets: secrets{testAKID: testSecret}, Now: fixedClock(testNow), TrustForwardedHeaders: true})
		a, err := trusting.Authenticate(sr)
		if err != nil {
			t.Fatalf("%s: %v", signedHost, err)
		}
		if a.Host != signedHost {
			t.Fatalf("Host %q, want %q", a.Host, signedHost)
		}
	}
}

// rotating is a SecretStore whose secret can change.
type rotating struct{ secret string }

func (r *rotating) Secret(id string) (string, bool) { return r.secret, id == testAKID }

func TestSigningKeyCacheFollowsSecret(t *testing.T) {
	store := &rotating{secret: testSecret}
	v := NewVerifier(Config{Secrets: store, Now: fixedClock(testNow)})
	mk := func(secret string) *http.Request {
		r := newReq(t, http.MethodGet, testURL, nil)
		sdkSign(t, r, emptySHA256, testAKID, secret, "us-east-1", testNow)
		return toServer(t, r)
	}
	for i := 0; i < 2; i++ { // second round is served from the cache
		if _, err := v.Authenticate(mk(testSecret)); err != nil {
			t.Fatal(err)
		}
	}
	store.secret = "rotated-secret"
	_, err := v.Authenticate(mk(testSecret))
	wantCode(t, err, CodeSignatureDoesNotMatch)
	if _, err := v.Authenticate(mk("rotated-secret")); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if v.keys.Len() != 2 {
		t.Fatalf("cache holds %d keys, want 2", v.keys.Len())
	}
}

func TestHeaderCanonicalization(t *testing.T) {
	r := newReq(t, http.MethodPut, testURL, []byte("x"))
	r.Header.Add("X-Amz-Meta-Multi", "a")
	r.Header.Add("X-Amz-Meta-Multi", "  b   c  ")
	r.Header.Set("Content-Type", "text/plain;   charset=utf-8")
	sdkSign(t, r, "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881", testAKID, testSecret, "us-east-1", testNow)
	sr := toServer(t, r)
	a, err := testVerifier().Authenticate(sr)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(a.Body(sr.Body, sr.Header)); err != nil || string(got) != "x" {
		t.Fatalf("%q %v", got, err)
	}
	if v := canonicalHeaderValue([]string{" a  b ", "c"}); v != "a b,c" {
		t.Fatalf("canonicalHeaderValue = %q", v)
	}
}

func TestDateHeaderV4(t *testing.T) {
	// (A request dated by a signed Date header is covered by the golden PUT example.)
	r := newReq(t, http.MethodGet, testURL, nil)
	sdkSign(t, r, emptySHA256, testAKID, testSecret, "us-east-1", testNow)
	sr := toServer(t, r)
	if _, err := testVerifier().Authenticate(sr); err != nil {
		t.Fatal(err)
	}
	sr.Header.Del("X-Amz-Date")
	sr.Header.Set("Date", testNow.Format(http.TimeFormat))
	_, err := testVerifier().Authenticate(sr)
	// The Date header now dates the request but is not signed.
	wantCode(t, err, CodeAuthorizationHeaderMalformed)
}

func TestErrorStatus(t *testing.T) {
	for code, status := range map[string]int{CodeSignatureDoesNotMatch: 403, CodeAccessDenied: 403,
		CodeMissingContentLength: 411, CodeNotImplemented: 501, CodeBadDigest: 400} {
		if got := newError(code, "").StatusCode(); got != status {
			t.Fatalf("%s: %d", code, got)
		}
	}
}

func TestEnableMD5(t *testing.T) {
	body := []byte("etag me")
	r := toServer(t, signedPut(t, testURL, body, nil))
	a, err := testVerifier().Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	p := a.Body(r.Body, r.Header)
	if p.MD5() != nil {
		t.Fatal("MD5 before reading")
	}
	p.EnableMD5()
	if _, err := readAllChecked(p); err != nil {
		t.Fatal(err)
	}
	if want := md5.Sum(body); !bytes.Equal(p.MD5(), want[:]) {
		t.Fatalf("MD5() = %x", p.MD5())
	}
}

func TestCompleteMultipartObjectChecksum(t *testing.T) {
	xml := []byte("<CompleteMultipartUpload></CompleteMultipartUpload>")
	r := newReq(t, http.MethodPost, testURL+"?uploadId=abc", xml)
	r.Header.Set("X-Amz-Checksum-Crc32", "AAAAAA==") // the whole object's CRC, not the XML's
	sdkSign(t, r, hexSHA256(xml), testAKID, testSecret, "us-east-1", testNow)
	sr := toServer(t, r)
	a, err := testVerifier().Authenticate(sr)
	if err != nil {
		t.Fatal(err)
	}
	p := a.Body(sr.Body, sr.Header)
	if got, err := readAllChecked(p); err != nil || !bytes.Equal(got, xml) {
		t.Fatalf("%q %v", got, err)
	}
	// The same header on a PUT is the body's checksum and is verified.
	r2 := toServer(t, signedPut(t, testURL, xml, map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA=="}))
	a2, err := testVerifier().Authenticate(r2)
	if err != nil {
		t.Fatal(err)
	}
	_, err = readAllChecked(a2.Body(r2.Body, r2.Header))
	wantCode(t, err, CodeBadDigest)
}
