package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/s3seal/s3seal/config"
	"github.com/s3seal/s3seal/embedded"
	"github.com/s3seal/s3seal/tools"
)

const presignUsage = `presign [flags] s3://bucket/key

Prints a SigV4 presigned URL for the gateway (like "aws s3 presign"), signed with one of the
gateway's client credentials: GATEWAY_ACCESS_KEY_ID/GATEWAY_SECRET_ACCESS_KEY when set, else
the first configured credential (or the one named by -access-key-id).`

// presignArgs are presign's flags.
type presignArgs struct {
	configPath, method, endpoint, accessKey *string
	expires                                 *time.Duration
}

// presignFlags defines presign's flags.
func presignFlags(tio toolIO) (*flag.FlagSet, presignArgs) {
	fs, configPath := newToolFlags("presign", presignUsage, tio)
	return fs, presignArgs{
		configPath: configPath,
		method:     fs.String("method", "GET", "GET or PUT"),
		expires:    fs.Duration("expires", time.Hour, "validity, at most 168h (7 days)"),
		endpoint:   fs.String("endpoint", "", "the gateway's URL as clients reach it (default: from listen and tls in the configuration)"),
		accessKey:  fs.String("access-key-id", "", "sign with this configured client credential"),
	}
}

func cmdPresign(ctx context.Context, args []string, tio toolIO) int {
	fs, a := presignFlags(tio)
	configPath, method, expires, endpoint, accessKey := a.configPath, a.method, a.expires, a.endpoint, a.accessKey
	bucket, key, code := parseToolArgs(fs, args, tio)
	if code >= 0 {
		return code
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(tio.stderr, "gateway presign: %v\n", err)
		return code
	}
	if key == "" {
		return fail(exitUsage, errors.New("the URI names no object key"))
	}
	cfg, err := loadToolConfig(*configPath, tio.getenv)
	if err != nil {
		return fail(exitFailed, err)
	}
	id, secret, err := presignCredential(cfg, *accessKey, tio.getenv)
	if err != nil {
		return fail(exitFailed, err)
	}
	if *endpoint == "" {
		*endpoint = defaultEndpoint(cfg)
	}
	u, err := tools.Presign(ctx, tools.PresignOptions{
		Method: strings.ToUpper(*method), Endpoint: *endpoint, Bucket: bucket, Key: key, Region: cfg.Region,
		AccessKeyID: id, Secret: secret, Expires: *expires,
	})
	if err != nil {
		return fail(exitUsage, err)
	}
	fmt.Fprintln(tio.stdout, u)
	return exitOK
}

// presignCredential picks the client credential to sign with.
func presignCredential(cfg *config.Config, want string, getenv func(string) string) (id, secret string, err error) {
	if want == "" {
		want = getenv("GATEWAY_ACCESS_KEY_ID")
	}
	for _, c := range cfg.Credentials {
		if want == "" || c.AccessKeyID == want {
			return c.AccessKeyID, c.SecretAccessKey, nil
		}
	}
	if want != "" {
		return "", "", fmt.Errorf("no configured client credential %q", want)
	}
	if cfg.Mode == config.ModeEmbedded {
		id, secret, _, err := embedded.LoadOrCreateCredentials(cfg.DataDir)
		return id, secret, err
	}
	return "", "", errors.New("no client credentials configured (credentials in the file, or GATEWAY_ACCESS_KEY_ID/GATEWAY_SECRET_ACCESS_KEY)")
}

// defaultEndpoint is the gateway's URL from its listen address and TLS setting; an unspecified
// listen host (all interfaces) becomes the loopback address.
func defaultEndpoint(cfg *config.Config) string {
	scheme := "http"
	if cfg.TLS.CertFile != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return scheme + "://" + cfg.Listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

const decryptUsage = `decrypt -o OUT (s3://bucket/key | -file STORED -metadata META -bucket B -key K) [flags]

Recovers an object's plaintext without a gateway, with only the key provider (AWS KMS access,
the local key file, or the PKCS#11 token and its PIN: keys.kms, keys.local, keys.pkcs11, or
keys.providers for envelopes that name a provider) and either the backend (read directly, as
configured) or a copy of the stored object and its metadata (for example the JSON "aws s3api
head-object" prints). The bucket and key must be the object's name in the backend when it was
written. See docs/RECOVERY.md.`

// decryptArgs are decrypt's flags.
type decryptArgs struct {
	configPath, out, file, metaFile, bucket, key *string
}

// decryptFlags defines decrypt's flags.
func decryptFlags(tio toolIO) (*flag.FlagSet, decryptArgs) {
	fs, configPath := newToolFlags("decrypt", decryptUsage, tio)
	return fs, decryptArgs{
		configPath: configPath,
		out:        fs.String("o", "", "output file (\"-\" = stdout); required"),
		file:       fs.String("file", "", "the stored object's bytes, as downloaded from the backend"),
		metaFile:   fs.String("metadata", "", "the stored object's metadata (JSON of aws s3api head-object, headers, or the envelope)"),
		bucket:     fs.String("bucket", "", "with -file: the object's bucket"),
		key:        fs.String("key", "", "with -file: the object's key"),
	}
}

func cmdDecrypt(ctx context.Context, args []string, tio toolIO) int {
	fs, a := decryptFlags(tio)
	configPath, out, file, metaFile, bucket, key := a.configPath, a.out, a.file, a.metaFile, a.bucket, a.key
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usage := func(msg string) int {
		fmt.Fprintf(tio.stderr, "gateway decrypt: %s\n", msg)
		return exitUsage
	}
	switch {
	case *out == "":
		return usage("-o OUT is required")
	case len(pos) > 1:
		return usage("more than one object given")
	case len(pos) == 1 && (*file != "" || *metaFile != "" || *bucket != "" || *key != ""):
		return usage("give either s3://bucket/key or -file/-metadata/-bucket/-key, not both")
	case len(pos) == 0 && (*file == "" || *metaFile == "" || *bucket == "" || *key == ""):
		return usage("give s3://bucket/key, or all of -file, -metadata, -bucket and -key")
	}
	if len(pos) == 1 {
		if *bucket, *key, err = tools.ParseS3URI(pos[0]); err != nil {
			return usage(err.Error())
		}
		if *key == "" {
			return usage("the URI names no object key")
		}
	}
	fail := func(err error) int {
		fmt.Fprintf(tio.stderr, "gateway decrypt: %v\n", err)
		return exitFailed
	}
	cfg, log, kp, closeKeys, err := toolSetup(ctx, *configPath, tio)
	if err != nil {
		return fail(err)
	}
	defer closeKeys()

	var n int64
	fill := func(w io.Writer) error {
		if len(pos) == 1 {
			b, closeBackend, err := toolBackend(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer closeBackend()
			n, err = tools.DecryptObject(ctx, b, kp, *bucket, *key, w)
			return err
		}
		n, err = decryptFile(ctx, kp, *file, *metaFile, *bucket, *key, w)
		return err
	}
	if *out == "-" {
		err = fill(tio.stdout)
	} else {
		err = tools.WriteFile(*out, fill)
	}
	if err != nil {
		return fail(err)
	}
	if *out != "-" {
		fmt.Fprintf(tio.stderr, "gateway decrypt: s3://%s/%s: %d bytes written to %s\n", *bucket, *key, n, *out)
	}
	return exitOK
}

// decryptFile decrypts a stored object saved as a file, with its metadata file.
func decryptFile(ctx context.Context, kp tools.KeySource, file, metaFile, bucket, key string, w io.Writer) (int64, error) {
	meta, err := os.ReadFile(metaFile)
	if err != nil {
		return 0, err
	}
	md, err := tools.ParseMetadataFile(meta)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", metaFile, err)
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return tools.Decrypt(ctx, kp, tools.DecryptInput{
		Bucket: bucket, Key: key, Envelope: md.Envelope, Context: md.Context, Manifest: md.Manifest, Checksum: md.Checksum,
		Stored: f, StoredSize: st.Size(),
	}, w)
}
