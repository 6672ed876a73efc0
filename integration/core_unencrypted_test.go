package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// coreUnencryptedServed sums the gateway's s3seal_unencrypted_objects_served_total series.
func coreUnencryptedServed(t *testing.T, metricsAddr string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "s3seal_unencrypted_objects_served_total") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// TestCoreUnencryptedObjects (issue 4, FORMAT.md section 6): objects written to MinIO directly,
// not by the gateway, are served as they are stored where a gateway allows it
// (GATEWAY_ALLOW_UNENCRYPTED=true: GET, ranged GET, HEAD, listing size, the client's own
// metadata) and counted; a gateway with the default (issue 10: fail closed) refuses them with
// AccessDenied and sends none of their bytes, while still serving what it encrypted itself.
func TestCoreUnencryptedObjects(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyID := k.CreateKey(t)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	allow := testenv.StartGateway(t, coreGatewayEnv(m, m.Endpoint, k.Endpoint, keyID, map[string]string{
		"GATEWAY_METRICS_LISTEN": metricsAddr, "GATEWAY_ALLOW_UNENCRYPTED": "true"}))
	deny := testenv.StartGateway(t, coreGatewayEnv(m, m.Endpoint, k.Endpoint, keyID, nil))
	bucket := m.NewBucket(t)
	direct := m.Client(t)
	hc := coreHTTPClient()
	ctx := context.Background()
	get := func(gw *testenv.Gateway, method, key string, hdr http.Header) coreResult {
		return coreDo(hc, coreRequest(t, method, gw.Endpoint+"/"+bucket+"/"+key, hdr, gw.AccessKeyID, gw.SecretAccessKey))
	}

	plains := map[string][]byte{}
	for _, n := range []int{0, 1000, 3*coreS + 5} {
		key := fmt.Sprintf("legacy/%d", n)
		plains[key] = testenv.RandomBytes(t, n, marker)
		corePutDirect(t, direct, bucket, key, plains[key], map[string]string{"owner": "legacy-app"})
	}
	encrypted := testenv.RandomBytes(t, 5000, marker)
	corePutGateway(t, hc, allow, bucket, "sealed", encrypted)

	before := coreUnencryptedServed(t, metricsAddr)
	served := 0
	for key, plain := range plains {
		head, err := direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		r := get(allow, http.MethodGet, key, nil)
		served++
		if !r.complete() || r.Status != http.StatusOK || !bytes.Equal(r.Body, plain) {
			t.Errorf("%s: GET %v, want 200 and the stored bytes", key, r)
		}
		if r.Header.Get("Etag") != aws.ToString(head.ETag) || r.Header.Get("X-Amz-Meta-Owner") != "legacy-app" {
			t.Errorf("%s: ETag %s (MinIO %s), x-amz-meta-owner %q", key, r.Header.Get("Etag"), aws.ToString(head.ETag), r.Header.Get("X-Amz-Meta-Owner"))
		}
		h := get(allow, http.MethodHead, key, nil)
		served++
		if h.Status != http.StatusOK || h.Header.Get("Content-Length") != strconv.Itoa(len(plain)) {
			t.Errorf("%s: HEAD %v Content-Length %s, want 200 and %d", key, h, h.Header.Get("Content-Length"), len(plain))
		}
		if len(plain) > 100 {
			rg := get(allow, http.MethodGet, key, http.Header{"Range": {"bytes=10-99"}})
			served++
			if rg.Status != http.StatusPartialContent || !rg.complete() || !bytes.Equal(rg.Body, plain[10:100]) {
				t.Errorf("%s: GET bytes=10-99 %v, want 206 and the stored bytes", key, rg)
			}
		}

		for _, method := range []string{http.MethodGet, http.MethodHead} {
			for _, hdr := range []http.Header{nil, {"Range": {"bytes=0-9"}}} {
				d := get(deny, method, key, hdr)
				if d.Status != http.StatusForbidden || (method == http.MethodGet && d.Code != "AccessDenied") {
					t.Errorf("%s: %s (Range %q) with unencrypted objects refused: %v, want 403 AccessDenied", key, method, hdr.Get("Range"), d)
				}
				if len(plain) > 0 && bytes.Contains(d.Body, plain[:min(len(plain), 16)]) {
					t.Errorf("%s: the refusal carries object bytes", key)
				}
			}
		}
	}
	if after := coreUnencryptedServed(t, metricsAddr); after-before < float64(served) {
		t.Errorf("s3seal_unencrypted_objects_served_total grew by %v for %d requests that served unencrypted objects", after-before, served)
	}

	// Listing through the gateway shows the stored sizes of unencrypted objects and the
	// plaintext size of the encrypted one.
	list, err := allow.Client(t).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, o := range list.Contents {
		sizes[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
	}
	for key, plain := range plains {
		if sizes[key] != int64(len(plain)) {
			t.Errorf("listing: %s is %d bytes, want %d", key, sizes[key], len(plain))
		}
	}
	if sizes["sealed"] != int64(len(encrypted)) {
		t.Errorf("listing: the encrypted object is %d bytes, want %d", sizes["sealed"], len(encrypted))
	}

	// The refusing gateway still serves what the gateway encrypted.
	if r := get(deny, http.MethodGet, "sealed", nil); !r.complete() || !bytes.Equal(r.Body, encrypted) {
		t.Errorf("GET of an encrypted object with unencrypted objects refused: %v", r)
	}

	// An encrypted object whose envelope was removed in the backend is, by FORMAT.md section
	// 6, an object the gateway did not write: served as stored (its ciphertext) when allowed,
	// refused otherwise. Never its plaintext.
	stored, _ := storedBytes(t, direct, bucket, "sealed")
	corePutDirect(t, direct, bucket, "stripped", stored, nil)
	if r := get(allow, http.MethodGet, "stripped", nil); !r.complete() || !bytes.Equal(r.Body, stored) || bytes.Contains(r.Body, []byte(marker)) {
		t.Errorf("GET of a stripped object, allowed: %v (equal to the stored ciphertext: %v)", r, bytes.Equal(r.Body, stored))
	}
	if r := get(deny, http.MethodGet, "stripped", nil); r.Status != http.StatusForbidden || r.Code != "AccessDenied" {
		t.Errorf("GET of a stripped object, refused: %v, want 403 AccessDenied", r)
	}
}
