//go:build cgo

package keys

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

// wrappedUnder makes a key "k" in tok with the right PIN, wraps a data key under it, and closes
// that provider again, so that the test's next provider is the only one logged in (PKCS#11
// login state is per process: an open context would log the next one in whatever its PIN).
func wrappedUnder(t *testing.T, tok *testenv.SoftHSMToken) (id string, dk, wrapped []byte) {
	t.Helper()
	p, err := OpenPKCS11(PKCS11Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mustCreate(t, p, "k")
	return mustGenerate(t, p, "")
}

func TestPKCS11WrongPIN(t *testing.T) {
	tok := testenv.SoftHSM(t)
	id, _, w := wrappedUnder(t, tok)
	for _, pin := range []string{"0000-wrong", strings.Repeat("9", 300)} {
		p, err := OpenPKCS11(PKCS11Config{Module: tok.Module, TokenLabel: tok.Label, PIN: pin, Key: "k"})
		if err != nil {
			t.Fatalf("OpenPKCS11 with a wrong PIN failed (the gateway must start): %v", err)
		}
		p.retry = 0 // no delay between attempts: a refused PIN must still not be tried again
		check := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, ErrAccessDenied) {
				t.Errorf("%s: %v, want ErrAccessDenied", what, err)
			}
			if err != nil && (strings.Contains(err.Error(), pin) || strings.Contains(err.Error(), tok.PIN)) {
				t.Errorf("%s: the error shows a PIN: %v", what, err)
			}
		}
		dk, wrapped, err := p.GenerateDataKey(context.Background(), "", p11ctx)
		check("GenerateDataKey", err)
		if dk != nil || wrapped != nil {
			t.Error("GenerateDataKey returned a key with a wrong PIN")
		}
		dk, err = p.Decrypt(context.Background(), id, w, p11ctx)
		check("Decrypt", err)
		if dk != nil {
			t.Error("Decrypt returned a key with a wrong PIN")
		}
		check("Ping", p.Ping(context.Background()))
		_, err = p.KeyVersions()
		check("KeyVersions", err)
		_, err = p.RotateKey("k")
		check("RotateKey", err)
		if p.attempts != 1 {
			t.Errorf("%d login attempts with a refused PIN, want 1", p.attempts)
		}
		p.Close()
	}
}

// TestPKCS11TokenRemoved takes the token's directory away while a provider uses it: writes and
// reads fail with ErrUnavailable, and once the directory is back the same blob opens again.
func TestPKCS11TokenRemoved(t *testing.T) {
	tok := testenv.SoftHSM(t)
	p := openTestPKCS11(t, tok, "k")
	mustCreate(t, p, "k")
	id, dk, w := mustGenerate(t, p, "")
	p.retry = 0

	dirs, err := os.ReadDir(tok.Dir)
	if err != nil || len(dirs) != 1 {
		t.Fatalf("token directory: %v, %d entries", err, len(dirs))
	}
	tokenDir := filepath.Join(tok.Dir, dirs[0].Name())
	away := filepath.Join(t.TempDir(), "away")
	if err := os.Rename(tokenDir, away); err != nil {
		t.Fatal(err)
	}
	unavailable := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with the token gone: %v, want ErrUnavailable", what, err)
		}
	}
	for range 2 { // on the open connection, then on a reconnection
		got, wrapped, err := p.GenerateDataKey(context.Background(), "", p11ctx)
		unavailable("GenerateDataKey", err)
		if got != nil || wrapped != nil {
			t.Error("GenerateDataKey returned a key with the token gone")
		}
		got, err = p.Decrypt(context.Background(), id, w, p11ctx)
		unavailable("Decrypt", err)
		if got != nil {
			t.Error("Decrypt returned a key with the token gone")
		}
		unavailable("Ping", p.Ping(context.Background()))
	}

	if err := os.Rename(away, tokenDir); err != nil {
		t.Fatal(err)
	}
	got, err := p.Decrypt(context.Background(), id, w, p11ctx)
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("Decrypt once the token is back: %v", err)
	}
	if _, _, err := p.GenerateDataKey(context.Background(), "", p11ctx); err != nil {
		t.Fatalf("GenerateDataKey once the token is back: %v", err)
	}
}

// TestPKCS11TokenDeleted deletes the token with softhsm2-util while a provider uses it, and
// starts a provider on a token label that is not there.
func TestPKCS11TokenDeleted(t *testing.T) {
	tok := testenv.SoftHSM(t)
	p := openTestPKCS11(t, tok, "k")
	mustCreate(t, p, "k")
	id, _, w := mustGenerate(t, p, "")
	tok.DeleteToken(t)
	if _, _, err := p.GenerateDataKey(context.Background(), "", p11ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("GenerateDataKey: %v, want ErrUnavailable", err)
	}
	if dk, err := p.Decrypt(context.Background(), id, w, p11ctx); !errors.Is(err, ErrUnavailable) || dk != nil {
		t.Errorf("Decrypt: %v, want ErrUnavailable", err)
	}
	p.Close()

	q, err := OpenPKCS11(PKCS11Config{Module: tok.Module, TokenLabel: "no-such-token", PIN: tok.PIN, Key: "k"})
	if err != nil {
		t.Fatalf("OpenPKCS11 of a missing token failed (the gateway must start): %v", err)
	}
	defer q.Close()
	if err := q.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping of a missing token: %v, want ErrUnavailable", err)
	}
	if _, _, err := q.GenerateDataKey(context.Background(), "", p11ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("GenerateDataKey of a missing token: %v, want ErrUnavailable", err)
	}
	if q.attempts != 1 {
		t.Errorf("%d connection attempts within the retry interval, want 1", q.attempts)
	}
}

func TestPKCS11OpenErrors(t *testing.T) {
	tok := testenv.SoftHSM(t)
	notLib := filepath.Join(t.TempDir(), "not-a-library.so")
	if err := os.WriteFile(notLib, []byte("not ELF"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		cfg  PKCS11Config
		want string // in the error message
	}{
		{"no module", PKCS11Config{TokenLabel: tok.Label}, "no module"},
		{"missing module", PKCS11Config{Module: "/nonexistent/libpkcs11.so", TokenLabel: tok.Label}, "no such file"},
		{"module is a directory", PKCS11Config{Module: t.TempDir(), TokenLabel: tok.Label}, "not a regular file"},
		{"module is not a library", PKCS11Config{Module: notLib, TokenLabel: tok.Label}, errPKCS11Module.Error()},
		{"no token label", PKCS11Config{Module: tok.Module}, "no token label"},
		{"invalid key name", PKCS11Config{Module: tok.Module, TokenLabel: tok.Label, Key: "a b"}, "only A-Z"},
		{"negative sessions", PKCS11Config{Module: tok.Module, TokenLabel: tok.Label, Sessions: -1}, "negative"},
	} {
		c.cfg.PIN = tok.PIN
		p, err := OpenPKCS11(c.cfg)
		if err == nil {
			p.Close()
			t.Errorf("%s: OpenPKCS11 succeeded", c.what)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error about %q", c.what, err, c.want)
		}
	}
}

func TestPKCS11Closed(t *testing.T) {
	tok := testenv.SoftHSM(t)
	p := openTestPKCS11(t, tok, "k")
	mustCreate(t, p, "k")
	id, _, w := mustGenerate(t, p, "")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.GenerateDataKey(context.Background(), "", p11ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("GenerateDataKey after Close: %v", err)
	}
	if _, err := p.Decrypt(context.Background(), id, w, p11ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Decrypt after Close: %v", err)
	}
	if err := p.Ping(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after Close: %v", err)
	}
	if _, err := p.CreateKey("x"); !errors.Is(err, ErrClosed) {
		t.Errorf("CreateKey after Close: %v", err)
	}
}
