package proxy

import (
	"net/http"
	"testing"
)

// Scopes: "*" everywhere, "bucket" the whole bucket, "bucket/prefix" keys with that prefix.
func TestPlaintextScopes(t *testing.T) {
	cases := []struct {
		scopes      []string
		bucket, key string
		want        bool
	}{
		{nil, "b", "k", false},
		{[]string{"*"}, "b", "k", true},
		{[]string{"b"}, "b", "any/key", true},
		{[]string{"b"}, "bb", "k", false},
		{[]string{"b/old/"}, "b", "old/x", true},
		{[]string{"b/old/"}, "b", "older/x", false},
		{[]string{"b/old/"}, "b", "new/x", false},
		{[]string{"b/old"}, "b", "older/x", true}, // S3 prefix semantics, not directories
		{[]string{"x", "b/p"}, "b", "p1", true},
		{[]string{"x", "b/p"}, "c", "p1", false},
	}
	for _, c := range cases {
		g := &Gateway{cfg: Config{AllowUnencrypted: c.scopes}}
		if got := g.plaintextAllowed(c.bucket, c.key); got != c.want {
			t.Errorf("%q: %s/%s allowed = %v, want %v", c.scopes, c.bucket, c.key, got, c.want)
		}
	}
	g := &Gateway{cfg: Config{AllowUnencrypted: []string{"b/old/"}}}
	if !g.plaintextBucket("b") || g.plaintextBucket("c") {
		t.Error("plaintextBucket: want b (a prefix scope) and not c")
	}
}

// Inside a scope, a read that asks for encryption is refused; outside, everything is.
func TestCheckPlaintext(t *testing.T) {
	g := &Gateway{cfg: Config{AllowUnencrypted: []string{"b"}}}
	req := func(bucket string, h http.Header) *request {
		r, _ := http.NewRequest(http.MethodGet, "http://gw/"+bucket+"/k", nil)
		r.Header = h
		return &request{r: r, bucket: bucket, key: "k"}
	}
	cases := []struct {
		name string
		q    *request
		code string
	}{
		{"in scope", req("b", http.Header{}), ""},
		{"outside", req("c", http.Header{}), "AccessDenied"},
		{"ssec in scope", req("b", http.Header{"X-Amz-Server-Side-Encryption-Customer-Algorithm": {"AES256"}}), "InvalidRequest"},
		{"ssec md5 only", req("b", http.Header{"X-Amz-Server-Side-Encryption-Customer-Key-Md5": {"x"}}), "InvalidRequest"},
		{"sse-kms in scope", req("b", http.Header{"X-Amz-Server-Side-Encryption": {"aws:kms"}}), "InvalidRequest"},
		{"copy source key", &request{r: req("b", http.Header{}).r, bucket: "b", key: "k", ssec: &customerKey{}, ssecParsed: true}, "InvalidRequest"},
	}
	for _, c := range cases {
		e := g.checkPlaintext(c.q)
		got := ""
		if e != nil {
			got = e.Code
		}
		if got != c.code {
			t.Errorf("%s: %v, want %q", c.name, e, c.code)
		}
	}
}
