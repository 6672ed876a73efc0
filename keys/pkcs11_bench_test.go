//go:build cgo

package keys

import (
	"context"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

// BenchmarkPKCS11 measures one data key generated and wrapped in the token, and one unwrapped,
// against SoftHSM2 (a real HSM is slower: network and hardware): what an uncached write or read
// costs. go test -run '^$' -bench PKCS11 ./keys/
func BenchmarkPKCS11(b *testing.B) {
	tok := testenv.SoftHSM(b)
	p, err := OpenPKCS11(PKCS11Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Key: "k"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if _, err := p.CreateKey("k"); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("GenerateDataKey", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := p.GenerateDataKey(ctx, "", p11ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	id, _, w, err := p.GenerateDataKeyID(ctx, "", p11ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Decrypt", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.Decrypt(ctx, id, w, p11ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecryptParallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := p.Decrypt(ctx, id, w, p11ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
