package keys

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func namedTestLocal(t *testing.T, name string) *LocalFile {
	t.Helper()
	lf, err := CreateLocalFileWithKey(filepath.Join(t.TempDir(), "keys.yaml"), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	return lf
}

// TestRouter: ids handed out are routed; each routes back to the provider that made them;
// plain ids go to the default provider; a wrapped key of one provider does not open in another.
func TestRouter(t *testing.T) {
	ctx := context.Background()
	a, b := namedTestLocal(t, "ka"), namedTestLocal(t, "kb")
	r, err := NewRouter("a", Route{Name: "a", Provider: a}, Route{Name: "b", Provider: b})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.DefaultKeyID(); got != "a:ka" {
		t.Fatalf("DefaultKeyID %q", got)
	}
	for _, c := range []struct{ ask, used string }{{"", "a:ka"}, {"b:", "b:kb"}, {"b:kb", "b:kb"}, {"ka", "a:ka"}, {"a:", "a:ka"}} {
		used, dk, w, err := r.GenerateDataKeyID(ctx, c.ask, bucketCtx)
		if err != nil || used != c.used {
			t.Errorf("ask %q: used %q, %v; want %q", c.ask, used, err, c.used)
			continue
		}
		got, err := r.Decrypt(ctx, used, w, bucketCtx)
		if err != nil || string(got) != string(dk) {
			t.Errorf("ask %q: routed id %q does not open its key: %v", c.ask, used, err)
		}
	}
	// An envelope written before keys.providers (a plain id) opens with the default provider.
	_, dk, w, _ := a.GenerateDataKeyID(ctx, "", bucketCtx)
	if got, err := r.Decrypt(ctx, "ka", w, bucketCtx); err != nil || string(got) != string(dk) {
		t.Fatalf("plain id: %v", err)
	}
	// b's wrapped key named as a's fails closed.
	_, _, wb, _ := b.GenerateDataKeyID(ctx, "", bucketCtx)
	if _, err := r.Decrypt(ctx, "a:kb", wb, bucketCtx); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("b's key under a: %v", err)
	}
	if _, err := r.Decrypt(ctx, "c:kb", wb, bucketCtx); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown provider prefix (goes to the default provider as a plain id): %v", err)
	}
	if _, _, _, err := r.GenerateDataKeyID(ctx, "b:nosuch", bucketCtx); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	b.Close()
	if err := r.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping with one provider closed: %v", err)
	}
}

func TestRouterNames(t *testing.T) {
	a := namedTestLocal(t, "ka")
	for _, bad := range []string{"", "arn", "alias", "A", "a:b", "a/b", "x234567890123456789012345678901234"} {
		if _, err := NewRouter(bad, Route{Name: bad, Provider: a}); err == nil {
			t.Errorf("provider name %q accepted", bad)
		}
	}
	if _, err := NewRouter("x", Route{Name: "a", Provider: a}); err == nil {
		t.Error("a default provider that is not among the providers was accepted")
	}
	if _, err := NewRouter("a", Route{Name: "a", Provider: a}, Route{Name: "a", Provider: a}); err == nil {
		t.Error("a provider named twice was accepted")
	}
}
