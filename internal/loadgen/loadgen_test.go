package loadgen

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// fakeS3 serves an in-memory S3 (gofakes3) with one bucket; while corrupt is set, the bodies
// of whole-object GETs of client 0's keys have their first byte changed.
func fakeS3(t *testing.T, corrupt *atomic.Bool) string {
	be := s3mem.New()
	if err := be.CreateBucket("b"); err != nil {
		t.Fatal(err)
	}
	h := gofakes3.New(be, gofakes3.WithTimeSkewLimit(0)).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if corrupt.Load() && r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/b/c000/") && r.Header.Get("Range") == "" {
			w = &flipFirst{ResponseWriter: w}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type flipFirst struct {
	http.ResponseWriter
	done bool
}

func (f *flipFirst) Write(b []byte) (int, error) {
	if !f.done && len(b) > 0 {
		c := append([]byte(nil), b...)
		c[0] ^= 1
		f.done = true
		return f.ResponseWriter.Write(c)
	}
	return f.ResponseWriter.Write(b)
}

func TestRunCleanBackend(t *testing.T) {
	var corrupt atomic.Bool
	url := fakeS3(t, &corrupt)
	res, err := Run(context.Background(), Config{Endpoint: url, AccessKeyID: "a", SecretAccessKey: "s", Bucket: "b",
		Clients: 4, Duration: 2 * time.Second, KeysPerClient: 3, MaxObjectSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", res.Table())
	if len(res.Corrupt) != 0 || res.ErrorCount != 0 {
		t.Fatalf("against a correct S3: corrupt %q, errors %q", res.Corrupt, res.Errors)
	}
	if res.Verified != 12 || res.Ops[OpVerify].Count != 12 {
		t.Errorf("verified %d keys, want 12", res.Verified)
	}
	for _, op := range []string{OpPut, OpGet, OpList, OpDelete, OpCopy, OpHead} {
		if res.Ops[op] == nil || res.Ops[op].Count == 0 {
			t.Errorf("no %s in 2 s of load", op)
		}
	}
	if tot := res.Total(); tot.Count == 0 || tot.Quantile(0.99) < tot.Quantile(0.5) {
		t.Errorf("total: %d ops, p50 %v, p99 %v", tot.Count, tot.Quantile(0.5), tot.Quantile(0.99))
	}
}

// TestRunFindsCorruption: a backend that changes a byte of some answers is caught, both during
// the load and in the final check.
func TestRunFindsCorruption(t *testing.T) {
	var corrupt atomic.Bool
	url := fakeS3(t, &corrupt)
	corrupt.Store(true)
	res, err := Run(context.Background(), Config{Endpoint: url, AccessKeyID: "a", SecretAccessKey: "s", Bucket: "b",
		Clients: 2, Duration: time.Second, KeysPerClient: 1, MaxObjectSize: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Corrupt) == 0 {
		t.Fatalf("no corrupt read found:\n%s", res.Table())
	}
	for _, c := range res.Corrupt {
		if !strings.Contains(c, "c000/") {
			t.Errorf("corruption reported for a key that was not changed: %s", c)
		}
	}
}

func TestVersionContent(t *testing.T) {
	v := version{seed: 42, size: 1000}
	a, b := v.bytes(), v.bytes()
	if string(a) != string(b) || len(a) != 1000 {
		t.Fatal("a version's content is not reproducible")
	}
	if string(version{seed: 43, size: 1000}.bytes()) == string(a) {
		t.Fatal("two seeds give the same content")
	}
	m := newModel([]string{"k"})
	if !m.matches("k", nil) || m.matches("k", a) {
		t.Fatal("a new key must be absent")
	}
	m.wrote("k", v, errors.New("timeout"))
	if !m.matches("k", nil) || !m.matches("k", a) {
		t.Fatal("after a failed write both the old and the new state are possible")
	}
	m.wrote("k", v, nil)
	if m.matches("k", nil) || !m.matches("k", a) || m.matches("k", a[:999]) {
		t.Fatal("after a write only the new content is possible")
	}
}
