package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	gatewayPackage      = "github.com/s3seal/s3seal/cmd/gateway"
	gatewayStartTimeout = 30 * time.Second
	gatewayStopGrace    = 10 * time.Second
	defaultRegion       = "us-east-1"
)

// buildGateway builds cmd/gateway at most once per test process. It is the one piece of
// package-level state here, on purpose: every test of a package shares the binary.
var buildGateway = sync.OnceValues(func() (string, error) {
	return buildBinary(gatewayPackage, "gateway")
})

// GatewayBin returns the gateway binary: $S3SEAL_TEST_GATEWAY_BIN (built once by
// scripts/test), else `go build ./cmd/gateway`, done once per test process.
func GatewayBin(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("S3SEAL_TEST_GATEWAY_BIN"); bin != "" {
		if st, err := os.Stat(bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			t.Fatalf("testenv: S3SEAL_TEST_GATEWAY_BIN=%s is not an executable file", bin)
		}
		return bin
	}
	bin, err := buildGateway()
	if err != nil {
		t.Fatalf("testenv: building the gateway: %v", err)
	}
	return bin
}

// buildBinary runs `go build` for pkg into a per-checkout directory under the system temp dir
// (one fixed path, replaced atomically, so repeated test runs do not pile up binaries).
func buildBinary(pkg, name string) (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(string(gomod))))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("s3seal-testenv-%d-%s", os.Getuid(), hex.EncodeToString(sum[:6])))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	final := filepath.Join(dir, name)
	// go build refuses to overwrite a file it did not build, so the temporary name must not exist.
	tmp := fmt.Sprintf("%s.%d.%d.tmp", final, os.Getpid(), time.Now().UnixNano())
	out, err := exec.Command("go", "build", "-o", tmp, pkg).CombinedOutput()
	if err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	return final, nil
}

// Gateway is a gateway process started by StartGateway; it is stopped at the end of the test.
type Gateway struct {
	Endpoint        string // http://127.0.0.1:PORT
	AccessKeyID     string // what clients sign with (GATEWAY_ACCESS_KEY_ID)
	SecretAccessKey string
	Region          string // GATEWAY_REGION, or us-east-1 when not set
	LogPath         string // stdout+stderr of the process
	// Cmd is the running process. Do not call Cmd.Wait: the harness does; use Stop.
	Cmd *exec.Cmd

	done     chan struct{} // closed once the process has exited and its output is flushed
	waitErr  error         // from Cmd.Wait, valid after done
	stopOnce sync.Once
}

// StartGateway runs the gateway binary with env added to a clean base environment (PATH,
// HOME, GATEWAY_LISTEN=127.0.0.1:<free port>, random GATEWAY_ACCESS_KEY_ID and
// GATEWAY_SECRET_ACCESS_KEY; env overrides them, and an empty value removes a variable), in
// a fresh working directory, and waits until the port accepts connections. If the process
// exits first, the test fails with its log. At the end of the test it gets SIGTERM, and SIGKILL
// 10 s later. Its stdout+stderr go to LogPath and are also appended to
// $S3SEAL_TEST_LOG_DIR/gateway-<test name>.log when that is set.
func StartGateway(t testing.TB, env map[string]string) *Gateway {
	t.Helper()
	return StartGatewayWithArgs(t, env)
}

// StartGatewayWithArgs is StartGateway with command-line arguments (e.g. "-config", file).
func StartGatewayWithArgs(t testing.TB, env map[string]string, args ...string) *Gateway {
	t.Helper()
	bin := GatewayBin(t)
	vars := map[string]string{
		"GATEWAY_LISTEN":            fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		"GATEWAY_ACCESS_KEY_ID":     "AKGW" + strings.ToUpper(randomHex(t, 8)),
		"GATEWAY_SECRET_ACCESS_KEY": randomSecret(t),
	}
	removed := map[string]bool{}
	for k, v := range env {
		if v == "" {
			delete(vars, k)
			removed[k] = true
		} else {
			vars[k] = v
		}
	}
	recordGatewaySecrets(t, vars, args) // for the log scan (secrets.go)
	listen := vars["GATEWAY_LISTEN"]
	if listen == "" {
		t.Fatal("testenv: StartGateway needs GATEWAY_LISTEN (remove the empty override)")
	}
	g := &Gateway{
		Endpoint:        "http://" + listen,
		AccessKeyID:     vars["GATEWAY_ACCESS_KEY_ID"],
		SecretAccessKey: vars["GATEWAY_SECRET_ACCESS_KEY"],
		Region:          vars["GATEWAY_REGION"],
		done:            make(chan struct{}),
	}
	if g.Region == "" {
		g.Region = defaultRegion
	}

	dir := t.TempDir()
	g.LogPath = filepath.Join(dir, "gateway.log")
	out, closeLogs := openGatewayLogs(t, g.LogPath, bin, args, listen)

	g.Cmd = exec.Command(bin, args...)
	g.Cmd.Dir = dir
	g.Cmd.Env = gatewayEnv(vars, removed)
	g.Cmd.Stdout, g.Cmd.Stderr = out, out
	g.Cmd.WaitDelay = 5 * time.Second // a stray child holding the output pipe cannot block Wait
	if err := g.Cmd.Start(); err != nil {
		closeLogs()
		t.Fatalf("testenv: starting gateway %s: %v", bin, err)
	}
	untrack := trackPID(g.Cmd.Process.Pid, bin)
	go func() {
		g.waitErr = g.Cmd.Wait()
		closeLogs()
		untrack()
		close(g.done)
	}()
	t.Cleanup(func() {
		if err := g.stop(t, gatewayStopGrace); err != nil {
			t.Logf("testenv: gateway exit: %v", err)
		}
		if t.Failed() {
			t.Logf("testenv: gateway log %s (tail):\n%s", g.LogPath, tailFile(g.LogPath, 40))
		}
	})

	deadline := time.Now().Add(gatewayStartTimeout)
	for !portOpen(listen) {
		select {
		case <-g.done:
			t.Fatalf("testenv: gateway exited during start-up (%v); log:\n%s", g.waitErr, tailFile(g.LogPath, 60))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: gateway did not listen on %s within %v; log:\n%s", listen, gatewayStartTimeout, tailFile(g.LogPath, 60))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("testenv: gateway pid %d on %s (log %s)", g.Cmd.Process.Pid, g.Endpoint, g.LogPath)
	return g
}

// openGatewayLogs opens the per-gateway log and, when S3SEAL_TEST_LOG_DIR is set, the suite-wide
// one; it returns a writer to both and a func closing them.
func openGatewayLogs(t testing.TB, path, bin string, args []string, listen string) (io.Writer, func()) {
	t.Helper()
	own, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := os.Getenv("S3SEAL_TEST_LOG_DIR")
	if dir == "" {
		return own, func() { own.Close() }
	}
	sharedPath := filepath.Join(dir, "gateway-"+fileName(t.Name())+".log")
	shared, err := os.OpenFile(sharedPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		own.Close()
		t.Fatalf("testenv: %v", err)
	}
	fmt.Fprintf(shared, "=== testenv %s: %s %s %v on %s\n", time.Now().Format(time.RFC3339), t.Name(), bin, args, listen)
	return io.MultiWriter(own, shared), func() {
		own.Close()
		shared.Close()
	}
}

// gatewayEnv is the clean base environment (PATH, HOME and GORACE, for a gateway built with
// -race, unless removed) plus vars, sorted.
func gatewayEnv(vars map[string]string, removed map[string]bool) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "GORACE"} {
		if _, set := vars[k]; !set && !removed[k] {
			if v, ok := os.LookupEnv(k); ok {
				env = append(env, k+"="+v)
			}
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// StartGatewayMinIO starts a gateway in front of the shared MinIO, with the shared KMS
// emulator and a fresh KMS key; extra is merged on top of that environment. The gateway's
// backend key is MinIO's data user (MinIO.Data: S3 API only, no admin API).
func StartGatewayMinIO(t testing.TB, extra map[string]string) (*Gateway, *MinIO, *KMS, string) {
	t.Helper()
	return startGatewayMinIOAs(t, func(m *MinIO) MinIOUser { return m.Data }, extra)
}

// StartGatewayMinIORoot is StartGatewayMinIO with MinIO's root key as the gateway's backend
// key, for tests of what the gateway itself refuses to forward to a backend that would allow
// anything. Every other test should use StartGatewayMinIO.
func StartGatewayMinIORoot(t testing.TB, extra map[string]string) (*Gateway, *MinIO, *KMS, string) {
	t.Helper()
	return startGatewayMinIOAs(t, (*MinIO).rootUser, extra)
}

// startGatewayMinIOAs starts the gateway of StartGatewayMinIO with backendKey(m) as its
// backend key.
func startGatewayMinIOAs(t testing.TB, backendKey func(*MinIO) MinIOUser, extra map[string]string) (*Gateway, *MinIO, *KMS, string) {
	t.Helper()
	m := NewMinIO(t)
	k := NewKMS(t)
	keyID := k.CreateKey(t)
	cred := backendKey(m)
	env := map[string]string{
		"GATEWAY_BACKEND_ENDPOINT":          m.Endpoint,
		"GATEWAY_BACKEND_REGION":            m.Region,
		"GATEWAY_BACKEND_ACCESS_KEY_ID":     cred.AccessKey,
		"GATEWAY_BACKEND_SECRET_ACCESS_KEY": cred.SecretKey,
		"GATEWAY_BACKEND_PATH_STYLE":        "true",
		"GATEWAY_KMS_ENDPOINT":              k.Endpoint,
		"GATEWAY_KMS_REGION":                k.Region,
		"GATEWAY_KMS_ACCESS_KEY_ID":         kmsDummyKey,
		"GATEWAY_KMS_SECRET_ACCESS_KEY":     kmsDummyKey,
		"GATEWAY_KMS_KEY_ID":                keyID,
	}
	for k, v := range extra {
		env[k] = v
	}
	return StartGateway(t, env), m, k, keyID
}

// Stop stops the gateway now (SIGTERM, SIGKILL after 10 s) and returns how it exited (nil for
// status 0). Later calls, and the automatic one at the end of the test, do nothing more.
func (g *Gateway) Stop(t testing.TB) error {
	t.Helper()
	return g.stop(t, gatewayStopGrace)
}

func (g *Gateway) stop(t testing.TB, grace time.Duration) error {
	g.stopOnce.Do(func() {
		select {
		case <-g.done:
			return
		default:
		}
		_ = g.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(grace):
			t.Logf("testenv: gateway pid %d still running %v after SIGTERM; sending SIGKILL", g.Cmd.Process.Pid, grace)
			_ = g.Cmd.Process.Kill()
			<-g.done
		}
	})
	<-g.done
	return g.waitErr
}

// Client returns an S3 client for the gateway: path-style, the gateway's credentials and
// region, the SDK's default checksum behaviour (as real clients do) and no retries, so a
// failing request shows up as it is. optFns may adjust it further.
func (g *Gateway) Client(t testing.TB, optFns ...func(*s3.Options)) *s3.Client {
	t.Helper()
	return s3.New(s3.Options{
		Region:       g.Region,
		BaseEndpoint: aws.String(g.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(g.AccessKeyID, g.SecretAccessKey, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   awshttp.NewBuildableClient().WithTimeout(clientTimeout),
		// What config.LoadDefaultConfig gives: checksums on every request that supports them,
		// checksum mode on GET (s3.New alone would leave both off).
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}, optFns...)
}

// randomSecret is a 40-character secret access key, as long as the ones AWS issues.
func randomSecret(t testing.TB) string {
	return randomHex(t, 20)
}

// Command returns a command for a client program (rclone, s3cmd, ...) with Env() as its
// environment, no stdin, killed when ctx ends. Adjust cmd.Env before running it if needed.
func (g *Gateway) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = g.Env()
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Kill ends the gateway with SIGKILL (a crash: nothing is drained or flushed) and waits until
// it is gone. A later Stop, and the one at the end of the test, do nothing more.
func (g *Gateway) Kill(t testing.TB) {
	t.Helper()
	_ = g.Cmd.Process.Kill()
	<-g.done
}
