package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/testenv"
)

const (
	sixGiB = 6 << 30
	// sixGiBMinFree is the free space TestEmbeddedSixGiB needs where the data dir is: the
	// store holds the parts (6 GiB) and writes the completed object from them (6 GiB more
	// until the parts are removed); with a Complete that rewrites the object (UploadPartCopy
	// parts and a second assembly, proxy/complete.go before format 3) up to 18 GiB at once.
	sixGiBMinFree = 20 << 30
	// sixGiBCommandTimeout bounds one aws-cli command of 6 GiB (testenv's AWS allows 5 minutes,
	// which a loaded 2-core CI machine can need for the upload alone).
	sixGiBCommandTimeout = 20 * time.Minute
	sixPartSize          = 8 << 20 // aws-cli's default multipart_chunksize (and threshold)
)

// TestEmbeddedSixGiB: in the default mode (embedded store, no backend configured, as
// `go run ./cmd/gateway`), `aws s3 cp` with aws-cli's defaults (8 MiB parts, 10 at a time) of
// a 6 GiB file, above S3's 5 GiB copy limit and the gateway's default backend.max_copy_size,
// completes; head-object shows its size and S3's multipart ETag of the plaintext (768 parts);
// `aws s3 cp` back (to stdout, hashed here) gives the same bytes; delete-object removes it and
// its disk space. TestEmbeddedCopyLimit covers the same path with a lowered limit and 20 MiB;
// this one runs it at the real size with the real defaults (read timeout of 60 s on the
// Complete included).
//
// With format 2 (Complete writes the manifest with a copy: above the copy limit an upload of
// 768 UploadPartCopy parts, which the store assembles again) this failed on a 2-core machine:
// the Complete took ~80 s, aws-cli's read timeout (60 s) fired, and its retried Complete got
// NoSuchUpload ("upload failed"). With the read timeout off the test passed in ~2m20s, 18 GiB
// on disk at the peak.
//
// The file is sparse (zeros, no disk); the store writes the ciphertext. Skipped with -short,
// and when the data dir's file system has less than 20 GiB free.
func TestEmbeddedSixGiB(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads and downloads 6 GiB through aws-cli (minutes): not in -short")
	}
	dataDir := embeddedDataDir(t)
	free, err := sixFreeBytes(filepath.Dir(dataDir))
	if err != nil {
		t.Fatalf("free space of %s: %v", filepath.Dir(dataDir), err)
	}
	if free < sixGiBMinFree {
		t.Skipf("%s has %.1f GiB free; this test needs %d GiB (the embedded store writes the 6 GiB object, its parts and temp files)",
			filepath.Dir(dataDir), float64(free)/(1<<30), sixGiBMinFree>>30)
	}

	// What the download must hash to, and the ETag head-object must show, computed meanwhile.
	type expected struct{ sha256, etag string }
	want := make(chan expected, 1)
	go func() {
		zeros := make([]byte, sixPartSize)
		h := sha256.New()
		for range sixGiB / sixPartSize {
			h.Write(zeros)
		}
		partMD5 := md5.Sum(zeros)
		all := md5.Sum(bytes.Repeat(partMD5[:], sixGiB/sixPartSize))
		want <- expected{hex.EncodeToString(h.Sum(nil)), fmt.Sprintf(`"%x-%d"`, all, sixGiB/sixPartSize)}
	}()

	src := filepath.Join(t.TempDir(), "six.bin")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(src, sixGiB); err != nil {
		t.Fatal(err)
	}

	gw := embeddedGateway(t, dataDir)
	peak := sixWatchDiskUse(t, filepath.Dir(dataDir))
	start := time.Now()
	phase := func(name string, since time.Time) {
		t.Logf("%s: %v (used on the data dir's file system: peak %.1f GiB above the start)",
			name, time.Since(since).Round(100*time.Millisecond), float64(peak())/(1<<30))
	}

	if out, err := gw.AWS(t, "s3", "mb", "s3://six"); err != nil {
		t.Fatalf("mb: %v\n%s", err, out)
	}
	t0 := time.Now()
	if out, err := sixAWS(t, gw, nil, "s3", "cp", "--only-show-errors", src, "s3://six/six.bin"); err != nil {
		t.Fatalf("aws s3 cp of 6 GiB to the embedded gateway: %v\n%s", err, out)
	}
	phase("upload (aws s3 cp, 768 parts, Complete)", t0)

	exp := <-want
	out, err := gw.AWS(t, "s3api", "head-object", "--bucket", "six", "--key", "six.bin")
	if err != nil {
		t.Fatalf("head-object: %v\n%s", err, out)
	}
	var head struct {
		ContentLength int64
		ETag          string
	}
	if err := json.Unmarshal([]byte(out), &head); err != nil || head.ContentLength != sixGiB {
		t.Errorf("head-object: ContentLength %d (%v), want %d\n%s", head.ContentLength, err, int64(sixGiB), out)
	}
	if head.ETag != exp.etag {
		t.Errorf("head-object: ETag %s, want S3's multipart ETag of the plaintext %s", head.ETag, exp.etag)
	}

	t0 = time.Now()
	h := sha256.New()
	n := &sixCountWriter{w: h}
	if out, err := sixAWS(t, gw, n, "s3", "cp", "--only-show-errors", "s3://six/six.bin", "-"); err != nil {
		t.Fatalf("aws s3 cp of the 6 GiB object to stdout: %v\n%s", err, out)
	}
	phase("download (aws s3 cp to stdout)", t0)
	if got := hex.EncodeToString(h.Sum(nil)); n.n != sixGiB || got != exp.sha256 {
		t.Errorf("download: %d bytes with SHA-256 %s, want %d zero bytes (%s)", n.n, got, int64(sixGiB), exp.sha256)
	}

	if out, err := gw.AWS(t, "s3api", "delete-object", "--bucket", "six", "--key", "six.bin"); err != nil {
		t.Fatalf("delete-object: %v\n%s", err, out)
	}
	if out, err := gw.AWS(t, "s3api", "head-object", "--bucket", "six", "--key", "six.bin"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("head-object after delete-object: %v, want a 404\n%s", err, out)
	}
	// Nothing of the object is left on disk (bodies, parts, temp files).
	if used, err := sixDiskUse(dataDir); err != nil || used > 64<<20 {
		t.Errorf("data dir holds %.1f MiB after the object was deleted (%v), want under 64 MiB", float64(used)/(1<<20), err)
	}
	phase("whole test", start)
}

// sixFreeBytes is the space available to this user on the file system holding dir.
func sixFreeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// sixWatchDiskUse samples the used space of dir's file system every second until the end of the
// test; the returned func gives the peak above the first sample.
func sixWatchDiskUse(t *testing.T, dir string) func() int64 {
	var (
		mu       sync.Mutex
		base, pk int64
	)
	sample := func() int64 {
		var st syscall.Statfs_t
		if syscall.Statfs(dir, &st) != nil {
			return 0
		}
		return int64(st.Blocks-st.Bfree) * st.Bsize
	}
	base = sample()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				u := sample() - base
				mu.Lock()
				pk = max(pk, u)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	return func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return pk
	}
}

// sixDiskUse is the space the files under dir occupy (allocated blocks, so sparse files count
// for what they hold).
func sixDiskUse(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			}
		}
		return nil
	})
	return total, err
}

// sixCountWriter counts the bytes written through it.
type sixCountWriter struct {
	w io.Writer
	n int64
}

func (c *sixCountWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// sixAWS is gw.AWS (aws-cli v1, the gateway's environment) with sixGiBCommandTimeout instead
// of 5 minutes, and stdout to w when w is not nil (then the returned string is empty).
func sixAWS(t *testing.T, gw *testenv.Gateway, w io.Writer, args ...string) (string, error) {
	t.Helper()
	bin := sixAWSv1Bin(t)
	ctx, cancel := context.WithTimeout(context.Background(), sixGiBCommandTimeout)
	defer cancel()
	cmd := gw.Command(ctx, bin, append([]string{"--endpoint-url", gw.Endpoint}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if w != nil {
		cmd.Stdout = w
	}
	start := time.Now()
	err := cmd.Run()
	t.Logf("aws %s (%v, err %v)", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond), err)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %v: %w", sixGiBCommandTimeout, err)
		}
		s := stderr.String()
		if len(s) > 8000 {
			s = "..." + s[len(s)-8000:]
		}
		return stdout.String(), fmt.Errorf("%w\nstderr:\n%s", err, s)
	}
	return stdout.String(), nil
}

// sixAWSv1Bin is the first `aws` on PATH that is not Debian's aws-cli v2 (/usr/bin/aws), as
// testenv's AWS picks it; the test skips (fails with CI=true) without one.
func sixAWSv1Bin(t *testing.T) string {
	t.Helper()
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "aws")
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			continue
		}
		if r, err := filepath.EvalSymlinks(p); err == nil && r == "/usr/bin/aws" || p == "/usr/bin/aws" {
			continue
		}
		return p
	}
	testenv.Require(t, "aws-cli v1 on PATH (an `aws` other than /usr/bin/aws)", false)
	return ""
}
