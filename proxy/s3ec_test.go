package proxy

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/s3seal/s3seal/cache"
	"github.com/s3seal/s3seal/format"
)

// hostileBackend is a fake S3 backend holding one S3 Encryption Client v2 object. GETs from
// the alterFrom-th on (1-based; 0 = never) are served the altered bytes, as a backend that
// answers honestly to a first read and differently later would. It counts the body bytes the
// gateway actually reads from each GET, and the PUTs it receives.
type hostileBackend struct {
	bucket, key     string
	honest, altered []byte
	meta            map[string]string
	alterFrom       int

	mu       sync.Mutex
	gets     int
	readPer  []int64 // body bytes read by the gateway, per GET
	puts     int
	modified time.Time
}

func (b *hostileBackend) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	if r.URL.Path != "/"+b.bucket+"/"+b.key {
		if r.Method == http.MethodPut {
			b.mu.Lock()
			b.puts++
			b.mu.Unlock()
		}
		rec.WriteHeader(http.StatusNotFound)
		return rec.Result(), nil
	}
	body := b.honest
	b.mu.Lock()
	idx := -1
	if r.Method == http.MethodGet {
		b.gets++
		if b.alterFrom > 0 && b.gets >= b.alterFrom {
			body = b.altered
		}
		b.readPer = append(b.readPer, 0)
		idx = len(b.readPer) - 1
	}
	b.mu.Unlock()
	for k, v := range b.meta {
		rec.Header().Set("X-Amz-Meta-"+k, v)
	}
	rec.Header().Set("Etag", `"backend-etag"`)
	http.ServeContent(rec, r, "", b.modified, bytes.NewReader(body))
	resp := rec.Result()
	if idx >= 0 {
		resp.Body = &indexCounted{b: b, idx: idx, r: resp.Body}
	}
	return resp, nil
}

// indexCounted counts the bytes read from one GET's body into readPer[idx].
type indexCounted struct {
	b   *hostileBackend
	idx int
	r   io.Reader
}

func (c *indexCounted) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.b.mu.Lock()
	c.b.readPer[c.idx] += int64(n)
	c.b.mu.Unlock()
	return n, err
}
func (c *indexCounted) Close() error { return nil }

// fakeKeys unwraps the one wrapped data key of the test object.
type fakeKeys struct{ wrapped, key []byte }

func (k fakeKeys) EncryptKey(context.Context, string, map[string]string, int64) (*cache.DataKey, error) {
	return nil, errors.New("fakeKeys: no encryption in this test")
}

func (k fakeKeys) DecryptKey(_ context.Context, _ string, wrapped []byte, _ map[string]string) ([]byte, error) {
	if !bytes.Equal(wrapped, k.wrapped) {
		return nil, errors.New("fakeKeys: unknown wrapped key")
	}
	return bytes.Clone(k.key), nil
}

const (
	testAK = "AKIDTEST"
	testSK = "test-secret-key-0123456789"
)

// newS3ECFixture returns a gateway in front of a hostile backend holding plain, encrypted as the
// S3 Encryption Client v2 does, whose altered version decrypts to forged (same length).
func newS3ECFixture(t *testing.T, plain, forged []byte, cfg Config) (*Gateway, *hostileBackend) {
	t.Helper()
	dk, iv := make([]byte, 32), make([]byte, 12)
	rand.Read(dk)
	rand.Read(iv)
	blk, _ := aes.NewCipher(dk)
	gcm, _ := cipher.NewGCM(blk)
	honest := gcm.Seal(nil, iv, plain, nil)
	altered := bytes.Clone(honest)
	for i := range forged {
		altered[i] ^= plain[i] ^ forged[i] // CTR is malleable: the forgery without the key
	}
	wrapped := []byte("wrapped-data-key")
	be := &hostileBackend{bucket: "legacy", key: "cheque", honest: honest, altered: altered, modified: time.Unix(1_700_000_000, 0),
		meta: map[string]string{
			"x-amz-key-v2": base64.StdEncoding.EncodeToString(wrapped), "x-amz-iv": base64.StdEncoding.EncodeToString(iv),
			"x-amz-cek-alg": "AES/GCM/NoPadding", "x-amz-wrap-alg": "kms+context", "x-amz-tag-len": "128",
			"x-amz-matdesc":                    `{"aws:x-amz-cek-alg":"AES/GCM/NoPadding"}`,
			"x-amz-unencrypted-content-length": strconv.Itoa(len(plain)),
		}}
	cfg.Backend = Backend{Endpoint: "http://backend.test", Region: "us-east-1", PathStyle: true, Transport: be,
		Credentials: credentials.NewStaticCredentialsProvider("bk", "bs", "")}
	cfg.Keys = fakeKeys{wrapped: wrapped, key: dk}
	cfg.Credentials = []Credential{{AccessKeyID: testAK, SecretAccessKey: testSK}}
	cfg.AllowUnencrypted = []string{"*"}
	if cfg.S3ECSpoolDir == "" {
		cfg.S3ECSpoolDir = t.TempDir()
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g, be
}

// do sends a signed client request to g and returns the response (an aborted handler gives
// status -1).
func do(t *testing.T, g *Gateway, method, path string, hdr map[string]string) (status int, body []byte, code string) {
	t.Helper()
	r := httptest.NewRequest(method, "http://gw.test"+path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	empty := sha256.Sum256(nil)
	r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(empty[:]))
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK},
		r, hex.EncodeToString(empty[:]), "s3", "us-east-1", time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	aborted := func() (aborted bool) {
		defer func() {
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					panic(p)
				}
				aborted = true
			}
		}()
		g.ServeHTTP(w, r)
		return false
	}()
	if aborted {
		return -1, w.Body.Bytes(), ""
	}
	b := w.Body.Bytes()
	if i := bytes.Index(b, []byte("<Code>")); i >= 0 && w.Code >= 300 {
		code = string(b[i+6 : i+6+bytes.IndexByte(b[i+6:], '<')])
	}
	return w.Code, b, code
}

// A backend that serves honest bytes to one read and altered bytes to a later one never gets
// altered plaintext to the client, whole or ranged, and an S3EC source so served is never
// copied: the gateway reads the ciphertext once and releases only what it verified.
func TestS3ECVerifiedBytesAreTheReleasedBytes(t *testing.T) {
	plain := []byte("PAY ALICE $000100 -- " + strings.Repeat("memo ", 20_000))
	forged := []byte("PAY MALLORY $999999")
	reqs := []struct {
		name, method, path string
		hdr                map[string]string
		want               []byte
	}{
		{"whole", http.MethodGet, "/legacy/cheque", nil, plain},
		{"range", http.MethodGet, "/legacy/cheque", map[string]string{"Range": "bytes=4-16"}, plain[4:17]},
		{"copy", http.MethodPut, "/legacy/copy", map[string]string{"X-Amz-Copy-Source": "/legacy/cheque"}, nil},
	}
	for _, rq := range reqs {
		errored := false
		for alterFrom := 1; alterFrom <= 4; alterFrom++ {
			g, be := newS3ECFixture(t, plain, forged, Config{S3ECBuckets: []string{"legacy"}})
			be.alterFrom = alterFrom
			status, body, code := do(t, g, rq.method, rq.path, rq.hdr)
			if bytes.Contains(body, []byte("MALLORY")) {
				t.Fatalf("%s, altered from GET %d: altered plaintext released", rq.name, alterFrom)
			}
			switch {
			case status/100 == 2 && rq.want != nil:
				if !bytes.Equal(body, rq.want) {
					t.Errorf("%s, altered from GET %d: %d bytes that are not the object's", rq.name, alterFrom, len(body))
				}
			case status/100 == 2:
				t.Errorf("%s, altered from GET %d: copy %d %s", rq.name, alterFrom, status, body)
			default:
				errored = true
				if code != "InternalError" {
					t.Errorf("%s, altered from GET %d: status %d code %q", rq.name, alterFrom, status, code)
				}
			}
			if be.puts != 0 {
				t.Errorf("%s, altered from GET %d: %d PUTs reached the backend", rq.name, alterFrom, be.puts)
			}
			big := 0
			for _, n := range be.readPer {
				if n > format.MaxTrailerSize {
					big++
				}
			}
			if big != 1 {
				t.Errorf("%s, altered from GET %d: the object's bytes were read %d times (%v)", rq.name, alterFrom, big, be.readPer)
			}
			if n := g.s3ec.spool.inUse(); n != 0 {
				t.Errorf("%s: %d spool bytes still reserved", rq.name, n)
			}
		}
		if !errored {
			t.Errorf("%s: no alteration was ever detected", rq.name)
		}
	}
}

// In a bucket not opted in, an S3EC object is an object like any other without an envelope:
// served as stored, not decrypted.
func TestS3ECOnlyInOptedInBuckets(t *testing.T) {
	plain := []byte("PAY ALICE $000100")
	for _, buckets := range [][]string{nil, {"other"}} {
		g, be := newS3ECFixture(t, plain, plain, Config{S3ECBuckets: buckets})
		status, body, _ := do(t, g, http.MethodGet, "/legacy/cheque", nil)
		if status != http.StatusOK || !bytes.Equal(body, be.honest) {
			t.Errorf("buckets %v: status %d, %d bytes, want the stored %d", buckets, status, len(body), len(be.honest))
		}
	}
	g, _ := newS3ECFixture(t, plain, plain, Config{S3ECBuckets: []string{"*"}})
	if status, body, _ := do(t, g, http.MethodGet, "/legacy/cheque", nil); status != http.StatusOK || !bytes.Equal(body, plain) {
		t.Errorf(`buckets ["*"]: status %d %q`, status, body)
	}
}

// The spool bound: an object that does not fit now is 503 SlowDown, one larger than the whole
// spool 501 NotImplemented; nothing stays reserved.
func TestS3ECSpoolLimits(t *testing.T) {
	plain := bytes.Repeat([]byte("x"), 1000)
	g, _ := newS3ECFixture(t, plain, plain, Config{S3ECBuckets: []string{"legacy"}, S3ECSpoolMaxBytes: 1500})
	held, err := g.s3ec.spool.reserve(600)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, code := do(t, g, http.MethodGet, "/legacy/cheque", nil); status != 503 || code != "SlowDown" {
		t.Errorf("spool in use: %d %s", status, code)
	}
	held.Close()
	if status, body, _ := do(t, g, http.MethodGet, "/legacy/cheque", map[string]string{"Range": "bytes=10-19"}); status != 206 || !bytes.Equal(body, plain[10:20]) {
		t.Errorf("spool free: %d %q", status, body)
	}
	g, _ = newS3ECFixture(t, plain, plain, Config{S3ECBuckets: []string{"legacy"}, S3ECSpoolMaxBytes: 999})
	if status, _, code := do(t, g, http.MethodGet, "/legacy/cheque", nil); status != 501 || code != "NotImplemented" {
		t.Errorf("object larger than the spool: %d %s", status, code)
	}
	if n := g.s3ec.spool.inUse(); n != 0 {
		t.Errorf("%d bytes still reserved", n)
	}
}

// Spool files are 0600, gone from the directory at once, bounded by their reservation, and give
// their space back once however often they are closed.
func TestSpoolArea(t *testing.T) {
	dir := t.TempDir()
	a := &spoolArea{dir: dir, max: 100}
	s, err := a.reserve(60)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("spool file left in the directory: %v", ents)
	}
	if fi, err := s.f.Stat(); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v (%v)", fi.Mode(), err)
	}
	if _, err := a.reserve(41); !errors.Is(err, errSpoolBusy) {
		t.Errorf("over the bound: %v", err)
	}
	if _, err := a.reserve(101); !errors.Is(err, errSpoolTooLarge) {
		t.Errorf("larger than the area: %v", err)
	}
	if _, err := s.Write(make([]byte, 50)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(make([]byte, 11)); err == nil {
		t.Error("write beyond the reservation accepted")
	}
	s.Close()
	s.Close()
	if a.inUse() != 0 {
		t.Errorf("%d bytes reserved after Close", a.inUse())
	}
	if _, err := (&spoolArea{dir: filepath.Join(dir, "missing"), max: 100}).reserve(1); err == nil {
		t.Error("spool in a missing directory")
	}
}
