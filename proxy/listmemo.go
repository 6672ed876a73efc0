package proxy

import (
	"crypto/sha256"
	"encoding/binary"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// listMemo remembers the last answers the gateway built from backend listing documents, keyed
// by the bucket, the encoding type and the SHA-256 of the backend's document. A listing sent
// again unchanged (a client polling a prefix, a sync tool's repeated scan) is then answered
// without parsing it again: with encoding/xml at ~40 MB/s on this machine, parsing a listing of
// 1,000 keys takes 6-10 ms, longer than hashing it (SHA-256, ~0.2 ms) by far. The answer is a
// function of the document alone: every entry's facts come from the facts cache, keyed by the
// entry's key and backend ETag, both in the document. Only answers in which every entry got its
// facts are kept, so a listing that met a backend error is rebuilt the next time. Each listing
// is still authenticated, authorized and sent to the backend: only the rewriting is skipped.
// Bounded: at most listMemoEntries answers, of documents of at most listMemoMaxDoc bytes,
// listMemoBytes in all (the oldest go first).
type listMemo struct {
	lru   *lru.Cache[[sha256.Size]byte, []byte]
	bytes atomic.Int64 // of the answers held
}

const (
	listMemoEntries = 64
	listMemoMaxDoc  = 512 << 10 // a listing of 1,000 keys is 200-400 KiB
	listMemoBytes   = 8 << 20
)

func newListMemo() (*listMemo, error) {
	m := &listMemo{}
	c, err := lru.NewWithEvict(listMemoEntries, func(_ [sha256.Size]byte, answer []byte) {
		m.bytes.Add(-int64(len(answer)))
	})
	if err != nil {
		return nil, err
	}
	m.lru = c
	return m, nil
}

// key names the answer to doc, a backend listing of bucket asked with or without
// encoding-type=url; ok is false for a document above listMemoMaxDoc, whose answer is not kept
// (and which is then not hashed).
func (m *listMemo) key(bucket string, urlEncoding bool, doc []byte) (k [sha256.Size]byte, ok bool) {
	if len(doc) > listMemoMaxDoc {
		return k, false
	}
	h := sha256.New()
	var n [9]byte
	binary.BigEndian.PutUint64(n[:8], uint64(len(bucket)))
	if urlEncoding {
		n[8] = 1
	}
	h.Write(n[:])
	h.Write([]byte(bucket))
	h.Write(doc)
	h.Sum(k[:0])
	return k, true
}

// get returns the answer remembered under k.
func (m *listMemo) get(k [sha256.Size]byte) ([]byte, bool) { return m.lru.Get(k) }

// add remembers answer under k and drops the oldest answers while the answers held are above
// listMemoBytes. An answer already held under k is kept: it is the same.
func (m *listMemo) add(k [sha256.Size]byte, answer []byte) {
	if held, _ := m.lru.ContainsOrAdd(k, answer); held {
		return
	}
	m.bytes.Add(int64(len(answer)))
	for m.bytes.Load() > listMemoBytes {
		if _, _, ok := m.lru.RemoveOldest(); !ok {
			return
		}
	}
}
