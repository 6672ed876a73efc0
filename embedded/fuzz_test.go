package embedded

import (
	"path"
	"strings"
	"testing"
)

// FuzzValidKey: an accepted key names exactly one file inside its bucket, so two different
// keys can never alias one file and no key leaves the bucket.
func FuzzValidKey(f *testing.F) {
	for _, k := range []string{"a", "a/b", "a/../b", "./a", "a//b", "a/", "/a", "..", "...", "a/.b", "a\x00b", strings.Repeat("x", 223)} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if !validKey(key) {
			return
		}
		if path.Clean(key) != key || path.IsAbs(key) || key == ".." || strings.HasPrefix(key, "../") {
			t.Errorf("accepted key %q cleans to %q", key, path.Clean(key))
		}
		if len(key) > maxKeyLen || strings.IndexByte(key, 0) >= 0 {
			t.Errorf("accepted key %q", key)
		}
	})
}

// FuzzParseParts: parsed part sizes are never negative, add up to the object size, and
// there are between 1 and 10000 of them.
func FuzzParseParts(f *testing.F) {
	f.Add("1,2,3", int64(6))
	f.Add("5", int64(5))
	f.Add("", int64(0))
	f.Add("-1,7", int64(6))
	f.Add("9223372036854775807,1", int64(0))
	f.Fuzz(func(t *testing.T, v string, size int64) {
		sizes, ok := parseParts(v, size)
		if !ok {
			return
		}
		var total int64
		for _, s := range sizes {
			if s < 0 {
				t.Fatalf("negative part size in %q", v)
			}
			total += s
		}
		if total != size {
			t.Fatalf("%q: parts add to %d, object is %d", v, total, size)
		}
		if len(sizes) == 0 || len(sizes) > 10000 {
			t.Fatalf("%q: %d parts", v, len(sizes))
		}
	})
}
