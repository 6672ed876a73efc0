package keys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// kmsEndpoint is the KMS endpoint the tests use: S3SEAL_TEST_KMS_ENDPOINT, or a moto_server
// started by TestMain. Empty when neither is available (kmsTestEndpoint then fails or skips).
var kmsEndpoint string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	kmsEndpoint = os.Getenv("S3SEAL_TEST_KMS_ENDPOINT")
	if kmsEndpoint == "" {
		stop, ep, err := startMoto()
		if err != nil {
			fmt.Fprintf(os.Stderr, "keys tests: no KMS server: %v\n", err)
		} else {
			defer stop()
			kmsEndpoint = ep
		}
	}
	return m.Run()
}

// startMoto starts `moto_server` on a free loopback port and waits until it answers.
func startMoto() (stop func(), endpoint string, err error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	stop = func() {
		// Only the process group of the server we started.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}
	endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return stop, endpoint, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return nil, "", errors.New("moto_server did not answer within 30s")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// kmsTestEndpoint returns the KMS endpoint, or fails (CI=true) or skips the test without one.
func kmsTestEndpoint(t *testing.T) string {
	t.Helper()
	if kmsEndpoint == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no KMS server: set S3SEAL_TEST_KMS_ENDPOINT or install moto_server")
		}
		t.Skip("no KMS server: set S3SEAL_TEST_KMS_ENDPOINT or install moto_server")
	}
	return kmsEndpoint
}

// adminClient is a plain SDK client for setting up keys, independent of the code under test.
func adminClient(endpoint string) *kms.Client {
	return kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// newKMSKey creates a symmetric key and returns its id and ARN.
func newKMSKey(t *testing.T, admin *kms.Client) (id, arn string) {
	t.Helper()
	out, err := admin.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("s3seal keys test")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.KeyId), aws.ToString(out.KeyMetadata.Arn)
}

func newTestKMS(t *testing.T, endpoint, keyID string) *KMS {
	t.Helper()
	k, err := NewKMS(context.Background(), KMSConfig{
		Endpoint: endpoint, Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test",
		KeyID: keyID, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKMSRoundTrip(t *testing.T) {
	ep := kmsTestEndpoint(t)
	ctx := context.Background()
	admin := adminClient(ep)
	id, arn := newKMSKey(t, admin)
	k := newTestKMS(t, ep, id)
	if k.DefaultKeyID() != id {
		t.Fatalf("DefaultKeyID %q", k.DefaultKeyID())
	}
	if err := k.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	used, pt, blob, err := k.GenerateDataKeyID(ctx, "", bucketCtx)
	if err != nil {
		t.Fatal(err)
	}
	if used != arn {
		t.Errorf("used key %q, want the ARN %q", used, arn)
	}
	if len(pt) != 32 || bytes.Equal(pt, make([]byte, 32)) || len(blob) == 0 {
		t.Fatalf("data key %d bytes, blob %d bytes", len(pt), len(blob))
	}
	for _, kid := range []string{arn, id} {
		got, err := k.Decrypt(ctx, kid, blob, bucketCtx)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Decrypt with %q: %v", kid, err)
		}
	}
	// The admin client agrees: the blob is a real KMS blob bound to the context.
	out, err := admin.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: bucketCtx})
	if err != nil || !bytes.Equal(out.Plaintext, pt) {
		t.Fatalf("admin Decrypt: %v", err)
	}
	pt2, _, err := k.GenerateDataKey(ctx, id, bucketCtx)
	if err != nil || bytes.Equal(pt, pt2) {
		t.Fatalf("second data key: %v (equal to first: %v)", err, bytes.Equal(pt, pt2))
	}
}

func TestKMSAliasRecordsARN(t *testing.T) {
	ep := kmsTestEndpoint(t)
	ctx := context.Background()
	admin := adminClient(ep)
	id, arn := newKMSKey(t, admin)
	alias := fmt.Sprintf("alias/s3seal-test-%d", time.Now().UnixNano())
	if _, err := admin.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	k := newTestKMS(t, ep, alias)
	used, pt, blob, err := k.GenerateDataKeyID(ctx, "", bucketCtx)
	if err != nil {
		t.Fatal(err)
	}
	if used != arn {
		t.Fatalf("used key %q, want the key ARN %q rather than the alias", used, arn)
	}
	got, err := k.Decrypt(ctx, used, blob, bucketCtx)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Decrypt: %v", err)
	}
}

func TestKMSDecryptFailures(t *testing.T) {
	ep := kmsTestEndpoint(t)
	ctx := context.Background()
	admin := adminClient(ep)
	id, _ := newKMSKey(t, admin)
	other, _ := newKMSKey(t, admin)
	k := newTestKMS(t, ep, id)
	_, blob, err := k.GenerateDataKey(ctx, "", bucketCtx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Decrypt(ctx, id, blob, map[string]string{"gateway": "s3seal", "bucket": "other"}); !errors.Is(err, ErrInvalidCiphertext) {
		t.Errorf("wrong context: %v", err)
	}
	if _, err := k.Decrypt(ctx, id, blob, nil); !errors.Is(err, ErrInvalidCiphertext) {
		t.Errorf("no context: %v", err)
	}
	// AWS answers IncorrectKeyException (ErrInvalidCiphertext); moto answers AccessDeniedException.
	if _, err := k.Decrypt(ctx, other, blob, bucketCtx); !errors.Is(err, ErrInvalidCiphertext) && !errors.Is(err, ErrAccessDenied) {
		t.Errorf("other key: %v", err)
	}
	tampered := bytes.Clone(blob)
	tampered[len(tampered)-1] ^= 1
	if _, err := k.Decrypt(ctx, id, tampered, bucketCtx); !errors.Is(err, ErrInvalidCiphertext) {
		t.Errorf("tampered: %v", err)
	}
	if _, err := k.Decrypt(ctx, id, []byte("garbage"), bucketCtx); !errors.Is(err, ErrInvalidCiphertext) {
		t.Errorf("garbage: %v", err)
	}
	// No key id: the blob names its key (how objects of other writers are read); the context
	// must still match.
	if pt, err := k.Decrypt(ctx, "", blob, bucketCtx); err != nil || len(pt) != DataKeySize {
		t.Errorf("empty key id: %v", err)
	}
	if _, err := k.Decrypt(ctx, "", blob, map[string]string{"gateway": "s3seal", "bucket": "other"}); !errors.Is(err, ErrInvalidCiphertext) {
		t.Errorf("empty key id, wrong context: %v", err)
	}
}

func TestKMSUnknownKey(t *testing.T) {
	ep := kmsTestEndpoint(t)
	ctx := context.Background()
	missing := "11111111-2222-3333-4444-555555555555"
	k := newTestKMS(t, ep, missing)
	_, _, err := k.GenerateDataKey(ctx, "", bucketCtx)
	if !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("GenerateDataKey unknown key: %v", err)
	}
	if !strings.Contains(err.Error(), "NotFoundException") {
		t.Errorf("AWS error not kept in %q", err)
	}
	if _, err := k.Decrypt(ctx, missing, []byte("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), bucketCtx); !errors.Is(err, ErrKeyNotFound) && !errors.Is(err, ErrInvalidCiphertext) {
		t.Errorf("Decrypt unknown key: %v", err)
	}
	if err := k.Ping(ctx); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Ping unknown key: %v", err)
	}
	if _, _, err := newTestKMS(t, ep, "alias/does-not-exist").GenerateDataKey(ctx, "", bucketCtx); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("unknown alias: %v", err)
	}
	if _, _, err := newTestKMS(t, ep, "").GenerateDataKey(ctx, "", bucketCtx); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("no default key: %v", err)
	}
	if err := newTestKMS(t, ep, "").Ping(ctx); err != nil {
		t.Errorf("Ping without default key: %v", err)
	}
}

// TestKMSDisabledKey: moto 5.2 records DisableKey (DescribeKey shows it) but still serves
// GenerateDataKey and Decrypt with the key, unlike AWS (DisabledException). Ping reads the key
// state, so it reports the disabled key on both; the DisabledException mapping itself is
// checked against recorded AWS answers in TestKMSErrorMapping.
func TestKMSDisabledKey(t *testing.T) {
	ep := kmsTestEndpoint(t)
	ctx := context.Background()
	admin := adminClient(ep)
	id, _ := newKMSKey(t, admin)
	k := newTestKMS(t, ep, id)
	_, blob, err := k.GenerateDataKey(ctx, "", bucketCtx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if err := k.Ping(ctx); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("Ping on a disabled key: %v", err)
	}
	if _, _, err := k.GenerateDataKey(ctx, "", bucketCtx); err != nil && !errors.Is(err, ErrKeyDisabled) {
		t.Errorf("GenerateDataKey on a disabled key: %v", err)
	} else if err == nil {
		t.Log("this KMS server ignores DisableKey for GenerateDataKey (moto does)")
	}
	if _, err := k.Decrypt(ctx, id, blob, bucketCtx); err != nil && !errors.Is(err, ErrKeyDisabled) {
		t.Errorf("Decrypt on a disabled key: %v", err)
	}
	if _, err := admin.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if err := k.Ping(ctx); err != nil {
		t.Fatalf("Ping after EnableKey: %v", err)
	}
}

func TestKMSUnreachable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	port, err := freePort() // closed again: connection refused
	if err != nil {
		t.Fatal(err)
	}
	// A listener that accepts and never answers: only the timeout ends the call.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	const timeout = 1500 * time.Millisecond
	for name, ep := range map[string]string{
		"refused": "http://127.0.0.1:" + strconv.Itoa(port),
		"hanging": "http://" + hang.Addr().String(),
	} {
		k, err := NewKMS(ctx, KMSConfig{Endpoint: ep, AccessKeyID: "a", SecretAccessKey: "b", KeyID: "k", Timeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, _, err = k.GenerateDataKey(ctx, "", bucketCtx)
		elapsed := time.Since(start)
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: GenerateDataKey: %v, want ErrUnavailable", name, err)
		}
		if elapsed > timeout+time.Second {
			t.Errorf("%s: took %v with a %v timeout", name, elapsed, timeout)
		}
		if _, err := k.Decrypt(ctx, "k", []byte("blob"), bucketCtx); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: Decrypt: %v", name, err)
		}
		if err := k.Ping(ctx); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: Ping: %v", name, err)
		}
	}
	// The caller's own cancellation stays visible.
	k, err := NewKMS(ctx, KMSConfig{Endpoint: "http://" + hang.Addr().String(), AccessKeyID: "a", SecretAccessKey: "b", KeyID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, _, err := k.GenerateDataKey(cctx, "", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller deadline: %v", err)
	}
}

func TestNewKMSConfigErrors(t *testing.T) {
	ctx := context.Background()
	bad := []KMSConfig{
		{AccessKeyID: "only-id"},
		{SecretAccessKey: "only-secret"},
		{Timeout: -time.Second},
		{MaxAttempts: -1},
		{CABundle: "/nonexistent/ca.pem"},
	}
	for _, c := range bad {
		if _, err := NewKMS(ctx, c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}
