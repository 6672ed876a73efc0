package proxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/s3seal/s3seal/cache"
	"github.com/s3seal/s3seal/format"
)

// contextKeys is a KeyCache with one fixed data key that records the encryption contexts it
// is asked for.
type contextKeys struct {
	dk       []byte
	enc, dec []map[string]string
}

func (k *contextKeys) EncryptKey(_ context.Context, keyID string, encCtx map[string]string, _ int64) (*cache.DataKey, error) {
	k.enc = append(k.enc, maps.Clone(encCtx))
	return &cache.DataKey{KeyID: keyID, Plaintext: bytes.Clone(k.dk), Wrapped: []byte("wrapped")}, nil
}

func (k *contextKeys) DecryptKey(_ context.Context, _ string, _ []byte, encCtx map[string]string) ([]byte, error) {
	k.dec = append(k.dec, maps.Clone(encCtx))
	return bytes.Clone(k.dk), nil
}

func contextGateway() (*Gateway, *contextKeys) {
	keys := &contextKeys{dk: bytes.Repeat([]byte{7}, format.KeySize)}
	g := &Gateway{cfg: Config{KeyID: "k1", Keys: keys, Now: time.Now}, log: slog.New(slog.DiscardHandler), obs: nopObserver{}}
	return g, keys
}

func kmsPut(encCtx string) *request {
	r := httptest.NewRequest(http.MethodPut, "/b1/obj", nil)
	r.Header.Set("X-Amz-Server-Side-Encryption", "aws:kms")
	r.Header.Set("X-Amz-Server-Side-Encryption-Context", base64.StdEncoding.EncodeToString([]byte(encCtx)))
	return &request{r: r, bucket: "b1", key: "obj"}
}

// TestClientContextReservedKeys: through the gateway's own call sites (chooseEncryption, seal),
// a client context naming a reserved key is refused with 400 InvalidArgument before any key
// is asked for, and an accepted one reaches the key provider beside the reserved keys.
func TestClientContextReservedKeys(t *testing.T) {
	g, keys := contextGateway()
	for _, js := range []string{`{"bucket":"b1"}`, `{"project":"x","gateway":"other"}`, `{"Bucket":"b2"}`, `{bad`} {
		c, e := g.chooseEncryption(kmsPut(js))
		if c != nil || e == nil || e.Code != "InvalidArgument" || e.Status != http.StatusBadRequest {
			t.Errorf("context %s: %+v, %v; want 400 InvalidArgument", js, c, e)
		}
	}
	if _, e := g.chooseEncryption(kmsPut(`{"bucket":"b1"}`)); e == nil || e.Message != `The encryption context key "bucket" is reserved by the gateway.` {
		t.Errorf("reserved key message: %v", e)
	}
	q := kmsPut(`{"project":"x"}`)
	c, e := g.chooseEncryption(q)
	if e != nil {
		t.Fatal(e)
	}
	s, err := g.seal(q, c, format.KindSingle, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"gateway": "s3seal", "bucket": "b1", "project": "x"}
	if len(keys.enc) != 1 || !maps.Equal(keys.enc[0], want) {
		t.Fatalf("key provider asked with %v, want %v", keys.enc, want)
	}
	if got := s.meta.Get(metaCtx); got != base64.StdEncoding.EncodeToString([]byte(`{"project":"x"}`)) {
		t.Errorf("stored context %q", got)
	}
}

// TestStoredContextReservedKeys: through openKey, a stored context naming a reserved key is
// answered like a tampered object (format.ErrAuth: 500 InternalError), without asking the key
// provider, even when its value repeats the reserved one; the context as stored opens.
func TestStoredContextReservedKeys(t *testing.T) {
	g, keys := contextGateway()
	q := kmsPut(`{"project":"x"}`)
	c, _ := g.chooseEncryption(q)
	s, err := g.seal(q, c, format.KindSingle, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	read := &request{r: httptest.NewRequest(http.MethodGet, "/b1/obj", nil), bucket: "b1", key: "obj"}
	o := &storedObject{header: s.meta.Clone(), env: s.env}
	ok, err := g.openKey(read, o)
	if err != nil {
		t.Fatalf("as stored: %v", err)
	}
	ok.Zero()
	if want := map[string]string{"gateway": "s3seal", "bucket": "b1", "project": "x"}; len(keys.dec) != 1 || !maps.Equal(keys.dec[0], want) {
		t.Fatalf("key provider asked with %v, want %v", keys.dec, want)
	}
	for _, js := range []string{`{"project":"x","bucket":"b1"}`, `{"project":"x","gateway":"s3seal"}`, `{"project":"x","BUCKET":"b2"}`} {
		o.header.Set(metaCtx, base64.StdEncoding.EncodeToString([]byte(js)))
		_, err := g.openKey(read, o)
		var rk *format.ReservedContextKeyError
		if !errors.As(err, &rk) || !rk.Stored || !errors.Is(err, format.ErrAuth) {
			t.Errorf("stored context %s: %v, want a stored ReservedContextKeyError", js, err)
			continue
		}
		if e := g.toS3Error(read, err); e.Code != "InternalError" || e.Status != http.StatusInternalServerError {
			t.Errorf("stored context %s answered %v", js, e)
		}
	}
	if len(keys.dec) != 1 {
		t.Errorf("key provider asked %d times, want once (refused contexts never reach it)", len(keys.dec))
	}
}
