package integration

import (
	"bytes"
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// faultKMSConfig is the gateway configuration of the KMS outage tests: data keys for new
// objects are reused for 1 s only (so a write soon needs the KMS), unwrapped keys are kept
// for reading faultDecryptAge, and a KMS call gives up after 2 attempts of 1 s.
const faultDecryptAge = 10 * time.Second

const faultKMSConfig = `cache:
  max_age: 1s
  decrypt_max_age: 10s
keys:
  kms:
    timeout: 1s
    max_attempts: 2
`

// faultWantKMSDown fails the test unless err is S3's 503 ServiceUnavailable naming the key
// provider.
func faultWantKMSDown(t *testing.T, what string, err error) {
	t.Helper()
	code, status := faultS3Code(err)
	if err == nil || code != "ServiceUnavailable" || status != 503 || !strings.Contains(err.Error(), "key provider") {
		t.Errorf("%s with the KMS down: %v, want 503 ServiceUnavailable (the key provider is unreachable)", what, err)
	}
}

// faultNoObject fails the test if MinIO holds key or an open upload for it.
func faultNoObject(t *testing.T, m *testenv.MinIO, bucket, key string) {
	t.Helper()
	ctx := context.Background()
	c := m.Client(t)
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key}); err == nil {
		t.Errorf("MinIO holds %s, written while the KMS was down", key)
	}
	up, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket, Prefix: &key})
	if err != nil || len(up.Uploads) != 0 {
		t.Errorf("MinIO has %d open uploads for %s (%v), started while the KMS was down", len(up.Uploads), key, err)
	}
}

// faultRecovers retries a PUT of body to key (every 250 ms, up to 20 s) until it succeeds, and
// returns how long that took.
func faultRecovers(t *testing.T, c *s3.Client, bucket, key string, body []byte) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := faultPut(c, bucket, key, body)
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("PUT still failing 20 s after the KMS came back: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestFaultKMSRefused (issue 13): the KMS emulator becomes unreachable (a TCP proxy in front of
// the shared moto_server resets every connection: moto keeps its keys in memory, so killing
// and restarting it would lose them). While it lasts:
//   - an object whose data key this gateway has cached reads back (within decrypt_max_age),
//     and stops reading with a 503 once that age has passed: no stale key is used past it;
//   - an object written by another gateway (key not cached here) gets 503 ServiceUnavailable;
//   - new writes (PutObject, CreateMultipartUpload, CopyObject) fail closed with 503
//     ServiceUnavailable, and MinIO holds nothing of them (checked directly: no object, no
//     upload, so no plaintext and no unencrypted fallback).
//
// When the KMS is reachable again, writes and reads work again without a gateway restart.
func TestFaultKMSRefused(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyID := k.CreateKey(t)
	fp := testenv.NewFaultProxy(t, k.Endpoint)
	gw := testenv.StartGatewayWithArgs(t, coreGatewayEnv(m, m.Endpoint, fp.URL, keyID, nil), "-config", opsConfigFile(t, faultKMSConfig))
	other := testenv.StartGateway(t, coreGatewayEnv(m, m.Endpoint, k.Endpoint, keyID, map[string]string{
		"GATEWAY_ACCESS_KEY_ID": gw.AccessKeyID, "GATEWAY_SECRET_ACCESS_KEY": gw.SecretAccessKey}))
	c, _ := faultClient(t, gw)
	oc, _ := faultClient(t, other)
	bucket := m.NewBucket(t)
	a, b := testenv.RandomBytes(t, 100<<10, marker), testenv.RandomBytes(t, 100<<10, marker)
	cachedAt := time.Now()
	if err := faultPut(c, bucket, "kms/cached", a); err != nil {
		t.Fatal(err)
	}
	if err := faultPut(oc, bucket, "kms/other", b); err != nil {
		t.Fatal(err)
	}
	faultMustRead(t, c, bucket, "kms/cached", a, "KMS up")
	time.Sleep(time.Until(cachedAt.Add(1500 * time.Millisecond))) // the write key has expired

	fp.Down()
	faultMustRead(t, c, bucket, "kms/cached", a, "KMS down, key cached")
	_, err := faultGet(c, bucket, "kms/other")
	faultWantKMSDown(t, "GET of an object whose key is not cached", err)
	fresh := testenv.RandomBytes(t, 100<<10, marker)
	faultWantKMSDown(t, "PutObject", faultPut(c, bucket, "kms/new", fresh))
	faultNoObject(t, m, bucket, "kms/new")
	ctx := context.Background()
	_, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("kms/mp")})
	faultWantKMSDown(t, "CreateMultipartUpload", err)
	faultNoObject(t, m, bucket, "kms/mp")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("kms/copy"), CopySource: aws.String(bucket + "/kms/cached")})
	faultWantKMSDown(t, "CopyObject", err)
	faultNoObject(t, m, bucket, "kms/copy")
	if in := time.Since(cachedAt); in >= faultDecryptAge {
		t.Fatalf("the outage checks took %v, longer than the cache age %v: the cached read above proves nothing", in, faultDecryptAge)
	}

	time.Sleep(time.Until(cachedAt.Add(faultDecryptAge + 500*time.Millisecond)))
	_, err = faultGet(c, bucket, "kms/cached")
	faultWantKMSDown(t, "GET of an object whose cached key is older than decrypt_max_age", err)
	t.Logf("KMS refused: cached read ok until decrypt_max_age (%v), then 503; uncached read and writes 503; %d connections reset", faultDecryptAge, fp.Resets())

	fp.Up()
	d := faultRecovers(t, c, bucket, "kms/new", fresh)
	t.Logf("KMS reachable again: the first PUT succeeded after %v", d.Round(time.Millisecond))
	faultMustRead(t, c, bucket, "kms/new", fresh, "KMS back")
	faultMustRead(t, c, bucket, "kms/other", b, "KMS back")
	faultMustRead(t, c, bucket, "kms/cached", a, "KMS back")
	stored, _ := storedBytes(t, m.Client(t), bucket, "kms/new")
	if bytes.Contains(stored, []byte(marker)) {
		t.Error("the object written after the outage is stored in plaintext")
	}
}

// TestFaultKMSStopped (issue 13): the test's own moto_server is paused with SIGSTOP (a hung
// KMS: connections open, no answer). Reads of an object whose key is cached keep working; a
// new write fails closed with 503 ServiceUnavailable once the KMS calls time out, and MinIO
// holds nothing of it; after SIGCONT writes work again without a gateway restart.
func TestFaultKMSStopped(t *testing.T) {
	m := testenv.NewMinIO(t)
	moto := newOpsMoto(t)
	kms := &testenv.KMS{Endpoint: moto.Endpoint, Region: "us-east-1"}
	gw := testenv.StartGatewayWithArgs(t, coreGatewayEnv(m, m.Endpoint, moto.Endpoint, kms.CreateKey(t), nil), "-config", opsConfigFile(t, faultKMSConfig))
	c, _ := faultClient(t, gw)
	bucket := m.NewBucket(t)
	a := testenv.RandomBytes(t, 100<<10, marker)
	cachedAt := time.Now()
	if err := faultPut(c, bucket, "kms/cached", a); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(cachedAt.Add(1500 * time.Millisecond)))

	pgid := moto.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(-pgid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume) // before the moto cleanup stops it
	faultMustRead(t, c, bucket, "kms/cached", a, "KMS stopped, key cached")
	start := time.Now()
	fresh := testenv.RandomBytes(t, 100<<10, marker)
	faultWantKMSDown(t, "PutObject", faultPut(c, bucket, "kms/new", fresh))
	t.Logf("PUT with the KMS stopped failed after %v", time.Since(start).Round(time.Millisecond))
	faultNoObject(t, m, bucket, "kms/new")
	if time.Since(cachedAt) >= faultDecryptAge {
		t.Fatalf("the outage checks took longer than the cache age %v", faultDecryptAge)
	}

	resume()
	d := faultRecovers(t, c, bucket, "kms/new", fresh)
	t.Logf("KMS resumed: the first PUT succeeded after %v", d.Round(time.Millisecond))
	faultMustRead(t, c, bucket, "kms/new", fresh, "KMS resumed")
}
