package testenv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func putObject(t *testing.T, c *s3.Client, bucket, key string, body []byte) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
}

func getObject(c *s3.Client, bucket, key string) ([]byte, error) {
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func TestMinIOBucketLifecycle(t *testing.T) {
	m := NewMinIO(t)
	c := m.Client(t)
	ctx := context.Background()
	var plain, versioned string
	t.Run("use", func(t *testing.T) {
		plain, versioned = m.NewBucket(t), m.NewBucket(t)
		if plain == versioned || !strings.Contains(plain, "use") {
			t.Errorf("bucket names %q, %q", plain, versioned)
		}
		data := RandomBytes(t, 100_000, "MARK")
		putObject(t, c, plain, "a", data)
		putObject(t, c, plain, "dir/b", []byte("b"))
		got, err := getObject(c, plain, "a")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, err %v", len(got), err)
		}
		// An unfinished multipart upload must not keep the bucket alive.
		if _, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(plain), Key: aws.String("unfinished"),
		}); err != nil {
			t.Fatal(err)
		}
		// Nor must old versions and delete markers.
		if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(versioned),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
		}); err != nil {
			t.Fatal(err)
		}
		putObject(t, c, versioned, "k", []byte("v1"))
		putObject(t, c, versioned, "k", []byte("v2"))
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(versioned), Key: aws.String("k")}); err != nil {
			t.Fatal(err)
		}
	})
	for _, b := range []string{plain, versioned} {
		_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b)})
		var nf *types.NotFound
		if !errors.As(err, &nf) {
			t.Errorf("bucket %s after its test: HeadBucket error %v, want NotFound", b, err)
		}
	}
}

func TestMinIOClientSettings(t *testing.T) {
	m := NewMinIO(t)
	o := m.Client(t).Options()
	if !o.UsePathStyle || o.Region != "us-east-1" || aws.ToString(o.BaseEndpoint) != m.Endpoint {
		t.Errorf("path-style %v region %q endpoint %q", o.UsePathStyle, o.Region, aws.ToString(o.BaseEndpoint))
	}
	if o.RequestChecksumCalculation != aws.RequestChecksumCalculationWhenRequired ||
		o.ResponseChecksumValidation != aws.ResponseChecksumValidationWhenRequired {
		t.Error("checksums not limited to \"when required\"")
	}
	if _, err := m.Client(t).ListBuckets(context.Background(), &s3.ListBucketsInput{}); err != nil {
		t.Errorf("root credentials rejected: %v", err)
	}
}

// The shared MinIO must be restartable by tests: scripts/test records how.
func TestSharedMinIOControl(t *testing.T) {
	m := NewMinIO(t)
	m.requireControl(t)
	pid, err := readPID(m.ctl.pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if !procRuns(pid, m.Bin) {
		t.Errorf("pid %d from %s is not a running %s", pid, m.ctl.pidFile, m.Bin)
	}
	host := strings.TrimPrefix(m.Endpoint, "http://")
	if !strings.Contains(m.ctl.cmdLine, host) || !strings.Contains(m.ctl.cmdLine, m.DataDir) {
		t.Errorf("command line %q does not name %s and %s", m.ctl.cmdLine, host, m.DataDir)
	}
	if _, err := os.Stat(filepath.Join(m.DataDir, ".minio.sys")); err != nil {
		t.Errorf("%s is not MinIO's data dir: %v", m.DataDir, err)
	}
	if f := runFake(t, func(tb testing.TB) { m.Start(tb) }); !f.fatal || !strings.Contains(f.text(), "already running") {
		t.Errorf("Start on the running shared MinIO: %q", f.text())
	}
}

func TestPrivateMinIOStopStart(t *testing.T) {
	p := NewPrivateMinIO(t)
	if shared := os.Getenv("S3SEAL_TEST_MINIO_ENDPOINT"); p.Endpoint == shared {
		t.Fatal("private MinIO on the shared endpoint")
	}
	c := p.Client(t)
	bucket := p.NewBucket(t)
	data := RandomBytes(t, 300_000, "")
	putObject(t, c, bucket, "obj", data)
	pid1, _ := readPID(p.ctl.pidFile)

	p.Stop(t)
	if procAlive(pid1) || portOpen(strings.TrimPrefix(p.Endpoint, "http://")) {
		t.Fatal("MinIO still running after Stop")
	}
	if _, err := getObject(c, bucket, "obj"); err == nil {
		t.Fatal("GET succeeded while MinIO was stopped")
	}
	p.Stop(t) // a second Stop is harmless

	p.Start(t)
	pid2, _ := readPID(p.ctl.pidFile)
	if pid2 == pid1 || !procRuns(pid2, p.Bin) {
		t.Errorf("pid file after Start: %d (before %d)", pid2, pid1)
	}
	got, err := getObject(c, bucket, "obj")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("object after restart: %d bytes, err %v", len(got), err)
	}
	if log := readFile(t, p.ctl.logPath); strings.Count(log, "testenv: (re)starting MinIO") != 2 {
		t.Errorf("MinIO log does not show two starts:\n%s", log)
	}
}
