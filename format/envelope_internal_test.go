package format

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

// TestEnvelopeCommitmentChecked builds an envelope whose sealed OK opens (the GCM tag is
// valid for its AAD) but whose KC does not belong to OK: Open must refuse it.
func TestEnvelopeCommitmentChecked(t *testing.T) {
	ok, _ := NewObjectKey()
	dk := make([]byte, 32)
	rand.Read(dk)
	e, err := SealEnvelope(ok, dk, SealParams{Kind: KindSingle, Wrap: WrapProvider, KeyID: "k", Bucket: "b", Object: "o"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Open(dk, "b", "o"); err != nil {
		t.Fatal(err)
	}
	e.commit[0] ^= 1
	aead := newAEAD(deriveKey(dk, e.salt[:], []byte(infoWrap)))
	aead.Seal(e.sealed[:0], make([]byte, 12), ok.k[:], e.aad("b", "o"))
	_, err = e.Open(dk, "b", "o")
	if !errors.Is(err, ErrAuth) || !bytes.Contains([]byte(err.Error()), []byte("commitment")) {
		t.Fatalf("forged commitment: %v", err)
	}
}
