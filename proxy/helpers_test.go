package proxy

import (
	"crypto/md5"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Range semantics from RFC 9110 section 14 and S3's GetObject documentation.
func TestParseRange(t *testing.T) {
	cases := []struct {
		h       string
		size    int64
		off, n  int64
		none    bool   // no range: the whole object
		errCode string // InvalidRange
	}{
		{h: "", size: 10, none: true},
		{h: "bytes=0-0", size: 10, off: 0, n: 1},
		{h: "bytes=2-5", size: 10, off: 2, n: 4},
		{h: "bytes=5-", size: 10, off: 5, n: 5},
		{h: "bytes=-3", size: 10, off: 7, n: 3},
		{h: "bytes=-30", size: 10, off: 0, n: 10},
		{h: "bytes=8-100", size: 10, off: 8, n: 2},
		{h: "bytes=10-", size: 10, errCode: "InvalidRange"},
		{h: "bytes=10-12", size: 10, errCode: "InvalidRange"},
		{h: "bytes=0-0", size: 0, errCode: "InvalidRange"},
		{h: "bytes=-0", size: 10, errCode: "InvalidRange"},
		{h: "bytes=5-2", size: 10, none: true},     // invalid: ignored
		{h: "bytes=a-b", size: 10, none: true},     // invalid: ignored
		{h: "bytes=0-1,3-4", size: 10, none: true}, // multiple ranges: S3 serves the whole object
		{h: "items=0-1", size: 10, none: true},
	}
	for _, c := range cases {
		r, e := parseRange(c.h, c.size)
		switch {
		case c.errCode != "":
			if e == nil || e.Code != c.errCode || e.Status != 416 {
				t.Errorf("%q of %d: %+v %v, want %s", c.h, c.size, r, e, c.errCode)
			}
		case c.none:
			if r != nil || e != nil {
				t.Errorf("%q of %d: %+v %v, want no range", c.h, c.size, r, e)
			}
		default:
			if e != nil || r == nil || r.off != c.off || r.length != c.n {
				t.Errorf("%q of %d: %+v %v, want off %d len %d", c.h, c.size, r, e, c.off, c.n)
			}
		}
	}
}

// Conditional request precedence as S3 documents it for GetObject/HeadObject.
func TestCheckConditions(t *testing.T) {
	lm := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	before := time.Date(2026, 1, 9, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	after := time.Date(2026, 1, 11, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	etag := `"abc"`
	cases := []struct {
		hdr  map[string]string
		want string // "" proceed
	}{
		{nil, ""},
		{map[string]string{"If-Match": `"abc"`}, ""},
		{map[string]string{"If-Match": `"x", "abc"`}, ""},
		{map[string]string{"If-Match": `*`}, ""},
		{map[string]string{"If-Match": `"x"`}, "PreconditionFailed"},
		{map[string]string{"If-None-Match": `"abc"`}, "NotModified"},
		{map[string]string{"If-None-Match": `"x"`}, ""},
		{map[string]string{"If-Modified-Since": after}, "NotModified"},
		{map[string]string{"If-Modified-Since": before}, ""},
		{map[string]string{"If-Unmodified-Since": before}, "PreconditionFailed"},
		{map[string]string{"If-Unmodified-Since": after}, ""},
		// If-Match true and If-Unmodified-Since false: 200 (S3).
		{map[string]string{"If-Match": `"abc"`, "If-Unmodified-Since": before}, ""},
		// If-None-Match false and If-Modified-Since true: 304 (S3): If-None-Match decides.
		{map[string]string{"If-None-Match": `"abc"`, "If-Modified-Since": before}, "NotModified"},
		{map[string]string{"If-None-Match": `"x"`, "If-Modified-Since": after}, ""},
	}
	for _, c := range cases {
		r, _ := http.NewRequest(http.MethodGet, "/b/k", nil)
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		e := checkConditions(r, etag, lm)
		got := ""
		if e != nil {
			got = e.Code
		}
		if got != c.want {
			t.Errorf("%v: %q, want %q", c.hdr, got, c.want)
		}
	}
}

func TestCopySource(t *testing.T) {
	cases := []struct{ in, bucket, key, version string }{
		{"b/k", "b", "k", ""},
		{"/b/dir/k%20with%20space", "b", "dir/k with space", ""},
		{"b/k%2Bplus?versionId=v1", "b", "k+plus", "v1"},
		{"b/%C3%BC", "b", "ü", ""},
	}
	for _, c := range cases {
		b, k, v, e := copySource(c.in)
		if e != nil || b != c.bucket || k != c.key || v != c.version {
			t.Errorf("%q: %q %q %q %v", c.in, b, k, v, e)
		}
	}
	for _, bad := range []string{"", "b", "/b/", "b/%zz", "arn:aws:s3:x/k"} {
		if _, _, _, e := copySource(bad); e == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseCustomerKey(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	sum := md5.Sum(key)
	good := http.Header{}
	good.Set(ssecHeaders+"Algorithm", "AES256")
	good.Set(ssecHeaders+"Key", base64.StdEncoding.EncodeToString(key))
	good.Set(ssecHeaders+"Key-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	ck, e := parseCustomerKey(good, ssecHeaders)
	if e != nil || string(ck.key) != string(key) {
		t.Fatalf("good key: %v", e)
	}
	mutate := map[string][2]string{
		"wrong algorithm": {"Algorithm", "AES128"},
		"short key":       {"Key", base64.StdEncoding.EncodeToString(key[:16])},
		"not base64":      {"Key", "***"},
		"wrong md5":       {"Key-Md5", base64.StdEncoding.EncodeToString(make([]byte, 16))},
		"no algorithm":    {"Algorithm", ""},
	}
	for name, m := range mutate {
		h := good.Clone()
		h.Set(ssecHeaders+m[0], m[1])
		if _, e := parseCustomerKey(h, ssecHeaders); e == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if ck, e := parseCustomerKey(http.Header{}, ssecHeaders); ck != nil || e != nil {
		t.Errorf("no headers: %v %v", ck, e)
	}
}

// Listing rewrite keeps every byte but the replaced texts, with escaping.
func TestSpliceListing(t *testing.T) {
	doc := []byte(`<?xml version="1.0"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>` +
		`<Contents><Key>a&amp;b</Key><ETag>&#34;x&#34;</ETag><Size>48</Size></Contents>` +
		`<Contents><Key>c</Key><ETag>"y"</ETag><Size>96</Size></Contents></ListBucketResult>`)
	entries, urlEncoded, err := parseListing(doc)
	if err != nil || urlEncoded || len(entries) != 2 || entries[0].key != "a&b" || entries[0].etag != `"x"` || entries[1].size != 96 {
		t.Fatalf("parse: %v %+v", err, entries)
	}
	out := splice(doc, []span{
		{entries[0].sizeAt[0], entries[0].sizeAt[1], []byte("0")},
		{entries[0].etagAt[0], entries[0].etagAt[1], escapeXMLText(`"p&q"`)},
	})
	want := strings.Replace(strings.Replace(string(doc), "<Size>48</Size>", "<Size>0</Size>", 1),
		"<ETag>&#34;x&#34;</ETag>", "<ETag>&#34;p&amp;q&#34;</ETag>", 1)
	if string(out) != want {
		t.Errorf("splice:\n%s\nwant\n%s", out, want)
	}
}

// Double encryption: the configured backend SSE replaces whatever SSE the client asked for
// (the gateway applies the client's choice itself); SSE-C headers never reach the backend.
func TestBackendSSE(t *testing.T) {
	for _, c := range []struct{ sse, keyID string }{{"", ""}, {"AES256", ""}, {"aws:kms", "backend-key"}} {
		g := &Gateway{cfg: Config{BackendSSE: c.sse, BackendSSEKeyID: c.keyID}}
		h := http.Header{}
		h.Set("X-Amz-Server-Side-Encryption", "aws:kms")
		h.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", "client-key")
		h.Set(ssecHeaders+"Key", "secret")
		h.Set(copySourceSSECHeaders+"Key", "secret")
		g.backendSSE(h)
		if h.Get("X-Amz-Server-Side-Encryption") != c.sse || h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id") != c.keyID {
			t.Errorf("backend sse %q: headers %v", c.sse, h)
		}
		if h.Get(ssecHeaders+"Key") != "" || h.Get(copySourceSSECHeaders+"Key") != "" {
			t.Errorf("an SSE-C key would reach the backend: %v", h)
		}
	}
}
