package proxy

import (
	"bytes"
	"testing"
)

// TestListMemoKey: the key of a remembered answer changes with the bucket, the encoding type
// and any byte of the document, and a bucket name cannot run into the document; documents above
// listMemoMaxDoc get no key (their answers are not kept).
func TestListMemoKey(t *testing.T) {
	m, err := newListMemo()
	if err != nil {
		t.Fatal(err)
	}
	key := func(bucket string, urlEncoding bool, doc []byte) [32]byte {
		t.Helper()
		k, ok := m.key(bucket, urlEncoding, doc)
		if !ok {
			t.Fatalf("no key for a document of %d bytes", len(doc))
		}
		return k
	}
	doc := listingDoc(3)
	base := key("bucket", false, doc)
	flipped := bytes.Clone(doc)
	flipped[len(flipped)/2] ^= 1
	for name, k := range map[string][32]byte{
		"other bucket":         key("bucket2", false, doc),
		"url encoding":         key("bucket", true, doc),
		"one byte changed":     key("bucket", false, flipped),
		"bucket runs into doc": key("bucke", false, append([]byte("t"), doc...)),
	} {
		if k == base {
			t.Errorf("%s: same key", name)
		}
	}
	if key("bucket", false, bytes.Clone(doc)) != base {
		t.Fatal("the same document gave another key")
	}
	m.add(base, []byte("answer"))
	if a, ok := m.get(base); !ok || string(a) != "answer" {
		t.Fatalf("get after add: %q %v", a, ok)
	}
	key("bucket", false, make([]byte, listMemoMaxDoc))
	if _, ok := m.key("bucket", false, make([]byte, listMemoMaxDoc+1)); ok {
		t.Fatal("a document above listMemoMaxDoc got a key: its answer would be kept")
	}
}

// TestListMemoBytes: the answers held stay within listMemoBytes, the oldest going first, and
// adding an answer again does not count it twice.
func TestListMemoBytes(t *testing.T) {
	m, err := newListMemo()
	if err != nil {
		t.Fatal(err)
	}
	answer := make([]byte, listMemoMaxDoc)
	var keys [][32]byte
	for i := range 40 { // 40 x 512 KiB = 20 MiB offered
		k, _ := m.key("b", false, []byte{byte(i)})
		keys = append(keys, k)
		m.add(k, answer)
		m.add(k, answer)
		if held := m.bytes.Load(); held > listMemoBytes || held != int64(m.lru.Len())*int64(len(answer)) {
			t.Fatalf("after %d answers: %d bytes counted, %d answers held", i+1, held, m.lru.Len())
		}
	}
	if want := listMemoBytes / len(answer); m.lru.Len() != want {
		t.Fatalf("%d answers held, want %d", m.lru.Len(), want)
	}
	if _, ok := m.get(keys[0]); ok {
		t.Fatal("the oldest answer is still held")
	}
	if _, ok := m.get(keys[len(keys)-1]); !ok {
		t.Fatal("the newest answer was dropped")
	}
}
