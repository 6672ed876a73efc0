package cache

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

var (
	ctxA = map[string]string{"gateway": "s3seal", "bucket": "a"}
	ctxB = map[string]string{"gateway": "s3seal", "bucket": "b"}
	bg   = context.Background()
)

func mustEncrypt(t *testing.T, c *Cache, keyID string, encCtx map[string]string, n int64) *DataKey {
	t.Helper()
	dk, err := c.EncryptKey(bg, keyID, encCtx, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(dk.Plaintext) != 32 || len(dk.Wrapped) == 0 {
		t.Fatalf("data key: %d bytes, wrapped %d bytes", len(dk.Plaintext), len(dk.Wrapped))
	}
	return dk
}

func TestEncryptHitMiss(t *testing.T) {
	src := newFake()
	c := New(src, Config{})
	first := mustEncrypt(t, c, "k", ctxA, 100)
	for range 99 {
		dk := mustEncrypt(t, c, "k", ctxA, 100)
		if !bytes.Equal(dk.Plaintext, first.Plaintext) || !bytes.Equal(dk.Wrapped, first.Wrapped) || dk.KeyID != "k" {
			t.Fatal("cached key differs")
		}
	}
	other := mustEncrypt(t, c, "k", ctxB, 1)
	if bytes.Equal(other.Plaintext, first.Plaintext) {
		t.Fatal("another context got the same key")
	}
	otherKey := mustEncrypt(t, c, "k2", ctxA, 1)
	if bytes.Equal(otherKey.Plaintext, first.Plaintext) {
		t.Fatal("another key id got the same key")
	}
	// Context maps compare by content, not by identity or order.
	same := mustEncrypt(t, c, "k", map[string]string{"bucket": "a", "gateway": "s3seal"}, 1)
	if !bytes.Equal(same.Plaintext, first.Plaintext) {
		t.Fatal("equal context missed")
	}
	st := c.Stats()
	want := Stats{Hits: 100, Misses: 3, GenerateCalls: 3, Encrypt: SideStats{Hits: 100, Misses: 3}}
	if st != want || src.gen.Load() != 3 {
		t.Fatalf("stats %+v, want %+v (source calls %d)", st, want, src.gen.Load())
	}
	// Callers get copies: scribbling over one does not change the next.
	first.Zero()
	dk := mustEncrypt(t, c, "k", ctxA, 1)
	if isZero(dk.Plaintext) {
		t.Fatal("zeroing a caller's key zeroed the cache's")
	}
	dk.Wrapped[0] ^= 1
	if again := mustEncrypt(t, c, "k", ctxA, 1); bytes.Equal(again.Wrapped, dk.Wrapped) {
		t.Fatal("caller's wrapped slice aliases the cache's")
	}
	if _, err := c.EncryptKey(bg, "k", ctxA, -1); !errors.Is(err, ErrNegativeSize) {
		t.Fatalf("negative size: %v", err)
	}
}

// TestAcceptanceCounts: the numbers the integration tests require.
func TestAcceptanceCounts(t *testing.T) {
	src := newFake()
	writer := New(src, Config{})
	dks := make([]*DataKey, 1000)
	for i := range dks {
		dks[i] = mustEncrypt(t, writer, "k", ctxA, 1<<20)
	}
	if g := src.gen.Load(); g > 2 {
		t.Fatalf("1000 PUTs: %d GenerateDataKey calls", g)
	}
	for _, dk := range dks {
		if _, err := writer.DecryptKey(bg, dk.KeyID, dk.Wrapped, ctxA); err != nil {
			t.Fatal(err)
		}
	}
	if d := src.dec.Load(); d != 0 {
		t.Fatalf("reading back in the writing process: %d Decrypt calls", d)
	}
	reader := New(src, Config{}) // another gateway process
	for _, dk := range dks {
		pt, err := reader.DecryptKey(bg, dk.KeyID, dk.Wrapped, ctxA)
		if err != nil || !bytes.Equal(pt, dk.Plaintext) {
			t.Fatalf("reader: %v", err)
		}
	}
	if d := src.dec.Load(); d > 2 {
		t.Fatalf("1000 GETs: %d Decrypt calls", d)
	}

	plain := newFake()
	off := New(plain, Config{Disabled: true})
	for i := range dks {
		dks[i] = mustEncrypt(t, off, "k", ctxA, 1<<20)
	}
	for _, dk := range dks {
		pt, err := off.DecryptKey(bg, dk.KeyID, dk.Wrapped, ctxA)
		if err != nil || !bytes.Equal(pt, dk.Plaintext) {
			t.Fatalf("disabled: %v", err)
		}
	}
	if plain.gen.Load() != 1000 || plain.dec.Load() != 1000 {
		t.Fatalf("disabled: %d generate, %d decrypt calls; want 1000 each", plain.gen.Load(), plain.dec.Load())
	}
	st := off.Stats()
	if st.Hits != 0 || st.Misses != 2000 || st.GenerateCalls != 1000 || st.DecryptCalls != 1000 {
		t.Fatalf("disabled stats %+v", st)
	}
	off.Purge() // no-op, must not panic
}

func TestMaxObjects(t *testing.T) {
	src := newFake()
	c := New(src, Config{MaxObjects: 3})
	var keys [][]byte
	for range 7 {
		keys = append(keys, mustEncrypt(t, c, "k", ctxA, 1).Plaintext)
	}
	if src.gen.Load() != 3 {
		t.Fatalf("7 objects at 3 per key: %d keys", src.gen.Load())
	}
	for i, k := range keys {
		first := keys[i/3*3]
		if !bytes.Equal(k, first) {
			t.Fatalf("object %d did not share the key of object %d", i, i/3*3)
		}
		if i%3 == 0 && i > 0 && bytes.Equal(k, keys[i-1]) {
			t.Fatalf("object %d reused a used-up key", i)
		}
	}
	if ev := c.Stats().Encrypt.Evictions; ev != 2 {
		t.Fatalf("evictions %d, want 2 retired keys", ev)
	}
}

func TestMaxBytes(t *testing.T) {
	src := newFake()
	c := New(src, Config{MaxBytes: 100})
	a := mustEncrypt(t, c, "k", ctxA, 40)
	b := mustEncrypt(t, c, "k", ctxA, 60) // exactly 100: fits, then used up
	if !bytes.Equal(a.Plaintext, b.Plaintext) {
		t.Fatal("40+60 bytes did not share a key")
	}
	cc := mustEncrypt(t, c, "k", ctxA, 0)
	if bytes.Equal(cc.Plaintext, a.Plaintext) {
		t.Fatal("key used past MaxBytes")
	}
	d := mustEncrypt(t, c, "k", ctxA, 70)
	if !bytes.Equal(d.Plaintext, cc.Plaintext) {
		t.Fatal("0+70 bytes did not share a key")
	}
	e := mustEncrypt(t, c, "k", ctxA, 31) // 101 > 100
	if bytes.Equal(e.Plaintext, d.Plaintext) {
		t.Fatal("key used past MaxBytes")
	}
	// An object larger than MaxBytes gets a key of its own and leaves the cached one alone.
	big := mustEncrypt(t, c, "k", ctxA, 1000)
	if bytes.Equal(big.Plaintext, e.Plaintext) {
		t.Fatal("oversized object shared the cached key")
	}
	if f := mustEncrypt(t, c, "k", ctxA, 1); !bytes.Equal(f.Plaintext, e.Plaintext) {
		t.Fatal("oversized object disturbed the cached key")
	}
	if src.gen.Load() != 4 {
		t.Fatalf("%d GenerateDataKey calls, want 4", src.gen.Load())
	}
	// Its key is still written through for reading back.
	if _, err := c.DecryptKey(bg, big.KeyID, big.Wrapped, ctxA); err != nil || src.dec.Load() != 0 {
		t.Fatalf("oversized object's key not written through: %v, %d calls", err, src.dec.Load())
	}
}

func TestMaxAge(t *testing.T) {
	src := newFake()
	c := New(src, Config{MaxAge: time.Minute, DecryptMaxAge: 2 * time.Minute})
	clk := withClock(c)
	a := mustEncrypt(t, c, "k", ctxA, 1)
	cached := cachedEncKey(c, "k", ctxA)
	clk.advance(59 * time.Second)
	if b := mustEncrypt(t, c, "k", ctxA, 1); !bytes.Equal(a.Plaintext, b.Plaintext) {
		t.Fatal("key replaced before MaxAge")
	}
	clk.advance(time.Second)
	b := mustEncrypt(t, c, "k", ctxA, 1)
	if bytes.Equal(a.Plaintext, b.Plaintext) {
		t.Fatal("key used at MaxAge")
	}
	if !isZero(cached) {
		t.Fatal("expired encrypt key not zeroed")
	}
	// Decrypt side: a's key was written through at t0; b's at t0+60s.
	clk.advance(59 * time.Second) // t0+119s
	if _, err := c.DecryptKey(bg, "k", a.Wrapped, ctxA); err != nil || src.dec.Load() != 0 {
		t.Fatalf("decrypt before DecryptMaxAge: %v, %d calls", err, src.dec.Load())
	}
	decCached := cachedDecKey(c, "k", a.Wrapped, ctxA)
	clk.advance(time.Second) // t0+120s
	pt, err := c.DecryptKey(bg, "k", a.Wrapped, ctxA)
	if err != nil || !bytes.Equal(pt, a.Plaintext) || src.dec.Load() != 1 {
		t.Fatalf("decrypt at DecryptMaxAge: %v, %d calls", err, src.dec.Load())
	}
	if !isZero(decCached) {
		t.Fatal("expired decrypt key not zeroed")
	}
	if _, err := c.DecryptKey(bg, "k", b.Wrapped, ctxA); err != nil || src.dec.Load() != 1 {
		t.Fatalf("b's key: %v, %d calls", err, src.dec.Load())
	}
}

func TestSingleflight(t *testing.T) {
	for _, side := range []string{"encrypt", "decrypt"} {
		t.Run(side, func(t *testing.T) {
			src := newFake()
			pt, wrapped, _ := src.GenerateDataKey(bg, "k", ctxA) // made elsewhere: not cached
			src.gen.Store(0)
			block := make(chan struct{})
			src.block, src.entered = block, make(chan struct{}, 100)
			c := New(src, Config{})
			var started, done sync.WaitGroup
			results := make(chan []byte, 50)
			for range 50 {
				started.Add(1)
				done.Add(1)
				go func() {
					defer done.Done()
					started.Done()
					if side == "encrypt" {
						dk, err := c.EncryptKey(bg, "k", ctxA, 1)
						if err != nil {
							t.Error(err)
							return
						}
						results <- dk.Plaintext
						return
					}
					got, err := c.DecryptKey(bg, "k", wrapped, ctxA)
					if err != nil {
						t.Error(err)
						return
					}
					results <- got
				}()
			}
			started.Wait()
			<-src.entered // the first call is in the source, blocked
			time.Sleep(50 * time.Millisecond)
			close(block)
			done.Wait()
			close(results)
			var first []byte
			seen := map[*byte]bool{}
			for r := range results {
				if first == nil {
					first = r
				}
				if !bytes.Equal(r, first) {
					t.Fatal("waiters got different keys")
				}
				if seen[&r[0]] {
					t.Fatal("waiters share one slice")
				}
				seen[&r[0]] = true
			}
			if len(seen) != 50 {
				t.Fatalf("%d results", len(seen))
			}
			if side == "decrypt" && !bytes.Equal(first, pt) {
				t.Fatal("wrong plaintext")
			}
			calls := src.gen.Load() + src.dec.Load()
			if calls != 1 {
				t.Fatalf("50 concurrent misses made %d source calls", calls)
			}
		})
	}
}

func TestWaiterCancel(t *testing.T) {
	src := newFake()
	block := make(chan struct{})
	src.block, src.entered = block, make(chan struct{}, 10)
	c := New(src, Config{})
	ctx, cancel := context.WithCancel(bg)
	errc := make(chan error, 1)
	go func() {
		_, err := c.EncryptKey(ctx, "k", ctxA, 1)
		errc <- err
	}()
	<-src.entered
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller: %v", err)
	}
	// The call carried on without the caller and its key serves the next caller.
	close(block)
	deadline := time.Now().Add(5 * time.Second)
	for cachedEncKey(c, "k", ctxA) == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	mustEncrypt(t, c, "k", ctxA, 1)
	if src.gen.Load() != 1 {
		t.Fatalf("%d GenerateDataKey calls, want 1", src.gen.Load())
	}
}

func TestErrorsNotCached(t *testing.T) {
	src := newFake()
	c := New(src, Config{})
	boom := errors.New("kms down")
	src.setErrs(boom, boom)
	if _, err := c.EncryptKey(bg, "k", ctxA, 1); !errors.Is(err, boom) {
		t.Fatalf("EncryptKey: %v", err)
	}
	pt, wrapped, _ := src.GenerateDataKey(bg, "k", ctxB) // fails too: make one by hand
	if pt != nil {
		t.Fatal("fake ignored its error")
	}
	src.setErrs(nil, nil)
	pt, wrapped, _ = src.GenerateDataKey(bg, "k", ctxB)
	src.setErrs(nil, boom)
	if _, err := c.DecryptKey(bg, "k", wrapped, ctxB); !errors.Is(err, boom) {
		t.Fatalf("DecryptKey: %v", err)
	}
	src.setErrs(nil, nil)
	if _, err := c.EncryptKey(bg, "k", ctxA, 1); err != nil {
		t.Fatalf("EncryptKey after recovery: %v", err)
	}
	got, err := c.DecryptKey(bg, "k", wrapped, ctxB)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("DecryptKey after recovery: %v", err)
	}
	// A wrong context is an error from the source, not cached either way.
	if _, err := c.DecryptKey(bg, "k", wrapped, ctxA); err == nil {
		t.Fatal("wrong context accepted")
	}
	st := c.Stats()
	if st.Errors != 3 || st.Encrypt.Errors != 1 || st.Decrypt.Errors != 2 {
		t.Fatalf("error counts %+v", st)
	}
	if st.GenerateCalls != 2 || st.DecryptCalls != 3 {
		t.Fatalf("source calls %+v", st)
	}
}

func TestWriteThrough(t *testing.T) {
	src := newFake()
	c := New(idFake{src}, Config{})
	for _, keyID := range []string{"", "alias/x", "plain"} {
		dk := mustEncrypt(t, c, keyID, ctxA, 1)
		if dk.KeyID != resolve(keyID) {
			t.Fatalf("KeyID %q for %q, want the resolved %q", dk.KeyID, keyID, resolve(keyID))
		}
		pt, err := c.DecryptKey(bg, dk.KeyID, dk.Wrapped, ctxA)
		if err != nil || !bytes.Equal(pt, dk.Plaintext) {
			t.Fatalf("%q: %v", keyID, err)
		}
		// Cached under exactly (key id, context, wrapped): other contexts go to the source.
		if _, err := c.DecryptKey(bg, dk.KeyID, dk.Wrapped, ctxB); err == nil {
			t.Fatalf("%q: wrong context served", keyID)
		}
	}
	st := c.Stats()
	if st.Decrypt.Hits != 3 || st.DecryptCalls != 3 {
		t.Fatalf("stats %+v: want 3 write-through hits and only the 3 wrong-context calls", st)
	}
}

func TestZeroing(t *testing.T) {
	src := newFake()
	c := New(src, Config{Entries: 1, MaxObjects: 2})

	// Capacity eviction, encrypt and decrypt side.
	a := mustEncrypt(t, c, "k", ctxA, 1)
	encA, decA := cachedEncKey(c, "k", ctxA), cachedDecKey(c, "k", a.Wrapped, ctxA)
	if encA == nil || decA == nil || isZero(encA) || !bytes.Equal(encA, a.Plaintext) {
		t.Fatal("test hook does not see the cached key")
	}
	mustEncrypt(t, c, "k", ctxB, 1) // evicts a on both sides (one entry per side)
	if !isZero(encA) || !isZero(decA) {
		t.Fatal("evicted keys not zeroed")
	}
	if isZero(a.Plaintext) {
		t.Fatal("eviction zeroed the caller's copy")
	}

	// Retirement after MaxObjects.
	b1 := mustEncrypt(t, c, "k", ctxA, 1)
	encB := cachedEncKey(c, "k", ctxA)
	mustEncrypt(t, c, "k", ctxA, 1)
	if !isZero(encB) {
		t.Fatal("used-up key not zeroed")
	}
	if isZero(b1.Plaintext) {
		t.Fatal("retirement zeroed the caller's copy")
	}

	// Purge.
	c2 := New(src, Config{})
	d := mustEncrypt(t, c2, "k", ctxA, 1)
	enc, dec := cachedEncKey(c2, "k", ctxA), cachedDecKey(c2, "k", d.Wrapped, ctxA)
	c2.Purge()
	if !isZero(enc) || !isZero(dec) {
		t.Fatal("purged keys not zeroed")
	}
	if isZero(d.Plaintext) {
		t.Fatal("Purge zeroed the caller's copy")
	}
	before := src.gen.Load()
	mustEncrypt(t, c2, "k", ctxA, 1)
	if src.gen.Load() != before+1 {
		t.Fatal("key served after Purge")
	}
	if ev := c2.Stats().Evictions; ev != 0 {
		t.Fatalf("Purge counted %d evictions", ev)
	}
	d.Zero()
	if !isZero(d.Plaintext) {
		t.Fatal("DataKey.Zero")
	}
}

// TestConcurrentMixed runs everything at once for the race detector, with tight limits so that
// retirement, eviction and refills race with lookups.
func TestConcurrentMixed(t *testing.T) {
	src := newFake()
	c := New(src, Config{MaxObjects: 5, Entries: 3})
	ctxs := []map[string]string{ctxA, ctxB, {"bucket": "c"}, {"bucket": "d"}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				encCtx := ctxs[(g+i)%len(ctxs)]
				dk, err := c.EncryptKey(bg, "k", encCtx, int64(i))
				if err != nil {
					t.Error(err)
					return
				}
				pt, err := c.DecryptKey(bg, dk.KeyID, dk.Wrapped, encCtx)
				if err != nil || !bytes.Equal(pt, dk.Plaintext) {
					t.Errorf("round trip: %v", err)
					return
				}
				if i%50 == 0 {
					c.Purge()
				}
			}
		}()
	}
	wg.Wait()
	st := c.Stats()
	if st.Encrypt.Hits+st.Encrypt.Misses != 1600 || st.Decrypt.Hits+st.Decrypt.Misses != 1600 {
		t.Fatalf("stats %+v do not add up to 1600 calls per side", st)
	}
	// At most 5 objects per key: at least 1600/5 keys were made.
	if st.GenerateCalls < 320 {
		t.Fatalf("%d GenerateDataKey calls for 1600 objects at 5 per key", st.GenerateCalls)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{MaxObjects: 1 << 40}.withDefaults()
	if c.MaxObjects != MaxObjectsLimit {
		t.Errorf("MaxObjects not capped: %d", c.MaxObjects)
	}
	d := Config{MaxAge: -1, Entries: -5}.withDefaults()
	if d.MaxAge != 5*time.Minute || d.MaxObjects != 10_000 || d.MaxBytes != 64<<30 || d.Entries != 1000 || d.DecryptMaxAge != 5*time.Minute {
		t.Errorf("defaults %+v", d)
	}
}

func FuzzCacheKeys(f *testing.F) {
	f.Add("k", "bucket", "ab", "k", "bucket", "a")
	f.Add("k", "ab", "c", "k", "a", "bc")
	f.Add("kb", "", "", "k", "b", "")
	f.Fuzz(func(t *testing.T, id1, k1, v1, id2, k2, v2 string) {
		c1, c2 := map[string]string{k1: v1}, map[string]string{k2: v2}
		same := id1 == id2 && k1 == k2 && v1 == v2
		if (encCacheKey(id1, c1) == encCacheKey(id2, c2)) != same {
			t.Fatalf("encrypt keys collide or differ wrongly: %q %v / %q %v", id1, c1, id2, c2)
		}
		w := []byte("w")
		if (decCacheKey(id1, w, c1) == decCacheKey(id2, w, c2)) != same {
			t.Fatalf("decrypt keys collide or differ wrongly")
		}
		if decCacheKey(id1, []byte(k1+v1), nil) == decCacheKey(id1+k1, []byte(v1), nil) && k1 != "" {
			t.Fatalf("key id and wrapped key run together")
		}
	})
}
