package integration

// Helpers of the fault-injection tests (faults_*_test.go, issue 13): a gateway whose backend
// connection runs through a testenv.FaultProxy (TCP faults) in front of a testenv.Hostile
// (which records every request MinIO receives), reading objects back and the gateway's own
// figures.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/loadgen"
	"github.com/s3seal/s3seal/internal/testenv"
)

// faultRig is a gateway (with a metrics listener) whose backend is
// FaultProxy -> Hostile -> MinIO, and a bucket.
type faultRig struct {
	gw     *testenv.Gateway
	c      *s3.Client      // the gateway's client (no retries), on tr
	tr     *http.Transport // closeIdle closes its connections
	fp     *testenv.FaultProxy
	h      *testenv.Hostile
	m      *testenv.MinIO
	ops    string // metrics base URL
	bucket string
}

// newFaultRig starts the rig in front of the shared MinIO; extra is merged into the gateway's
// environment, args are its command-line arguments.
func newFaultRig(t *testing.T, extra map[string]string, args ...string) *faultRig {
	t.Helper()
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	h := testenv.NewHostile(t, m.Endpoint)
	fp := testenv.NewFaultProxy(t, h.URL)
	env, ops := opsGatewayEnv(t, m, k.Endpoint, k.CreateKey(t))
	env["GATEWAY_BACKEND_ENDPOINT"] = fp.URL
	for k, v := range extra {
		env[k] = v
	}
	gw := testenv.StartGatewayWithArgs(t, env, args...)
	c, tr := faultClient(t, gw)
	return &faultRig{gw: gw, c: c, tr: tr, fp: fp, h: h, m: m, ops: ops, bucket: m.NewBucket(t)}
}

// faultClient is gw.Client on a transport of its own, so a test can close its connections.
func faultClient(t *testing.T, gw *testenv.Gateway) (*s3.Client, *http.Transport) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	tr.MaxIdleConnsPerHost = 32
	t.Cleanup(tr.CloseIdleConnections)
	return gw.Client(t, func(o *s3.Options) { o.HTTPClient = &http.Client{Transport: tr, Timeout: 2 * time.Minute} }), tr
}

// faultPut PUTs body to key with c (a gateway's client, no retries).
func faultPut(c *s3.Client, bucket, key string, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)})
	return err
}

// faultGet reads key whole with c; a missing key is (nil, nil).
func faultGet(c *s3.Client, bucket, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// faultMustRead fails the test unless key reads back with c as want (compared by hash).
func faultMustRead(t *testing.T, c *s3.Client, bucket, key string, want []byte, when string) {
	t.Helper()
	got, err := faultGet(c, bucket, key)
	if err != nil {
		t.Fatalf("%s: GET %s: %v", when, key, err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want) || got == nil {
		t.Fatalf("%s: GET %s: %d bytes (sha256 %x), want the %d bytes of sha256 %x", when, key, len(got), sha256sum(got), len(want), sha256sum(want))
	}
}

// faultStored checks MinIO directly: the keys under prefix are exactly those of want, each
// with the stored size of a plaintext of the given size (single-part objects).
func faultStored(t *testing.T, m *testenv.MinIO, bucket, prefix string, want map[string]int) {
	t.Helper()
	ctx := context.Background()
	c := m.Client(t)
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	if err != nil {
		t.Fatalf("direct list: %v", err)
	}
	got := map[string]int64{}
	for _, o := range out.Contents {
		got[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
	}
	for k, size := range want {
		s, ok := got[k]
		w := coreStoredSize(int64(size))
		if ok {
			w = storedSizeOf(t, m, bucket, k, int64(size))
		}
		if !ok || s != w {
			t.Errorf("MinIO holds %s with %d bytes (present %v), want the %d bytes of a %d-byte plaintext", k, s, ok, w, size)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("MinIO holds an object %s nobody completed", k)
		}
	}
}

// faultS3Code returns the S3 error code and HTTP status of err ("" and 0 if it has none).
func faultS3Code(err error) (string, int) {
	var api smithy.APIError
	var re *awshttp.ResponseError
	code, status := "", 0
	if errors.As(err, &api) {
		code = api.ErrorCode()
	}
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// faultBackendPuts counts the requests MinIO received whose path is accepted by match:
// PutObject bodies (PUT without partNumber and copy source) and UploadPart bodies (PUT with
// partNumber, no copy source).
func faultBackendPuts(h *testenv.Hostile, match func(path string) bool) (puts, parts int) {
	for _, r := range h.Requests() {
		if r.Method != http.MethodPut || !match(r.Path) || r.Header.Get("X-Amz-Copy-Source") != "" {
			continue
		}
		if r.Query.Has("partNumber") {
			parts++
		} else {
			puts++
		}
	}
	return puts, parts
}

// isPath matches one path (for faultBackendPuts).
func isPath(p string) func(string) bool { return func(q string) bool { return q == p } }

// settleSample waits (up to 30 s) until the gateway's goroutines (from its /metrics at ops) are
// back within slack of base, and returns its last sample either way.
func settleSample(t *testing.T, ops string, base loadgen.Sample, slack int) loadgen.Sample {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := loadgen.Scrape(context.Background(), ops+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if s.Goroutines <= base.Goroutines+slack || time.Now().After(deadline) {
			return s
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// storedSizeOf is the stored size FORMAT.md 3.3 gives a single-part object of plain bytes at
// key, with the checksum its s3seal-ck names (the SDKs send one by default).
func storedSizeOf(t *testing.T, m *testenv.MinIO, bucket, key string, plain int64) int64 {
	t.Helper()
	h, err := m.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("direct HEAD %s: %v", key, err)
	}
	a, err := format.ParseChecksumMeta(h.Metadata["s3seal-ck"])
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return format.EncryptedSizeOf(plain, a)
}
