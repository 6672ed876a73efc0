package keys

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Key versions of a local key file. A key name is a family of versions: version 1 is stored
// under the name itself (so files written before versions existed need no change), version N
// ≥ 2 under "<name>.v<N>". The key id recorded in an envelope is that stored name, so every
// version opens its own objects for as long as it is in the file. Asking for a data key under
// "<name>" uses the newest version of the family; asking under "<name>.v<N>" uses exactly that
// version.

const versionSep = ".v"

// splitVersion parses a stored key name into its family name and version.
func splitVersion(stored string) (name string, version int) {
	if i := strings.LastIndex(stored, versionSep); i > 0 {
		if n, err := strconv.Atoi(stored[i+len(versionSep):]); err == nil && n >= 2 && strconv.Itoa(n) == stored[i+len(versionSep):] {
			return stored[:i], n
		}
	}
	return stored, 1
}

func storedName(name string, version int) string {
	if version == 1 {
		return name
	}
	return name + versionSep + strconv.Itoa(version)
}

// newestLocked returns the stored name of the newest version of family name, or "" when the
// family has none. Callers hold l.mu.
func (l *LocalFile) newestLocked(name string) string {
	best, bestV := "", 0
	for stored := range l.keys {
		if n, v := splitVersion(stored); n == name && v > bestV {
			best, bestV = stored, v
		}
	}
	return best
}

// resolveLocked maps a requested key id onto a stored name: "" is the active key, a family
// name its newest version, anything else itself. Callers hold l.mu.
func (l *LocalFile) resolveLocked(keyID string) string {
	if keyID == "" {
		return l.active
	}
	if _, v := splitVersion(keyID); v == 1 {
		if newest := l.newestLocked(keyID); newest != "" {
			return newest
		}
	}
	return keyID
}

// KeyVersions lists every key version in the file, sorted by name and version. Active marks
// the newest version of each name: the one new objects asking for that name get (the file's
// active key, used when no key is asked for, is DefaultKeyID).
func (l *LocalFile) KeyVersions() ([]KeyVersion, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	out := make([]KeyVersion, 0, len(l.keys))
	for stored := range l.keys {
		n, v := splitVersion(stored)
		out = append(out, KeyVersion{ID: stored, Name: n, Version: v, Active: stored == l.newestLocked(n)})
	}
	slices.SortFunc(out, func(a, b KeyVersion) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	return out, nil
}

// CreateKey adds a new key family name (version 1, stored as name) and rewrites the file. It
// does not make it active: map buckets to it (keys.bucket_key_ids) or rotate onto it.
func (l *LocalFile) CreateKey(name string) (KeyVersion, error) {
	if n, v := splitVersion(name); v != 1 || n != name {
		return KeyVersion{}, fmt.Errorf("keys: key name %q ends like a version (%s<N>)", name, versionSep)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return KeyVersion{}, ErrClosed
	}
	if l.newestLocked(name) != "" {
		return KeyVersion{}, fmt.Errorf("keys: key %q already exists", name)
	}
	if err := l.addLocked(name); err != nil {
		return KeyVersion{}, err
	}
	return KeyVersion{ID: name, Name: name, Version: 1, Active: true}, nil
}

// RotateKey adds the next version of family name and rewrites the file. New data keys asked
// under name use it from now on; when the family held the active key, the new version becomes
// the active key. Older versions stay in the file and keep opening their objects.
func (l *LocalFile) RotateKey(name string) (KeyVersion, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return KeyVersion{}, ErrClosed
	}
	newest := l.newestLocked(name)
	if newest == "" {
		return KeyVersion{}, fmt.Errorf("keys: key %q: %w", name, ErrKeyNotFound)
	}
	_, v := splitVersion(newest)
	next := storedName(name, v+1)
	if err := validKeyName(next); err != nil {
		return KeyVersion{}, fmt.Errorf("keys: %w", err)
	}
	oldActive := l.active
	if an, _ := splitVersion(l.active); an == name {
		l.active = next
	}
	if err := l.addLocked(next); err != nil {
		l.active = oldActive
		return KeyVersion{}, err
	}
	return KeyVersion{ID: next, Name: name, Version: v + 1, Active: true}, nil
}

// RetireKey removes version id from the file (its key bytes are zeroed). The newest version of
// a family and the active key are refused: retire old versions, after `gateway rewrap
// -from-version` moved their objects. Objects still under id can no longer be read.
func (l *LocalFile) RetireKey(id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	k, ok := l.keys[id]
	if !ok {
		return fmt.Errorf("keys: local key %q: %w", id, ErrKeyNotFound)
	}
	name, _ := splitVersion(id)
	if id == l.active || l.newestLocked(name) == id {
		return fmt.Errorf("keys: local key %q is the active or newest version of %q: rotate first", id, name)
	}
	delete(l.keys, id)
	if err := l.save(); err != nil {
		l.keys[id] = k
		return err
	}
	clear(k)
	return nil
}

// addLocked adds a random key stored as name and rewrites the file. Callers hold l.mu.
func (l *LocalFile) addLocked(name string) error {
	if err := validKeyName(name); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if _, ok := l.keys[name]; ok {
		return fmt.Errorf("keys: key %q already exists", name)
	}
	k := make([]byte, DataKeySize)
	if _, err := rand.Read(k); err != nil {
		return fmt.Errorf("keys: random key: %w", err)
	}
	l.keys[name] = k
	if err := l.save(); err != nil {
		delete(l.keys, name)
		clear(k)
		return err
	}
	return nil
}
