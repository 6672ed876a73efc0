package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/s3seal/s3seal/config"
	"github.com/s3seal/s3seal/keys"
)

// rewrapTargetFlags are rewrap's flags that choose the target key.
type rewrapTargetFlags struct {
	bucket   string
	key      string // -to-key
	provider string // -to-provider
}

// targetProvider is the provider new envelopes are sealed with; close is nil when it is the
// tool's own provider.
type targetProvider struct {
	p     keyProvider
	close func()
}

// rewrapTarget resolves rewrap's target: the provider that makes the new data keys and the key
// id to ask it for. With keys.providers the target is a routed id ("<provider>:<key>") of the
// tool's own router; without them -to-provider may open another provider type from the
// configuration's sections (keys.kms, keys.local, keys.pkcs11).
func rewrapTarget(ctx context.Context, cfg *config.Config, log *slog.Logger, own keyProvider, f rewrapTargetFlags) (targetProvider, string, error) {
	if len(cfg.Keys.Providers) > 0 {
		key := f.key
		if f.provider != "" {
			if _, ok := cfg.Keys.Providers[f.provider]; !ok {
				names := make([]string, 0, len(cfg.Keys.Providers))
				for n := range cfg.Keys.Providers {
					names = append(names, n)
				}
				slices.Sort(names)
				return targetProvider{}, "", fmt.Errorf("-to-provider %q: want one of keys.providers (%s)", f.provider, strings.Join(names, ", "))
			}
			if !strings.HasPrefix(key, f.provider+keys.RouteSep) {
				key = f.provider + keys.RouteSep + key
			}
		}
		return targetProvider{p: own}, defaultTarget(key, cfg, f.bucket, own), nil
	}
	switch f.provider {
	case "", cfg.Keys.Provider:
		return targetProvider{p: own}, defaultTarget(f.key, cfg, f.bucket, own), nil
	case config.ProviderKMS, config.ProviderLocal, config.ProviderPKCS11:
	default:
		return targetProvider{}, "", fmt.Errorf("-to-provider %q: want kms, local or pkcs11", f.provider)
	}
	c := *cfg
	c.Keys.Provider = f.provider
	p, closeP, err := toolKeys(ctx, &c, log)
	if err != nil {
		return targetProvider{}, "", err
	}
	key := f.key
	if key == "" {
		key = p.DefaultKeyID() // the bucket's key belongs to the configured provider, not this one
	}
	if key == "" {
		closeP()
		return targetProvider{}, "", errors.New("no target key: give -to-key")
	}
	return targetProvider{p: p, close: closeP}, key, nil
}

// defaultTarget is key, else the bucket's key (keys.bucket_key_ids), else the provider's
// default key.
func defaultTarget(key string, cfg *config.Config, bucket string, p keyProvider) string {
	if key == "" {
		key = cfg.Keys.BucketKeyIDs[bucket]
	}
	if key == "" {
		key = p.DefaultKeyID()
	}
	return key
}
