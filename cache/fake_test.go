package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// fakeSource is a key provider in memory. Wrapped keys are opaque ids; Decrypt checks that key
// id and context match those given to GenerateDataKey.
type fakeSource struct {
	mu      sync.Mutex
	wrapped map[string]fakeWrapped
	next    int
	genErr  error
	decErr  error
	block   chan struct{} // when non-nil, calls wait for it to be closed
	entered chan struct{} // when non-nil, receives once per call before blocking

	gen, dec atomic.Int64
}

type fakeWrapped struct {
	keyID string
	ctx   string
	pt    []byte
}

func newFake() *fakeSource { return &fakeSource{wrapped: map[string]fakeWrapped{}} }

func ctxString(m map[string]string) string { return string(canonicalContext(nil, m)) }

func (f *fakeSource) wait(ctx context.Context) error {
	f.mu.Lock()
	block, entered := f.block, f.entered
	f.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *fakeSource) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) ([]byte, []byte, error) {
	f.gen.Add(1)
	if err := f.wait(ctx); err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.genErr != nil {
		return nil, nil, f.genErr
	}
	pt := make([]byte, 32)
	rand.Read(pt)
	f.next++
	w := fmt.Sprintf("wrapped-%d", f.next)
	f.wrapped[w] = fakeWrapped{keyID: keyID, ctx: ctxString(encCtx), pt: bytes.Clone(pt)}
	return pt, []byte(w), nil
}

func (f *fakeSource) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	f.dec.Add(1)
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.decErr != nil {
		return nil, f.decErr
	}
	w, ok := f.wrapped[string(wrapped)]
	if !ok || w.keyID != keyID || w.ctx != ctxString(encCtx) {
		return nil, errors.New("fake: invalid ciphertext")
	}
	return bytes.Clone(w.pt), nil
}

func (f *fakeSource) setErrs(gen, dec error) {
	f.mu.Lock()
	f.genErr, f.decErr = gen, dec
	f.mu.Unlock()
}

// idFake also implements KeyIDSource, resolving "" to "active" and "alias/x" to "arn:x".
type idFake struct{ *fakeSource }

func resolve(keyID string) string {
	switch {
	case keyID == "":
		return "active"
	case len(keyID) > 6 && keyID[:6] == "alias/":
		return "arn:" + keyID[6:]
	}
	return keyID
}

func (f idFake) GenerateDataKeyID(ctx context.Context, keyID string, encCtx map[string]string) (string, []byte, []byte, error) {
	pt, w, err := f.GenerateDataKey(ctx, resolve(keyID), encCtx)
	return resolve(keyID), pt, w, err
}

// fakeClock replaces the cache's clock.
type fakeClock struct{ t atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.t.Add(int64(d)) }

func withClock(c *Cache) *fakeClock {
	clk := &fakeClock{}
	clk.t.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c.now = clk.now
	return clk
}

// Test hooks: the cache's own slices, to check they get zeroed.
func cachedEncKey(c *Cache, keyID string, encCtx map[string]string) []byte {
	e, ok := c.enc.Peek(encCacheKey(keyID, encCtx))
	if !ok {
		return nil
	}
	return e.key.b
}

func cachedDecKey(c *Cache, keyID string, wrapped []byte, encCtx map[string]string) []byte {
	e, ok := c.dec.Peek(decCacheKey(keyID, wrapped, encCtx))
	if !ok {
		return nil
	}
	return e.key.b
}

func isZero(b []byte) bool { return len(b) > 0 && bytes.Equal(b, make([]byte, len(b))) }
