//go:build cgo

package keys

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/s3seal/s3seal/internal/testenv"
)

// openTestPKCS11 opens a provider on tok with the given default key, closed at the end of the
// test (SoftHSM2 reads SOFTHSM2_CONF again only once every context of the process is closed).
func openTestPKCS11(t *testing.T, tok *testenv.SoftHSMToken, key string) *PKCS11 {
	t.Helper()
	p, err := OpenPKCS11(PKCS11Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Key: key})
	if err != nil {
		t.Fatalf("OpenPKCS11: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

var p11ctx = map[string]string{"gateway": "s3seal", "bucket": "b1"}

func mustCreate(t *testing.T, p *PKCS11, name string) KeyVersion {
	t.Helper()
	kv, err := p.CreateKey(name)
	if err != nil {
		t.Fatalf("CreateKey(%q): %v", name, err)
	}
	return kv
}

func mustGenerate(t *testing.T, p *PKCS11, keyID string) (string, []byte, []byte) {
	t.Helper()
	id, dk, w, err := p.GenerateDataKeyID(context.Background(), keyID, p11ctx)
	if err != nil {
		t.Fatalf("GenerateDataKeyID(%q): %v", keyID, err)
	}
	return id, dk, w
}

func TestPKCS11RoundTrip(t *testing.T) {
	tok := testenv.SoftHSM(t)
	p := openTestPKCS11(t, tok, "k")
	if kv := mustCreate(t, p, "k"); kv != (KeyVersion{ID: "k/v1/gcm", Name: "k", Version: 1, Active: true}) {
		t.Fatalf("CreateKey = %+v", kv)
	}
	if err := p.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if got := p.DefaultKeyID(); got != "k" {
		t.Errorf("DefaultKeyID = %q, want k", got)
	}
	seen := map[string]bool{}
	for _, keyID := range []string{"", "k", "k/v1", "k/v1/gcm"} {
		id, dk, w := mustGenerate(t, p, keyID)
		if id != "k/v1/gcm" {
			t.Errorf("GenerateDataKeyID(%q) used %q, want k/v1/gcm", keyID, id)
		}
		if len(dk) != DataKeySize || len(w) != PKCS11BlobSize {
			t.Fatalf("sizes: key %d, blob %d", len(dk), len(w))
		}
		if bytes.Contains(w, dk) {
			t.Error("the wrapped key contains the data key")
		}
		if seen[string(dk)] {
			t.Error("two data keys are equal")
		}
		seen[string(dk)] = true
		got, err := p.Decrypt(context.Background(), id, w, p11ctx)
		if err != nil || !bytes.Equal(got, dk) {
			t.Fatalf("Decrypt: %v (equal %v)", err, bytes.Equal(got, dk))
		}
	}

	// The key is in the token, not in the provider: a second provider opens the blob.
	id, dk, w := mustGenerate(t, p, "")
	p2 := openTestPKCS11(t, tok, "")
	got, err := p2.Decrypt(context.Background(), id, w, p11ctx)
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("Decrypt by a second provider: %v", err)
	}
}

func TestPKCS11ContextBinding(t *testing.T) {
	tok := testenv.SoftHSM(t)
	p := openTestPKCS11(t, tok, "k")
	mustCreate(t, p, "k")
	mustCreate(t, p, "other")
	id, _, w := mustGenerate(t, p, "")
	bad := func(what, keyID string, blob []byte, encCtx map[string]string) {
		t.Helper()
		dk, err := p.Decrypt(context.Background(), keyID, blob, encCtx)
		if !errors.Is(err, ErrInvalidCiphertext) || dk != nil {
			t.Errorf("%s: Decrypt = %d bytes, %v; want ErrInvalidCiphertext", what, len(dk), err)
		}
	}
	bad("other bucket", id, w, map[string]string{"gateway": "s3seal", "bucket": "b2"})
	bad("extra pair", id, w, map[string]string{"gateway": "s3seal", "bucket": "b1", "x": ""})
	bad("missing pair", id, w, map[string]string{"gateway": "s3seal"})
	bad("no context", id, w, nil)
	bad("other key", "other/v1/gcm", w, p11ctx)
	bad("truncated", id, w[:len(w)-1], p11ctx)
	bad("empty", id, nil, p11ctx)
	for _, i := range []int{0, 1, 1 + pkcs11NonceSize, len(w) - 1} {
		c := slices.Clone(w)
		c[i] ^= 0x01
		bad("byte flipped", id, c, p11ctx)
	}
	// The version is authenticated too: the blob of v1 does not open under v2.
	if _, err := p.RotateKey("k"); err != nil {
		t.Fatal(err)
	}
	bad("other version", "k/v2/gcm", w, p11ctx)
	if _, err := p.Decrypt(context.Background(), id, w, p11ctx); err != nil {
		t.Fatalf("the intact blob no longer opens: %v", err)
	}
}

func TestPKCS11KeyIDErrors(t *testing.T) {
	tok := testenv.SoftHSM(t)
	p := openTestPKCS11(t, tok, "")
	mustCreate(t, p, "k")
	_, _, w := mustGenerate(t, p, "k")
	if _, _, _, err := p.GenerateDataKeyID(context.Background(), "", nil); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("no default key: %v, want ErrKeyNotFound", err)
	}
	for _, id := range []string{"nope", "nope/v1/gcm", "k/v2/gcm", "k/v1/kwp", "k/v0", "k/x", "bad name", "a/v1/gcm/x"} {
		if _, _, _, err := p.GenerateDataKeyID(context.Background(), id, nil); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("GenerateDataKeyID(%q): %v, want ErrKeyNotFound", id, err)
		}
	}
	for _, id := range []string{"k", "nope/v1/gcm", "k/v2/gcm", "k/v1/kwp", ""} {
		if dk, err := p.Decrypt(context.Background(), id, w, p11ctx); !errors.Is(err, ErrKeyNotFound) || dk != nil {
			t.Errorf("Decrypt(%q): %v, want ErrKeyNotFound", id, err)
		}
	}
}

// TestPKCS11KEKNonExtractable asks the token itself, through a raw PKCS#11 session: the KEK's
// attributes say sensitive and never extractable, its value cannot be read, it cannot be
// wrapped out under another key, and the attributes cannot be relaxed. A control key made
// extractable in the same session is wrapped out, so the refusals are the KEK's.
func TestPKCS11KEKNonExtractable(t *testing.T) {
	tok := testenv.SoftHSM(t)
	p := openTestPKCS11(t, tok, "k")
	mustCreate(t, p, "k")
	conn, err := p.acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer p.release(conn, nil)
	m := conn.probe // the same library, initialised and logged in by the provider's context
	slots, err := m.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	var slot uint
	found := false
	for _, s := range slots {
		if ti, err := m.GetTokenInfo(s); err == nil && ti.Label == tok.Label {
			slot, found = s, true
		}
	}
	if !found {
		t.Fatal("token not found")
	}
	sh, err := m.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer m.CloseSession(sh)

	if err := m.FindObjectsInit(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, "k/v1")}); err != nil {
		t.Fatal(err)
	}
	objs, _, err := m.FindObjects(sh, 10)
	m.FindObjectsFinal(sh)
	if err != nil || len(objs) != 1 {
		t.Fatalf("find k/v1: %d objects, %v", len(objs), err)
	}
	kek := objs[0]

	attrs, err := m.GetAttributeValue(sh, kek, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_SENSITIVE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, nil),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil),
	})
	if err != nil {
		t.Fatalf("GetAttributeValue: %v", err)
	}
	want := []string{"true", "false", "true", "true", "true", "false"}
	names := []string{"CKA_SENSITIVE", "CKA_EXTRACTABLE", "CKA_ALWAYS_SENSITIVE", "CKA_NEVER_EXTRACTABLE", "CKA_TOKEN", "CKA_WRAP"}
	for i, w := range want {
		got := "false"
		if len(attrs[i].Value) == 1 && attrs[i].Value[0] != 0 {
			got = "true"
		}
		if got != w {
			t.Errorf("%s = %s, want %s", names[i], got, w)
		}
	}
	if n := len(attrs[6].Value); n == 0 || attrs[6].Value[0] != DataKeySize {
		t.Errorf("CKA_VALUE_LEN = %v, want %d", attrs[6].Value, DataKeySize)
	}

	// Its value cannot be read.
	if v, err := m.GetAttributeValue(sh, kek, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); err == nil {
		t.Fatalf("CKA_VALUE of the KEK was read (%d bytes)", len(v[0].Value))
	} else if !strings.Contains(err.Error(), "CKR_ATTRIBUTE_SENSITIVE") {
		t.Errorf("reading CKA_VALUE: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
	}

	// It cannot be wrapped out under a key of the caller's choosing.
	gen := func(extractable *pkcs11.Attribute) pkcs11.ObjectHandle {
		t.Helper()
		h, err := m.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, DataKeySize),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
			extractable,
		})
		if err != nil {
			t.Fatalf("GenerateKey: %v", err)
		}
		return h
	}
	wrapping := gen(pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false))
	control := gen(pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true))
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP, nil)}
	if out, err := m.WrapKey(sh, mech, wrapping, control); err != nil || len(out) != DataKeySize+8 {
		t.Fatalf("control: wrapping an extractable key: %d bytes, %v", len(out), err)
	}
	if out, err := m.WrapKey(sh, mech, wrapping, kek); err == nil {
		t.Fatalf("the KEK was wrapped out (%d bytes)", len(out))
	} else if !strings.Contains(err.Error(), "CKR_KEY_UNEXTRACTABLE") {
		t.Errorf("wrapping the KEK: %v, want CKR_KEY_UNEXTRACTABLE", err)
	}

	// And it cannot be made extractable or non-sensitive afterwards.
	for _, a := range []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
	} {
		if err := m.SetAttributeValue(sh, kek, []*pkcs11.Attribute{a}); err == nil {
			t.Errorf("attribute 0x%x of the KEK was changed", a.Type)
		}
	}
}

func TestPKCS11Lifecycle(t *testing.T) {
	tok := testenv.SoftHSM(t)
	p := openTestPKCS11(t, tok, "k")
	ctx := context.Background()
	mustCreate(t, p, "k")
	if _, err := p.CreateKey("k"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateKey of an existing name: %v, want fs.ErrExist", err)
	}
	if _, err := p.CreateKey("bad/name"); err == nil {
		t.Error("CreateKey of an invalid name succeeded")
	}
	if _, err := p.RotateKey("nope"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("RotateKey of a missing name: %v, want ErrKeyNotFound", err)
	}
	id1, dk1, w1 := mustGenerate(t, p, "")

	kv2, err := p.RotateKey("k")
	if err != nil {
		t.Fatal(err)
	}
	if kv2 != (KeyVersion{ID: "k/v2/gcm", Name: "k", Version: 2, Active: true}) {
		t.Errorf("RotateKey = %+v", kv2)
	}
	mustCreate(t, p, "a")
	vs, err := p.KeyVersions()
	if err != nil {
		t.Fatal(err)
	}
	wantVs := []KeyVersion{
		{ID: "a/v1/gcm", Name: "a", Version: 1, Active: true},
		{ID: "k/v1/gcm", Name: "k", Version: 1},
		{ID: "k/v2/gcm", Name: "k", Version: 2, Active: true},
	}
	if !slices.Equal(vs, wantVs) {
		t.Errorf("KeyVersions = %+v, want %+v", vs, wantVs)
	}

	// New data keys use v2; v1 still opens what it wrapped.
	id2, dk2, w2 := mustGenerate(t, p, "")
	if id2 != "k/v2/gcm" {
		t.Errorf("after rotate, new data keys use %q", id2)
	}
	if id, _, _ := mustGenerate(t, p, "k/v1/gcm"); id != "k/v1/gcm" {
		t.Errorf("explicit v1: used %q", id)
	}
	if got, err := p.Decrypt(ctx, id1, w1, p11ctx); err != nil || !bytes.Equal(got, dk1) {
		t.Fatalf("v1 after rotate: %v", err)
	}

	// A rotation by another process (here another provider) is picked up without a restart.
	other := openTestPKCS11(t, tok, "k")
	if _, err := other.RotateKey("k"); err != nil {
		t.Fatal(err)
	}
	if id, _, _ := mustGenerate(t, p, ""); id != "k/v3/gcm" {
		t.Errorf("after a rotation by another provider, new data keys use %q", id)
	}

	// Retire: the active version is refused, an older one goes away for good.
	if err := p.RetireKey("k/v3/gcm"); err == nil {
		t.Error("RetireKey of the active version succeeded")
	}
	if err := p.RetireKey("k"); err == nil {
		t.Error("RetireKey without a version succeeded")
	}
	if err := p.RetireKey("k/v1/gcm"); err != nil {
		t.Fatalf("RetireKey k/v1: %v", err)
	}
	if err := p.RetireKey("k/v1"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("RetireKey twice: %v, want ErrKeyNotFound", err)
	}
	if dk, err := p.Decrypt(ctx, id1, w1, p11ctx); !errors.Is(err, ErrKeyNotFound) || dk != nil {
		t.Errorf("Decrypt of a retired version: %v, want ErrKeyNotFound", err)
	}
	if got, err := p.Decrypt(ctx, id2, w2, p11ctx); err != nil || !bytes.Equal(got, dk2) {
		t.Errorf("v2 after retiring v1: %v", err)
	}
	vs, err = p.KeyVersions()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(vs); got != 3 || vs[1].ID != "k/v2/gcm" || vs[1].Active || !vs[2].Active {
		t.Errorf("KeyVersions after retire = %+v", vs)
	}
}

func TestPKCS11Concurrent(t *testing.T) {
	tok := testenv.SoftHSM(t)
	p := openTestPKCS11(t, tok, "k")
	mustCreate(t, p, "k")
	const workers, rounds = 12, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds+2)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			encCtx := map[string]string{"bucket": string(rune('a' + i))}
			for range rounds {
				id, dk, w, err := p.GenerateDataKeyID(context.Background(), "", encCtx)
				if err != nil {
					errs <- err
					return
				}
				got, err := p.Decrypt(context.Background(), id, w, encCtx)
				if err != nil || !bytes.Equal(got, dk) {
					errs <- errors.Join(errors.New("round trip failed"), err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 2 {
			if _, err := p.RotateKey("k"); err != nil {
				errs <- err
			}
			if _, err := p.KeyVersions(); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// panickyAEAD is a cipher.AEAD whose Seal panics, as crypto11's does when the token call fails.
type panickyAEAD struct{ v any }

func (panickyAEAD) NonceSize() int { return pkcs11NonceSize }
func (panickyAEAD) Overhead() int  { return pkcs11TagSize }
func (a panickyAEAD) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	panic(a.v)
}
func (panickyAEAD) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	return nil, errors.New("not used")
}

func TestPKCS11SealRecovering(t *testing.T) {
	cause := errors.New("C_Encrypt: pkcs11: 0x5: CKR_GENERAL_ERROR")
	for _, v := range []any{cause, "a string"} {
		out, err := sealRecovering(panickyAEAD{v}, make([]byte, pkcs11NonceSize), make([]byte, DataKeySize), nil)
		if err == nil || out != nil {
			t.Errorf("panic %v: got %d bytes, %v; want an error", v, len(out), err)
		}
	}
	if _, err := sealRecovering(panickyAEAD{cause}, nil, nil, nil); !errors.Is(err, cause) {
		t.Errorf("the panic's error is not kept: %v", err)
	}
}
