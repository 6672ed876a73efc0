package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// Issue 15: key custody. These tests run the gateway and its `keys`, `rewrap` and `decrypt`
// commands against the real components: MinIO, moto_server (KMS) and a SoftHSM2 token.

// keysWorld is a gateway configuration with three providers: aws (KMS on moto), files (a
// local key file) and hsm (a SoftHSM2 token), and a bucket on each.
type keysWorld struct {
	m       *testenv.MinIO
	tok     *testenv.SoftHSMToken
	cfg     string            // the YAML file
	env     map[string]string // GATEWAY_* and SOFTHSM2_CONF for the gateway and the tools
	keyFile string
	arn     string
	buckets map[string]string // provider name -> bucket
}

func newKeysWorld(t *testing.T, bucketKeys map[string]string) *keysWorld {
	t.Helper()
	w := &keysWorld{m: testenv.NewMinIO(t), tok: testenv.SoftHSM(t), buckets: map[string]string{}}
	k := testenv.NewKMS(t)
	w.arn = k.CreateKey(t)
	dir := t.TempDir()
	w.keyFile = filepath.Join(dir, "keys.yaml")
	for _, p := range []string{"aws", "files", "hsm"} {
		w.buckets[p] = w.m.NewBucket(t)
	}
	var bk strings.Builder
	for p, b := range w.buckets {
		id := p + ":"
		if v, ok := bucketKeys[p]; ok {
			id = v
		}
		fmt.Fprintf(&bk, "    %s: %q\n", b, id)
	}
	yaml := fmt.Sprintf(`keys:
  provider: files
  providers:
    aws:
      type: kms
      kms: {key_id: %q, endpoint: %q, region: us-east-1, access_key_id: test, secret_access_key: test}
    files:
      type: local
      local: {file: %q}
    hsm:
      type: pkcs11
      pkcs11: {module: %q, token_label: %q, key: s3seal, pin_env: HSM_PIN}
  bucket_key_ids:
%s`, w.arn, k.Endpoint, w.keyFile, w.tok.Module, w.tok.Label, bk.String())
	w.cfg = filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(w.cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = toolsEnv(w.m, "", "", map[string]string{
		"GATEWAY_KMS_ENDPOINT": "", "GATEWAY_KMS_KEY_ID": "", "GATEWAY_KMS_REGION": "",
		"GATEWAY_KMS_ACCESS_KEY_ID": "", "GATEWAY_KMS_SECRET_ACCESS_KEY": "",
		"SOFTHSM2_CONF": w.tok.Conf, "HSM_PIN": w.tok.PIN,
		"GATEWAY_AUDIT_FILE": filepath.Join(dir, "audit.jsonl"),
	})
	return w
}

// tool runs a gateway subcommand with the world's configuration and wants exit code want.
func (w *keysWorld) tool(t *testing.T, want int, args ...string) toolsResult {
	t.Helper()
	n := 1 // the command's words: "rewrap", "decrypt", "keys VERB"
	if args[0] == "keys" {
		n = 2
	}
	args = append(args[:n:n], append([]string{"-config", w.cfg}, args[n:]...)...)
	r := toolsRun(t, w.env, args...)
	if r.code != want {
		t.Fatalf("gateway %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, r.code, want, r.stdout, toolsTail(r.stderr, 20))
	}
	return r
}

func (w *keysWorld) start(t *testing.T) *testenv.Gateway {
	t.Helper()
	return testenv.StartGatewayWithArgs(t, w.env, "-config", w.cfg)
}

// keyIDs returns the key id of every envelope under bucket, read directly from MinIO.
func (w *keysWorld) keyIDs(t *testing.T, bucket string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for key, s := range toolsSnapshot(t, w.m.Client(t), bucket, "", false) {
		out[key] = s.keyID
	}
	return out
}

// keysMultipart uploads body in two parts (5 MiB and the rest) through c.
func keysMultipart(t *testing.T, c *s3.Client, bucket, key string, body []byte) {
	t.Helper()
	ctx := context.Background()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("CreateMultipartUpload %s: %v", key, err)
	}
	var parts []s3types.CompletedPart
	for i, chunk := range [][]byte{body[:5<<20], body[5<<20:]} {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(chunk)})
		if err != nil {
			t.Fatalf("UploadPart %d of %s: %v", i+1, key, err)
		}
		parts = append(parts, s3types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: up.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatalf("CompleteMultipartUpload %s: %v", key, err)
	}
}

// keysGet reads bucket/key through c (rng "" = whole object).
func keysGet(t *testing.T, c *s3.Client, bucket, key, rng string) []byte {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: &bucket, Key: &key}
	if rng != "" {
		in.Range = &rng
	}
	o, err := c.GetObject(context.Background(), in)
	if err != nil {
		t.Fatalf("GET %s/%s %s: %v", bucket, key, rng, err)
	}
	defer o.Body.Close()
	b, err := io.ReadAll(o.Body)
	if err != nil {
		t.Fatalf("GET %s/%s: %v", bucket, key, err)
	}
	return b
}

// TestKeysThreeProviders (issue 15, acceptance 1, 2 and 4): three buckets on three providers
// (KMS, local file, SoftHSM2) through one gateway; single, multipart, ranged and copied objects
// in each; envelopes name their provider; the audit trail names the pkcs11 key; `gateway
// rewrap` moves 200 objects from the local provider to pkcs11 and back without changing a
// stored byte; `gateway decrypt` recovers an object of each provider with the gateway stopped.
func TestKeysThreeProviders(t *testing.T) {
	w := newKeysWorld(t, nil)
	w.tool(t, 0, "keys", "create", "-provider", "hsm", "s3seal")
	gw := w.start(t)
	c := gw.Client(t)
	ctx := context.Background()
	small := testenv.RandomBytes(t, 70_000, marker)
	big := testenv.RandomBytes(t, 6<<20+123, marker)
	// KMS records the key's ARN (w.arn is its key id).
	wantPrefix := map[string]string{"aws": "aws:arn:aws:kms:", "files": "files:k1", "hsm": "hsm:s3seal/v1/"}
	for p, bucket := range w.buckets {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("one"), Body: bytes.NewReader(small)}); err != nil {
			t.Fatalf("%s: PUT: %v", p, err)
		}
		keysMultipart(t, c, bucket, "multi", big)
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("copy"),
			CopySource: aws.String(bucket + "/multi")}); err != nil {
			t.Fatalf("%s: copy: %v", p, err)
		}
		if got := keysGet(t, c, bucket, "one", ""); !bytes.Equal(got, small) {
			t.Errorf("%s: single object differs", p)
		}
		for _, key := range []string{"multi", "copy"} {
			if got := keysGet(t, c, bucket, key, ""); !bytes.Equal(got, big) {
				t.Errorf("%s: %s differs", p, key)
			}
			if got := keysGet(t, c, bucket, key, "bytes=5242000-5243999"); !bytes.Equal(got, big[5242000:5244000]) {
				t.Errorf("%s: range of %s (across the part boundary) differs", p, key)
			}
		}
		for key, id := range w.keyIDs(t, bucket) {
			if !strings.HasPrefix(id, wantPrefix[p]) || (p == "aws" && !strings.HasSuffix(id, ":key/"+w.arn)) {
				t.Errorf("%s: %s stored under key %q, want %q...", p, key, id, wantPrefix[p])
			}
		}
	}
	keysWantAudit(t, w.env["GATEWAY_AUDIT_FILE"], w.buckets["hsm"], "hsm:s3seal/v1/")

	// 200 objects on the local provider, moved to the HSM and back: stored bytes unchanged.
	names := make([]string, 200)
	for i := range names {
		names[i] = "r/" + strconv.Itoa(i)
	}
	files := w.buckets["files"]
	plain := toolsPutMany(t, c, files, names, func(i int) int { return 100 + 37*i })
	mc := w.m.Client(t)
	before := toolsSnapshot(t, mc, files, "r/", false)
	r := w.tool(t, 0, "rewrap", "-to-provider", "hsm", "s3://"+files+"/r/")
	toolsWantCounts(t, "rewrap to hsm", toolsCounts(t, r.stdout), map[string]int64{"rewrapped": 200})
	mid := toolsSnapshot(t, mc, files, "r/", false)
	toolsSameSnapshot(t, before, mid, false)
	for key, s := range mid {
		if !strings.HasPrefix(s.keyID, "hsm:s3seal/v1/") {
			t.Fatalf("%s: after rewrap to hsm, under %q", key, s.keyID)
		}
	}
	r = w.tool(t, 0, "rewrap", "-to-provider", "files", "s3://"+files+"/r/")
	toolsWantCounts(t, "rewrap back to files", toolsCounts(t, r.stdout), map[string]int64{"rewrapped": 200})
	after := toolsSnapshot(t, mc, files, "r/", false)
	toolsSameSnapshot(t, before, after, false)
	for key, s := range after {
		if s.keyID != "files:k1" {
			t.Fatalf("%s: after rewrap back, under %q", key, s.keyID)
		}
	}
	gw.Stop(t)
	gw = w.start(t) // no cached data key: every read unwraps again
	toolsGetAll(t, gw.Client(t), files, plain)
	gw.Stop(t)

	// Recovery with the gateway stopped: one object of each provider.
	out := t.TempDir()
	for p, bucket := range w.buckets {
		dst := filepath.Join(out, p)
		w.tool(t, 0, "decrypt", "-o", dst, "s3://"+bucket+"/multi")
		toolsWantFile(t, "decrypt "+p, dst, big)
	}
}

// keysWantAudit wants an audit record of bucket naming a key id starting with prefix.
func keysWantAudit(t *testing.T, path, bucket, prefix string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("audit trail: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var rec struct {
			Bucket string `json:"bucket"`
			KeyID  string `json:"key_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if rec.Bucket == bucket {
			n++
			if !strings.HasPrefix(rec.KeyID, prefix) {
				t.Errorf("audit record of %s names key %q, want %q...", bucket, rec.KeyID, prefix)
			}
		}
	}
	if n == 0 {
		t.Errorf("no audit record of bucket %s", bucket)
	}
}
