package integration

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// opsReadyAlias is the KMS alias the readiness test's gateway uses: moto forgets its keys when
// restarted, so after a restart the test creates a new key under the same alias (as an operator
// restoring a KMS would).
const opsReadyAlias = "alias/s3seal-readiness"

// opsKMSKeyWithAlias creates a key in the moto at endpoint and points opsReadyAlias at it.
func opsKMSKeyWithAlias(t *testing.T, endpoint string) {
	t.Helper()
	c := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(opsKMSDummy, opsKMSDummy, "")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecSymmetricDefault, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(opsReadyAlias), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
}

// opsWaitReady polls <ops>/readyz until its status is want (and, for 503, the body shows check
// failing), and returns how long that took; it fails the test after limit.
func opsWaitReady(t *testing.T, ops string, want int, check string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var code int
	var body string
	for time.Since(start) < limit {
		code, body = opsGet(t, ops+"/readyz")
		if code == want && (want == http.StatusOK || !strings.Contains(body, check+": ok")) {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("/readyz still %d after %v, want %d (check %s):\n%s", code, limit, want, check, body)
	return 0
}

// TestOpsReadiness: /readyz turns 503 within seconds of stopping MinIO or the KMS emulator, names
// the failing dependency, and turns 200 again once it is back; /healthz stays 200 throughout.
// Both services are the test's own, so stopping them disturbs nobody else.
func TestOpsReadiness(t *testing.T) {
	m := testenv.NewPrivateMinIO(t)
	moto := newOpsMoto(t)
	opsKMSKeyWithAlias(t, moto.Endpoint)
	env, ops := opsGatewayEnv(t, m, moto.Endpoint, opsReadyAlias)
	testenv.StartGateway(t, env)

	// Limits: the readiness result is cached 2 s, a check may take up to 3 s (KMS retries).
	const unreadyWithin, readyWithin = 10 * time.Second, 15 * time.Second
	d := opsWaitReady(t, ops, http.StatusOK, "", readyWithin)
	t.Logf("ready after %v", d)

	m.Stop(t)
	d = opsWaitReady(t, ops, http.StatusServiceUnavailable, "backend", unreadyWithin)
	t.Logf("MinIO stopped: unready after %v", d)
	if code, _ := opsGet(t, ops+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with MinIO down: %d", code)
	}
	if v := opsSum(opsScrape(t, ops), "s3seal_ready", opsLabels("check", "backend")); v != 0 {
		t.Errorf("s3seal_ready{check=backend} = %v with MinIO down", v)
	}
	m.Start(t)
	d = opsWaitReady(t, ops, http.StatusOK, "", readyWithin)
	t.Logf("MinIO restarted: ready after %v", d)

	moto.Stop(t)
	d = opsWaitReady(t, ops, http.StatusServiceUnavailable, "keys", unreadyWithin)
	t.Logf("KMS stopped: unready after %v", d)
	_, body := opsGet(t, ops+"/readyz")
	if !strings.Contains(body, "backend: ok") {
		t.Errorf("with only KMS down, /readyz blames the backend too:\n%s", body)
	}
	if v := opsSum(opsScrape(t, ops), "s3seal_ready", opsLabels("check", "keys")); v != 0 {
		t.Errorf("s3seal_ready{check=keys} = %v with KMS down", v)
	}
	moto.Start(t)
	opsKMSKeyWithAlias(t, moto.Endpoint)
	d = opsWaitReady(t, ops, http.StatusOK, "", readyWithin)
	t.Logf("KMS restarted: ready after %v", d)
	fams := opsScrape(t, ops)
	if v := opsSum(fams, "s3seal_ready", nil); v != 2 {
		t.Errorf("s3seal_ready sums to %v after recovery, want 2 (backend, keys)", v)
	}
	if v := opsSum(fams, "s3seal_kms_requests_total", opsLabels("operation", "Ping", "outcome", "success")); v < 2 {
		t.Errorf("successful KMS pings: %v", v)
	}
}
