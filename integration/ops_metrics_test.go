package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	dto "github.com/prometheus/client_model/go"

	"github.com/s3seal/s3seal/internal/testenv"
)

// opsWorkloadSizes are the object sizes of the scripted metrics workload.
var opsWorkloadSizes = []int64{0, 1, 1000, 65536, 65537, 200_000, 1 << 20}

// TestOpsMetricsMatchWorkload: after a scripted workload, the counters on /metrics equal what the
// workload did: requests by operation and status, plaintext and ciphertext bytes, KMS calls and
// data-key cache hits, misses and evictions (max_objects 3 per data key, so the expected KMS
// calls follow from the number of objects). A second, fresh gateway then reads everything back
// and must call KMS Decrypt once per distinct data key.
func TestOpsMetricsMatchWorkload(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyID := k.CreateKey(t)
	env, ops := opsGatewayEnv(t, m, k.Endpoint, keyID)
	cfg := opsConfigFile(t, "cache:\n  max_objects: 3\n")
	gw := testenv.StartGatewayWithArgs(t, env, "-config", cfg)
	bucket := m.NewBucket(t)
	c := gw.Client(t)
	ctx := context.Background()

	var plainSum, storedSum int64
	objects := map[string][]byte{}
	for i, n := range opsWorkloadSizes {
		key := "obj-" + string(rune('a'+i))
		data := testenv.RandomBytes(t, int(n), "")
		objects[key] = data
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("PUT %s: %v", key, err)
		}
		plainSum += n
		storedSum += storedSizeOf(t, m, bucket, key, n)
	}
	for key, want := range objects {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GET %s: %v", key, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("GET %s: %d bytes, err %v", key, len(got), err)
		}
	}
	for _, key := range []string{"obj-a", "obj-g"} {
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key)}); err != nil {
			t.Fatalf("HEAD %s: %v", key, err)
		}
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("missing")}); err == nil {
		t.Fatal("HEAD of a missing key succeeded")
	}
	if _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket}); err != nil {
		t.Fatalf("list: %v", err)
	}
	bad := gw.Client(t, func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(gw.AccessKeyID, "wrong-secret-for-metrics-test", "")
	})
	_, err := bad.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("obj-a")})
	var api smithy.APIError
	if err == nil || (errors.As(err, &api) && api.ErrorCode() == "NotFound") {
		t.Fatalf("HEAD with a wrong secret: %v", err)
	}

	n := float64(len(opsWorkloadSizes))
	const perKey = 3
	generate := float64((len(opsWorkloadSizes) + perKey - 1) / perKey)
	fams := opsScrape(t, ops)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"s3seal_requests_total", opsLabels("op", "PutObject", "status", "200"), n},
		{"s3seal_requests_total", opsLabels("op", "PutObject"), n},
		{"s3seal_requests_total", opsLabels("op", "GetObject", "status", "200"), n},
		{"s3seal_requests_total", opsLabels("op", "GetObject"), n},
		{"s3seal_requests_total", opsLabels("op", "HeadObject", "status", "200"), 2},
		{"s3seal_requests_total", opsLabels("op", "HeadObject", "status", "404"), 1},
		{"s3seal_requests_total", opsLabels("op", "HeadObject", "status", "403"), 1},
		{"s3seal_requests_total", opsLabels("op", "ListObjectsV2", "status", "200"), 1},
		{"s3seal_requests_total", nil, 2*n + 5},
		{"s3seal_request_duration_seconds", opsLabels("op", "PutObject"), n},
		{"s3seal_request_duration_seconds", nil, 2*n + 5},
		{"s3seal_requests_in_flight", nil, 0},
		{"s3seal_plaintext_received_bytes_total", opsLabels("op", "PutObject"), float64(plainSum)},
		{"s3seal_plaintext_received_bytes_total", nil, float64(plainSum)},
		{"s3seal_plaintext_sent_bytes_total", opsLabels("op", "GetObject"), float64(plainSum)},
		{"s3seal_ciphertext_sent_bytes_total", opsLabels("op", "PutObject"), float64(storedSum)},
		{"s3seal_ciphertext_sent_bytes_total", nil, float64(storedSum)},
		{"s3seal_ciphertext_received_bytes_total", opsLabels("op", "GetObject"), float64(storedSum)},
		{"s3seal_auth_failures_total", opsLabels("op", "HeadObject", "reason", "SignatureDoesNotMatch"), 1},
		{"s3seal_auth_failures_total", nil, 1},
		{"s3seal_kms_requests_total", opsLabels("provider", "kms", "operation", "GenerateDataKey", "outcome", "success"), generate},
		{"s3seal_kms_requests_total", nil, generate},
		{"s3seal_kms_request_duration_seconds", opsLabels("operation", "GenerateDataKey"), generate},
		{"s3seal_datakey_cache_misses_total", opsLabels("side", "encrypt"), generate},
		{"s3seal_datakey_cache_hits_total", opsLabels("side", "encrypt"), n - generate},
		// Every data key used up after 3 objects is dropped at once: after objects 3 and 6.
		{"s3seal_datakey_cache_evictions_total", opsLabels("side", "encrypt"), float64(len(opsWorkloadSizes) / perKey)},
		// Reading back what this gateway wrote: its keys are in the cache (write-through).
		{"s3seal_datakey_cache_misses_total", opsLabels("side", "decrypt"), 0},
		{"s3seal_datakey_cache_hits_total", opsLabels("side", "decrypt"), n},
		{"s3seal_key_uses_total", opsLabels("action", "write"), n},
		{"s3seal_key_uses_total", opsLabels("action", "read"), n},
		{"s3seal_backend_errors_total", nil, 0},
		{"s3seal_tamper_detections_total", nil, 0},
		{"s3seal_requests_rejected_total", nil, 0},
	}
	opsCheckMetrics(t, "gateway 1", fams, checks)

	// A fresh gateway has an empty cache: one Decrypt per distinct data key, hits for the rest.
	env2, ops2 := opsGatewayEnv(t, m, k.Endpoint, keyID)
	gw2 := testenv.StartGatewayWithArgs(t, env2, "-config", cfg)
	c2 := gw2.Client(t)
	for i := range opsWorkloadSizes {
		key := "obj-" + string(rune('a'+i))
		out, err := c2.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatalf("gateway 2: GET %s: %v", key, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, objects[key]) {
			t.Fatalf("gateway 2: GET %s: %d bytes, err %v", key, len(got), err)
		}
	}
	opsCheckMetrics(t, "gateway 2", opsScrape(t, ops2), []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"s3seal_requests_total", opsLabels("op", "GetObject", "status", "200"), n},
		{"s3seal_plaintext_sent_bytes_total", opsLabels("op", "GetObject"), float64(plainSum)},
		{"s3seal_kms_requests_total", opsLabels("operation", "Decrypt", "outcome", "success"), generate},
		{"s3seal_kms_requests_total", opsLabels("operation", "GenerateDataKey"), 0},
		{"s3seal_kms_requests_total", nil, generate},
		{"s3seal_datakey_cache_misses_total", opsLabels("side", "decrypt"), generate},
		{"s3seal_datakey_cache_hits_total", opsLabels("side", "decrypt"), n - generate},
		{"s3seal_key_uses_total", opsLabels("action", "read"), n},
	})
}

func opsCheckMetrics(t *testing.T, who string, fams map[string]*dto.MetricFamily, checks []struct {
	name   string
	labels map[string]string
	want   float64
}) {
	t.Helper()
	for _, c := range checks {
		if _, ok := fams[c.name]; !ok && c.want != 0 {
			t.Errorf("%s: %s is not exposed", who, c.name)
			continue
		}
		if got := opsSum(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s: %s%v = %v, want %v", who, c.name, c.labels, got, c.want)
		}
	}
}
