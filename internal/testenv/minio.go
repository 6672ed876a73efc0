package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

const (
	minioStartTimeout = 60 * time.Second
	minioStopGrace    = 10 * time.Second
	clientTimeout     = 5 * time.Minute
)

// MinIO is a running MinIO server: by default the one shared by the whole test run
// (NewMinIO), or one owned by a single test (NewPrivateMinIO).
type MinIO struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string // root user
	SecretKey string // root password
	Region    string // us-east-1
	Bin       string // the minio binary
	DataDir   string // its data directory
	// Data is a MinIO user allowed the S3 API but not the admin API (DataPolicy): the backend
	// key for gateways. AccessKey/SecretKey (root) are for talking to MinIO directly.
	Data MinIOUser

	ctl minioControl
}

// minioControl is what Stop and Start need: where the current PID is, the command line that
// starts the server (run as `bash -c "exec CMD"`, root credentials in the environment) and
// the log to append to.
type minioControl struct {
	mu      sync.Mutex
	pidFile string
	cmdLine string
	logPath string
	private bool
}

// NewMinIO returns the shared MinIO of this test run (S3SEAL_TEST_MINIO_* from scripts/test),
// with its data user (MinIO.Data, created once per test process).
func NewMinIO(t testing.TB) *MinIO {
	t.Helper()
	m := &MinIO{
		Endpoint:  requireEnv(t, "S3SEAL_TEST_MINIO_ENDPOINT"),
		AccessKey: requireEnv(t, "S3SEAL_TEST_MINIO_ACCESS_KEY"),
		SecretKey: requireEnv(t, "S3SEAL_TEST_MINIO_SECRET_KEY"),
		Region:    "us-east-1",
		Bin:       os.Getenv("S3SEAL_TEST_MINIO_BIN"),
		DataDir:   os.Getenv("S3SEAL_TEST_MINIO_DATA"),
	}
	m.ctl.pidFile = os.Getenv("S3SEAL_TEST_MINIO_PIDFILE")
	m.ctl.cmdLine = os.Getenv("S3SEAL_TEST_MINIO_CMD")
	m.ctl.logPath = os.Getenv("S3SEAL_TEST_MINIO_LOG")
	m.Data = m.dataUser(t)
	return m
}

// NewPrivateMinIO starts a MinIO server of its own for this test (fresh data directory, free
// ports, random root credentials) and stops it at the end of the test. Use it instead of
// NewMinIO for tests that Stop/Start the backend: stopping the shared one disturbs every other
// package that runs at the same time.
func NewPrivateMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := requireEnv(t, "S3SEAL_TEST_MINIO_BIN")
	dir := t.TempDir()
	port, consolePort := FreePort(t), FreePort(t)
	for consolePort == port {
		consolePort = FreePort(t)
	}
	m := &MinIO{
		Endpoint:  fmt.Sprintf("http://127.0.0.1:%d", port),
		AccessKey: "ak" + randomHex(t, 8),
		SecretKey: "sk" + randomHex(t, 16),
		Region:    "us-east-1",
		Bin:       bin,
		DataDir:   filepath.Join(dir, "data"),
	}
	m.ctl.private = true
	m.ctl.pidFile = filepath.Join(dir, "minio.pid")
	m.ctl.logPath = filepath.Join(dir, "minio.log")
	m.ctl.cmdLine = shellQuote("env", "MINIO_BROWSER=off", "MINIO_UPDATE=off", bin, "server",
		"--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort), m.DataDir)
	if err := os.MkdirAll(m.DataDir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	m.Start(t)
	t.Cleanup(func() {
		if err := m.stop(); err != nil {
			t.Errorf("testenv: stopping private MinIO: %v", err)
		}
		if t.Failed() {
			t.Logf("testenv: private MinIO log (tail):\n%s", tailFile(m.ctl.logPath, 30))
		}
	})
	m.Data = m.dataUser(t)
	return m
}

// Client returns an S3 client talking to MinIO directly: path-style, us-east-1, root
// credentials, checksums only "when required". optFns may adjust it further.
func (m *MinIO) Client(t testing.TB, optFns ...func(*s3.Options)) *s3.Client {
	t.Helper()
	return s3.New(s3.Options{
		Region:                     m.Region,
		BaseEndpoint:               aws.String(m.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		HTTPClient:                 awshttp.NewBuildableClient().WithTimeout(clientTimeout),
	}, optFns...)
}

// NewBucket creates a bucket with a unique name directly in MinIO and, at the end of the test,
// deletes every object version, delete marker and unfinished multipart upload in it and the
// bucket itself.
func (m *MinIO) NewBucket(t testing.TB) string {
	t.Helper()
	name := bucketName(t)
	c := m.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testenv: create bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := emptyAndDeleteBucket(ctx, c, name); err != nil {
			t.Errorf("testenv: removing bucket %s: %v", name, err)
		}
	})
	return name
}

// bucketName is "t-<test name>-<random>", lowercase, at most 63 characters.
func bucketName(t testing.TB) string {
	suffix := randomHex(t, 4)
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else if s := b.String(); s != "" && s[len(s)-1] != '-' {
			b.WriteByte('-')
		}
	}
	mid := strings.Trim(b.String(), "-")
	if max := 63 - len("t--") - len(suffix); len(mid) > max {
		mid = strings.TrimRight(mid[:max], "-")
	}
	if mid == "" {
		return "t-" + suffix
	}
	return "t-" + mid + "-" + suffix
}

func emptyAndDeleteBucket(ctx context.Context, c *s3.Client, bucket string) error {
	uploads := s3.NewListMultipartUploadsPaginator(c, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	for uploads.HasMorePages() {
		page, err := uploads.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list multipart uploads: %w", err)
		}
		for _, u := range page.Uploads {
			if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId,
			}); err != nil {
				return fmt.Errorf("abort upload of %s: %w", aws.ToString(u.Key), err)
			}
		}
	}
	versions := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for versions.HasMorePages() {
		page, err := versions.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list object versions: %w", err)
		}
		var ids []types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, d := range page.DeleteMarkers {
			ids = append(ids, types.ObjectIdentifier{Key: d.Key, VersionId: d.VersionId})
		}
		if len(ids) == 0 {
			continue
		}
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("delete objects: %w", err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("delete %s: %s %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("delete bucket: %w", err)
	}
	return nil
}

// Stop stops the MinIO server (SIGTERM, SIGKILL after 10 s) and returns once it is gone.
// Start brings it back on the same port and data. Stopping the shared MinIO (NewMinIO)
// disturbs other packages testing at the same time; prefer NewPrivateMinIO.
func (m *MinIO) Stop(t testing.TB) {
	t.Helper()
	m.requireControl(t)
	if err := m.stop(); err != nil {
		t.Fatalf("testenv: stopping MinIO: %v", err)
	}
}

func (m *MinIO) stop() error {
	m.ctl.mu.Lock()
	defer m.ctl.mu.Unlock()
	pid, err := readPID(m.ctl.pidFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if !procRuns(pid, m.Bin) {
		return nil // already stopped
	}
	if _, err := terminate(pid, minioStopGrace); err != nil {
		return err
	}
	return m.waitPortClosed(pid)
}

// waitPortClosed waits (up to 5 s) until nothing accepts connections on MinIO's port once
// process pid is gone.
func (m *MinIO) waitPortClosed(pid int) error {
	host := strings.TrimPrefix(m.Endpoint, "http://")
	for deadline := time.Now().Add(5 * time.Second); portOpen(host); {
		if time.Now().After(deadline) {
			return fmt.Errorf("MinIO pid %d is gone but %s still accepts connections", pid, host)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// Kill ends the MinIO server with SIGKILL (a crash: nothing is flushed, open requests are cut)
// and returns once it is gone and its port is closed. Start brings it back.
func (m *MinIO) Kill(t testing.TB) {
	t.Helper()
	m.requireControl(t)
	if err := m.kill(); err != nil {
		t.Fatalf("testenv: killing MinIO: %v", err)
	}
}

func (m *MinIO) kill() error {
	m.ctl.mu.Lock()
	defer m.ctl.mu.Unlock()
	pid, err := readPID(m.ctl.pidFile)
	if err != nil {
		return err
	}
	if !procRuns(pid, m.Bin) {
		return fmt.Errorf("MinIO pid %d is not running", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("SIGKILL to pid %d: %w", pid, err)
	}
	if !waitGone(pid, 10*time.Second) {
		return fmt.Errorf("MinIO pid %d still alive after SIGKILL", pid)
	}
	return m.waitPortClosed(pid)
}

// Start starts the (stopped) MinIO server again with the same command line, port and data,
// and waits until it is ready. The new process outlives the test; for the shared MinIO,
// scripts/test stops it at the end through the PID file.
func (m *MinIO) Start(t testing.TB) {
	t.Helper()
	m.requireControl(t)
	if err := m.start(); err != nil {
		t.Fatalf("testenv: starting MinIO: %v\nlog (tail):\n%s", err, tailFile(m.ctl.logPath, 30))
	}
}

func (m *MinIO) start() error {
	m.ctl.mu.Lock()
	defer m.ctl.mu.Unlock()
	if pid, err := readPID(m.ctl.pidFile); err == nil && procRuns(pid, m.Bin) {
		return fmt.Errorf("MinIO is already running (pid %d)", pid)
	}
	logFile, err := os.OpenFile(m.ctl.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "\n=== testenv: (re)starting MinIO at %s\n", time.Now().Format(time.RFC3339))
	cmd := exec.Command("bash", "-c", "exec "+m.ctl.cmdLine)
	cmd.Env = append(withoutEnv(os.Environ(), "MINIO_"),
		"MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	pid := cmd.Process.Pid
	untrack := func() {}
	if m.ctl.private {
		untrack = trackPID(pid, m.Bin)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		untrack()
		close(done)
	}()
	if err := writeFileAtomic(m.ctl.pidFile, []byte(fmt.Sprintf("%d\n", pid))); err != nil {
		_, _ = terminate(pid, time.Second)
		return err
	}
	if err := waitMinIOReady(m.Endpoint, done); err != nil {
		return err
	}
	return m.waitObjectAPI()
}

// waitObjectAPI polls ListBuckets until MinIO's S3 API answers: after a restart on existing
// data its health endpoints report ready a moment before requests stop failing with 503
// XMinioServerNotInitialized.
func (m *MinIO) waitObjectAPI() error {
	c := s3.New(s3.Options{
		Region: m.Region, BaseEndpoint: aws.String(m.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		Retryer:     aws.NopRetryer{},
	})
	deadline := time.Now().Add(minioStartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("MinIO's S3 API at %s still failing after %v: %w", m.Endpoint, minioStartTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitMinIOReady polls MinIO's health endpoints until live and ready answer 200.
func waitMinIOReady(endpoint string, exited <-chan struct{}) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	ok := func(path string) bool {
		resp, err := hc.Get(endpoint + path)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	deadline := time.Now().Add(minioStartTimeout)
	for !(ok("/minio/health/live") && ok("/minio/health/ready")) {
		select {
		case <-exited:
			return errors.New("MinIO exited during start-up")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("MinIO not ready at %s after %v", endpoint, minioStartTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func (m *MinIO) requireControl(t testing.TB) {
	t.Helper()
	for _, v := range []struct{ name, val string }{
		{"S3SEAL_TEST_MINIO_BIN", m.Bin},
		{"S3SEAL_TEST_MINIO_PIDFILE", m.ctl.pidFile},
		{"S3SEAL_TEST_MINIO_CMD", m.ctl.cmdLine},
		{"S3SEAL_TEST_MINIO_LOG", m.ctl.logPath},
	} {
		Require(t, "$"+v.name+" (to stop/start MinIO)", v.val != "")
	}
	if _, err := url.Parse(m.Endpoint); err != nil {
		t.Fatalf("testenv: bad MinIO endpoint %q: %v", m.Endpoint, err)
	}
}

// withoutEnv drops the variables whose names start with prefix.
func withoutEnv(env []string, prefix string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return hex.EncodeToString(b)
}
