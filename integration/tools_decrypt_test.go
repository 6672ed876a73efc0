package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/testenv"
)

// toolsDownload saves an object's stored bytes and the JSON `aws s3api head-object` prints for
// it, reading MinIO directly with Debian's aws-cli v2, and returns the two file names.
func toolsDownload(t *testing.T, m *testenv.MinIO, bucket, key, dir string) (stored, meta string) {
	t.Helper()
	aws := clientsRequireFile(t, "/usr/bin/aws")
	stored = filepath.Join(dir, "stored-"+strings.NewReplacer("/", "_", " ", "_").Replace(key))
	meta = stored + ".json"
	run := func(args ...string) []byte {
		cmd := exec.Command(aws, append([]string{"--endpoint-url", m.Endpoint, "s3api"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+m.AccessKey, "AWS_SECRET_ACCESS_KEY="+m.SecretKey,
			"AWS_DEFAULT_REGION="+m.Region, "AWS_CONFIG_FILE="+filepath.Join(dir, "none"),
			"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("aws s3api %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	run("get-object", "--bucket", bucket, "--key", key, stored)
	if err := os.WriteFile(meta, run("head-object", "--bucket", bucket, "--key", key), 0o600); err != nil {
		t.Fatal(err)
	}
	return stored, meta
}

// toolsWantFile checks that path holds want.
func toolsWantFile(t *testing.T, what, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes recovered differ from the %d written", what, len(got), len(want))
	}
}

// toolsWantRefused runs a decrypt that must fail and leave no output file.
func toolsWantRefused(t *testing.T, what string, env map[string]string, out string, args ...string) {
	t.Helper()
	r := toolsRun(t, env, append([]string{"decrypt", "-o", out}, args...)...)
	if r.code != 1 {
		t.Errorf("%s: exit %d, want 1", what, r.code)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s: an output file was left", what)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".partial-*")); len(matches) > 0 {
		t.Errorf("%s: partial output left: %v", what, matches)
	}
}

// TestToolsDecrypt is issue 6 acceptance 4: objects written through a gateway (single-part of
// several sizes, multipart) are recovered by `gateway decrypt` with the gateway stopped, both
// from MinIO directly and from downloaded files (with nothing but KMS access), byte-identical;
// a wrong bucket or key name and altered stored bytes are refused.
func TestToolsDecrypt(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyID := k.CreateKey(t)
	bucket := m.NewBucket(t)
	gw := testenv.StartGateway(t, toolsEnv(m, k.Endpoint, keyID, nil))
	gc := gw.Client(t)
	ctx := context.Background()

	plain := map[string][]byte{}
	for key, n := range map[string]int{"single/empty": 0, "single/one": 1, "single/seg+7": 65543, "dir/na me+ü.bin": 1<<20 + 3} {
		plain[key] = testenv.RandomBytes(t, n, marker)
		if _, err := gc.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader(plain[key])}); err != nil {
			t.Fatal(err)
		}
	}
	plain["multi/three"] = testenv.RandomBytes(t, 5<<20+5<<20+123, marker)
	toolsPutMultipart(t, gc, bucket, "multi/three", plain["multi/three"], []int{5 << 20, 5 << 20, 123})
	// One part under 5 MiB: held by the gateway, its tail uploaded with it as backend part 1.
	plain["multi/small"] = testenv.RandomBytes(t, 1000, marker)
	toolsPutMultipart(t, gc, bucket, "multi/small", plain["multi/small"], []int{1000})
	if err := gw.Stop(t); err != nil {
		t.Logf("gateway exit: %v", err)
	}
	// The multipart objects are of format 3 (FORMAT.md 3.6): the manifest is their tail.
	for _, key := range []string{"multi/three", "multi/small"} {
		toolsWantFormat3(t, m.Client(t), bucket, key)
	}

	dir := t.TempDir()
	full := toolsEnv(m, k.Endpoint, keyID, nil)
	kmsOnly := map[string]string{
		"GATEWAY_KEY_PROVIDER": "kms", "GATEWAY_KMS_ENDPOINT": k.Endpoint, "GATEWAY_KMS_REGION": "us-east-1",
		"GATEWAY_KMS_ACCESS_KEY_ID": "test", "GATEWAY_KMS_SECRET_ACCESS_KEY": "test",
	}
	i := 0
	for key, want := range plain {
		i++
		out := filepath.Join(dir, fmt.Sprintf("out-%d", i))
		r := toolsRun(t, full, "decrypt", "-o", out, "s3://"+bucket+"/"+key)
		if r.code != 0 {
			t.Fatalf("decrypt s3://%s/%s from MinIO: exit %d", bucket, key, r.code)
		}
		toolsWantFile(t, key+" from MinIO", out, want)

		stored, meta := toolsDownload(t, m, bucket, key, dir)
		r = toolsRun(t, kmsOnly, "decrypt", "-o", out+".file", "-file", stored, "-metadata", meta, "-bucket", bucket, "-key", key)
		if r.code != 0 {
			t.Fatalf("decrypt %s from a file: exit %d", key, r.code)
		}
		toolsWantFile(t, key+" from a file", out+".file", want)
	}

	// Wrong names and altered bytes are refused, for a single-part and multipart objects.
	for _, key := range []string{"single/seg+7", "multi/three", "multi/small"} {
		stored, meta := toolsDownload(t, m, bucket, key, dir)
		out := filepath.Join(dir, "refused")
		toolsWantRefused(t, key+" under another key name", kmsOnly, out, "-file", stored, "-metadata", meta, "-bucket", bucket, "-key", key+"x")
		toolsWantRefused(t, key+" under another bucket name", kmsOnly, out, "-file", stored, "-metadata", meta, "-bucket", bucket+"x", "-key", key)
		b, err := os.ReadFile(stored)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		if err := os.WriteFile(stored, b, 0o600); err != nil {
			t.Fatal(err)
		}
		toolsWantRefused(t, key+" with a flipped stored byte", kmsOnly, out, "-file", stored, "-metadata", meta, "-bucket", bucket, "-key", key)
		b[len(b)/2] ^= 1
		if key == "single/seg+7" {
			continue
		}
		// A format-3 object's tail: altered, cut.
		b[len(b)-20] ^= 1
		if err := os.WriteFile(stored, b, 0o600); err != nil {
			t.Fatal(err)
		}
		toolsWantRefused(t, key+" with a flipped tail byte", kmsOnly, out, "-file", stored, "-metadata", meta, "-bucket", bucket, "-key", key)
		b[len(b)-20] ^= 1
		if err := os.WriteFile(stored, b[:len(b)-12], 0o600); err != nil {
			t.Fatal(err)
		}
		toolsWantRefused(t, key+" without its tail's footer", kmsOnly, out, "-file", stored, "-metadata", meta, "-bucket", bucket, "-key", key)
	}

	// "-o -" writes to stdout.
	r := toolsRun(t, full, "decrypt", "-o", "-", "s3://"+bucket+"/single/seg+7")
	if r.code != 0 || r.stdout != string(plain["single/seg+7"]) {
		t.Errorf("decrypt -o -: exit %d, %d bytes on stdout, want %d", r.code, len(r.stdout), len(plain["single/seg+7"]))
	}
}

// toolsWantFormat3 checks that bucket/key, read from the backend directly, is a format-3
// multipart object: an envelope of version 3 and kind 1, no part manifest metadata, and
// stored bytes that end with the tail's magic.
func toolsWantFormat3(t *testing.T, c *s3.Client, bucket, key string) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String("bytes=-8")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	end, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	e, err := format.DecodeEnvelope(out.Metadata["s3seal-env"])
	if err != nil || e.Version() != format.Version3 || e.Kind != format.KindMultipart {
		t.Fatalf("%s: envelope %+v, %v; want format 3", key, e, err)
	}
	if out.Metadata["s3seal-parts"] != "" || string(end) != format.TailMagic {
		t.Fatalf("%s: manifest metadata %q, last bytes %q; want none and the tail's %q", key, out.Metadata["s3seal-parts"], end, format.TailMagic)
	}
}

// TestToolsDecryptLocalKeyFile recovers objects of a gateway that uses the local key file, with
// only that file, from downloaded files.
func TestToolsDecryptLocalKeyFile(t *testing.T) {
	m := testenv.NewMinIO(t)
	bucket := m.NewBucket(t)
	keyFile := filepath.Join(t.TempDir(), "keys.yaml")
	local := map[string]string{"GATEWAY_KEY_PROVIDER": "local", "GATEWAY_LOCAL_KEY_FILE": keyFile}
	gw := testenv.StartGateway(t, toolsEnv(m, "", "", local))
	gc := gw.Client(t)
	plain := map[string][]byte{
		"local/single": testenv.RandomBytes(t, 200000, marker),
		"local/multi":  testenv.RandomBytes(t, 5<<20+99, marker),
	}
	if _, err := gc.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("local/single"),
		Body: bytes.NewReader(plain["local/single"])}); err != nil {
		t.Fatal(err)
	}
	toolsPutMultipart(t, gc, bucket, "local/multi", plain["local/multi"], []int{5 << 20, 99})
	gw.Stop(t)

	dir := t.TempDir()
	for key, want := range plain {
		stored, meta := toolsDownload(t, m, bucket, key, dir)
		out := filepath.Join(dir, "out-"+filepath.Base(key))
		r := toolsRun(t, local, "decrypt", "-o", out, "-file", stored, "-metadata", meta, "-bucket", bucket, "-key", key)
		if r.code != 0 {
			t.Fatalf("decrypt %s with the local key file: exit %d", key, r.code)
		}
		toolsWantFile(t, key, out, want)
	}
	// Another key file (a new key) cannot open them.
	other := map[string]string{"GATEWAY_KEY_PROVIDER": "local", "GATEWAY_LOCAL_KEY_FILE": filepath.Join(dir, "other.yaml")}
	if err := os.WriteFile(other["GATEWAY_LOCAL_KEY_FILE"], []byte("active: k1\nkeys:\n  k1: "+
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stored, meta := toolsDownload(t, m, bucket, "local/single", dir)
	toolsWantRefused(t, "another key file", other, filepath.Join(dir, "refused"), "-file", stored, "-metadata", meta, "-bucket", bucket, "-key", "local/single")
}
