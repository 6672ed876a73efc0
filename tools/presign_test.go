package tools

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/sigv4"
)

type secrets map[string]string

func (s secrets) Secret(id string) (string, bool) { v, ok := s[id]; return v, ok }

// TestPresignVerifies checks presigned URLs against the gateway's own SigV4 verifier: valid
// within their lifetime, refused after it, with another secret, another method or path.
func TestPresignVerifies(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	o := PresignOptions{
		Method: "PUT", Endpoint: "http://gw.example:8080/", Bucket: "bucket", Key: "dir/a b+ü?.txt",
		Region: "eu-west-3", AccessKeyID: "AKTEST", Secret: "secret-secret", Expires: 90 * time.Second, Now: at,
	}
	u, err := Presign(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Host != "gw.example:8080" || parsed.Path != "/bucket/dir/a b+ü?.txt" || parsed.Query().Get("X-Amz-Expires") != "90" {
		t.Fatalf("URL %s: host %q path %q", u, parsed.Host, parsed.Path)
	}
	verify := func(method, rawURL, secret string, now time.Time) error {
		v := sigv4.NewVerifier(sigv4.Config{Region: "eu-west-3", Secrets: secrets{"AKTEST": secret}, Now: func() time.Time { return now }})
		req, err := http.NewRequest(method, rawURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Authenticate(req)
		return err
	}
	if err := verify("PUT", u, o.Secret, at.Add(89*time.Second)); err != nil {
		t.Fatalf("valid URL refused: %v", err)
	}
	for name, err := range map[string]error{
		"expired":        verify("PUT", u, o.Secret, at.Add(91*time.Second)),
		"another secret": verify("PUT", u, "other", at.Add(time.Second)),
		"another method": verify("GET", u, o.Secret, at.Add(time.Second)),
		"another key":    verify("PUT", strings.Replace(u, "dir/", "dir2/", 1), o.Secret, at.Add(time.Second)),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPresignRefuses(t *testing.T) {
	good := PresignOptions{Method: "GET", Endpoint: "https://gw", Bucket: "bucket", Key: "k", Region: "us-east-1",
		AccessKeyID: "A", Secret: "S", Expires: time.Hour}
	for name, edit := range map[string]func(*PresignOptions){
		"method":          func(o *PresignOptions) { o.Method = "DELETE" },
		"too long":        func(o *PresignOptions) { o.Expires = MaxPresignExpiry + time.Second },
		"zero":            func(o *PresignOptions) { o.Expires = 0 },
		"fraction":        func(o *PresignOptions) { o.Expires = 1500 * time.Millisecond },
		"no key":          func(o *PresignOptions) { o.Key = "" },
		"bad bucket":      func(o *PresignOptions) { o.Bucket = "B" },
		"no credential":   func(o *PresignOptions) { o.Secret = "" },
		"endpoint scheme": func(o *PresignOptions) { o.Endpoint = "ftp://gw" },
		"endpoint query":  func(o *PresignOptions) { o.Endpoint = "http://gw/?a=b" },
		"endpoint user":   func(o *PresignOptions) { o.Endpoint = "http://u:p@gw" },
	} {
		o := good
		edit(&o)
		if u, err := Presign(context.Background(), o); err == nil {
			t.Errorf("%s: got %s, want an error", name, u)
		}
	}
	if _, err := Presign(context.Background(), good); err != nil {
		t.Fatalf("the unedited options fail: %v", err)
	}
	o := good
	o.Expires = MaxPresignExpiry
	if _, err := Presign(context.Background(), o); err != nil {
		t.Errorf("7 days refused: %v", err)
	}
}
