package keys

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeKMS answers every request with one canned KMS JSON error, as AWS KMS sends them.
func fakeKMS(t *testing.T, status int, code, message string, calls *atomic.Int32) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-Requestid", "test-request")
		w.WriteHeader(status)
		w.Write([]byte(`{"__type":"` + code + `","message":"` + message + `"}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestKMSErrorMapping(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		code   string
		want   error
	}{
		{400, "NotFoundException", ErrKeyNotFound},
		{400, "InvalidArnException", ErrKeyNotFound},
		{400, "DisabledException", ErrKeyDisabled},
		{400, "KMSInvalidStateException", ErrKeyDisabled},
		{400, "AccessDeniedException", ErrAccessDenied},
		{400, "UnrecognizedClientException", ErrAccessDenied},
		{400, "InvalidSignatureException", ErrAccessDenied},
		{400, "InvalidCiphertextException", ErrInvalidCiphertext},
		{400, "IncorrectKeyException", ErrInvalidCiphertext},
		{400, "ThrottlingException", ErrUnavailable},
		{400, "LimitExceededException", ErrUnavailable},
		{500, "KMSInternalException", ErrUnavailable},
		{500, "DependencyTimeoutException", ErrUnavailable},
		{500, "KeyUnavailableException", ErrUnavailable},
		{503, "SomethingNew", ErrUnavailable},
	}
	all := []error{ErrKeyNotFound, ErrKeyDisabled, ErrAccessDenied, ErrInvalidCiphertext, ErrUnavailable}
	for _, c := range cases {
		t.Run(c.code, func(t *testing.T) {
			t.Parallel()
			checkKMSErrorMapping(t, c.status, c.code, c.want, all)
		})
	}
	// An API error nobody classified stays unclassified, with its message.
	var calls atomic.Int32
	srv := fakeKMS(t, 400, "InvalidKeyUsageException", "not for encryption", &calls)
	k, err := NewKMS(context.Background(), KMSConfig{Endpoint: srv.URL, AccessKeyID: "a", SecretAccessKey: "b", KeyID: "key-1"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = k.GenerateDataKey(context.Background(), "", nil)
	if err == nil || !strings.Contains(err.Error(), "not for encryption") {
		t.Fatalf("unclassified error: %v", err)
	}
	for _, s := range all {
		if errors.Is(err, s) {
			t.Errorf("InvalidKeyUsageException classified as %v", s)
		}
	}
}

// TestKMSCABundle: an HTTPS endpoint with a private CA is reached only with CABundle.
func TestKMSCABundle(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Write([]byte(`{"KeyMetadata":{"KeyId":"key-1","Enabled":true,"KeyState":"Enabled"}}`))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	base := KMSConfig{Endpoint: srv.URL, AccessKeyID: "a", SecretAccessKey: "b", KeyID: "key-1", MaxAttempts: 1, Timeout: 3 * time.Second}
	withCA := base
	withCA.CABundle = ca
	k, err := NewKMS(context.Background(), withCA)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Ping(context.Background()); err != nil {
		t.Fatalf("Ping with CA bundle: %v", err)
	}
	k, err = NewKMS(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ping without CA bundle: %v, want ErrUnavailable (TLS failure)", err)
	}
}

func checkKMSErrorMapping(t *testing.T, status int, code string, want error, all []error) {
	var calls atomic.Int32
	msg := "message for " + code
	srv := fakeKMS(t, status, code, msg, &calls)
	k, err := NewKMS(context.Background(), KMSConfig{
		Endpoint: srv.URL, AccessKeyID: "a", SecretAccessKey: "b", KeyID: "key-1",
		MaxAttempts: 2, Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = k.GenerateDataKey(context.Background(), "", bucketCtx)
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", code, err, want)
		return
	}
	for _, other := range all {
		if other != want && errors.Is(err, other) {
			t.Errorf("%s: also classified as %v", code, other)
		}
	}
	if !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "key-1") {
		t.Errorf("%s: message or key id lost: %q", code, err)
	}
	// Only transient errors are retried.
	wantCalls := int32(1)
	if want == ErrUnavailable {
		wantCalls = 2
	}
	if got := calls.Load(); got != wantCalls {
		t.Errorf("%s: %d attempts, want %d", code, got, wantCalls)
	}
	once, err := NewKMS(context.Background(), KMSConfig{Endpoint: srv.URL, AccessKeyID: "a", SecretAccessKey: "b", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := once.Decrypt(context.Background(), "key-1", []byte("blob"), bucketCtx); !errors.Is(err, want) {
		t.Errorf("%s: Decrypt: %v", code, err)
	}
}
