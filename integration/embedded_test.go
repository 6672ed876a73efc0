package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestZeroConfigGoRun: on a fresh checkout, `go run ./cmd/gateway` with no flags and no
// configuration starts an embedded gateway, prints export lines and an aws-cli line, and those
// exact lines work. The data dir holds the key file and credentials (0600) and only ciphertext.
func TestZeroConfigGoRun(t *testing.T) {
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"GOPATH", "GOMODCACHE", "GOCACHE", "GOFLAGS", "GOPROXY", "TMPDIR", "PYENV_ROOT", "PYENV_VERSION", "AWS_CA_BUNDLE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if os.Getenv("GOCACHE") == "" { // keep the build cache although HOME changes
		out, _ := exec.Command("go", "env", "GOCACHE", "GOMODCACHE").Output()
		if f := strings.Fields(string(out)); len(f) == 2 {
			env = append(env, "GOCACHE="+f[0], "GOMODCACHE="+f[1])
		}
	}
	// The default port is 8080; only when it is taken on this machine move it (by environment,
	// still no flags and no config file).
	if l, err := net.Listen("tcp", "127.0.0.1:8080"); err == nil {
		l.Close()
	} else {
		env = append(env, fmt.Sprintf("GATEWAY_LISTEN=127.0.0.1:%d", testenv.FreePort(t)))
	}

	cmd := exec.Command("go", "run", "./cmd/gateway")
	cmd.Dir = ".."
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})

	var lines []string
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var got []string
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "export ") || strings.HasPrefix(line, "aws --endpoint-url") {
				got = append(got, line)
			}
			if strings.HasPrefix(line, "aws --endpoint-url") {
				found <- got
			}
		}
	}()
	select {
	case lines = <-found:
	case <-time.After(3 * time.Minute):
		t.Fatalf("gateway printed no aws-cli line; stderr:\n%s", stderr.String())
	}
	if len(lines) < 3 {
		t.Fatalf("expected export lines and an aws line, got %q", lines)
	}
	awsLine := lines[len(lines)-1]
	endpoint := strings.Fields(awsLine)[2]

	data := testenv.RandomBytes(t, 200_000, marker)
	dir := t.TempDir()
	src := writeFile(t, dir, "in.bin", data)
	script := strings.Join(lines, "\n") + "\n" +
		"set -e\n" +
		"aws --endpoint-url " + endpoint + " s3 mb s3://demo\n" +
		"aws --endpoint-url " + endpoint + " s3 cp " + src + " s3://demo/in.bin\n" +
		awsLine + " s3://demo/\n" +
		"aws --endpoint-url " + endpoint + " s3 cp s3://demo/in.bin " + filepath.Join(dir, "out.bin") + "\n"
	sh := exec.Command("bash", "-c", script)
	sh.Env = append(os.Environ(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	sh.Stdin = nil
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("pasted lines failed: %v\n%s\ngateway stderr:\n%s", err, out, stderr.String())
	}
	if !strings.Contains(string(out), "200000 in.bin") {
		t.Errorf("ls output does not show the plaintext size:\n%s", out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded copy differs (err %v)", err)
	}

	dataDir := filepath.Join(home, ".local", "share", "s3seal")
	for _, name := range []string{"keys.yaml", "credentials.yaml"} {
		st, err := os.Stat(filepath.Join(dataDir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	// Everything the embedded store wrote is ciphertext.
	stored := 0
	err = filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil // sockets and the like
		}
		if bytes.Contains(b, []byte(marker)) {
			t.Errorf("plaintext marker found in %s", p)
		}
		if at := sharedRun(data, b); at >= 0 {
			t.Errorf("a 16-byte run of the plaintext is in %s at %d", p, at)
		}
		stored += len(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stored < len(data) {
		t.Errorf("data dir holds %d bytes, less than the %d-byte object", stored, len(data))
	}
}

// embeddedGateway starts the gateway binary in embedded mode on dataDir (no backend
// configured, the local key file and the store in the data dir).
func embeddedGateway(t *testing.T, dataDir string) *testenv.Gateway {
	t.Helper()
	return testenv.StartGateway(t, map[string]string{"GATEWAY_DATA_DIR": dataDir})
}

// embeddedDataDir is a short data dir (the store's socket path must fit in sun_path).
func embeddedDataDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "emb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "data")
}

// TestEmbeddedAnyKey: through the gateway, the embedded store holds what a store of files
// named by key cannot: with aws-cli a folder marker (put-object --key folder/) and "a/b" next to
// an object "a" (`s3 cp x s3://b/a/b` used to delete "a"), both shown by `s3 ls`; with the Go SDK the
// marker listed with a delimiter, Unicode keys, a 1,024-byte key, all read back; a 1,025-byte
// key is KeyTooLongError.
func TestEmbeddedAnyKey(t *testing.T) {
	gw := embeddedGateway(t, embeddedDataDir(t))
	c := gw.Client(t)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("anykey")}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bodyA := testenv.RandomBytes(t, 3000, marker)
	bodyB := testenv.RandomBytes(t, 5000, marker)
	fb := writeFile(t, dir, "b", bodyB)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("anykey"), Key: aws.String("a"), Body: bytes.NewReader(bodyA)}); err != nil {
		t.Fatal(err)
	}
	e := "aws --endpoint-url $S3SEAL_ENDPOINT "
	script := "set -e\n" + e + "s3api put-object --bucket anykey --key folder/ >/dev/null\n" +
		e + "s3 cp " + fb + " s3://anykey/a/b\n" +
		"echo LS; " + e + "s3 ls s3://anykey/\n"
	out, err := gw.Command(ctx, "bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("aws-cli script: %v\n%s", err, out)
	}
	ls := strings.SplitN(string(out), "LS\n", 2)[1]
	for _, want := range []string{"PRE a/", "PRE folder/", " 3000 a\n"} {
		if !strings.Contains(ls, want) {
			t.Errorf("s3 ls lacks %q:\n%s", want, ls)
		}
	}

	long := strings.Repeat("é", 511) + "xy" // 1,024 bytes
	keys := map[string][]byte{"a": bodyA, "a/b": bodyB, "folder/": {}, "日本語/ключ/🙂 café.bin": bodyB, long: bodyA}
	for _, k := range []string{"日本語/ключ/🙂 café.bin", long} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("anykey"), Key: aws.String(k), Body: bytes.NewReader(keys[k])}); err != nil {
			t.Fatalf("PUT %d-byte key: %v", len(k), err)
		}
	}
	for k, want := range keys {
		got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("anykey"), Key: aws.String(k)})
		if err != nil {
			t.Errorf("GET %q: %v", k, err)
			continue
		}
		b, err := io.ReadAll(got.Body)
		got.Body.Close()
		if err != nil || !bytes.Equal(b, want) {
			t.Errorf("GET %q: %d bytes (err %v), want %d", k, len(b), err, len(want))
		}
	}
	lo, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("anykey"), Prefix: aws.String("folder/"), Delimiter: aws.String("/")})
	if err != nil || len(lo.Contents) != 1 || aws.ToString(lo.Contents[0].Key) != "folder/" || aws.ToInt64(lo.Contents[0].Size) != 0 || len(lo.CommonPrefixes) != 0 {
		t.Errorf("listing folder/ with delimiter: %v %+v", err, lo)
	}
	all, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("anykey")})
	if err != nil || len(all.Contents) != len(keys) {
		t.Errorf("listing: %v, %d objects, want %d", err, len(all.Contents), len(keys))
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("anykey"), Key: aws.String(long + "z"), Body: bytes.NewReader(bodyA)})
	if code := apiCode(err); code != "KeyTooLongError" {
		t.Errorf("PUT of a 1,025-byte key: %v, want KeyTooLongError", err)
	}
}

// TestEmbeddedOverwriteAtomic: GETs through the gateway racing overwrites of one key with two
// bodies of the same size always get one of the two whole, never a mix and never the
// gateway's "failed authentication" (which is what a mix of two versions' bytes gives, and
// what this test got before the store honoured If-Match on GET). The gateway reads an object
// in more than one backend request, each with If-Match on the version it started with; when
// an overwrite lands in between, the store answers 412 and the gateway passes that on as
// PreconditionFailed: counted, and allowed here (a retry is the gateway's to add). 1,000
// overwrites, two readers; the data dir is on a tmpfs when this process may mount one (fsync
// is then free: the test is about atomicity, the unit tests cover the disk).
func TestEmbeddedOverwriteAtomic(t *testing.T) {
	gw := embeddedGateway(t, embeddedMemDir(t))
	c := gw.Client(t)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("race")}); err != nil {
		t.Fatal(err)
	}
	bodies := [2][]byte{testenv.RandomBytes(t, 100_000, marker), testenv.RandomBytes(t, 100_000, marker)}
	sums := map[[32]byte]bool{sha256.Sum256(bodies[0]): true, sha256.Sum256(bodies[1]): true}
	putBody := func(b []byte) {
		t.Helper()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("race"), Key: aws.String("k"), Body: bytes.NewReader(b)}); err != nil {
			t.Fatalf("overwrite: %v", err)
		}
	}
	putBody(bodies[0])
	var done atomic.Bool
	var reads, raced atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("race"), Key: aws.String("k")})
				if apiCode(err) == "PreconditionFailed" {
					raced.Add(1) // the object changed between the gateway's backend requests
					continue
				}
				if err != nil {
					t.Errorf("GET during overwrites: %v", err)
					return
				}
				b, err := io.ReadAll(out.Body)
				out.Body.Close()
				if err != nil || !sums[sha256.Sum256(b)] {
					t.Errorf("GET during overwrites: %d bytes that are neither body (err %v)", len(b), err)
					return
				}
				reads.Add(1)
			}
		}()
	}
	start := time.Now()
	for i := range 1000 {
		putBody(bodies[(i+1)%2])
	}
	done.Store(true)
	wg.Wait()
	t.Logf("1000 overwrites in %v, %d concurrent reads all whole, %d refused with PreconditionFailed",
		time.Since(start).Round(time.Millisecond), reads.Load(), raced.Load())
	if reads.Load() == 0 {
		t.Error("no read ran during the overwrites")
	}
}

// TestEmbeddedMultipartAcrossRestart: parts uploaded, the gateway stopped and started again on
// the same data dir, more parts, Complete: the object is the parts' concatenation.
func TestEmbeddedMultipartAcrossRestart(t *testing.T) {
	data := embeddedDataDir(t)
	gw := embeddedGateway(t, data)
	c := gw.Client(t)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("mpr")}); err != nil {
		t.Fatal(err)
	}
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpr"), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{testenv.RandomBytes(t, 5<<20, marker), testenv.RandomBytes(t, 5<<20, marker), testenv.RandomBytes(t, 1234, marker)}
	var done []types.CompletedPart
	upload := func(c *s3.Client, n int) {
		t.Helper()
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpr"), Key: aws.String("big"), UploadId: cr.UploadId,
			PartNumber: aws.Int32(int32(n)), Body: bytes.NewReader(parts[n-1])})
		if err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(n)), ETag: out.ETag})
	}
	upload(c, 1)
	upload(c, 2)
	if err := gw.Stop(t); err != nil {
		t.Fatalf("gateway exit: %v", err)
	}
	gw2 := embeddedGateway(t, data)
	c2 := gw2.Client(t)
	lp, err := c2.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpr"), Key: aws.String("big"), UploadId: cr.UploadId})
	if err != nil || len(lp.Parts) != 2 {
		t.Fatalf("ListParts after the restart: %v, %d parts", err, len(lp.Parts))
	}
	upload(c2, 3)
	if _, err := c2.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpr"), Key: aws.String("big"),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("Complete after the restart: %v", err)
	}
	out, err := c2.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mpr"), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || sha256.Sum256(got) != sha256.Sum256(bytes.Join(parts, nil)) {
		t.Errorf("completed object: %d bytes (err %v), want the %d bytes of the three parts", len(got), err, 10<<20+1234)
	}
}

const boto3TaggingScript = `
import boto3, os, sys, json
c = boto3.client("s3", endpoint_url=os.environ["S3SEAL_ENDPOINT"])
b = sys.argv[1]
c.create_bucket(Bucket=b)
c.put_object(Bucket=b, Key="obj", Body=open(sys.argv[2], "rb").read(), Tagging="first=1")
out = {"put": c.get_object_tagging(Bucket=b, Key="obj")["TagSet"]}
c.put_object_tagging(Bucket=b, Key="obj", Tagging={"TagSet": [{"Key": "env", "Value": "prod"}, {"Key": "owner", "Value": "ops team"}]})
out["set"] = c.get_object_tagging(Bucket=b, Key="obj")["TagSet"]
out["count"] = c.get_object(Bucket=b, Key="obj").get("TagCount", 0)
c.delete_object_tagging(Bucket=b, Key="obj")
out["deleted"] = c.get_object_tagging(Bucket=b, Key="obj")["TagSet"]
out["body"] = c.get_object(Bucket=b, Key="obj")["Body"].read() == open(sys.argv[2], "rb").read()
print(json.dumps(out))
`

// TestEmbeddedTagging: with boto3 through the gateway: tags from x-amz-tagging on PUT,
// put_object_tagging, get_object_tagging (and the tag count on GET), delete_object_tagging;
// the object stays as it was.
func TestEmbeddedTagging(t *testing.T) {
	gw := embeddedGateway(t, embeddedDataDir(t))
	f := writeFile(t, t.TempDir(), "obj", testenv.RandomBytes(t, 4000, marker))
	out, err := gw.Python(t, boto3TaggingScript, "tagged", f)
	if err != nil {
		t.Fatalf("boto3: %v", err)
	}
	type kv struct{ Key, Value string }
	var res struct {
		Put, Set, Deleted []kv
		Count             int
		Body              bool
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("boto3 output: %v\n%s", err, out)
	}
	if fmt.Sprint(res.Put) != "[{first 1}]" || fmt.Sprint(res.Set) != "[{env prod} {owner ops team}]" || res.Count != 2 ||
		len(res.Deleted) != 0 || !res.Body {
		t.Errorf("tagging through the gateway: %+v", res)
	}
}

// TestEmbeddedDiskFull: the data dir on an 8 MiB tmpfs. A PUT that does not fit fails with a
// clear S3 error (the store's 507 XMinioStorageFull, which the gateway shows as InternalError
// 500 naming it), the previous version of the key is intact and no partial object appears.
func TestEmbeddedDiskFull(t *testing.T) {
	gw := embeddedGateway(t, filepath.Join(testenv.Tmpfs(t, 8<<20), "data"))
	c := gw.Client(t)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("full")}); err != nil {
		t.Fatal(err)
	}
	keep := testenv.RandomBytes(t, 1<<20, marker)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("full"), Key: aws.String("keep"), Body: bytes.NewReader(keep)}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"keep", "new"} {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("full"), Key: aws.String(key),
			Body: bytes.NewReader(testenv.RandomBytes(t, 9<<20, marker))})
		var re *awshttp.ResponseError
		var ae smithy.APIError
		if !errors.As(err, &re) || !errors.As(err, &ae) || re.HTTPStatusCode() != 500 || ae.ErrorCode() != "InternalError" ||
			!strings.Contains(ae.ErrorMessage(), "507 (XMinioStorageFull)") {
			t.Errorf("PUT %s of 9 MiB on an 8 MiB disk: %v, want InternalError 500 naming 507 XMinioStorageFull", key, err)
		}
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("full"), Key: aws.String("new")}); apiCode(err) != "NotFound" {
		t.Errorf("HEAD of the refused object: %v, want NotFound", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("full"), Key: aws.String("keep")})
	if err != nil {
		t.Fatalf("GET of the previous version: %v", err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, keep) {
		t.Errorf("previous version after the refused overwrite: %d bytes (err %v)", len(got), err)
	}
}

// embeddedMemDir is a data dir on a 256 MiB tmpfs, or on disk where mounting is not permitted.
func embeddedMemDir(t *testing.T) string {
	t.Helper()
	dir, err := testenv.TryTmpfs(t, 256<<20)
	if err != nil {
		t.Logf("no tmpfs (%v): the data dir is on disk, this test is slower", err)
		return embeddedDataDir(t)
	}
	return filepath.Join(dir, "data")
}
