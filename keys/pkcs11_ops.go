//go:build cgo

package keys

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// DefaultKeyID returns the configured key name (PKCS11Config.Key). GenerateDataKeyID resolves
// it to its newest version at each call, so a rotation made by another process (the `gateway
// keys` command) is used without a restart; the id it returns is the one to record.
func (p *PKCS11) DefaultKeyID() string { return p.cfg.Key }

// Ping opens the token if needed and checks that the default key has a version in it (without a
// default key, only that the token opens and answers).
func (p *PKCS11) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("keys: pkcs11 Ping: %w", err)
	}
	return p.with(func(c *p11conn) error {
		if p.cfg.Key == "" {
			_, err := p.listVersions(c)
			return err
		}
		_, _, err := p.newestVersion(c, p.cfg.Key)
		return err
	})
}

// GenerateDataKey returns a new random data key wrapped under keyID ("" = the default key).
func (p *PKCS11) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (plaintext, wrapped []byte, err error) {
	_, plaintext, wrapped, err = p.GenerateDataKeyID(ctx, keyID, encCtx)
	return plaintext, wrapped, err
}

// GenerateDataKeyID returns a data key from the gateway's CSPRNG, encrypted in the token with
// AES-256-GCM under the key version keyID names ("" = the default key's newest version, a bare
// name = that name's newest version, "<name>/v<N>/gcm" = exactly that version), and the full key
// id used, which is what must be recorded with the wrapped key.
func (p *PKCS11) GenerateDataKeyID(ctx context.Context, keyID string, encCtx map[string]string) (usedKeyID string, plaintext, wrapped []byte, err error) {
	if err := ctx.Err(); err != nil {
		return "", nil, nil, fmt.Errorf("keys: pkcs11 GenerateDataKey: %w", err)
	}
	if keyID == "" {
		keyID = p.cfg.Key
	}
	if keyID == "" {
		return "", nil, nil, fmt.Errorf("keys: pkcs11 GenerateDataKey: no key id and no default key configured: %w", ErrKeyNotFound)
	}
	ref, err := parsePKCS11KeyID(keyID)
	if err != nil {
		return "", nil, nil, fmt.Errorf("keys: pkcs11 GenerateDataKey: %w: %w", err, ErrKeyNotFound)
	}
	err = p.with(func(c *p11conn) error {
		var key *crypto11.SecretKey
		version := ref.version
		if version == 0 {
			version, key, err = p.newestVersion(c, ref.name)
		} else {
			key, err = p.findVersion(c, ref.name, version)
		}
		if err != nil {
			return err
		}
		usedKeyID = pkcs11KeyID(ref.name, version, PKCS11MechGCM)
		plaintext, wrapped, err = sealDataKey(key, usedKeyID, encCtx)
		return err
	})
	if err != nil {
		return "", nil, nil, err
	}
	return usedKeyID, plaintext, wrapped, nil
}

// sealDataKey draws a data key and encrypts it in the token (CKM_AES_GCM, a random nonce from
// the gateway, the key id and context in the additional data). Blob: 0x01 ‖ nonce ‖ GCM output.
func sealDataKey(key *crypto11.SecretKey, keyID string, encCtx map[string]string) (dk, blob []byte, err error) {
	dk = make([]byte, DataKeySize)
	if _, err := rand.Read(dk); err != nil {
		return nil, nil, fmt.Errorf("keys: random data key: %w", err)
	}
	nonce := make([]byte, pkcs11NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		clear(dk)
		return nil, nil, fmt.Errorf("keys: random nonce: %w", err)
	}
	aead, err := key.NewGCM()
	if err == nil {
		blob, err = sealRecovering(aead, nonce, dk, pkcs11AAD(keyID, encCtx))
	}
	if err == nil && len(blob) != PKCS11BlobSize-1-pkcs11NonceSize {
		err = fmt.Errorf("token returned %d bytes of AES-GCM output, want %d", len(blob), PKCS11BlobSize-1-pkcs11NonceSize)
	}
	if err != nil {
		clear(dk)
		return nil, nil, pkcs11Error("wrap data key", keyID, err)
	}
	out := make([]byte, 0, PKCS11BlobSize)
	out = append(out, pkcs11BlobVersion)
	out = append(out, nonce...)
	return dk, append(out, blob...), nil
}

// sealRecovering is aead.Seal for crypto11's token-backed AEAD, whose Seal panics when the token
// call fails (cipher.AEAD's Seal has no error result): the panic is turned back into the error.
func sealRecovering(aead cipher.AEAD, nonce, plaintext, aad []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("token AES-GCM failed: %v", r)
			}
		}
	}()
	return aead.Seal(nil, nonce, plaintext, aad), nil
}

// Decrypt unwraps a data key wrapped under keyID ("<name>/v<N>/gcm", as GenerateDataKeyID
// returned it). A blob of another key or version, another context, or altered in any way gives
// ErrInvalidCiphertext; a retired version gives ErrKeyNotFound.
func (p *PKCS11) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("keys: pkcs11 Decrypt: %w", err)
	}
	ref, err := parsePKCS11KeyID(keyID)
	if err == nil && ref.version == 0 {
		err = fmt.Errorf("key id %q names no version", keyID)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: pkcs11 Decrypt: %w: %w", err, ErrKeyNotFound)
	}
	if len(wrapped) != PKCS11BlobSize || wrapped[0] != pkcs11BlobVersion {
		return nil, fmt.Errorf("keys: pkcs11 key %q: wrapped key has the wrong size or version: %w", keyID, ErrInvalidCiphertext)
	}
	fullID := pkcs11KeyID(ref.name, ref.version, PKCS11MechGCM)
	var dk []byte
	err = p.with(func(c *p11conn) error {
		key, err := p.findVersion(c, ref.name, ref.version)
		if err != nil {
			return err
		}
		aead, err := key.NewGCM()
		if err != nil {
			return pkcs11Error("unwrap data key", fullID, err)
		}
		dk, err = aead.Open(nil, wrapped[1:1+pkcs11NonceSize], wrapped[1+pkcs11NonceSize:], pkcs11AAD(fullID, encCtx))
		if err != nil {
			return p.openError(c, fullID, err)
		}
		if n := len(dk); n != DataKeySize {
			clear(dk)
			dk = nil
			return fmt.Errorf("keys: pkcs11 key %q: unwrapped key of %d bytes: %w", fullID, n, ErrInvalidCiphertext)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return dk, nil
}

// openError classifies a failed C_Decrypt of a wrapped key. A GCM tag that does not verify is a
// bad blob (wrong key, context or bytes), not a token failure, although SoftHSM2 (and other
// tokens) report it as CKR_GENERAL_ERROR: so a generic failure counts as ErrInvalidCiphertext
// once tokenGone has said that the token is still there.
func (p *PKCS11) openError(c *p11conn, keyID string, err error) error {
	switch pkcs11Code(err) {
	case "CKR_ENCRYPTED_DATA_INVALID", "CKR_ENCRYPTED_DATA_LEN_RANGE", "CKR_GENERAL_ERROR", "CKR_FUNCTION_FAILED":
		if gone := p.tokenGone(c); gone != nil {
			return gone
		}
		return fmt.Errorf("keys: pkcs11 key %q: wrapped key does not open (wrong key, context or bytes): %w: %w", keyID, ErrInvalidCiphertext, err)
	}
	return pkcs11Error("unwrap data key", keyID, err)
}

// with runs f with the token connection; f returns classified errors (pkcs11Error and the
// sentinels), from which release decides whether to drop the connection. Calls that only use
// keys run together; see withExclusive.
func (p *PKCS11) with(f func(c *p11conn) error) error {
	p.changing.RLock()
	defer p.changing.RUnlock()
	return p.withConn(f)
}

// withExclusive is with for the calls that create or destroy token objects: they run alone.
// SoftHSM2 fails object creation with CKR_GENERAL_ERROR or CKR_TEMPLATE_INCONSISTENT when other
// threads of the process use the token at the same time (softhsm/SoftHSMv2 issue 573); key
// lifecycle calls are rare, so making them wait costs nothing and is harmless with real HSMs.
func (p *PKCS11) withExclusive(f func(c *p11conn) error) error {
	p.changing.Lock()
	defer p.changing.Unlock()
	return p.withConn(f)
}

func (p *PKCS11) withConn(f func(c *p11conn) error) error {
	conn, err := p.acquire()
	if err != nil {
		return err
	}
	err = f(conn)
	p.release(conn, err)
	return err
}

// findVersion finds the token object of one key version by its label.
func (p *PKCS11) findVersion(c *p11conn, name string, version int) (*crypto11.SecretKey, error) {
	label := pkcs11Label(name, version)
	attrs := crypto11.NewAttributeSet()
	if err := attrs.Set(crypto11.CkaLabel, label); err != nil {
		return nil, fmt.Errorf("keys: pkcs11: %w", err)
	}
	if err := attrs.Set(crypto11.CkaKeyType, pkcs11.CKK_AES); err != nil {
		return nil, fmt.Errorf("keys: pkcs11: %w", err)
	}
	found, err := c.ctx.FindKeysWithAttributes(attrs)
	if err != nil {
		return nil, pkcs11Error("find key", label, err)
	}
	if len(found) == 0 {
		if err := p.tokenGone(c); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("keys: pkcs11 key %q is not in token %q: %w", label, p.cfg.TokenLabel, ErrKeyNotFound)
	}
	return found[0], nil
}

// newestVersion finds the newest version of name: from the last one seen, it looks for the next
// ones (a rotation by another process), and falls back to listing the token when the last one
// seen is gone.
func (p *PKCS11) newestVersion(c *p11conn, name string) (int, *crypto11.SecretKey, error) {
	p.mu.Lock()
	n := p.newest[name]
	p.mu.Unlock()
	var key *crypto11.SecretKey
	for {
		k, err := p.findVersion(c, name, n+1)
		if errors.Is(err, ErrKeyNotFound) {
			break
		}
		if err != nil {
			return 0, nil, err
		}
		n, key = n+1, k
	}
	if key == nil && n > 0 {
		k, err := p.findVersion(c, name, n)
		if err != nil && !errors.Is(err, ErrKeyNotFound) {
			return 0, nil, err
		}
		key = k
	}
	if key == nil {
		vs, err := p.listVersions(c)
		if err != nil {
			return 0, nil, err
		}
		n = 0
		for _, v := range vs {
			if v.Name == name && v.Version > n {
				n = v.Version
			}
		}
		if n == 0 {
			return 0, nil, fmt.Errorf("keys: pkcs11 key %q has no version in token %q: %w", name, p.cfg.TokenLabel, ErrKeyNotFound)
		}
		if key, err = p.findVersion(c, name, n); err != nil {
			return 0, nil, err
		}
	}
	p.mu.Lock()
	p.newest[name] = n
	p.mu.Unlock()
	return n, key, nil
}
