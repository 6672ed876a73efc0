package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/testenv"
)

// toolsEnv is the configuration (GATEWAY_* variables) of a gateway, and of the tools, in front
// of MinIO with KMS key keyID at kmsEndpoint; extra is merged on top ("" removes a variable).
func toolsEnv(m *testenv.MinIO, kmsEndpoint, keyID string, extra map[string]string) map[string]string {
	env := coreGatewayEnv(m, m.Endpoint, kmsEndpoint, keyID, nil)
	for k, v := range extra {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	return env
}

// toolsCommand is the gateway binary running a subcommand with exactly env (plus PATH and a
// HOME of its own, so that no file of the developer's is read).
func toolsCommand(t *testing.T, env map[string]string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(testenv.GatewayBin(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// toolsResult is how a subcommand ended.
type toolsResult struct {
	code           int
	stdout, stderr string
}

// toolsRun runs a subcommand to its end.
func toolsRun(t *testing.T, env map[string]string, args ...string) toolsResult {
	t.Helper()
	cmd := toolsCommand(t, env, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := toolsResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("gateway %v: %v", args, err)
	}
	shown := r.stdout
	if len(shown) > 400 {
		shown = fmt.Sprintf("(%d bytes)", len(shown))
	}
	t.Logf("gateway %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, shown, toolsTail(r.stderr, 15))
	return r
}

// toolsTail returns the last n lines of s.
func toolsTail(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

var toolsCountRE = regexp.MustCompile(`([a-z-]+)=(\d+)(?:\s|$)`)

// toolsCounts parses the "name=N" counts of a rewrap/migrate summary line.
func toolsCounts(t *testing.T, summary string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, m := range toolsCountRE.FindAllStringSubmatch(summary, -1) {
		n, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[m[1]] = n
	}
	if _, ok := out["listed"]; !ok {
		t.Fatalf("no summary in %q", summary)
	}
	return out
}

// toolsWantCounts checks the named counts of a summary (names not given must be 0 if present).
func toolsWantCounts(t *testing.T, what string, got map[string]int64, want map[string]int64) {
	t.Helper()
	for name, n := range got {
		if name == "listed" {
			continue
		}
		if n != want[name] {
			t.Errorf("%s: %s=%d, want %d (summary %v)", what, name, n, want[name], got)
		}
	}
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("%s: summary has no %s count (%v)", what, name, got)
		}
	}
}

// toolsStored is what the backend holds for one object.
type toolsStored struct {
	sum      [32]byte // SHA-256 of the stored bytes
	size     int64
	env      string // envelope metadata ("" = none)
	keyID    string // the key id in the envelope
	meta     map[string]string
	ctype    string
	etag     string
	storedAt []byte // the stored bytes (kept only when asked)
}

// toolsSnapshot reads every object under prefix directly from MinIO.
func toolsSnapshot(t *testing.T, c *s3.Client, bucket, prefix string, keep bool) map[string]toolsStored {
	t.Helper()
	ctx := context.Background()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	var mu sync.Mutex
	out := make(map[string]toolsStored, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, key := range keys {
		g.Go(func() error {
			o, err := c.GetObject(gctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
			if err != nil {
				return fmt.Errorf("direct GET %s: %w", key, err)
			}
			defer o.Body.Close()
			b, err := io.ReadAll(o.Body)
			if err != nil {
				return err
			}
			s := toolsStored{sum: sha256.Sum256(b), size: int64(len(b)), meta: o.Metadata,
				ctype: aws.ToString(o.ContentType), etag: aws.ToString(o.ETag)}
			if keep {
				s.storedAt = b
			}
			if s.env = o.Metadata["s3seal-env"]; s.env != "" {
				e, err := format.DecodeEnvelope(s.env)
				if err != nil {
					return fmt.Errorf("%s: %w", key, err)
				}
				s.keyID = e.KeyID
			}
			mu.Lock()
			out[key] = s
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return out
}

// toolsKeyARN returns a KMS key's ARN as the emulator reports it.
func toolsKeyARN(t *testing.T, k *testenv.KMS, keyID string) string {
	t.Helper()
	out, err := k.Client(t).DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: &keyID})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// toolsSameKey reports whether an envelope's key id names keyID (by id or ARN).
func toolsSameKey(envKey, keyID, arn string) bool {
	return envKey == keyID || envKey == arn
}

// toolsKMSGuard is a reverse proxy in front of the KMS emulator that refuses, with KMS's
// DisabledException, every call on a key the emulator reports as Disabled.
//
// Why: moto 5.2.1 records DisableKey (DescribeKey then says KeyState "Disabled") but still
// serves Decrypt with a disabled key, unlike AWS KMS. To show that reading no longer needs a
// disabled key, the gateway talks KMS through this proxy, which applies AWS's rule. The key of
// a call is its KeyId parameter or, for a Decrypt without one, the key id moto writes at the
// start of its ciphertext blobs (36 bytes).
type toolsKMSGuard struct {
	URL     string
	refused atomic.Int64
	calls   atomic.Int64
}

func newToolsKMSGuard(t *testing.T, k *testenv.KMS) *toolsKMSGuard {
	t.Helper()
	upstream, err := url.Parse(k.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	client := k.Client(t)
	g := &toolsKMSGuard{}
	rp := httputil.NewSingleHostReverseProxy(upstream)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.calls.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req struct {
			KeyId          string
			CiphertextBlob []byte
		}
		_ = json.Unmarshal(body, &req)
		keyID := req.KeyId
		if keyID == "" && len(req.CiphertextBlob) >= 36 {
			keyID = string(req.CiphertextBlob[:36])
		}
		if keyID != "" {
			d, err := client.DescribeKey(r.Context(), &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
			if err == nil && d.KeyMetadata.KeyState == kmstypes.KeyStateDisabled {
				g.refused.Add(1)
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"__type":"DisabledException","message":"%s is disabled."}`, aws.ToString(d.KeyMetadata.Arn))
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// toolsPutMany writes n objects through the gateway, 16 at a time, and returns their contents.
func toolsPutMany(t *testing.T, c *s3.Client, bucket string, keys []string, size func(i int) int) map[string][]byte {
	t.Helper()
	var mu sync.Mutex
	out := make(map[string][]byte, len(keys))
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(16)
	for i, key := range keys {
		body := testenv.RandomBytes(t, size(i), marker)
		g.Go(func() error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{
				Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader(body),
				ContentType: aws.String("application/x-tools-" + strconv.Itoa(i%7)),
				Metadata:    map[string]string{"origin": "tools-test-" + strconv.Itoa(i)},
			})
			if err != nil {
				return fmt.Errorf("PUT %s: %w", key, err)
			}
			mu.Lock()
			out[key] = body
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return out
}

// toolsPutMultipart uploads body as a multipart object with the given part sizes (through
// whatever c points at) and returns the object's ETag.
func toolsPutMultipart(t *testing.T, c *s3.Client, bucket, key string, body []byte, parts []int) string {
	t.Helper()
	ctx := context.Background()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &bucket, Key: &key, ContentType: aws.String("application/x-multipart"),
		Metadata: map[string]string{"origin": "multipart"},
	})
	if err != nil {
		t.Fatalf("CreateMultipartUpload %s: %v", key, err)
	}
	var done []s3types.CompletedPart
	off := 0
	for i, n := range parts {
		pn := aws.Int32(int32(i + 1))
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &bucket, Key: &key, UploadId: up.UploadId, PartNumber: pn,
			Body: bytes.NewReader(body[off : off+n]), ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			t.Fatalf("UploadPart %d of %s: %v", i+1, key, err)
		}
		done = append(done, s3types.CompletedPart{ETag: out.ETag, PartNumber: pn})
		off += n
	}
	if off != len(body) {
		t.Fatalf("parts cover %d of %d bytes", off, len(body))
	}
	out, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: done},
	})
	if err != nil {
		t.Fatalf("CompleteMultipartUpload %s: %v", key, err)
	}
	return aws.ToString(out.ETag)
}

// toolsGetAll reads every key through c (16 at a time) and compares it with want.
func toolsGetAll(t *testing.T, c *s3.Client, bucket string, want map[string][]byte) {
	t.Helper()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(16)
	var bad atomic.Int64
	for key, body := range want {
		g.Go(func() error {
			o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
			if err != nil {
				return fmt.Errorf("GET %s: %w", key, err)
			}
			defer o.Body.Close()
			got, err := io.ReadAll(o.Body)
			if err != nil {
				return fmt.Errorf("GET %s: %w", key, err)
			}
			if !bytes.Equal(got, body) {
				if bad.Add(1) <= 5 {
					t.Errorf("GET %s: %d bytes differ from the %d written", key, len(got), len(body))
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d of %d objects read back wrong", n, len(want))
	}
}

// toolsTags returns an object's tags, read directly from MinIO, as "k=v,k=v" sorted by key.
func toolsTags(t *testing.T, c *s3.Client, bucket, key string) string {
	t.Helper()
	out, err := c.GetObjectTagging(context.Background(), &s3.GetObjectTaggingInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("tags of %s: %v", key, err)
	}
	var tags []string
	for _, tag := range out.TagSet {
		tags = append(tags, aws.ToString(tag.Key)+"="+aws.ToString(tag.Value))
	}
	sort.Strings(tags)
	return strings.Join(tags, ",")
}
