package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/s3seal/s3seal/config"
	"github.com/s3seal/s3seal/tools"
)

// Exit codes of the subcommands.
const (
	exitOK         = 0
	exitFailed     = 1 // an error, or some objects failed
	exitUsage      = 2
	exitIncomplete = 3 // stopped by -limit or a signal before the end; run again to continue
)

// toolIO is what a subcommand talks to.
type toolIO struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// runTool runs the subcommand named by args[0] (presign, rewrap, migrate, decrypt, keys); ok is false
// when args do not start with one, and the gateway runs as usual.
func runTool(args []string, getenv func(string) string, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	var cmd func(context.Context, []string, toolIO) int
	switch args[0] {
	case "presign":
		cmd = cmdPresign
	case "rewrap":
		cmd = cmdRewrap
	case "migrate":
		cmd = cmdMigrate
	case "decrypt":
		cmd = cmdDecrypt
	case "keys":
		cmd = cmdKeys
	default:
		return 0, false
	}
	// The first SIGINT/SIGTERM stops a run cleanly (objects in progress are finished); a
	// second one kills the process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	return cmd(ctx, args[1:], toolIO{getenv: getenv, stdout: stdout, stderr: stderr}), true
}

// parseInterspersed parses flags that may come before or after the positional arguments, and
// returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// newToolFlags returns a flag set for a subcommand with the -config flag.
func newToolFlags(name, usage string, tio toolIO) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("gateway "+name, flag.ContinueOnError)
	fs.SetOutput(tio.stderr)
	fs.Usage = func() {
		fmt.Fprintf(tio.stderr, "Usage: gateway %s\n\n", usage)
		fs.PrintDefaults()
	}
	return fs, fs.String("config", "", "the gateway's YAML configuration file; GATEWAY_* environment variables override it")
}

// parseToolArgs parses args and wants exactly one positional argument, an s3:// URI.
func parseToolArgs(fs *flag.FlagSet, args []string, tio toolIO) (bucket, prefix string, code int) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", "", exitOK
		}
		return "", "", exitUsage
	}
	if len(pos) != 1 {
		fs.Usage()
		return "", "", exitUsage
	}
	bucket, prefix, err = tools.ParseS3URI(pos[0])
	if err != nil {
		fmt.Fprintf(tio.stderr, "gateway %s: %v\n", fs.Name()[len("gateway "):], err)
		return "", "", exitUsage
	}
	return bucket, prefix, -1
}

// runFlags are the flags rewrap and migrate share.
type runFlags struct {
	dryRun      *bool
	concurrency *int
	limit       *int64
	interval    *time.Duration
}

// addRunFlags defines the flags rewrap and migrate share.
func addRunFlags(fs *flag.FlagSet) runFlags {
	return runFlags{
		dryRun:      fs.Bool("dry-run", false, "only report what would be done"),
		concurrency: fs.Int("concurrency", 8, "objects worked on at once"),
		limit:       fs.Int64("limit", 0, "stop after this many objects needed work (0 = no limit); run again to continue"),
		interval:    fs.Duration("progress-interval", 10*time.Second, "time between progress lines when stderr is not a terminal"),
	}
}

func (f runFlags) options(bucket, prefix string, tio toolIO) (tools.RunOptions, error) {
	if *f.concurrency < 1 || *f.concurrency > 1024 {
		return tools.RunOptions{}, fmt.Errorf("-concurrency %d: want 1..1024", *f.concurrency)
	}
	if *f.limit < 0 {
		return tools.RunOptions{}, fmt.Errorf("-limit %d: must not be negative", *f.limit)
	}
	return tools.RunOptions{
		Bucket: bucket, Prefix: prefix, Concurrency: *f.concurrency, DryRun: *f.dryRun, Limit: *f.limit,
		Progress: tools.ProgressOptions{W: tio.stderr, Bar: tools.IsTerminal(tio.stderr), Interval: *f.interval},
	}, nil
}

// report prints a run's summary (stdout) and errors (stderr) and returns the exit code.
func report(verb, uri string, s tools.Summary, dryRun bool, err error, tio toolIO) int {
	note := ""
	if dryRun {
		note = " (dry run: nothing was changed)"
	}
	fmt.Fprintf(tio.stdout, "%s %s: %s%s\n", verb, uri, s, note)
	for _, e := range s.Errors {
		fmt.Fprintf(tio.stderr, "gateway %s: %s\n", verb, e)
	}
	if n := s.Count(tools.Failed); n > int64(len(s.Errors)) {
		fmt.Fprintf(tio.stderr, "gateway %s: ... and %d more failures\n", verb, n-int64(len(s.Errors)))
	}
	switch {
	case err != nil:
		fmt.Fprintf(tio.stderr, "gateway %s: %v\n", verb, err)
		return exitFailed
	case s.Count(tools.Failed) > 0 || s.Count(tools.TooLarge) > 0:
		return exitFailed
	case s.Stop != "":
		fmt.Fprintf(tio.stderr, "gateway %s: %s\n", verb, s.Stop)
		return exitIncomplete
	}
	return exitOK
}

const rewrapUsage = `rewrap [flags] s3://bucket/prefix

Puts the envelopes of the objects under the prefix under another key (an AWS KMS key, a key of
the local key file, or a key in a PKCS#11 token: keys.kms, keys.local, keys.pkcs11, or a
provider of keys.providers with -to-provider) without rewriting object data: each object's
metadata is replaced by a server-side copy onto itself. Objects already under the target key
are skipped, so an interrupted run is resumed by running it again. Current object versions
only.`

// rewrapArgs are rewrap's flags.
type rewrapArgs struct {
	configPath, toKey, toProvider, fromVersion *string
	threshold                                  *int64
	run                                        runFlags
}

// rewrapFlags defines rewrap's flags.
func rewrapFlags(tio toolIO) (*flag.FlagSet, rewrapArgs) {
	fs, configPath := newToolFlags("rewrap", rewrapUsage, tio)
	return fs, rewrapArgs{
		configPath:  configPath,
		run:         addRunFlags(fs),
		toKey:       fs.String("to-key", "", "target key: KMS key id, ARN or alias, a local or PKCS#11 key name, or with keys.providers \"<provider>:<key>\" (default: the bucket's key from keys.bucket_key_ids, else the default provider's key)"),
		toProvider:  fs.String("to-provider", "", "provider of the target key: a name from keys.providers, or without them kms, local or pkcs11 (default: the configured provider)"),
		fromVersion: fs.String("from-version", "", "rewrap only the objects under this key version (an id as \"gateway keys list\" prints it), e.g. to retire it; the target is then the newest version of the bucket's key unless -to-key says otherwise"),
		threshold:   fs.Int64("copy-threshold", tools.MaxCopySize, "objects with more stored bytes are copied part by part (UploadPartCopy); at most 5 GiB"),
	}
}

func cmdRewrap(ctx context.Context, args []string, tio toolIO) int {
	fs, a := rewrapFlags(tio)
	configPath, rf, toKey, toProvider, fromVersion, threshold := a.configPath, a.run, a.toKey, a.toProvider, a.fromVersion, a.threshold
	bucket, prefix, code := parseToolArgs(fs, args, tio)
	if code >= 0 {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(tio.stderr, "gateway rewrap: %v\n", err)
		return exitFailed
	}
	opts, err := rf.options(bucket, prefix, tio)
	if err != nil || *threshold < 1 || *threshold > tools.MaxCopySize {
		fmt.Fprintf(tio.stderr, "gateway rewrap: %v\n", cmpErr(err, fmt.Errorf("-copy-threshold %d: want 1..%d", *threshold, int64(tools.MaxCopySize))))
		return exitUsage
	}
	cfg, err := loadToolConfig(*configPath, tio.getenv)
	if err != nil {
		return fail(err)
	}
	log := toolLogger(tio.stderr)
	from, closeFrom, err := toolKeys(ctx, cfg, log)
	if err != nil {
		return fail(err)
	}
	defer closeFrom()
	to, target, err := rewrapTarget(ctx, cfg, log, from, rewrapTargetFlags{bucket: bucket, key: *toKey, provider: *toProvider})
	if err != nil {
		fmt.Fprintf(tio.stderr, "gateway rewrap: %v\n", err)
		return exitUsage
	}
	if to.close != nil {
		defer to.close()
	}
	*toKey = target
	b, closeBackend, err := toolBackend(ctx, cfg, log)
	if err != nil {
		return fail(err)
	}
	defer closeBackend()
	s, err := tools.Rewrap(ctx, b, tools.RewrapOptions{
		RunOptions: opts, From: from, To: to.p, ToKey: *toKey, FromKey: *fromVersion, CopyThreshold: *threshold,
	})
	return report("rewrap", "s3://"+bucket+"/"+prefix, s, opts.DryRun, err, tio)
}

// cmpErr returns the first non-nil error.
func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

const migrateUsage = `migrate [flags] s3://bucket/prefix

Encrypts the objects under the prefix that the gateway did not write (plaintext stored before
it was put in place), in place. Each object is streamed into an encrypted temporary object
next to it (<key>` + tools.TempMarker + `<hex>), read back and compared, copied over the original
(only if the original is unchanged), verified again; only then is the temporary object
deleted. Objects that are already encrypted are skipped, so an interrupted run is resumed by
running it again. Objects whose encrypted form exceeds 5 GiB are refused.`

// migrateArgs are migrate's flags.
type migrateArgs struct {
	configPath, keyID *string
	run               runFlags
}

// migrateFlags defines migrate's flags.
func migrateFlags(tio toolIO) (*flag.FlagSet, migrateArgs) {
	fs, configPath := newToolFlags("migrate", migrateUsage, tio)
	return fs, migrateArgs{
		configPath: configPath,
		run:        addRunFlags(fs),
		keyID:      fs.String("key-id", "", "key to encrypt under (default: the bucket's key from keys.bucket_key_ids, else the configured key)"),
	}
}

func cmdMigrate(ctx context.Context, args []string, tio toolIO) int {
	fs, a := migrateFlags(tio)
	configPath, rf, keyID := a.configPath, a.run, a.keyID
	bucket, prefix, code := parseToolArgs(fs, args, tio)
	if code >= 0 {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(tio.stderr, "gateway migrate: %v\n", err)
		return exitFailed
	}
	opts, err := rf.options(bucket, prefix, tio)
	if err != nil {
		fmt.Fprintf(tio.stderr, "gateway migrate: %v\n", err)
		return exitUsage
	}
	cfg, log, kp, closeKeys, err := toolSetup(ctx, *configPath, tio)
	if err != nil {
		return fail(err)
	}
	defer closeKeys()
	if *keyID == "" {
		*keyID = cfg.Keys.BucketKeyIDs[bucket] // the bucket's own default key, if it has one
	}
	if *keyID == "" {
		*keyID = kp.DefaultKeyID()
	}
	b, closeBackend, err := toolBackend(ctx, cfg, log)
	if err != nil {
		return fail(err)
	}
	defer closeBackend()
	s, leftovers, err := tools.Migrate(ctx, b, tools.MigrateOptions{
		RunOptions: opts, Keys: kp, KeyID: *keyID, ComputeMD5: cfg.Encryption.ETag == config.ETagPlaintext,
	})
	if len(leftovers) > 0 {
		fmt.Fprintf(tio.stderr, "gateway migrate: %d temporary objects of an interrupted earlier run were found and left alone (e.g. %q); delete them when no migrate is running\n",
			len(leftovers), leftovers[0])
	}
	return report("migrate", "s3://"+bucket+"/"+prefix, s, opts.DryRun, err, tio)
}
