package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ProviderPKCS11 is an HSM (or any token) reached through a PKCS#11 library.
const ProviderPKCS11 = "pkcs11"

// DefaultPINEnv is the environment variable the PKCS#11 PIN is read from when no pin_file or
// pin_env is configured.
const DefaultPINEnv = "GATEWAY_PKCS11_PIN"

// PKCS11 configures a PKCS#11 token (docs/KEYS.md). The PIN is never written in the YAML: it
// comes from pin_file, else from the environment variable pin_env (default GATEWAY_PKCS11_PIN).
type PKCS11 struct {
	// Module is the path of the token's PKCS#11 library, e.g.
	// /usr/lib/softhsm/libsofthsm2.so. Env GATEWAY_PKCS11_MODULE.
	Module string `yaml:"module"`
	// TokenLabel finds the token. Env GATEWAY_PKCS11_TOKEN_LABEL.
	TokenLabel string `yaml:"token_label"`
	// Key is the key name used for new objects (its newest version). Default "s3seal".
	// Env GATEWAY_PKCS11_KEY.
	Key string `yaml:"key"`
	// PINFile holds the user PIN (surrounding white space is ignored).
	PINFile string `yaml:"pin_file"`
	// PINEnv names the environment variable holding the PIN when PINFile is empty.
	// Default GATEWAY_PKCS11_PIN.
	PINEnv string `yaml:"pin_env"`
	// Sessions is the size of the session pool. Default: the library's choice.
	Sessions int `yaml:"sessions"`

	// PIN is the resolved PIN (from PINFile or PINEnv), never read from or written to YAML.
	PIN string `yaml:"-"`
}

// NamedProvider is one entry of keys.providers: a provider type and its settings.
type NamedProvider struct {
	// Type is kms, local or pkcs11. Default: the entry's name when it is one of these.
	Type   string `yaml:"type"`
	KMS    KMS    `yaml:"kms"`
	Local  Local  `yaml:"local"`
	PKCS11 PKCS11 `yaml:"pkcs11"`
}

// Named returns the key providers of the configuration by name: keys.providers when it is set,
// otherwise the one provider of keys.provider under its type's name. Single reports the latter
// case, in which key ids are not routed (they carry no "<name>:" prefix).
func (k Keys) Named() (providers map[string]NamedProvider, single bool) {
	if len(k.Providers) > 0 {
		return k.Providers, false
	}
	return map[string]NamedProvider{k.Provider: {Type: k.Provider, KMS: k.KMS, Local: k.Local, PKCS11: k.PKCS11}}, true
}

// keysDefaults fills the defaults of keys.pkcs11 and of every keys.providers entry, and
// resolves the PKCS#11 PINs.
func (c *Config) keysDefaults(getenv func(string) string) error {
	if err := pkcs11Defaults(&c.Keys.PKCS11, getenv); err != nil {
		return fmt.Errorf("config: keys.pkcs11: %w", err)
	}
	for name, p := range c.Keys.Providers {
		if p.Type == "" && slices.Contains([]string{ProviderKMS, ProviderLocal, ProviderPKCS11}, name) {
			p.Type = name
		}
		kmsDefaults(&p.KMS, c.Region)
		if p.Type == ProviderLocal && p.Local.File == "" {
			p.Local.File = filepath.Join(c.DataDir, "keys-"+name+".yaml")
		}
		if p.Type == ProviderPKCS11 {
			if err := pkcs11Defaults(&p.PKCS11, getenv); err != nil {
				return fmt.Errorf("config: keys.providers.%s.pkcs11: %w", name, err)
			}
		}
		if err := readSecretFile(p.KMS.SecretAccessKeyFile, &p.KMS.SecretAccessKey); err != nil {
			return err
		}
		c.Keys.Providers[name] = p
	}
	return nil
}

func kmsDefaults(k *KMS, region string) {
	if k.Region == "" {
		k.Region = region
	}
	if k.Timeout == 0 {
		k.Timeout = 5 * time.Second
	}
	if k.MaxAttempts == 0 {
		k.MaxAttempts = 4
	}
}

func pkcs11Defaults(p *PKCS11, getenv func(string) string) error {
	if p.Key == "" {
		p.Key = "s3seal"
	}
	if p.PINEnv == "" {
		p.PINEnv = DefaultPINEnv
	}
	if p.PINFile != "" {
		data, err := os.ReadFile(p.PINFile)
		if err != nil {
			return fmt.Errorf("reading pin_file: %w", err)
		}
		p.PIN = strings.TrimSpace(string(data))
		clear(data)
		return nil
	}
	p.PIN = getenv(p.PINEnv)
	return nil
}

// ValidateKeys checks keys.provider, keys.providers and keys.bucket_key_ids for contradictions,
// without insisting on a default KMS key: what the offline tools (decrypt, rewrap, keys) need.
// Validate also wants a key_id for every kms provider, which a gateway writes with.
func (c *Config) ValidateKeys() error {
	var errs []error
	c.validateKeys(func(format string, args ...any) { errs = append(errs, fmt.Errorf("config: "+format, args...)) })
	return errors.Join(errs...)
}

// validateKMSKeys wants a key_id for every kms provider.
func (c *Config) validateKMSKeys(add func(format string, args ...any)) {
	named, single := c.Keys.Named()
	for name, p := range named {
		if p.Type != ProviderKMS || p.KMS.KeyID != "" {
			continue
		}
		if single {
			add("keys.provider is kms but keys.kms.key_id (GATEWAY_KMS_KEY_ID) is empty")
		} else {
			add("keys.providers.%s: a kms provider needs kms.key_id", name)
		}
	}
}

// validateKeys checks keys.provider, keys.providers and keys.bucket_key_ids.
func (c *Config) validateKeys(add func(format string, args ...any)) {
	if len(c.Keys.Providers) == 0 {
		validateProvider("keys", c.Keys.Provider, NamedProvider{Type: c.Keys.Provider, KMS: c.Keys.KMS, Local: c.Keys.Local, PKCS11: c.Keys.PKCS11}, add)
		return
	}
	names := make([]string, 0, len(c.Keys.Providers))
	for name := range c.Keys.Providers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !validProviderName(name) {
			add("keys.providers: name %q: want 1 to 32 of a-z 0-9 _ -, not arn or alias", name)
		}
		validateProvider("keys.providers."+name, c.Keys.Providers[name].Type, c.Keys.Providers[name], add)
	}
	if _, ok := c.Keys.Providers[c.Keys.Provider]; !ok {
		add("keys.provider %q must name the default provider among keys.providers (%s)", c.Keys.Provider, strings.Join(names, ", "))
	}
	for bucket, id := range c.Keys.BucketKeyIDs {
		if name, _, ok := strings.Cut(id, ":"); ok && validProviderName(name) {
			if _, known := c.Keys.Providers[name]; !known {
				add("keys.bucket_key_ids.%s: %q names no provider of keys.providers", bucket, id)
			}
		}
	}
}

func validateProvider(where, typ string, p NamedProvider, add func(format string, args ...any)) {
	switch typ {
	case ProviderLocal:
	case ProviderKMS:
		if (p.KMS.AccessKeyID == "") != (p.KMS.SecretAccessKey == "") {
			add("%s.kms: access_key_id and secret_access_key must be set together", where)
		}
	case ProviderPKCS11:
		if p.PKCS11.Module == "" || p.PKCS11.TokenLabel == "" {
			add("%s: a pkcs11 provider needs pkcs11.module and pkcs11.token_label", where)
		}
		if p.PKCS11.Sessions < 0 {
			add("%s.pkcs11.sessions %d is negative", where, p.PKCS11.Sessions)
		}
	default:
		add("%s: provider type %q: want %q, %q or %q", where, typ, ProviderKMS, ProviderLocal, ProviderPKCS11)
	}
}

// validProviderName mirrors keys.ValidProviderName (config does not import keys).
func validProviderName(name string) bool {
	if len(name) == 0 || len(name) > 32 || name == "arn" || name == "alias" {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
