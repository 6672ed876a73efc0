package keys

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrPKCS11NeedsCgo is what OpenPKCS11 returns in a gateway built without cgo (the static
// container image): the PKCS#11 provider needs the token's C library.
var ErrPKCS11NeedsCgo = errors.New("keys: the pkcs11 provider needs a gateway built with cgo (CGO_ENABLED=1)")

// PKCS11Config configures a PKCS#11 provider (OpenPKCS11). It is in an untagged file so that a
// gateway built without cgo still compiles the configuration that names it.
type PKCS11Config struct {
	Module     string // path of the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
	TokenLabel string // token found by label
	PIN        string // the caller resolves it from a file or the environment, never the YAML
	Key        string // key name used for new objects; its newest version is used
	Sessions   int    // session pool size; 0 = DefaultPKCS11Sessions
}

// String shows the configuration without the PIN, so that printing it (%v, %+v) cannot leak it.
func (c PKCS11Config) String() string {
	pin := "(none)"
	if c.PIN != "" {
		pin = "(redacted)"
	}
	return fmt.Sprintf("{Module:%s TokenLabel:%s PIN:%s Key:%s Sessions:%d}", c.Module, c.TokenLabel, pin, c.Key, c.Sessions)
}

// GoString is String, for %#v.
func (c PKCS11Config) GoString() string { return "keys.PKCS11Config" + c.String() }

// LogValue is String, for log/slog.
func (c PKCS11Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// KeyVersion is one version of a named key-encryption key, as listed by the providers' key
// lifecycle methods (KeyVersions, CreateKey, RotateKey).
type KeyVersion struct {
	ID      string // key id as recorded in envelopes
	Name    string
	Version int
	Active  bool // newest of its name, used for new objects
}

// PKCS#11 constants shared by both builds.
const (
	// DefaultPKCS11Sessions is the session pool size when PKCS11Config.Sessions is 0.
	DefaultPKCS11Sessions = 8
	// DefaultPKCS11RetryInterval is the least time between two attempts to open the token
	// (C_Initialize, find the token, C_Login). Real HSMs lock a token after a few wrong PINs, so
	// a gateway must not log in in a loop.
	DefaultPKCS11RetryInterval = 5 * time.Second
	// PKCS11MechGCM is the wrap mechanism of a key id "<name>/v<N>/gcm": AES-256-GCM computed
	// in the token (CKM_AES_GCM) with the encryption context in the additional data.
	PKCS11MechGCM = "gcm"
	// PKCS11BlobSize is the size of a data key wrapped by the PKCS#11 provider.
	PKCS11BlobSize = 1 + pkcs11NonceSize + DataKeySize + pkcs11TagSize

	pkcs11BlobVersion = 0x01
	pkcs11NonceSize   = 12
	pkcs11TagSize     = 16
	pkcs11AADPrefix   = "s3seal/1 pkcs11"
	maxKeyVersion     = 1<<31 - 1
)

// pkcs11KeyRef is a parsed key id: "<name>", "<name>/v<N>" or "<name>/v<N>/<mech>".
// version 0 means "the newest version of name"; mech "" means not given.
type pkcs11KeyRef struct {
	name    string
	version int
	mech    string
}

// parsePKCS11KeyID parses a key id. It accepts a bare name, the token label "<name>/v<N>" and
// the full id "<name>/v<N>/<mech>"; mech must be one this package knows.
func parsePKCS11KeyID(id string) (pkcs11KeyRef, error) {
	parts := strings.Split(id, "/")
	if len(parts) > 3 {
		return pkcs11KeyRef{}, fmt.Errorf("key id %q: want <name>, <name>/v<N> or <name>/v<N>/%s", id, PKCS11MechGCM)
	}
	if err := validKeyName(parts[0]); err != nil {
		return pkcs11KeyRef{}, err
	}
	r := pkcs11KeyRef{name: parts[0]}
	if len(parts) == 1 {
		return r, nil
	}
	v, ok := parseKeyVersion(parts[1])
	if !ok {
		return pkcs11KeyRef{}, fmt.Errorf("key id %q: version %q: want v1, v2, ...", id, parts[1])
	}
	r.version = v
	if len(parts) == 3 {
		if parts[2] != PKCS11MechGCM {
			return pkcs11KeyRef{}, fmt.Errorf("key id %q: unknown wrap mechanism %q (this gateway knows %q)", id, parts[2], PKCS11MechGCM)
		}
		r.mech = parts[2]
	}
	return r, nil
}

// parseKeyVersion parses "v<N>", N a decimal number from 1 without leading zeros.
func parseKeyVersion(s string) (int, bool) {
	d, ok := strings.CutPrefix(s, "v")
	if !ok || d == "" || d[0] == '0' || len(d) > 10 {
		return 0, false
	}
	for _, c := range []byte(d) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(d)
	if err != nil || n > maxKeyVersion {
		return 0, false
	}
	return n, true
}

// pkcs11Label is the CKA_LABEL of a key version's token object: "<name>/v<N>".
func pkcs11Label(name string, version int) string {
	return name + "/v" + strconv.Itoa(version)
}

// pkcs11KeyID is the key id recorded in envelopes: "<name>/v<N>/<mech>".
func pkcs11KeyID(name string, version int, mech string) string {
	return pkcs11Label(name, version) + "/" + mech
}

// pkcs11AAD is the additional data of the token's AES-GCM over a data key:
// contextAAD("s3seal/1 pkcs11", full key id, context). The full id binds the name, the version
// and the mechanism.
func pkcs11AAD(keyID string, encCtx map[string]string) []byte {
	return contextAAD(pkcs11AADPrefix, keyID, encCtx)
}

// contextAAD is prefix ‖ lp(keyID) ‖ context, the context being the pairs sorted by key, each
// lp(k) ‖ lp(v): the layout of localAAD (FORMAT.md section 7) with another prefix.
func contextAAD(prefix, keyID string, encCtx map[string]string) []byte {
	n := len(prefix) + 4 + len(keyID)
	ks := make([]string, 0, len(encCtx))
	for k, v := range encCtx {
		ks = append(ks, k)
		n += 8 + len(k) + len(v)
	}
	slices.Sort(ks)
	b := make([]byte, 0, n)
	b = append(b, prefix...)
	b = appendLP(b, keyID)
	for _, k := range ks {
		b = appendLP(b, k)
		b = appendLP(b, encCtx[k])
	}
	return b
}

// sortKeyVersions sorts by name, then version, and marks the newest of each name Active.
func sortKeyVersions(vs []KeyVersion) {
	slices.SortFunc(vs, func(a, b KeyVersion) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	for i := range vs {
		vs[i].Active = i == len(vs)-1 || vs[i+1].Name != vs[i].Name
	}
}
