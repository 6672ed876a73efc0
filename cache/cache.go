package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"
)

// Defaults for Config fields left at zero (or set negative).
const (
	DefaultMaxAge        = 5 * time.Minute
	DefaultMaxObjects    = 10_000
	DefaultMaxBytes      = 64 << 30
	DefaultEntries       = 1000
	DefaultDecryptMaxAge = 5 * time.Minute
	// MaxObjectsLimit caps MaxObjects, as the AWS Encryption SDK caps messages per data key.
	MaxObjectsLimit = 1 << 32
)

// attempts bounds how often a caller retries when the fresh data key it waited for was used up
// or dropped by others before it could take it; after that it asks the Source directly.
const attempts = 4

// ErrNegativeSize is returned by EncryptKey for a negative plaintext size.
var ErrNegativeSize = errors.New("cache: negative plaintext size")

// Source is what the cache wraps (keys.KMS and keys.LocalFile satisfy it).
type Source interface {
	GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (plaintext, wrapped []byte, err error)
	Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error)
}

// KeyIDSource is optionally implemented by a Source (keys.KMS and keys.LocalFile do) to report
// the key a data key was actually made under: the active key for keyID "", the key ARN for an
// alias. When the Source has it, DataKey.KeyID is that key; otherwise it is the keyID asked for.
type KeyIDSource interface {
	GenerateDataKeyID(ctx context.Context, keyID string, encCtx map[string]string) (usedKeyID string, plaintext, wrapped []byte, err error)
}

// Config configures a Cache. Zero (or negative) fields take the defaults above.
type Config struct {
	Disabled      bool          // every call goes to the Source
	MaxAge        time.Duration // encrypt side: max age of a data key in use; default 5m
	MaxObjects    int64         // encrypt side: max objects per data key; default 10000, at most 2^32
	MaxBytes      int64         // encrypt side: max plaintext bytes per data key; default 64 GiB
	Entries       int           // max distinct keys per side; default 1000
	DecryptMaxAge time.Duration // decrypt side max age; default 5m
}

func (c Config) withDefaults() Config {
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxObjects <= 0 {
		c.MaxObjects = DefaultMaxObjects
	}
	c.MaxObjects = min(c.MaxObjects, MaxObjectsLimit)
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Entries <= 0 {
		c.Entries = DefaultEntries
	}
	if c.DecryptMaxAge <= 0 {
		c.DecryptMaxAge = DefaultDecryptMaxAge
	}
	return c
}

// DataKey is a data key handed to a caller.
type DataKey struct {
	KeyID     string // the key the data key is wrapped under; record it with Wrapped
	Plaintext []byte // the caller's own copy: call Zero when done
	Wrapped   []byte
}

// Zero clears the plaintext key.
func (d *DataKey) Zero() { clear(d.Plaintext) }

// SideStats are the counters of one side of the cache.
type SideStats struct {
	Hits, Misses, Evictions, Errors uint64
}

// Stats are the cache's counters since New. Hits, Misses, Evictions and Errors are the sums of
// the two sides. Evictions counts cached keys dropped for capacity, age or use limits (not by
// Purge). GenerateCalls and DecryptCalls count Source calls; Errors counts failed ones.
type Stats struct {
	Hits, Misses, Evictions, GenerateCalls, DecryptCalls, Errors uint64
	Encrypt, Decrypt                                             SideStats
}

type sideCounters struct {
	hits, misses, evictions, errors atomic.Uint64
}

func (s *sideCounters) load() SideStats {
	return SideStats{Hits: s.hits.Load(), Misses: s.misses.Load(), Evictions: s.evictions.Load(), Errors: s.errors.Load()}
}

// Cache is a data-key cache. It is safe for concurrent use.
type Cache struct {
	src   Source
	idSrc KeyIDSource // src, when it implements KeyIDSource
	cfg   Config
	now   func() time.Time // replaced by tests; expirable's own TTL uses the real clock

	// mu serialises the replace operations (Remove then Add) on the LRUs. Lock order: mu, then
	// the LRU's internal lock, then an entry's mu (eviction callbacks take only the last).
	mu        sync.Mutex
	enc       *expirable.LRU[string, *encEntry]
	dec       *expirable.LRU[[sha256.Size]byte, *decEntry]
	encFlight singleflight.Group
	decFlight singleflight.Group

	encStats, decStats          sideCounters
	generateCalls, decryptCalls atomic.Uint64
}

// New returns a cache in front of src.
func New(src Source, c Config) *Cache {
	c = c.withDefaults()
	cc := &Cache{src: src, cfg: c, now: time.Now}
	cc.idSrc, _ = src.(KeyIDSource)
	if c.Disabled {
		return cc
	}
	cc.enc = expirable.NewLRU(c.Entries, func(_ string, e *encEntry) {
		if e.key.release() {
			cc.encStats.evictions.Add(1)
		}
	}, c.MaxAge)
	cc.dec = expirable.NewLRU(c.Entries, func(_ [sha256.Size]byte, e *decEntry) {
		if e.key.release() {
			cc.decStats.evictions.Add(1)
		}
	}, c.DecryptMaxAge)
	return cc
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	e, d := c.encStats.load(), c.decStats.load()
	gen, dec := c.generateCalls.Load(), c.decryptCalls.Load()
	return Stats{
		Hits: e.Hits + d.Hits, Misses: e.Misses + d.Misses, Evictions: e.Evictions + d.Evictions,
		GenerateCalls: gen, DecryptCalls: dec, Errors: e.Errors + d.Errors,
		Encrypt: e, Decrypt: d,
	}
}

// Purge drops and zeroes every cached key.
func (c *Cache) Purge() {
	if c.cfg.Disabled {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.enc.Values() {
		if e != nil { // expirable's Values leaves nil slots for expired entries
			e.key.release()
		}
	}
	for _, e := range c.dec.Values() {
		if e != nil {
			e.key.release()
		}
	}
	c.enc.Purge()
	c.dec.Purge()
}

// keyBytes is a cached plaintext key, zeroed once when dropped.
type keyBytes struct {
	mu      sync.Mutex
	b       []byte
	dropped bool
}

// copyOut returns a copy of the key, or false once it was dropped.
func (k *keyBytes) copyOut() ([]byte, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dropped {
		return nil, false
	}
	return bytes.Clone(k.b), true
}

// alive reports whether the key was not dropped yet.
func (k *keyBytes) alive() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.dropped
}

// release zeroes the key; it reports whether this call dropped it.
func (k *keyBytes) release() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dropped {
		return false
	}
	clear(k.b)
	k.dropped = true
	return true
}

// encEntry is the data key in use for one (key id, context) on the encrypt side.
type encEntry struct {
	key     keyBytes // key.mu also guards objects and bytes
	keyID   string
	wrapped []byte
	created time.Time
	objects int64
	bytes   int64
}

type decEntry struct {
	key     keyBytes
	created time.Time
}

// canonicalContext appends the encryption context as be32(count) ‖ (lp(k) ‖ lp(v)) sorted by key.
func canonicalContext(b []byte, encCtx map[string]string) []byte {
	ks := make([]string, 0, len(encCtx))
	for k := range encCtx {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ks)))
	for _, k := range ks {
		b = appendLP(b, []byte(k))
		b = appendLP(b, []byte(encCtx[k]))
	}
	return b
}

func appendLP(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func encCacheKey(keyID string, encCtx map[string]string) string {
	return string(canonicalContext(appendLP(nil, []byte(keyID)), encCtx))
}

func decCacheKey(keyID string, wrapped []byte, encCtx map[string]string) [sha256.Size]byte {
	b := canonicalContext(appendLP([]byte("s3seal cache dec\x00"), []byte(keyID)), encCtx)
	return sha256.Sum256(appendLP(b, wrapped))
}

// generate calls the Source for a new data key.
func (c *Cache) generate(ctx context.Context, keyID string, encCtx map[string]string) (usedKeyID string, plaintext, wrapped []byte, err error) {
	c.generateCalls.Add(1)
	if c.idSrc != nil {
		usedKeyID, plaintext, wrapped, err = c.idSrc.GenerateDataKeyID(ctx, keyID, encCtx)
	} else {
		usedKeyID = keyID
		plaintext, wrapped, err = c.src.GenerateDataKey(ctx, keyID, encCtx)
	}
	if err != nil {
		c.encStats.errors.Add(1)
		return "", nil, nil, err
	}
	return usedKeyID, plaintext, wrapped, nil
}

// EncryptKey returns a data key for (keyID, encCtx), reusing a cached one unless using it for one
// more object of `bytes` plaintext bytes would exceed MaxObjects/MaxBytes or it is older than
// MaxAge. An object larger than MaxBytes gets a data key of its own, not cached for encryption.
func (c *Cache) EncryptKey(ctx context.Context, keyID string, encCtx map[string]string, bytes int64) (*DataKey, error) {
	if bytes < 0 {
		return nil, ErrNegativeSize
	}
	if c.cfg.Disabled || bytes > c.cfg.MaxBytes {
		c.encStats.misses.Add(1)
		return c.uncachedEncryptKey(ctx, keyID, encCtx)
	}
	ck := encCacheKey(keyID, encCtx)
	if e, ok := c.enc.Get(ck); ok {
		if dk, ok := c.reserve(e, bytes); ok {
			c.encStats.hits.Add(1)
			return dk, nil
		}
	}
	c.encStats.misses.Add(1)
	for range attempts {
		ch := c.encFlight.DoChan(ck, func() (any, error) {
			return c.fillEncrypt(context.WithoutCancel(ctx), ck, keyID, encCtx)
		})
		var res singleflight.Result
		select {
		case res = <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if res.Err != nil {
			return nil, res.Err
		}
		if dk, ok := c.reserve(res.Val.(*encEntry), bytes); ok {
			return dk, nil
		}
	}
	return c.uncachedEncryptKey(ctx, keyID, encCtx)
}

// uncachedEncryptKey asks the Source for a data key used for this one object only.
func (c *Cache) uncachedEncryptKey(ctx context.Context, keyID string, encCtx map[string]string) (*DataKey, error) {
	used, pt, wrapped, err := c.generate(ctx, keyID, encCtx)
	if err != nil {
		return nil, err
	}
	if !c.cfg.Disabled {
		c.putDecrypt(decCacheKey(used, wrapped, encCtx), bytes.Clone(pt))
	}
	return &DataKey{KeyID: used, Plaintext: pt, Wrapped: wrapped}, nil
}

// fillEncrypt runs once per flight: it makes a new data key, caches it on both sides and returns
// its entry. If another flight filled the slot in the meantime, that entry is returned instead.
func (c *Cache) fillEncrypt(ctx context.Context, ck, keyID string, encCtx map[string]string) (*encEntry, error) {
	if e, ok := c.enc.Get(ck); ok && c.usable(e, 0) {
		return e, nil
	}
	used, pt, wrapped, err := c.generate(ctx, keyID, encCtx)
	if err != nil {
		return nil, err
	}
	c.putDecrypt(decCacheKey(used, wrapped, encCtx), bytes.Clone(pt))
	e := &encEntry{key: keyBytes{b: pt}, keyID: used, wrapped: wrapped, created: c.now()}
	c.mu.Lock()
	c.enc.Remove(ck) // Add would replace an old entry without the eviction callback
	c.enc.Add(ck, e)
	c.mu.Unlock()
	return e, nil
}

// usable reports whether e could take one more object of n bytes.
func (c *Cache) usable(e *encEntry, n int64) bool {
	e.key.mu.Lock()
	defer e.key.mu.Unlock()
	return c.fitsLocked(e, n)
}

func (c *Cache) fitsLocked(e *encEntry, n int64) bool {
	return !e.key.dropped &&
		c.now().Sub(e.created) < c.cfg.MaxAge &&
		e.objects < c.cfg.MaxObjects &&
		e.bytes <= c.cfg.MaxBytes-n
}

// reserve counts one object of n bytes against e and returns a copy of its key; when e cannot
// take it, e is retired (zeroed) and reserve reports false.
func (c *Cache) reserve(e *encEntry, n int64) (*DataKey, bool) {
	e.key.mu.Lock()
	defer e.key.mu.Unlock()
	if e.key.dropped {
		return nil, false
	}
	if !c.fitsLocked(e, n) {
		c.retireLocked(e)
		return nil, false
	}
	e.objects++
	e.bytes += n
	dk := &DataKey{KeyID: e.keyID, Plaintext: bytes.Clone(e.key.b), Wrapped: bytes.Clone(e.wrapped)}
	if e.objects >= c.cfg.MaxObjects || e.bytes >= c.cfg.MaxBytes {
		c.retireLocked(e) // used up: zero it now rather than at the next lookup
	}
	return dk, true
}

// retireLocked zeroes a used-up entry; it stays in the LRU until replaced or expired, and
// counts as an eviction now. Callers hold e.key.mu.
func (c *Cache) retireLocked(e *encEntry) {
	clear(e.key.b)
	e.key.dropped = true
	c.encStats.evictions.Add(1)
}

// DecryptKey returns the plaintext of a wrapped data key (caller's copy), cached by SHA-256 over
// (keyID, canonical encCtx, wrapped). Keys made by EncryptKey are also put here (write-through),
// so reading back what this process wrote makes no Decrypt call.
func (c *Cache) DecryptKey(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	if c.cfg.Disabled {
		c.decStats.misses.Add(1)
		return c.decrypt(ctx, keyID, wrapped, encCtx)
	}
	h := decCacheKey(keyID, wrapped, encCtx)
	if pt, ok := c.lookupDecrypt(h); ok {
		c.decStats.hits.Add(1)
		return pt, nil
	}
	c.decStats.misses.Add(1)
	wrapped = bytes.Clone(wrapped) // the flight may outlive this call
	for range attempts {
		ch := c.decFlight.DoChan(string(h[:]), func() (any, error) {
			return c.fillDecrypt(context.WithoutCancel(ctx), h, keyID, wrapped, encCtx)
		})
		var res singleflight.Result
		select {
		case res = <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if res.Err != nil {
			return nil, res.Err
		}
		if pt, ok := res.Val.(*decEntry).key.copyOut(); ok {
			return pt, nil
		}
	}
	return c.decrypt(ctx, keyID, wrapped, encCtx)
}

func (c *Cache) decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	c.decryptCalls.Add(1)
	pt, err := c.src.Decrypt(ctx, keyID, wrapped, encCtx)
	if err != nil {
		c.decStats.errors.Add(1)
		return nil, err
	}
	return pt, nil
}

// lookupDecrypt returns a copy of a cached, fresh key.
func (c *Cache) lookupDecrypt(h [sha256.Size]byte) ([]byte, bool) {
	e, ok := c.dec.Get(h)
	if !ok {
		return nil, false
	}
	if c.now().Sub(e.created) >= c.cfg.DecryptMaxAge {
		if e.key.release() {
			c.decStats.evictions.Add(1)
		}
		return nil, false
	}
	return e.key.copyOut()
}

// fillDecrypt runs once per flight: it unwraps the key with the Source and caches it.
func (c *Cache) fillDecrypt(ctx context.Context, h [sha256.Size]byte, keyID string, wrapped []byte, encCtx map[string]string) (*decEntry, error) {
	if e, ok := c.dec.Get(h); ok && c.now().Sub(e.created) < c.cfg.DecryptMaxAge {
		if e.key.alive() {
			return e, nil
		}
	}
	pt, err := c.decrypt(ctx, keyID, wrapped, encCtx)
	if err != nil {
		return nil, err
	}
	return c.putDecrypt(h, pt), nil
}

// putDecrypt caches pt (taking ownership of it) under h.
func (c *Cache) putDecrypt(h [sha256.Size]byte, pt []byte) *decEntry {
	e := &decEntry{key: keyBytes{b: pt}, created: c.now()}
	c.mu.Lock()
	c.dec.Remove(h)
	c.dec.Add(h, e)
	c.mu.Unlock()
	return e
}

// String describes the configuration (no key material).
func (c *Cache) String() string {
	if c.cfg.Disabled {
		return "cache: disabled"
	}
	return fmt.Sprintf("cache: max age %v, %d objects, %d bytes per data key; %d entries per side; decrypt max age %v",
		c.cfg.MaxAge, c.cfg.MaxObjects, c.cfg.MaxBytes, c.cfg.Entries, c.cfg.DecryptMaxAge)
}
