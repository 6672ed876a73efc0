package keys

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

var bucketCtx = map[string]string{"gateway": "s3seal", "bucket": "photos"}

// writeKeyFile writes a key file with the given mode, bypassing the code under test.
func writeKeyFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask may have masked bits
		t.Fatal(err)
	}
	return p
}

func b64key(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }

func TestCreateLocalFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub", "dir")
	p := filepath.Join(dir, "keys.yaml")
	lf, err := CreateLocalFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	dst, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dst.Mode().Perm()&0o077 != 0 {
		t.Errorf("created directory mode %04o, want no group/other bits", dst.Mode().Perm())
	}
	if got := lf.KeyIDs(); !slices.Equal(got, []string{"k1"}) {
		t.Errorf("KeyIDs = %v, want [k1]", got)
	}
	if lf.DefaultKeyID() != "k1" {
		t.Errorf("DefaultKeyID = %q", lf.DefaultKeyID())
	}
	// The file is valid YAML of the documented shape, parsed here with the YAML library.
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var y struct {
		Active string            `yaml:"active"`
		Keys   map[string]string `yaml:"keys"`
	}
	if err := yaml.Unmarshal(raw, &y); err != nil {
		t.Fatalf("written file is not YAML: %v\n%s", err, raw)
	}
	k, err := base64.StdEncoding.DecodeString(y.Keys["k1"])
	if y.Active != "k1" || err != nil || len(k) != 32 || bytes.Equal(k, make([]byte, 32)) {
		t.Fatalf("written file: active %q, k1 %d bytes (%v)", y.Active, len(k), err)
	}
	// The key in the file is the one used: a blob wrapped by lf opens with the file's key,
	// by an implementation written here from FORMAT.md.
	_, wrapped, err := lf.GenerateDataKey(context.Background(), "", bucketCtx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := specUnwrap(k, "k1", bucketCtx, wrapped); err != nil {
		t.Fatalf("blob does not open with the key in the file: %v", err)
	}

	if _, err := CreateLocalFile(p); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second CreateLocalFile: %v, want ErrExist", err)
	}
}

func TestLoadOrCreateLocalFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys.yaml")
	lf1, created, err := LoadOrCreateLocalFile(p)
	if err != nil || !created {
		t.Fatalf("first: created=%v err=%v", created, err)
	}
	defer lf1.Close()
	pt, wrapped, err := lf1.GenerateDataKey(context.Background(), "", bucketCtx)
	if err != nil {
		t.Fatal(err)
	}
	lf2, created, err := LoadOrCreateLocalFile(p)
	if err != nil || created {
		t.Fatalf("second: created=%v err=%v", created, err)
	}
	defer lf2.Close()
	got, err := lf2.Decrypt(context.Background(), "k1", wrapped, bucketCtx)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("reopened file does not unwrap: %v", err)
	}
	// An unreadable file is an error, not a reason to create a new one.
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, created, err := LoadOrCreateLocalFile(p); err == nil || created {
		t.Fatalf("world-readable file: created=%v err=%v", created, err)
	}
}

func TestOpenLocalFileModeCheck(t *testing.T) {
	content := "active: k1\nkeys:\n  k1: " + b64key(1) + "\n"
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o602, 0o610} {
		p := writeKeyFile(t, content, mode)
		_, err := OpenLocalFile(p)
		if err == nil {
			t.Errorf("mode %04o accepted", mode)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%04o", mode)) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: unclear error %q", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		lf, err := OpenLocalFile(writeKeyFile(t, content, mode))
		if err != nil {
			t.Errorf("mode %04o refused: %v", mode, err)
			continue
		}
		lf.Close()
	}
	if _, err := OpenLocalFile(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestOpenLocalFileValidation(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(make([]byte, 31))
	cases := map[string]string{
		"no keys":        "active: k1\nkeys: {}\n",
		"no active":      "keys:\n  k1: " + b64key(1) + "\n",
		"unknown active": "active: k2\nkeys:\n  k1: " + b64key(1) + "\n",
		"short key":      "active: k1\nkeys:\n  k1: " + short + "\n",
		"not base64":     "active: k1\nkeys:\n  k1: '!!!!'\n",
		"bad name":       "active: 'a b'\nkeys:\n  'a b': " + b64key(1) + "\n",
		"long name":      "active: k1\nkeys:\n  k1: " + b64key(1) + "\n  " + strings.Repeat("x", 65) + ": " + b64key(2) + "\n",
		"unknown field":  "active: k1\nkeyz: 1\nkeys:\n  k1: " + b64key(1) + "\n",
		"duplicate":      "active: k1\nkeys:\n  k1: " + b64key(1) + "\n  k1: " + b64key(2) + "\n",
		"not yaml":       "{{{",
		"keys a list":    "active: k1\nkeys: [a, b]\n",
	}
	for name, content := range cases {
		if _, err := OpenLocalFile(writeKeyFile(t, content, 0o600)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The longest allowed name and every allowed character work.
	long := strings.Repeat("a", 64)
	ok := "active: " + long + "\nkeys:\n  " + long + ": " + b64key(1) + "\n  A.z_0-9: " + b64key(2) + "\n"
	lf, err := OpenLocalFile(writeKeyFile(t, ok, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if got := lf.KeyIDs(); !slices.Equal(got, []string{"A.z_0-9", long}) {
		t.Errorf("KeyIDs = %v", got)
	}
}

// specUnwrap opens a local blob as FORMAT.md section 7 describes, independently of local.go.
func specUnwrap(kek []byte, name string, encCtx map[string]string, blob []byte) ([]byte, error) {
	if len(blob) < 13 || blob[0] != 1 {
		return nil, errors.New("bad blob")
	}
	lp := func(s string) []byte {
		return append([]byte{byte(len(s) >> 24), byte(len(s) >> 16), byte(len(s) >> 8), byte(len(s))}, s...)
	}
	aad := append([]byte("s3seal/1 local"), lp(name)...)
	var ks []string
	for k := range encCtx {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	for _, k := range ks {
		aad = append(aad, lp(k)...)
		aad = append(aad, lp(encCtx[k])...)
	}
	blk, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	return g.Open(nil, blob[1:13], blob[13:], aad)
}

func TestLocalWrapKnownAnswer(t *testing.T) {
	raw, err := os.ReadFile("testdata/local_wrap_vector.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		KEK     string            `json:"kek_hex"`
		Name    string            `json:"name"`
		Context map[string]string `json:"context"`
		DK      string            `json:"dk_hex"`
		Blob    string            `json:"blob_hex"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	kek, _ := hex.DecodeString(v.KEK)
	dk, _ := hex.DecodeString(v.DK)
	blob, _ := hex.DecodeString(v.Blob)
	content := fmt.Sprintf("active: %s\nkeys:\n  %s: %s\n", v.Name, v.Name, base64.StdEncoding.EncodeToString(kek))
	lf, err := OpenLocalFile(writeKeyFile(t, content, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	got, err := lf.Decrypt(context.Background(), v.Name, blob, v.Context)
	if err != nil {
		t.Fatalf("vector does not open: %v", err)
	}
	if !bytes.Equal(got, dk) {
		t.Fatalf("vector opens to %x, want %x", got, dk)
	}
	// And the other direction: what GenerateDataKey wraps opens with the spec implementation.
	pt, wrapped, err := lf.GenerateDataKey(context.Background(), v.Name, v.Context)
	if err != nil {
		t.Fatal(err)
	}
	if len(wrapped) != LocalBlobSize || len(pt) != DataKeySize {
		t.Fatalf("sizes: blob %d, key %d", len(wrapped), len(pt))
	}
	spec, err := specUnwrap(kek, v.Name, v.Context, wrapped)
	if err != nil || !bytes.Equal(spec, pt) {
		t.Fatalf("spec unwrap: %v", err)
	}
}

func newTestLocal(t *testing.T) *LocalFile {
	t.Helper()
	lf, err := CreateLocalFile(filepath.Join(t.TempDir(), "keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	return lf
}

func TestLocalRotation(t *testing.T) {
	ctx := context.Background()
	lf := newTestLocal(t)
	pt1, blob1, err := lf.GenerateDataKey(ctx, "", bucketCtx)
	if err != nil {
		t.Fatal(err)
	}
	if err := lf.AddKey("k2"); err != nil {
		t.Fatal(err)
	}
	if lf.DefaultKeyID() != "k1" {
		t.Fatal("AddKey changed the active key")
	}
	if err := lf.SetActive("k2"); err != nil {
		t.Fatal(err)
	}
	used, pt2, blob2, err := lf.GenerateDataKeyID(ctx, "", bucketCtx)
	if err != nil || used != "k2" {
		t.Fatalf("after rotation: used %q, %v", used, err)
	}
	if bytes.Equal(pt1, pt2) {
		t.Fatal("two data keys are equal")
	}
	// Old blob still opens under k1, new one under k2; not the other way round.
	if got, err := lf.Decrypt(ctx, "k1", blob1, bucketCtx); err != nil || !bytes.Equal(got, pt1) {
		t.Fatalf("k1 blob after rotation: %v", err)
	}
	if got, err := lf.Decrypt(ctx, "k2", blob2, bucketCtx); err != nil || !bytes.Equal(got, pt2) {
		t.Fatalf("k2 blob: %v", err)
	}
	if _, err := lf.Decrypt(ctx, "k2", blob1, bucketCtx); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("k1 blob under k2: %v", err)
	}
	// The rotation is on disk: a fresh open sees both keys and k2 active, and the file stays 0600.
	lf2, err := OpenLocalFile(lf.path)
	if err != nil {
		t.Fatal(err)
	}
	defer lf2.Close()
	if lf2.DefaultKeyID() != "k2" || !slices.Equal(lf2.KeyIDs(), []string{"k1", "k2"}) {
		t.Fatalf("reopened: active %q keys %v", lf2.DefaultKeyID(), lf2.KeyIDs())
	}
	if got, err := lf2.Decrypt(ctx, "k1", blob1, bucketCtx); err != nil || !bytes.Equal(got, pt1) {
		t.Fatalf("k1 blob after reopen: %v", err)
	}
	// No temporary files left behind.
	entries, _ := os.ReadDir(filepath.Dir(lf.path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key file", len(entries))
	}

	if err := lf.AddKey("k2"); err == nil {
		t.Error("duplicate AddKey accepted")
	}
	if err := lf.AddKey("bad name"); err == nil {
		t.Error("invalid name accepted")
	}
	if err := lf.SetActive("nope"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("SetActive unknown: %v", err)
	}
}

func TestLocalDecryptFailures(t *testing.T) {
	ctx := context.Background()
	lf := newTestLocal(t)
	if err := lf.AddKey("k2"); err != nil {
		t.Fatal(err)
	}
	_, blob, err := lf.GenerateDataKey(ctx, "k1", bucketCtx)
	if err != nil {
		t.Fatal(err)
	}
	otherBucket := map[string]string{"gateway": "s3seal", "bucket": "other"}
	extra := map[string]string{"gateway": "s3seal", "bucket": "photos", "x": ""}
	cases := []struct {
		name   string
		keyID  string
		blob   []byte
		encCtx map[string]string
		want   error
	}{
		{"other bucket", "k1", blob, otherBucket, ErrInvalidCiphertext},
		{"extra pair", "k1", blob, extra, ErrInvalidCiphertext},
		{"nil context", "k1", blob, nil, ErrInvalidCiphertext},
		{"other key name", "k2", blob, bucketCtx, ErrInvalidCiphertext},
		{"unknown key name", "k3", blob, bucketCtx, ErrKeyNotFound},
		{"empty key name", "", blob, bucketCtx, ErrKeyNotFound},
		{"short", "k1", blob[:len(blob)-1], bucketCtx, ErrInvalidCiphertext},
		{"long", "k1", append(slices.Clone(blob), 0), bucketCtx, ErrInvalidCiphertext},
		{"empty", "k1", nil, bucketCtx, ErrInvalidCiphertext},
	}
	for i := range blob {
		tampered := slices.Clone(blob)
		tampered[i] ^= 0x80
		cases = append(cases, struct {
			name   string
			keyID  string
			blob   []byte
			encCtx map[string]string
			want   error
		}{fmt.Sprintf("bit flip at %d", i), "k1", tampered, bucketCtx, ErrInvalidCiphertext})
	}
	for _, c := range cases {
		got, err := lf.Decrypt(ctx, c.keyID, c.blob, c.encCtx)
		if !errors.Is(err, c.want) || got != nil {
			t.Errorf("%s: got %d bytes, err %v; want %v", c.name, len(got), err, c.want)
		}
	}
	// Context order does not matter (it is canonicalised), only content.
	swapped := map[string]string{"bucket": "photos", "gateway": "s3seal"}
	if _, err := lf.Decrypt(ctx, "k1", blob, swapped); err != nil {
		t.Errorf("same context: %v", err)
	}
	if _, _, err := lf.GenerateDataKey(ctx, "k9", bucketCtx); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("GenerateDataKey unknown key: %v", err)
	}
}

func TestLocalContextAmbiguity(t *testing.T) {
	// Length prefixes keep differently split contexts apart.
	ctx := context.Background()
	lf := newTestLocal(t)
	_, blob, err := lf.GenerateDataKey(ctx, "", map[string]string{"ab": "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lf.Decrypt(ctx, "k1", blob, map[string]string{"a": "bc"}); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("re-split context accepted: %v", err)
	}
}

func TestLocalClose(t *testing.T) {
	ctx := context.Background()
	lf := newTestLocal(t)
	_, blob, err := lf.GenerateDataKey(ctx, "", bucketCtx)
	if err != nil {
		t.Fatal(err)
	}
	lf.mu.RLock()
	kek := lf.keys["k1"]
	lf.mu.RUnlock()
	if err := lf.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kek, make([]byte, 32)) {
		t.Error("Close did not zero the key")
	}
	if _, err := lf.Decrypt(ctx, "k1", blob, bucketCtx); !errors.Is(err, ErrClosed) {
		t.Errorf("Decrypt after Close: %v", err)
	}
	if _, _, err := lf.GenerateDataKey(ctx, "", bucketCtx); !errors.Is(err, ErrClosed) {
		t.Errorf("GenerateDataKey after Close: %v", err)
	}
	if err := lf.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after Close: %v", err)
	}
	if err := lf.AddKey("k2"); !errors.Is(err, ErrClosed) {
		t.Errorf("AddKey after Close: %v", err)
	}
}

func TestLocalConcurrent(t *testing.T) {
	ctx := context.Background()
	lf := newTestLocal(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				used, pt, blob, err := lf.GenerateDataKeyID(ctx, "", bucketCtx)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := lf.Decrypt(ctx, used, blob, bucketCtx)
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("round trip under %s: %v", used, err)
					return
				}
			}
		}()
		if i%2 == 0 {
			name := fmt.Sprintf("r%d", i)
			if err := lf.AddKey(name); err != nil {
				t.Fatal(err)
			}
			if err := lf.SetActive(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
}

func FuzzParseLocalFile(f *testing.F) {
	f.Add([]byte("active: k1\nkeys:\n  k1: " + b64key(1) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		active, keys, err := parseLocalFile(data)
		if err != nil {
			return
		}
		if _, ok := keys[active]; !ok {
			t.Fatalf("active key %q not among the keys", active)
		}
		for name, k := range keys {
			if validKeyName(name) != nil || len(k) != DataKeySize {
				t.Fatalf("invalid key %q (%d bytes) accepted", name, len(k))
			}
		}
	})
}

func FuzzLocalDecrypt(f *testing.F) {
	f.Add("k1", []byte{1, 2, 3}, "bucket", "b")
	f.Fuzz(func(t *testing.T, name string, blob []byte, k, v string) {
		lf := &LocalFile{active: "k1", keys: map[string][]byte{"k1": bytes.Repeat([]byte{7}, 32)}}
		pt, err := lf.Decrypt(context.Background(), name, blob, map[string]string{k: v})
		if err == nil {
			t.Fatalf("random blob opened to %x", pt)
		}
		if !errors.Is(err, ErrInvalidCiphertext) && !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
