package proxy

import "testing"

// TestFactsCacheOneEntryPerObject: the facts of a new version replace those of the old one, so
// overwriting objects does not grow the cache; facts are returned only for the version asked.
func TestFactsCacheOneEntryPerObject(t *testing.T) {
	c, err := newFactsCache(100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		c.Add("b", "k", `"etag-`+string(rune('a'+i%26))+`"`, objectFacts{plainSize: int64(i)})
	}
	if n := c.lru.Len(); n != 1 {
		t.Fatalf("%d entries after 1,000 versions of one object, want 1", n)
	}
	c.Add("b", "k", `"v1"`, objectFacts{plainSize: 1})
	if f, ok := c.Get("b", "k", `"v1"`); !ok || f.plainSize != 1 {
		t.Fatalf("Get of the cached version: %+v %v", f, ok)
	}
	if _, ok := c.Get("b", "k", `"v0"`); ok {
		t.Fatal("facts returned for another version")
	}
	if _, ok := c.Get("b", "k2", `"v1"`); ok {
		t.Fatal("facts returned for another key")
	}
	c.Add("b", "k3", "", objectFacts{})
	if _, ok := c.Get("b", "k3", ""); ok {
		t.Fatal("facts cached without an ETag")
	}
}
