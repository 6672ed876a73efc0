package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/s3seal/s3seal/config"
	"github.com/s3seal/s3seal/keys"
	"github.com/s3seal/s3seal/metrics"
)

// localFiles says whether opening a local provider may create its key file.
type localFiles int

const (
	// openOrCreate: the gateway creates a missing key file (zero-config start).
	openOrCreate localFiles = iota
	// openExisting: the tools never create one: a new file could not open any existing object.
	openExisting
)

// openedProvider is one provider of the configuration, with what releases it.
type openedProvider struct {
	name string
	typ  string
	p    keys.Provider
}

// providerSet is every provider of the configuration, opened.
type providerSet struct {
	single bool // keys.providers unset: one provider, key ids not routed
	def    string
	list   []openedProvider // sorted by name
	close  []func() error
}

func (s *providerSet) Close() {
	for i := len(s.close) - 1; i >= 0; i-- {
		_ = s.close[i]()
	}
	s.close = nil
}

// get returns the provider called name.
func (s *providerSet) get(name string) (openedProvider, bool) {
	for _, o := range s.list {
		if o.name == name {
			return o, true
		}
	}
	return openedProvider{}, false
}

// openProviders opens every key provider of cfg (config.Keys.Named).
func openProviders(ctx context.Context, cfg *config.Config, log *slog.Logger, mode localFiles) (s *providerSet, err error) {
	named, single := cfg.Keys.Named()
	s = &providerSet{single: single, def: cfg.Keys.Provider}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	names := make([]string, 0, len(named))
	for n := range named {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p, closer, err := openProvider(ctx, n, named[n], log, mode)
		if err != nil {
			return nil, err
		}
		if closer != nil {
			s.close = append(s.close, closer)
		}
		s.list = append(s.list, openedProvider{name: n, typ: named[n].Type, p: p})
	}
	return s, nil
}

// openProvider opens one provider.
func openProvider(ctx context.Context, name string, np config.NamedProvider, log *slog.Logger, mode localFiles) (keys.Provider, func() error, error) {
	where := "key provider " + name
	switch np.Type {
	case config.ProviderKMS:
		k, err := keys.NewKMS(ctx, keys.KMSConfig{
			Endpoint:        np.KMS.Endpoint,
			Region:          np.KMS.Region,
			AccessKeyID:     np.KMS.AccessKeyID,
			SecretAccessKey: np.KMS.SecretAccessKey,
			KeyID:           np.KMS.KeyID,
			Timeout:         np.KMS.Timeout,
			MaxAttempts:     np.KMS.MaxAttempts,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("%s (kms): %w", where, err)
		}
		return k, nil, nil
	case config.ProviderLocal:
		var lf *keys.LocalFile
		var err error
		if mode == openExisting {
			lf, err = keys.OpenLocalFile(np.Local.File)
		} else {
			var created bool
			lf, created, err = keys.LoadOrCreateLocalFile(np.Local.File)
			if created {
				log.Warn("created a new local key file: back it up, objects cannot be read without it", "file", np.Local.File, "provider", name)
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: local key file %s: %w", where, np.Local.File, err)
		}
		return lf, lf.Close, nil
	case config.ProviderPKCS11:
		if np.PKCS11.PIN == "" {
			log.Warn("no PKCS#11 PIN: set pin_file or the environment variable pin_env names; the token will refuse every key operation",
				"provider", name, "pin_env", np.PKCS11.PINEnv)
		}
		p, err := keys.OpenPKCS11(keys.PKCS11Config{
			Module:     np.PKCS11.Module,
			TokenLabel: np.PKCS11.TokenLabel,
			PIN:        np.PKCS11.PIN,
			Key:        np.PKCS11.Key,
			Sessions:   np.PKCS11.Sessions,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("%s (pkcs11): %w", where, err)
		}
		return p, p.Close, nil
	}
	return nil, nil, fmt.Errorf("%s: type %q: want %q, %q or %q", where, np.Type, config.ProviderKMS, config.ProviderLocal, config.ProviderPKCS11)
}

// provider returns the set as the one provider the gateway and the tools use: the single one,
// or a keys.Router over all of them. With m, every provider's calls are counted under its name.
func (s *providerSet) provider(m *metrics.Metrics) (keyProvider, error) {
	wrap := func(o openedProvider) keys.Provider {
		if m == nil {
			return o.p
		}
		return instrumentedKeys{src: o.p, m: m, provider: o.name}
	}
	if s.single {
		if len(s.list) != 1 {
			return nil, errors.New("keys: no provider")
		}
		return wrap(s.list[0]), nil
	}
	routes := make([]keys.Route, 0, len(s.list))
	for _, o := range s.list {
		routes = append(routes, keys.Route{Name: o.name, Provider: wrap(o)})
	}
	return keys.NewRouter(s.def, routes...)
}
