package embedded

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
)

func TestLoadOrCreateCredentials(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	id, secret, created, err := LoadOrCreateCredentials(dir)
	if err != nil || !created {
		t.Fatalf("first run: created %v, err %v", created, err)
	}
	if !regexp.MustCompile(`^AK[A-Z0-9]{18}$`).MatchString(id) {
		t.Errorf("access key id %q", id)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9]{40}$`).MatchString(secret) {
		t.Errorf("secret has the wrong shape (length %d)", len(secret))
	}
	path := filepath.Join(dir, CredentialsFile)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, mode %v", err, st.Mode())
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode: %v %v", err, st.Mode())
	}

	id2, secret2, created2, err := LoadOrCreateCredentials(dir)
	if err != nil || created2 || id2 != id || secret2 != secret {
		t.Errorf("second run: created %v, same id %v, same secret %v, err %v", created2, id2 == id, secret2 == secret, err)
	}

	other := filepath.Join(t.TempDir(), "other")
	id3, secret3, _, err := LoadOrCreateCredentials(other)
	if err != nil || id3 == id || secret3 == secret {
		t.Errorf("another dir got the same credentials (err %v)", err)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var ce *CredentialsError
	if _, _, _, err := LoadOrCreateCredentials(dir); !errors.As(err, &ce) {
		t.Errorf("world-readable file accepted: %v", err)
	}
	os.Chmod(path, 0o600)

	os.WriteFile(path, []byte("access_key_id: [unclosed\nsecret_access_key: hunter2hunter2\n"), 0o600)
	if _, _, _, err := LoadOrCreateCredentials(dir); !errors.As(err, &ce) {
		t.Errorf("broken YAML accepted: %v", err)
	} else if regexp.MustCompile("hunter2").MatchString(err.Error()) {
		t.Errorf("error message quotes the file: %v", err)
	}
	os.WriteFile(path, []byte("access_key_id: AKX\nsecret_access_key: \"\"\n"), 0o600)
	if _, _, _, err := LoadOrCreateCredentials(dir); !errors.As(err, &ce) {
		t.Errorf("empty secret accepted: %v", err)
	}
	os.WriteFile(path, []byte("access_key_id: mine\nsecret_access_key: my-own-secret\n"), 0o600)
	if id, secret, created, err := LoadOrCreateCredentials(dir); err != nil || created || id != "mine" || secret != "my-own-secret" {
		t.Errorf("hand-written file: %q %v %v", id, created, err)
	}
}

func TestCredentialsConcurrentFirstRun(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	ids, secrets, made := make([]string, n), make([]string, n), make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			ids[i], secrets[i], made[i], err = LoadOrCreateCredentials(dir)
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if made[i] {
			creators++
		}
		if ids[i] != ids[0] || secrets[i] != secrets[0] {
			t.Errorf("caller %d got other credentials", i)
		}
	}
	if creators != 1 {
		t.Errorf("%d callers report creating the file", creators)
	}
}

func TestRandomStringAlphabet(t *testing.T) {
	seen := map[byte]bool{}
	for range 200 {
		for _, c := range []byte(randomString("abc", 50)) {
			seen[c] = true
		}
	}
	if len(seen) != 3 || !seen['a'] || !seen['b'] || !seen['c'] {
		t.Errorf("characters drawn: %v", seen)
	}
}
