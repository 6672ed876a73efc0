//go:build !cgo

package keys

import "context"

// PKCS11 is absent from a build without cgo: OpenPKCS11 fails with ErrPKCS11NeedsCgo.
type PKCS11 struct{}

// OpenPKCS11 fails with ErrPKCS11NeedsCgo: this gateway was built with CGO_ENABLED=0.
func OpenPKCS11(PKCS11Config) (*PKCS11, error) { return nil, ErrPKCS11NeedsCgo }

// DefaultKeyID returns "".
func (*PKCS11) DefaultKeyID() string { return "" }

// GenerateDataKey fails with ErrPKCS11NeedsCgo.
func (*PKCS11) GenerateDataKey(context.Context, string, map[string]string) (plaintext, wrapped []byte, err error) {
	return nil, nil, ErrPKCS11NeedsCgo
}

// GenerateDataKeyID fails with ErrPKCS11NeedsCgo.
func (*PKCS11) GenerateDataKeyID(context.Context, string, map[string]string) (usedKeyID string, plaintext, wrapped []byte, err error) {
	return "", nil, nil, ErrPKCS11NeedsCgo
}

// Decrypt fails with ErrPKCS11NeedsCgo.
func (*PKCS11) Decrypt(context.Context, string, []byte, map[string]string) ([]byte, error) {
	return nil, ErrPKCS11NeedsCgo
}

// Ping fails with ErrPKCS11NeedsCgo.
func (*PKCS11) Ping(context.Context) error { return ErrPKCS11NeedsCgo }

// Close does nothing.
func (*PKCS11) Close() error { return nil }

// CreateKey fails with ErrPKCS11NeedsCgo.
func (*PKCS11) CreateKey(string) (KeyVersion, error) { return KeyVersion{}, ErrPKCS11NeedsCgo }

// RotateKey fails with ErrPKCS11NeedsCgo.
func (*PKCS11) RotateKey(string) (KeyVersion, error) { return KeyVersion{}, ErrPKCS11NeedsCgo }

// KeyVersions fails with ErrPKCS11NeedsCgo.
func (*PKCS11) KeyVersions() ([]KeyVersion, error) { return nil, ErrPKCS11NeedsCgo }

// RetireKey fails with ErrPKCS11NeedsCgo.
func (*PKCS11) RetireKey(string) error { return ErrPKCS11NeedsCgo }
