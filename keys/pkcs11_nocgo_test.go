//go:build !cgo

package keys

import (
	"context"
	"errors"
	"testing"
)

func TestPKCS11WithoutCgo(t *testing.T) {
	p, err := OpenPKCS11(PKCS11Config{Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "t", PIN: "1234", Key: "k"})
	if !errors.Is(err, ErrPKCS11NeedsCgo) || p != nil {
		t.Fatalf("OpenPKCS11 = %v, %v; want ErrPKCS11NeedsCgo", p, err)
	}
	var q *PKCS11
	if _, _, err := q.GenerateDataKey(context.Background(), "", nil); !errors.Is(err, ErrPKCS11NeedsCgo) {
		t.Errorf("GenerateDataKey: %v", err)
	}
	if _, err := q.Decrypt(context.Background(), "k/v1/gcm", nil, nil); !errors.Is(err, ErrPKCS11NeedsCgo) {
		t.Errorf("Decrypt: %v", err)
	}
	if _, err := q.KeyVersions(); !errors.Is(err, ErrPKCS11NeedsCgo) {
		t.Errorf("KeyVersions: %v", err)
	}
}
