package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// signV2Header signs r with SigV2 (Authorization: AWS id:sig) for resource, from a string to
// sign written here by hand (no Content-MD5, Content-Type or x-amz headers), not by the code
// under test.
func signV2Header(r *http.Request, date, resource string) {
	m := hmac.New(sha1.New, []byte(exampleSecret))
	m.Write([]byte(r.Method + "\n\n\n" + date + "\n" + resource))
	r.Header.Set("Date", date)
	r.Header.Set("Authorization", "AWS "+exampleAKID+":"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
}

// TestSigV2HostConfusion: a SigV2 signature for bucketx.<base domain>/a/b replayed with
// "Host: bucketx" (the CNAME rule would take that Host as the bucket, while the router routes
// it path-style to bucket a, key b) is refused; genuine virtual-hosted and path-style requests
// verify, and HostBucket (what the router uses) names the signed bucket.
func TestSigV2HostConfusion(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	date := now.Format(http.TimeFormat)
	v := exampleVerifier(now)

	genuine := httptest.NewRequest(http.MethodGet, "http://bucketx.s3.amazonaws.com/a/b", nil)
	signV2Header(genuine, date, "/bucketx/a/b")
	if _, err := v.Authenticate(genuine); err != nil {
		t.Fatalf("virtual-hosted request: %v", err)
	}
	if b := v.HostBucket(genuine); b != "bucketx" {
		t.Fatalf("HostBucket(virtual-hosted) = %q, want bucketx", b)
	}

	replay := genuine.Clone(genuine.Context())
	replay.Host = "bucketx"
	_, err := v.Authenticate(replay)
	wantCode(t, err, CodeSignatureDoesNotMatch)
	if b := v.HostBucket(replay); b != "" {
		t.Fatalf("HostBucket(Host: bucketx) = %q, want path-style", b)
	}

	for _, host := range []string{"s3.amazonaws.com", "127.0.0.1:9000", "localhost", "gateway.internal"} {
		path := httptest.NewRequest(http.MethodGet, "http://"+host+"/a/b", nil)
		signV2Header(path, date, "/a/b")
		if _, err := v.Authenticate(path); err != nil {
			t.Fatalf("path-style request to %s: %v", host, err)
		}
		if b := v.HostBucket(path); b != "" {
			t.Fatalf("HostBucket(%s) = %q, want path-style", host, b)
		}
	}
}

// TestSigV2NoCNAMEBucket: AWS's own CNAME example (Host static.johnsmith.net, a correct
// signature under S3's CNAME rule) is refused: the gateway routes a Host outside its base
// domains path-style, so the signature would be for another bucket than the one served.
func TestSigV2NoCNAMEBucket(t *testing.T) {
	g := readGolden(t, "v2-upload-cname.txt")
	now, err := time.Parse(time.RFC3339, g["now"])
	if err != nil {
		t.Fatal(err)
	}
	_, err = exampleVerifier(now).Authenticate(g.request(t, nil))
	wantCode(t, err, CodeSignatureDoesNotMatch)
}

// TestSigV2ForwardedHostBucket: with forwarded headers trusted, the signed host and the
// bucket come from the same X-Forwarded-Host value (its first element).
func TestSigV2ForwardedHostBucket(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	date := now.Format(http.TimeFormat)
	v := NewVerifier(Config{Secrets: secrets{exampleAKID: exampleSecret}, Now: fixedClock(now), SigV2: true,
		BaseDomains: []string{"s3.example.com"}, TrustForwardedHeaders: true})
	r := httptest.NewRequest(http.MethodGet, "http://10.0.0.5:8080/a/b", nil)
	r.Header.Set("X-Forwarded-Host", "bucketx.s3.example.com, other.s3.example.com")
	r.Header.Set("X-Forwarded-Proto", "https")
	signV2Header(r, date, "/bucketx/a/b")
	if _, err := v.Authenticate(r); err != nil {
		t.Fatalf("forwarded virtual-hosted request: %v", err)
	}
	if b := v.HostBucket(r); b != "bucketx" {
		t.Fatalf("HostBucket = %q, want bucketx", b)
	}
}
