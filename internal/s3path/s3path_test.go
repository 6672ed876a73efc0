package s3path

import (
	"net/url"
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	// Expected forms from S3's SigV4 documentation (URI-encode every byte except the
	// unreserved characters; '/' kept in paths).
	for in, want := range map[string]string{
		"a/b.txt":     "a/b.txt",
		"a b+c":       "a%20b%2Bc",
		"x!*'()~_-.":  "x%21%2A%27%28%29~_-.",
		"ü":           "%C3%BC",
		"%":           "%25",
		"k=v&q?#":     "k%3Dv%26q%3F%23",
		"":            "",
		"dir//double": "dir//double",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEscapeRoundTrips(t *testing.T) {
	for _, key := range []string{"plain", "a b+c", "dir/ü/€?#%&=;", "~-_./", "\x01\xff"} {
		e := Escape(key)
		for i := 0; i < len(e); i++ {
			c := e[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~/%", c) >= 0) {
				t.Errorf("Escape(%q) = %q: unescaped %q", key, e, c)
			}
		}
		back, err := url.PathUnescape(e)
		if err != nil || back != key {
			t.Errorf("Escape(%q) = %q, unescapes to %q (%v)", key, e, back, err)
		}
	}
}
