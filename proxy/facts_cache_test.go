package proxy

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// TestFactsCacheOneEntryPerObject: the facts of a new version replace those of the old one, so
// overwriting objects does not grow the cache; facts are returned only for the version asked.
func TestFactsCacheOneEntryPerObject(t *testing.T) {
	c, err := newFactsCache(100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		c.AddVersion("b", "k", factsID{backendETag: `"etag-` + strconv.Itoa(i) + `"`}, objectFacts{plainSize: int64(i)})
	}
	if n := c.lru.Len(); n != 1 {
		t.Fatalf("%d entries after 1,000 versions of one object, want 1", n)
	}
	v1 := factsID{backendETag: `"v1"`, storedSize: 10}
	c.AddVersion("b", "k", v1, objectFacts{plainSize: 1})
	if f, ok := c.Get("b", "k", v1); !ok || f.plainSize != 1 {
		t.Fatalf("Get of the cached version: %+v %v", f, ok)
	}
	if _, ok := c.Get("b", "k", factsID{backendETag: `"v0"`, storedSize: 10}); ok {
		t.Fatal("facts returned for another version")
	}
	if _, ok := c.Get("b", "k2", v1); ok {
		t.Fatal("facts returned for another key")
	}
	c.AddVersion("b", "k3", factsID{}, objectFacts{})
	if _, ok := c.Get("b", "k3", factsID{}); ok {
		t.Fatal("facts cached without an ETag")
	}
}

// TestFactsCacheIdentity: facts are served only for the version they came from: the same
// backend ETag with another stored size, version id or envelope (an older version served under
// the newest ETag) gets none. Listing entries match on ETag, stored size and version id.
func TestFactsCacheIdentity(t *testing.T) {
	c, err := newFactsCache(10)
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(env, version string) http.Header {
		h := http.Header{}
		h.Set(format.MetaEnvelope, env)
		if version != "" {
			h.Set("X-Amz-Version-Id", version)
		}
		return h
	}
	stored := func(size int64, h http.Header) *storedObject {
		return &storedObject{header: h, backendETag: `"e"`, storedSize: size}
	}
	newest := stored(100, hdr("ENV-NEW", "v2"))
	c.AddVersion("b", "k", storedID(newest), objectFacts{plainSize: 52})
	if _, ok := c.Get("b", "k", storedID(stored(100, hdr("ENV-NEW", "v2")))); !ok {
		t.Fatal("no facts for the same version")
	}
	for name, o := range map[string]*storedObject{
		"another envelope":   stored(100, hdr("ENV-OLD", "v2")),
		"another size":       stored(148, hdr("ENV-NEW", "v2")),
		"another version":    stored(100, hdr("ENV-NEW", "v1")),
		"no version":         stored(100, hdr("ENV-NEW", "")),
		"a manifest added":   stored(100, func() http.Header { h := hdr("ENV-NEW", "v2"); h.Set(format.MetaManifest, "M"); return h }()),
		"an envelope prefix": stored(100, hdr("ENV-NE", "v2")),
	} {
		if f, ok := c.Get("b", "k", storedID(o)); ok {
			t.Errorf("%s: facts %+v served for another version", name, f)
		}
	}
	for _, l := range []listedVersion{{`"e"`, 100, ""}, {`"e"`, 100, "v2"}} {
		if _, ok := c.Listed("b", "k", l); !ok {
			t.Errorf("listing entry %+v: no facts", l)
		}
	}
	for _, l := range []listedVersion{{`"e"`, 148, ""}, {`"e"`, 100, "v1"}, {`"x"`, 100, ""}, {"", 100, ""}} {
		if _, ok := c.Listed("b", "k", l); ok {
			t.Errorf("listing entry %+v: facts of another version", l)
		}
	}
	c.AddVersion("b", "k", factsID{backendETag: `"e2"`, storedSize: 100}, objectFacts{plainSize: 7})
	if _, ok := c.Get("b", "k", storedID(newest)); ok {
		t.Error("a new version's facts left the facts of the version it replaced")
	}
}
