package tools

import (
	"context"
	"errors"
	"fmt"

	"github.com/s3seal/s3seal/cache"
	"github.com/s3seal/s3seal/format"
)

// ErrCustomerKey is returned for an envelope sealed under an SSE-C customer key, which the
// tools never have.
var ErrCustomerKey = errors.New("the object is protected by an SSE-C customer key; it can only be read with that key")

// keyring opens envelopes with one key provider and seals new ones with another (or the same).
// Each side has its own data-key cache, so that opening an envelope this run sealed still asks
// the provider (a real read-back check), while one data key serves many objects.
type keyring struct {
	open *cache.Cache
	seal *cache.Cache
}

func newKeyring(from, to KeySource) *keyring {
	k := &keyring{open: cache.New(from, cache.Config{})}
	if to != nil {
		k.seal = cache.New(to, cache.Config{})
	}
	return k
}

// close zeroes the cached data keys.
func (k *keyring) close() {
	k.open.Purge()
	if k.seal != nil {
		k.seal.Purge()
	}
}

// storedContext decodes the client's SSE-KMS context kept in the object's metadata (SDK form:
// names without the x-amz-meta- prefix, any case; nil if there is none). It is refused if it
// does not decode or names a reserved key (format.DecodeStoredContext).
func storedContext(meta map[string]string) (map[string]string, error) {
	return format.DecodeStoredContext(metaValue(meta, metaContext))
}

// openEnvelope unwraps env's data key with the provider (encryption context of bucket plus
// extra, the stored client context) and opens env for bucket/key.
func (k *keyring) openEnvelope(ctx context.Context, env *format.Envelope, bucket, key string, extra map[string]string) (*format.ObjectKey, error) {
	if env.Wrap == format.WrapCustomerKey {
		return nil, ErrCustomerKey
	}
	encCtx, err := format.KMSContext(bucket, extra)
	if err != nil {
		return nil, err
	}
	dk, err := k.open.DecryptKey(ctx, env.KeyID, env.WrappedKey, encCtx)
	if err != nil {
		return nil, fmt.Errorf("unwrapping the data key under %q for bucket %q: %w", env.KeyID, bucket, err)
	}
	defer clear(dk)
	ok, err := env.Open(dk, bucket, key)
	if err != nil {
		return nil, fmt.Errorf("the envelope does not open for s3://%s/%s (wrong bucket or object name, or altered metadata): %w", bucket, key, err)
	}
	return ok, nil
}

// sealed is a new envelope for one object.
type sealed struct {
	env   string // encoded envelope
	keyID string // the key it is under, as the provider reported it
}

// sealFor seals ok under a data key of keyID (encryption context of bucket plus extra) for each
// object name in names (same data key).
func (k *keyring) sealFor(ctx context.Context, ok *format.ObjectKey, kind format.Kind, keyID, bucket string, extra map[string]string, size int64, names ...string) ([]sealed, error) {
	encCtx, err := format.KMSContext(bucket, extra)
	if err != nil {
		return nil, err
	}
	dk, err := k.seal.EncryptKey(ctx, keyID, encCtx, size)
	if err != nil {
		return nil, fmt.Errorf("new data key under %q: %w", keyID, err)
	}
	defer dk.Zero()
	out := make([]sealed, 0, len(names))
	for _, name := range names {
		env, err := format.SealEnvelope(ok, dk.Plaintext, format.SealParams{
			Kind: kind, Wrap: format.WrapProvider, KeyID: dk.KeyID, WrappedKey: dk.Wrapped,
			Bucket: bucket, Object: name,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, sealed{env: env.Encode(), keyID: dk.KeyID})
	}
	return out, nil
}
