package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	clientProgramTimeout = 5 * time.Minute
	debianAWS            = "/usr/bin/aws"
)

// Env is the environment for client programs (aws-cli, boto3, rclone, s3cmd) talking to the
// gateway: its credentials and region in AWS_* variables, AWS config and credential files
// disabled (/dev/null), no AWS_PROFILE, no instance metadata lookups, no pager, and
// S3SEAL_ENDPOINT=<endpoint>. PATH, HOME, TMPDIR, locale, pyenv selection and AWS_CA_BUNDLE are
// kept from the test's environment; remove AWS_CA_BUNDLE from the slice if a test must not
// have it.
func (g *Gateway) Env() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PYENV_ROOT", "PYENV_VERSION", "AWS_CA_BUNDLE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env,
		"AWS_ACCESS_KEY_ID="+g.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+g.SecretAccessKey,
		"AWS_DEFAULT_REGION="+g.Region,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
		"S3SEAL_ENDPOINT="+g.Endpoint,
	)
}

// AWS runs `aws --endpoint-url <endpoint> args...` with aws-cli v1 (the pyenv one on PATH, not
// Debian's v2), environment Env(), no stdin and a 5 minute limit. The error includes stderr.
func (g *Gateway) AWS(t testing.TB, args ...string) (string, error) {
	t.Helper()
	bin := awsV1Path()
	Require(t, "aws-cli v1 on PATH (an `aws` other than "+debianAWS+")", bin != "")
	return g.run(t, bin, append([]string{"--endpoint-url", g.Endpoint}, args...)...)
}

// AWSv2 is AWS with Debian's aws-cli v2 (/usr/bin/aws).
func (g *Gateway) AWSv2(t testing.TB, args ...string) (string, error) {
	t.Helper()
	_, err := os.Stat(debianAWS)
	Require(t, "aws-cli v2 at "+debianAWS+" (Debian package awscli)", err == nil)
	return g.run(t, debianAWS, append([]string{"--endpoint-url", g.Endpoint}, args...)...)
}

// Python runs `python3 -c script args...` (the python3 on PATH, with boto3) with environment
// Env(), no stdin and a 5 minute limit; the script finds the gateway in S3SEAL_ENDPOINT and
// boto3 its credentials in the AWS_* variables. The error includes stderr.
func (g *Gateway) Python(t testing.TB, script string, args ...string) (string, error) {
	t.Helper()
	return g.run(t, "python3", append([]string{"-c", script}, args...)...)
}

// run runs a client program and returns its stdout; the error carries the exit status and
// stderr. The command is logged without the (possibly long) script text.
func (g *Gateway) run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientProgramTimeout)
	defer cancel()
	cmd := g.Command(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	shown := describe(name, args)
	start := time.Now()
	err := cmd.Run()
	t.Logf("testenv: %s (%v, %v)", shown, time.Since(start).Round(time.Millisecond), exitText(err))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %v: %w", clientProgramTimeout, err)
		}
		return stdout.String(), fmt.Errorf("%s: %w\nstderr:\n%s", shown, err, tail(stderr.Bytes(), 40))
	}
	return stdout.String(), nil
}

func describe(name string, args []string) string {
	shown := make([]string, 0, len(args)+1)
	shown = append(shown, filepath.Base(name))
	for i, a := range args {
		if i > 0 && args[i-1] == "-c" {
			a = "<script>"
		}
		shown = append(shown, a)
	}
	return strings.Join(shown, " ")
}

func exitText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// awsV1Path finds the first `aws` on PATH that is not Debian's v2, or "".
func awsV1Path() string {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "aws")
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			continue
		}
		if samePath(p, debianAWS) {
			continue
		}
		return p
	}
	return ""
}

// LookPath is exec.LookPath with Require: the test skips (fails on CI) without the program.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Require(t, name+" on PATH", err == nil)
	return p
}
