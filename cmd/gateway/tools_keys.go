package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/s3seal/s3seal/config"
	"github.com/s3seal/s3seal/keys"
	"github.com/s3seal/s3seal/tools"
)

const keysUsage = `keys create|list|rotate|retire [flags] [NAME|ID]

  create NAME   a new key: in a local key file (created if missing), a non-extractable AES-256
                key in a PKCS#11 token, or an AWS KMS key (-alias); prints the configuration
                line that uses it
  list          every key version of the provider, the active one, and the buckets mapped to
                each key (keys.bucket_key_ids)
  rotate NAME   adds the next version of NAME; new objects get it once the gateways are
                restarted, old versions keep opening old objects. Then move old objects with
                gateway rewrap -from-version OLD-ID s3://bucket
  retire ID     destroys key version ID, after checking every version of every object (and that
                no multipart upload is in progress) in the buckets: it refuses, naming them,
                while any object still needs the version

"gateway keys VERB -h" shows a verb's flags. With keys.providers, -provider names the provider
(default: keys.provider). AWS KMS rotates the key material of its keys itself (enable automatic
rotation on the key): envelopes name the key, not its material, so nothing is rewrapped and
rotate/retire do not apply.`

// keysVerb is one subcommand of keys.
type keysVerb struct {
	usage string // the usage text after "gateway "
	args  int    // how many positional arguments it takes
}

// keysVerbs are the subcommands of keys.
var keysVerbs = map[string]keysVerb{
	"create": {args: 1, usage: `keys create [flags] NAME

Creates a new key NAME: in a local key file (created if missing), a non-extractable AES-256 key
in a PKCS#11 token (version NAME/v1), or an AWS KMS key (NAME is its description; -alias names
it), and prints the configuration line that uses it. With keys.providers, -provider names the
provider to create it in (default: keys.provider).`},
	"list": {args: 0, usage: `keys list [flags]

Lists every key version of the provider (a local key file or a PKCS#11 token), the active one,
and the buckets mapped to each key (keys.bucket_key_ids).`},
	"rotate": {args: 1, usage: `keys rotate [flags] NAME

Adds the next version of key NAME (a local key file or a PKCS#11 token); new objects get it once
the gateways are restarted, old versions keep opening old objects. Then move old objects with
"gateway rewrap -from-version OLD-ID s3://bucket". AWS KMS rotates its keys itself (enable
automatic rotation on the key): rotate does not apply.`},
	"retire": {args: 1, usage: `keys retire [flags] ID

Destroys key version ID (as "gateway keys list" prints it), after checking every version of
every object (and that no multipart upload is in progress) in the buckets: it refuses, naming
them, while any object still needs the version.`},
}

// lifecycle is what a provider with key versions offers (keys.LocalFile, keys.PKCS11).
type lifecycle interface {
	DefaultKeyID() string
	CreateKey(name string) (keys.KeyVersion, error)
	RotateKey(name string) (keys.KeyVersion, error)
	KeyVersions() ([]keys.KeyVersion, error)
	RetireKey(id string) error
}

func cmdKeys(ctx context.Context, args []string, tio toolIO) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(tio.stderr, "Usage: gateway %s\n", keysUsage)
		if len(args) > 0 && isHelpFlag(args[0]) {
			return exitOK
		}
		return exitUsage
	}
	verb := args[0]
	v, ok := keysVerbs[verb]
	if !ok {
		fmt.Fprintf(tio.stderr, "Usage: gateway %s\n", keysUsage)
		return exitUsage
	}
	fset, a := keysFlags(verb, tio)
	configPath, providerName, alias, buckets := a.configPath, a.provider, a.alias, a.buckets
	pos, err := parseInterspersed(fset, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	k := &keysCmd{tio: tio, verb: verb}
	if k.cfg, err = loadToolConfig(*configPath, tio.getenv); err != nil {
		return k.fail(err)
	}
	if len(pos) != v.args {
		fset.Usage()
		return exitUsage
	}
	arg := ""
	if v.args == 1 {
		arg = pos[0]
	}
	if verb == "retire" && *providerName == "" && len(k.cfg.Keys.Providers) > 0 {
		if name, _, ok := strings.Cut(arg, keys.RouteSep); ok {
			if _, known := k.cfg.Keys.Providers[name]; known {
				*providerName = name // a routed id names its provider
			}
		}
	}
	if err := k.choose(*providerName); err != nil {
		fmt.Fprintf(tio.stderr, "gateway keys: %v\n", err)
		return exitUsage
	}
	switch verb {
	case "create":
		return k.create(ctx, arg, *alias)
	case "list":
		return k.list()
	case "rotate":
		return k.rotate(arg)
	default:
		return k.retire(ctx, arg, *buckets)
	}
}

// isHelpFlag reports whether arg asks for help as the flag package understands it (-h, -help,
// and the same with two dashes).
func isHelpFlag(arg string) bool {
	switch arg {
	case "-h", "-help", "--h", "--help":
		return true
	}
	return false
}

// keysArgs are the flags of a keys subcommand.
type keysArgs struct {
	configPath, provider, alias *string
	buckets                     *multiFlag
}

// keysFlags defines the flags of the keys subcommand verb (one of keysVerbs): -config and
// -provider for all, -alias for create, -bucket for retire.
func keysFlags(verb string, tio toolIO) (*flag.FlagSet, keysArgs) {
	fset, configPath := newToolFlags("keys "+verb, keysVerbs[verb].usage, tio)
	a := keysArgs{configPath: configPath, alias: new(string), buckets: new(multiFlag)}
	a.provider = fset.String("provider", "", "the provider: a name from keys.providers, or without them kms, local or pkcs11 (default: the configured provider)")
	switch verb {
	case "create":
		fset.StringVar(a.alias, "alias", "", "kms: the alias to give the new key")
	case "retire":
		fset.Var(a.buckets, "bucket", "scan only this bucket (repeatable; default: every bucket of the backend)")
	}
	return fset, a
}

// keysCmd is one run of `gateway keys`.
type keysCmd struct {
	tio    toolIO
	verb   string
	cfg    *config.Config
	name   string // provider name (with keys.providers) or type
	np     config.NamedProvider
	routed bool // keys.providers is set: ids are "<name>:<id>"
}

func (k *keysCmd) fail(err error) int {
	fmt.Fprintf(k.tio.stderr, "gateway keys %s: %v\n", k.verb, err)
	return exitFailed
}

// choose selects the provider the command works on.
func (k *keysCmd) choose(name string) error {
	if len(k.cfg.Keys.Providers) > 0 {
		k.routed = true
		if name == "" {
			name = k.cfg.Keys.Provider
		}
		np, ok := k.cfg.Keys.Providers[name]
		if !ok {
			return fmt.Errorf("-provider %q is not among keys.providers", name)
		}
		k.name, k.np = name, np
		return nil
	}
	if name == "" {
		name = k.cfg.Keys.Provider
	}
	switch name {
	case config.ProviderKMS, config.ProviderLocal, config.ProviderPKCS11:
	default:
		return fmt.Errorf("-provider %q: want kms, local or pkcs11", name)
	}
	k.name = name
	k.np = config.NamedProvider{Type: name, KMS: k.cfg.Keys.KMS, Local: k.cfg.Keys.Local, PKCS11: k.cfg.Keys.PKCS11}
	return nil
}

// id is the key id as envelopes record it.
func (k *keysCmd) id(inner string) string {
	if k.routed {
		return k.name + keys.RouteSep + inner
	}
	return inner
}

// open opens the chosen provider's lifecycle.
func (k *keysCmd) open(ctx context.Context) (lifecycle, func(), error) {
	if k.np.Type == config.ProviderKMS {
		return nil, nil, errors.New("AWS KMS keeps its own key versions: enable automatic rotation on the key; nothing here needs rewrapping (see docs/KEYS.md)")
	}
	p, closer, err := openProvider(ctx, k.name, k.np, toolLogger(k.tio.stderr), openExisting)
	if err != nil {
		return nil, nil, err
	}
	lc, ok := p.(lifecycle)
	if !ok {
		_ = closer()
		return nil, nil, fmt.Errorf("provider %s has no key versions", k.name)
	}
	return lc, func() { _ = closer() }, nil
}

func (k *keysCmd) create(ctx context.Context, name, alias string) int {
	switch k.np.Type {
	case config.ProviderKMS:
		return k.createKMS(ctx, name, alias)
	case config.ProviderLocal:
		if _, err := os.Stat(k.np.Local.File); errors.Is(err, fs.ErrNotExist) {
			lf, err := keys.CreateLocalFileWithKey(k.np.Local.File, name)
			if err != nil {
				return k.fail(err)
			}
			_ = lf.Close()
			fmt.Fprintf(k.tio.stdout, "created %s with key %s (active); back the file up: objects cannot be read without it\n", k.np.Local.File, k.id(name))
			return exitOK
		}
	}
	v, err := k.change(ctx, func(lc lifecycle) (keys.KeyVersion, error) { return lc.CreateKey(name) })
	if err != nil {
		return k.fail(err)
	}
	fmt.Fprintf(k.tio.stdout, "created key %s (version %d, id %s)\n", name, v.Version, k.id(v.ID))
	fmt.Fprintf(k.tio.stdout, "use it for a bucket with:\n  keys:\n    bucket_key_ids:\n      BUCKET: %q\n", k.id(name))
	return exitOK
}

func (k *keysCmd) createKMS(ctx context.Context, description, alias string) int {
	c := k.np.KMS
	kms, err := keys.NewKMS(ctx, keys.KMSConfig{Endpoint: c.Endpoint, Region: c.Region, AccessKeyID: c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey, Timeout: c.Timeout, MaxAttempts: c.MaxAttempts})
	if err != nil {
		return k.fail(err)
	}
	arn, err := kms.CreateKey(ctx, alias, description)
	if err != nil {
		return k.fail(err)
	}
	fmt.Fprintf(k.tio.stdout, "created KMS key %s\n", arn)
	if k.routed {
		fmt.Fprintf(k.tio.stdout, "use it for a bucket with:\n  keys:\n    bucket_key_ids:\n      BUCKET: %q\n", k.id(arn))
	} else {
		fmt.Fprintf(k.tio.stdout, "use it with:\n  keys:\n    provider: kms\n    kms:\n      key_id: %q\n", arn)
	}
	return exitOK
}

func (k *keysCmd) list() int {
	lc, closeLC, err := k.open(context.Background())
	if err != nil {
		return k.fail(err)
	}
	defer closeLC()
	vs, err := lc.KeyVersions()
	if err != nil {
		return k.fail(err)
	}
	def := lc.DefaultKeyID()
	fmt.Fprintf(k.tio.stdout, "%-40s %-8s %s\n", "ID", "ACTIVE", "BUCKETS (keys.bucket_key_ids; (default): buckets without one)")
	for _, v := range vs {
		active := ""
		if v.Active {
			active = "yes"
		}
		fmt.Fprintf(k.tio.stdout, "%-40s %-8s %s\n", k.id(v.ID), active, strings.Join(k.bucketsOf(v, def), " "))
	}
	return exitOK
}

// bucketsOf lists the buckets whose configured key is v's key (its name or exactly v), and
// "(default)" when v is what other buckets get (def is the provider's default key).
func (k *keysCmd) bucketsOf(v keys.KeyVersion, def string) []string {
	var out []string
	for bucket, id := range k.cfg.Keys.BucketKeyIDs {
		if prov, inner, ok := strings.Cut(id, keys.RouteSep); k.routed && ok {
			if prov != k.name {
				continue
			}
			id = inner
		} else if k.routed && k.name != k.cfg.Keys.Provider {
			continue
		}
		if (v.Active && (id == v.Name || (id == "" && (def == v.Name || def == v.ID)))) || (id == v.ID && id != v.Name) {
			out = append(out, bucket)
		}
	}
	slices.Sort(out)
	if v.Active && (def == v.Name || def == v.ID) && (!k.routed || k.name == k.cfg.Keys.Provider) {
		out = append(out, "(default)")
	}
	return out
}

// change opens the provider's key lifecycle, makes one change to it and closes it.
func (k *keysCmd) change(ctx context.Context, do func(lifecycle) (keys.KeyVersion, error)) (keys.KeyVersion, error) {
	lc, closeLC, err := k.open(ctx)
	if err != nil {
		return keys.KeyVersion{}, err
	}
	defer closeLC()
	return do(lc)
}

func (k *keysCmd) rotate(name string) int {
	v, err := k.change(context.Background(), func(lc lifecycle) (keys.KeyVersion, error) { return lc.RotateKey(name) })
	if err != nil {
		return k.fail(err)
	}
	fmt.Fprintf(k.tio.stdout, "rotated %s: new version %d, id %s\n", name, v.Version, k.id(v.ID))
	fmt.Fprintf(k.tio.stdout, "restart the gateways so that new objects get it; then move old objects with\n  gateway rewrap -from-version OLD-ID s3://BUCKET\n")
	return exitOK
}

func (k *keysCmd) retire(ctx context.Context, id string, buckets []string) int {
	inner := id
	if k.routed {
		inner = strings.TrimPrefix(id, k.name+keys.RouteSep)
	}
	ids := []string{k.id(inner)}
	if k.routed && k.name == k.cfg.Keys.Provider {
		ids = append(ids, inner) // objects written before keys.providers was set
	}
	lc, closeLC, err := k.open(ctx)
	if err != nil {
		return k.fail(err)
	}
	defer closeLC()
	vs, err := lc.KeyVersions()
	if err != nil {
		return k.fail(err)
	}
	if !slices.ContainsFunc(vs, func(v keys.KeyVersion) bool { return v.ID == inner }) {
		return k.fail(fmt.Errorf("no key version %s in provider %s", ids[0], k.name))
	}
	log := toolLogger(k.tio.stderr)
	b, closeBackend, err := toolBackend(ctx, k.cfg, log)
	if err != nil {
		return k.fail(err)
	}
	defer closeBackend()
	users, err := tools.FindKeyUsers(ctx, b, tools.KeyUsersOptions{Buckets: buckets, KeyIDs: ids})
	if err != nil {
		return k.fail(fmt.Errorf("checking which objects need %s: %w", ids[0], err))
	}
	if users.Count > 0 || users.UploadCount > 0 {
		fmt.Fprintf(k.tio.stderr, "gateway keys retire: refused: %d object versions still need %s (of %d scanned), and %d multipart uploads are in progress\n",
			users.Count, ids[0], users.Scanned, users.UploadCount)
		for _, o := range users.Objects {
			fmt.Fprintf(k.tio.stderr, "  needs it: %s\n", o)
		}
		for _, up := range users.Uploads {
			fmt.Fprintf(k.tio.stderr, "  upload in progress (complete or abort it first): %s\n", up)
		}
		fmt.Fprintf(k.tio.stderr, "move the objects first: gateway rewrap -from-version %s s3://BUCKET\n", ids[0])
		return exitFailed
	}
	if err := lc.RetireKey(inner); err != nil {
		return k.fail(err)
	}
	fmt.Fprintf(k.tio.stdout, "retired %s: no object needed it (%d object versions scanned)\n", ids[0], users.Scanned)
	return exitOK
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
