package loadgen

import (
	"crypto/sha256"
	"encoding/binary"
	mrand "math/rand/v2"
)

// version is one content a key can hold: size bytes generated from seed. A key that does not
// exist is the version with size -1.
type version struct {
	seed uint64
	size int
}

// absent is the version of a key that does not exist.
var absent = version{size: -1}

// exists reports whether v is an object (not absent).
func (v version) exists() bool { return v.size >= 0 }

// bytes returns the content of v: the same bytes every time for the same seed and size.
func (v version) bytes() []byte {
	if v.size <= 0 {
		return []byte{}
	}
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], v.seed)
	b := make([]byte, v.size)
	_, _ = mrand.NewChaCha8(s).Read(b) // never fails
	return b
}

// sum is the SHA-256 of v's content.
func (v version) sum() [32]byte { return sha256.Sum256(v.bytes()) }

// keyState is what the model knows of one key: the versions it may hold now. One version when
// every write to it was answered; more when a write failed (the write may or may not have
// happened, so both the old and the new content are possible).
type keyState struct {
	maybe []version
}

// certain returns the one version the key holds, if the model knows it.
func (k keyState) certain() (version, bool) {
	if len(k.maybe) == 1 {
		return k.maybe[0], true
	}
	return version{}, false
}

// model is one client's knowledge of its own keys (no other client writes them).
type model struct {
	keys []string
	st   map[string]keyState
}

func newModel(keys []string) *model {
	m := &model{keys: keys, st: map[string]keyState{}}
	for _, k := range keys {
		m.st[k] = keyState{maybe: []version{absent}}
	}
	return m
}

// wrote records the outcome of a write of v to key: certain when it succeeded (err nil), else
// possible.
func (m *model) wrote(key string, v version, err error) {
	if err == nil {
		m.st[key] = keyState{maybe: []version{v}}
		return
	}
	s := m.st[key]
	m.st[key] = keyState{maybe: append(append([]version(nil), s.maybe...), v)}
}

// matches reports whether content b (nil: the key does not exist) is a version key may hold.
func (m *model) matches(key string, b []byte) bool {
	sum := sha256.Sum256(b)
	for _, v := range m.st[key].maybe {
		if b == nil && !v.exists() {
			return true
		}
		if b != nil && v.exists() && v.size == len(b) && v.sum() == sum {
			return true
		}
	}
	return false
}
