package keys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Provider is the method set every provider of this package has. The Router takes its
// providers through it; other consumers declare the (smaller) interface they need.
type Provider interface {
	DefaultKeyID() string
	GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (plaintext, wrapped []byte, err error)
	GenerateDataKeyID(ctx context.Context, keyID string, encCtx map[string]string) (usedKeyID string, plaintext, wrapped []byte, err error)
	Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error)
	Ping(ctx context.Context) error
}

// RouteSep separates a provider's name from its key id in a routed key id: "hsm:s3seal/v2/gcm".
const RouteSep = ":"

// reservedProviderNames cannot name a provider: they begin KMS key ids ("arn:aws:kms:...",
// "alias/...") that would otherwise be read as routed ids.
var reservedProviderNames = []string{"arn", "alias"}

// Route is one named provider of a Router.
type Route struct {
	Name     string
	Provider Provider
}

// Router is a provider made of several named ones (keys.providers in the configuration). The
// key ids it hands out, and so the ones recorded in envelopes, are routed: "<name>:<key id>",
// so that a read needs no mapping from bucket to provider. A key id without a known
// "<name>:" prefix belongs to the default provider: that is how objects written before the
// configuration named several providers (plain key ids) stay readable, and how a client's
// SSE-KMS key id ("arn:aws:kms:...") reaches it.
//
// GenerateDataKeyID accepts "<name>:<key>", "<name>:" (that provider's default key) or a plain
// key id (the default provider); the id it returns is always routed.
type Router struct {
	def    string
	routes map[string]Provider
	names  []string // sorted
}

// NewRouter builds a Router; def names the default provider and must be among routes.
func NewRouter(def string, routes ...Route) (*Router, error) {
	r := &Router{def: def, routes: make(map[string]Provider, len(routes))}
	for _, rt := range routes {
		if err := ValidProviderName(rt.Name); err != nil {
			return nil, err
		}
		if rt.Provider == nil {
			return nil, fmt.Errorf("keys: provider %q: no provider", rt.Name)
		}
		if _, dup := r.routes[rt.Name]; dup {
			return nil, fmt.Errorf("keys: provider %q named twice", rt.Name)
		}
		r.routes[rt.Name] = rt.Provider
		r.names = append(r.names, rt.Name)
	}
	slices.Sort(r.names)
	if _, ok := r.routes[def]; !ok {
		return nil, fmt.Errorf("keys: default provider %q is not among the providers %v", def, r.names)
	}
	return r, nil
}

// ValidProviderName checks a provider name: [a-z0-9_-]{1,32}, not "arn" or "alias".
func ValidProviderName(name string) error {
	if len(name) == 0 || len(name) > 32 {
		return fmt.Errorf("keys: provider name %q: want 1 to 32 characters", name)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("keys: provider name %q: only a-z 0-9 _ - are allowed", name)
		}
	}
	if slices.Contains(reservedProviderNames, name) {
		return fmt.Errorf("keys: provider name %q is reserved (it begins KMS key ids)", name)
	}
	return nil
}

// Split returns the provider name and the provider's own key id of a key id: a routed id
// gives its prefix; any other id belongs to the default provider.
func (r *Router) Split(keyID string) (provider, id string) {
	if name, rest, ok := strings.Cut(keyID, RouteSep); ok {
		if _, known := r.routes[name]; known {
			return name, rest
		}
	}
	return r.def, keyID
}

// Names returns the providers' names, sorted.
func (r *Router) Names() []string { return slices.Clone(r.names) }

// Provider returns the provider called name.
func (r *Router) Provider(name string) (Provider, bool) {
	p, ok := r.routes[name]
	return p, ok
}

func route(name, id string) string { return name + RouteSep + id }

// DefaultKeyID is the default provider's key for new objects, routed.
func (r *Router) DefaultKeyID() string {
	return route(r.def, r.routes[r.def].DefaultKeyID())
}

// GenerateDataKey is GenerateDataKeyID without the key id used.
func (r *Router) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (plaintext, wrapped []byte, err error) {
	_, plaintext, wrapped, err = r.GenerateDataKeyID(ctx, keyID, encCtx)
	return plaintext, wrapped, err
}

// GenerateDataKeyID asks the provider keyID routes to for a data key and returns the routed
// id of the key it used.
func (r *Router) GenerateDataKeyID(ctx context.Context, keyID string, encCtx map[string]string) (usedKeyID string, plaintext, wrapped []byte, err error) {
	name, id := r.Split(keyID)
	used, plaintext, wrapped, err := r.routes[name].GenerateDataKeyID(ctx, id, encCtx)
	if err != nil {
		return "", nil, nil, err
	}
	return route(name, used), plaintext, wrapped, nil
}

// Decrypt unwraps with the provider keyID routes to.
func (r *Router) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	name, id := r.Split(keyID)
	return r.routes[name].Decrypt(ctx, id, wrapped, encCtx)
}

// Ping checks every provider; the error names each one that failed.
func (r *Router) Ping(ctx context.Context) error {
	var errs []error
	for _, n := range r.names {
		if err := r.routes[n].Ping(ctx); err != nil {
			errs = append(errs, fmt.Errorf("provider %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}
