package proxy

import (
	"math"
	"math/big"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// rfcRange is RFC 9110 14.1.2 arithmetic, written apart from parseRange with exact integers:
// ignored reports a Range header to ignore (not bytes=, several ranges, not digits, last <
// first); unsat a satisfiable-syntax range that selects nothing.
func rfcRange(h string, size int64) (off, length int64, ignored, unsat bool) {
	// Like S3, the gateway allows white space around the value and after "bytes=".
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	m := regexp.MustCompile(`^([0-9]*)-([0-9]*)$`).FindStringSubmatch(strings.TrimSpace(spec))
	if !ok || m == nil || (m[1] == "" && m[2] == "") {
		return 0, 0, true, false
	}
	n := func(s string) *big.Int { v, _ := new(big.Int).SetString(s, 10); return v }
	sz := big.NewInt(size)
	if m[1] == "" { // suffix-length
		sl := n(m[2])
		if sl.Sign() == 0 || size == 0 {
			return 0, 0, false, true
		}
		if sl.Cmp(sz) > 0 {
			sl = sz
		}
		return size - sl.Int64(), sl.Int64(), false, false
	}
	first := n(m[1])
	last := new(big.Int).Sub(sz, big.NewInt(1))
	if m[2] != "" {
		l := n(m[2])
		if l.Cmp(first) < 0 {
			return 0, 0, true, false
		}
		if l.Cmp(last) < 0 {
			last = l
		}
	}
	if first.Cmp(sz) >= 0 {
		return 0, 0, false, true
	}
	return first.Int64(), last.Int64() - first.Int64() + 1, false, false
}

// FuzzParseRange checks parseRange against rfcRange: the same decision, and a satisfiable range
// lies within the object.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"", "bytes=0-0", "bytes=0-", "bytes=-1", "bytes=-0", "bytes=5-4", "bytes=1-2,3-4",
		" bytes= 10-20 ", "bytes=+1-2", "bytes=-+5", "bytes=0-99999999999999999999", "bytes=99999999999999999999-",
		"bytes=-99999999999999999999", "bytes=--1", "bytes=1--2", "items=0-1", "bytes=0x1-2", "bytes=9223372036854775807-"} {
		f.Add(s, int64(100))
		f.Add(s, int64(0))
	}
	f.Add("bytes=0-", int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		br, e := parseRange(h, size)
		off, length, ignored, unsat := rfcRange(h, size)
		switch {
		case ignored:
			if br != nil || e != nil {
				t.Fatalf("parseRange(%q, %d) = %+v, %v; RFC 9110: ignore", h, size, br, e)
			}
		case unsat:
			if br != nil || e == nil || e.Code != "InvalidRange" {
				t.Fatalf("parseRange(%q, %d) = %+v, %v; RFC 9110: unsatisfiable", h, size, br, e)
			}
		default:
			if e != nil || br == nil || br.off != off || br.length != length {
				t.Fatalf("parseRange(%q, %d) = %+v, %v; RFC 9110: off %d length %d", h, size, br, e, off, length)
			}
			if br.off < 0 || br.length <= 0 || br.off > size-br.length {
				t.Fatalf("parseRange(%q, %d) = %+v outside the object", h, size, br)
			}
		}
	})
}

// FuzzParseCopyRange checks parseCopyRange against the grammar "bytes=" 1*DIGIT "-" 1*DIGIT
// with first <= last, both within int64.
func FuzzParseCopyRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=0-", "bytes=-5", "bytes=5-4", " bytes=1-2 ", "bytes=+1-2",
		"bytes=1-+2", "bytes=0-9223372036854775807", "bytes=0-9223372036854775808", "bytes= 1-2", "bytes=1-2,3-4"} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^bytes=([0-9]+)-([0-9]+)$`)
	f.Fuzz(func(t *testing.T, s string) {
		a, b, ok := parseCopyRange(s)
		m := re.FindStringSubmatch(strings.TrimSpace(s))
		want := m != nil
		var wa, wb *big.Int
		if want {
			wa, _ = new(big.Int).SetString(m[1], 10)
			wb, _ = new(big.Int).SetString(m[2], 10)
			want = wa.IsInt64() && wb.IsInt64() && wa.Cmp(wb) <= 0
		}
		if ok != want || (ok && (a != wa.Int64() || b != wb.Int64())) {
			t.Fatalf("parseCopyRange(%q) = %d, %d, %v; grammar says ok=%v (%v, %v)", s, a, b, ok, want, wa, wb)
		}
	})
}

// FuzzCopySource checks copySource: an accepted source names a non-empty bucket without "/"
// and a non-empty key, and the parts, encoded again as a client would, parse to the same.
func FuzzCopySource(f *testing.F) {
	for _, s := range []string{"b/k", "/b/k", "/b/dir/k?versionId=v1", "b/k%3Fq?versionId=a%2Bb", "b", "/b/", "//k",
		"arn:aws:s3:::ap/k", "b/%zz", "b/k?versionId=%zz", "b/k?x=1&versionId=2&versionId=3", "b%2Fk/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		bucket, key, version, e := copySource(h)
		if e != nil {
			if bucket != "" || key != "" || version != "" {
				t.Fatalf("copySource(%q) failed (%v) but returned %q %q %q", h, e, bucket, key, version)
			}
			return
		}
		if bucket == "" || key == "" || strings.Contains(bucket, "/") || strings.HasPrefix(bucket, "arn:") {
			t.Fatalf("copySource(%q) = bucket %q key %q", h, bucket, key)
		}
		again := "/" + url.PathEscape(bucket) + "/" + url.PathEscape(key)
		if version != "" {
			again += "?versionId=" + url.QueryEscape(version)
		}
		b2, k2, v2, e2 := copySource(again)
		if e2 != nil || b2 != bucket || k2 != key || v2 != version {
			t.Fatalf("copySource(%q) = %q %q %q; re-encoded %q parses to %q %q %q (%v)", h, bucket, key, version, again, b2, k2, v2, e2)
		}
	})
}
