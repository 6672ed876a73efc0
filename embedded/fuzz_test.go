package embedded

import (
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/johannesboyne/gofakes3"
)

// FuzzKeyRoundTrip: the store takes exactly the keys S3 takes (1 to 1,024 bytes of UTF-8),
// and an accepted key reads back as itself, with its own body, and lists as itself: no two
// keys alias one object, whatever bytes they hold ("/", ".", "..", NUL, trailing slashes).
func FuzzKeyRoundTrip(f *testing.F) {
	for _, k := range []string{"a", "a/b", "a/", "a/../b", "./a", "a//b", "/a", "..", "a\x00b", "日本/🙂",
		strings.Repeat("x", 1024), strings.Repeat("x", 1025), "\xff", "e\u0301"} {
		f.Add(k)
	}
	b := newTestBackend(f)
	if err := b.CreateBucket("fz"); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		_, err := b.PutObject("fz", key, nil, strings.NewReader(key), int64(len(key)), nil)
		wantOK := key != "" && len(key) <= 1024 && utf8.ValidString(key)
		if (err == nil) != wantOK {
			t.Fatalf("PUT %q: %v (S3 would accept it: %v)", key, err, wantOK)
		}
		if !wantOK {
			return
		}
		obj, err := b.GetObject("fz", key, nil)
		if err != nil {
			t.Fatalf("GET %q after PUT: %v", key, err)
		}
		got, _ := io.ReadAll(obj.Contents)
		obj.Contents.Close()
		if string(got) != key || obj.Name != key {
			t.Fatalf("GET %q gave %q", key, got)
		}
		list, err := b.ListBucket("fz", &gofakes3.Prefix{HasPrefix: true, Prefix: key}, gofakes3.ListBucketPage{MaxKeys: 1})
		if err != nil || len(list.Contents) != 1 || list.Contents[0].Key != key {
			t.Fatalf("listing prefix %q: %v %+v", key, err, list)
		}
		if _, err := b.DeleteObject("fz", key); err != nil {
			t.Fatal(err)
		}
		if _, err := b.HeadObject("fz", key); !gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey) {
			t.Fatalf("HEAD %q after DELETE: %v", key, err)
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
