package keys

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Local wrap format constants (FORMAT.md section 7).
const (
	localBlobVersion = 0x01
	localNonceSize   = 12
	localTagSize     = 16
	// LocalBlobSize is the size of a data key wrapped by a LocalFile.
	LocalBlobSize  = 1 + localNonceSize + DataKeySize + localTagSize
	localAADPrefix = "s3seal/1 local"
	maxKeyNameLen  = 64
	maxKeyFileSize = 1 << 20
	// firstKeyName is the key a new key file starts with.
	firstKeyName = "k1"
)

// LocalFile is a key provider backed by a local YAML key file (FORMAT.md section 7). It keeps
// the key-encryption keys in memory until Close, which zeroes them. It is safe for concurrent
// use; AddKey and SetActive rewrite the file atomically.
type LocalFile struct {
	path string

	mu     sync.RWMutex
	active string
	keys   map[string][]byte // name -> 32-byte KEK
	closed bool
}

// localFileYAML is the on-disk shape, for parsing.
type localFileYAML struct {
	Active string            `yaml:"active"`
	Keys   map[string]string `yaml:"keys"`
}

// OpenLocalFile reads and validates an existing key file. A file readable or writable by group
// or others is refused.
func OpenLocalFile(path string) (*LocalFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys: open key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: key file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("keys: key file %s has mode %04o: it must not be accessible by group or others (run: chmod 600 %s)",
			path, perm, path)
	}
	if st.Size() > maxKeyFileSize {
		return nil, fmt.Errorf("keys: key file %s is larger than %d bytes", path, maxKeyFileSize)
	}
	data := make([]byte, st.Size())
	defer clear(data)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("keys: read key file %s: %w", path, err)
	}
	active, keys, err := parseLocalFile(data)
	if err != nil {
		return nil, fmt.Errorf("keys: key file %s: %w", path, err)
	}
	return &LocalFile{path: path, active: active, keys: keys}, nil
}

// parseLocalFile parses and validates the YAML key file.
func parseLocalFile(data []byte) (active string, keys map[string][]byte, err error) {
	var y localFileYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&y); err != nil {
		return "", nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if len(y.Keys) == 0 {
		return "", nil, errors.New("no keys")
	}
	keys = make(map[string][]byte, len(y.Keys))
	fail := func(e error) (string, map[string][]byte, error) {
		zeroKeys(keys)
		return "", nil, e
	}
	for name, b64 := range y.Keys {
		if err := validKeyName(name); err != nil {
			return fail(err)
		}
		k, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil || len(k) != DataKeySize {
			clear(k)
			return fail(fmt.Errorf("key %q: want the standard base64 of %d bytes", name, DataKeySize))
		}
		keys[name] = k
	}
	if y.Active == "" {
		return fail(errors.New("no active key"))
	}
	if _, ok := keys[y.Active]; !ok {
		return fail(fmt.Errorf("active key %q is not among the keys", y.Active))
	}
	return y.Active, keys, nil
}

// validKeyName checks a key name against [A-Za-z0-9._-]{1,64}.
func validKeyName(name string) error {
	if len(name) == 0 || len(name) > maxKeyNameLen {
		return fmt.Errorf("key name %q: want 1 to %d characters", name, maxKeyNameLen)
	}
	for _, c := range []byte(name) {
		ok := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("key name %q: only A-Z a-z 0-9 . _ - are allowed", name)
		}
	}
	return nil
}

// CreateLocalFile creates a new key file (it must not exist) with mode 0600 and one random
// active key "k1". A missing parent directory is created with mode 0700.
func CreateLocalFile(path string) (*LocalFile, error) {
	return CreateLocalFileWithKey(path, firstKeyName)
}

// CreateLocalFileWithKey is CreateLocalFile with name as the first (active) key.
func CreateLocalFileWithKey(path, name string) (*LocalFile, error) {
	if n, v := splitVersion(name); v != 1 || n != name {
		return nil, fmt.Errorf("keys: key name %q ends like a version (%s<N>)", name, versionSep)
	}
	if err := validKeyName(name); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("keys: create key file directory: %w", err)
	}
	k := make([]byte, DataKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("keys: random key: %w", err)
	}
	l := &LocalFile{path: path, active: name, keys: map[string][]byte{name: k}}
	data := l.marshal()
	defer clear(data)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("keys: create key file: %w", err)
	}
	if err := writeSync(f, data); err != nil {
		os.Remove(path)
		l.Close()
		return nil, fmt.Errorf("keys: write key file %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return l, nil
}

// LoadOrCreateLocalFile opens the key file at path, creating it (CreateLocalFile) when it does
// not exist. created reports whether a new file was written.
func LoadOrCreateLocalFile(path string) (lf *LocalFile, created bool, err error) {
	lf, err = OpenLocalFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return lf, false, err
	}
	lf, err = CreateLocalFile(path)
	if errors.Is(err, fs.ErrExist) {
		// Somebody else created it in between.
		lf, err = OpenLocalFile(path)
		return lf, false, err
	}
	return lf, err == nil, err
}

// marshal renders the key file. The YAML is written by hand rather than with yaml.Marshal so
// that every buffer holding key material is a []byte the caller can zero. Names are restricted
// to [A-Za-z0-9._-] and base64 has no quote characters, so double-quoted scalars are always
// valid YAML (the tests parse the output back with the YAML library).
func (l *LocalFile) marshal() []byte {
	names := l.sortedNames()
	b := make([]byte, 0, 64+len(names)*(maxKeyNameLen+base64.StdEncoding.EncodedLen(DataKeySize)+12))
	b = append(b, "# s3seal local key file (docs/FORMAT.md section 7). Keep it secret, keep a backup.\n"...)
	b = append(b, `active: "`...)
	b = append(b, l.active...)
	b = append(b, "\"\nkeys:\n"...)
	for _, n := range names {
		b = append(b, `  "`...)
		b = append(b, n...)
		b = append(b, `": "`...)
		b = base64.StdEncoding.AppendEncode(b, l.keys[n])
		b = append(b, "\"\n"...)
	}
	return b
}

func (l *LocalFile) sortedNames() []string {
	names := make([]string, 0, len(l.keys))
	for n := range l.keys {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// writeSync writes data, syncs and closes f.
func writeSync(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a rename or create in dir durable; errors are ignored (not every file system
// supports syncing a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// save rewrites the file atomically: a temporary file (0600) in the same directory, then
// rename. Callers hold l.mu.
func (l *LocalFile) save() error {
	data := l.marshal()
	defer clear(data)
	dir := filepath.Dir(l.path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(l.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("keys: rewrite key file: %w", err)
	}
	tmp := f.Name()
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("keys: rewrite key file: %w", err)
	}
	if err := writeSync(f, data); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keys: rewrite key file: %w", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keys: rewrite key file: %w", err)
	}
	syncDir(dir)
	return nil
}

// AddKey adds a new random key under name (not made active) and rewrites the file.
func (l *LocalFile) AddKey(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.addLocked(name)
}

// SetActive makes name the key for new data keys and rewrites the file.
func (l *LocalFile) SetActive(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if _, ok := l.keys[name]; !ok {
		return fmt.Errorf("keys: key %q: %w", name, ErrKeyNotFound)
	}
	old := l.active
	l.active = name
	if err := l.save(); err != nil {
		l.active = old
		return err
	}
	return nil
}

// KeyIDs returns the key names, sorted.
func (l *LocalFile) KeyIDs() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.sortedNames()
}

// DefaultKeyID returns the active key name.
func (l *LocalFile) DefaultKeyID() string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.active
}

// Ping reports ErrClosed after Close; a local file is otherwise always available.
func (l *LocalFile) Ping(context.Context) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	return nil
}

// Close zeroes the keys held in memory. Later calls fail with ErrClosed.
func (l *LocalFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	zeroKeys(l.keys)
	l.keys = nil
	l.closed = true
	return nil
}

func zeroKeys(m map[string][]byte) {
	for _, k := range m {
		clear(k)
	}
}

// GenerateDataKey returns a new random data key wrapped under keyID ("" = the active key).
func (l *LocalFile) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (plaintext, wrapped []byte, err error) {
	_, plaintext, wrapped, err = l.GenerateDataKeyID(ctx, keyID, encCtx)
	return plaintext, wrapped, err
}

// GenerateDataKeyID is GenerateDataKey that also returns the name of the key used, which is
// what must be recorded with the wrapped key: the active key when keyID is "", the newest
// version when keyID names a key family (local_versions.go), else keyID itself.
func (l *LocalFile) GenerateDataKeyID(_ context.Context, keyID string, encCtx map[string]string) (usedKeyID string, plaintext, wrapped []byte, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return "", nil, nil, ErrClosed
	}
	keyID = l.resolveLocked(keyID)
	kek, ok := l.keys[keyID]
	if !ok {
		return "", nil, nil, fmt.Errorf("keys: local key %q: %w", keyID, ErrKeyNotFound)
	}
	dk := make([]byte, DataKeySize)
	if _, err := rand.Read(dk); err != nil {
		return "", nil, nil, fmt.Errorf("keys: random data key: %w", err)
	}
	blob := make([]byte, 1+localNonceSize, LocalBlobSize)
	blob[0] = localBlobVersion
	if _, err := rand.Read(blob[1:]); err != nil {
		clear(dk)
		return "", nil, nil, fmt.Errorf("keys: random nonce: %w", err)
	}
	aead, err := newGCM(kek)
	if err != nil {
		clear(dk)
		return "", nil, nil, err
	}
	blob = aead.Seal(blob, blob[1:1+localNonceSize], dk, localAAD(keyID, encCtx))
	return keyID, dk, blob, nil
}

// Decrypt unwraps a data key wrapped under the local key keyID. A blob wrapped under another
// key, with another context, or altered in any way gives ErrInvalidCiphertext.
func (l *LocalFile) Decrypt(_ context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	kek, ok := l.keys[keyID]
	if !ok {
		return nil, fmt.Errorf("keys: local key %q: %w", keyID, ErrKeyNotFound)
	}
	if len(wrapped) != LocalBlobSize || wrapped[0] != localBlobVersion {
		return nil, fmt.Errorf("keys: local key %q: wrapped key has the wrong size or version: %w", keyID, ErrInvalidCiphertext)
	}
	aead, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	dk, err := aead.Open(make([]byte, 0, DataKeySize), wrapped[1:1+localNonceSize], wrapped[1+localNonceSize:], localAAD(keyID, encCtx))
	if err != nil {
		return nil, fmt.Errorf("keys: local key %q: wrapped key does not open (wrong key, context or bytes): %w", keyID, ErrInvalidCiphertext)
	}
	return dk, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return cipher.NewGCM(block)
}

// localAAD is "s3seal/1 local" ‖ lp(name) ‖ context, context being the pairs sorted by key,
// each lp(k) ‖ lp(v) (contextAAD).
func localAAD(name string, encCtx map[string]string) []byte {
	return contextAAD(localAADPrefix, name, encCtx)
}

func appendLP(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
