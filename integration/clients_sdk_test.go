package integration

// Client compatibility, Go clients (issue 3, acceptance 2): aws-sdk-go-v2 over the gateway's
// TLS listener (aws-chunked with trailing checksums), minio-go v7, virtual-hosted-style
// requests, and a gateway behind a reverse proxy that rewrites Host.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3seal/s3seal/internal/testenv"
)

// clientsSeen is one request a client sent, as it left the client.
type clientsSeen struct {
	Method, Host, Path, Query string
	Header                    http.Header
}

// clientsRecorder is an http.RoundTripper that records every request before passing it on.
type clientsRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []clientsSeen
}

func (r *clientsRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	r.mu.Lock()
	r.seen = append(r.seen, clientsSeen{req.Method, host, req.URL.Path, req.URL.RawQuery, req.Header.Clone()})
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// first returns the first recorded request with this method whose path ends in suffix.
func (r *clientsRecorder) first(t *testing.T, method, suffix string) clientsSeen {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.seen {
		if s.Method == method && strings.HasSuffix(s.Path, suffix) {
			return s
		}
	}
	t.Fatalf("no %s request for ...%s was recorded", method, suffix)
	return clientsSeen{}
}

// clientsDefaultSDK is an aws-sdk-go-v2 S3 client configured the way applications get one
// (config.LoadDefaultConfig, then s3.NewFromConfig), so with the SDK's default checksum
// settings ("when supported"); only region, credentials, the HTTP client and the endpoint are
// set. (s3.New with a zero Options, as testenv's Gateway.Client uses, leaves the checksum
// settings unset, which sends no checksums at all.) Shared AWS config files and the AWS_*
// variables of the test process that would change the client (CA bundle, profile, checksum
// settings, endpoints) are masked; hc decides what TLS certificates are trusted.
func clientsDefaultSDK(t *testing.T, gw *testenv.Gateway, hc *http.Client, optFns ...func(*s3.Options)) *s3.Client {
	t.Helper()
	for _, k := range []string{"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		t.Setenv(k, "/dev/null")
	}
	for _, k := range []string{"AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(k, "")
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithRegion(gw.Region),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(gw.AccessKeyID, gw.SecretAccessKey, "")),
		awsconfig.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RequestChecksumCalculation != aws.RequestChecksumCalculationWhenSupported ||
		cfg.ResponseChecksumValidation != aws.ResponseChecksumValidationWhenSupported {
		t.Fatalf("the SDK's default checksum settings are %v/%v, not \"when supported\"", cfg.RequestChecksumCalculation, cfg.ResponseChecksumValidation)
	}
	return s3.NewFromConfig(cfg, append([]func(*s3.Options){func(o *s3.Options) {
		o.BaseEndpoint = aws.String(gw.Endpoint)
		o.UsePathStyle = true
	}}, optFns...)...)
}

// clientsSDKRoundTrip: PutObject (body as given), HeadObject, ListObjectsV2, GetObject
// (byte-identical), the stored object in MinIO, DeleteObject, and MinIO empty again.
func clientsSDKRoundTrip(t *testing.T, c *s3.Client, m *testenv.MinIO, bucket, key string, plain []byte, body io.Reader) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: body, ContentLength: aws.Int64(int64(len(plain)))}); err != nil {
		t.Fatalf("PutObject %s: %v", key, err)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("HeadObject: %v", err)
	}
	if aws.ToInt64(head.ContentLength) != int64(len(plain)) {
		t.Errorf("HeadObject: ContentLength %d, want %d", aws.ToInt64(head.ContentLength), len(plain))
	}
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &key})
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	if len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != key || aws.ToInt64(list.Contents[0].Size) != int64(len(plain)) {
		t.Errorf("ListObjectsV2: %d entries, want %s of %d bytes", len(list.Contents), key, len(plain))
	}
	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, err := io.ReadAll(get.Body)
	get.Body.Close()
	if err != nil || !bytes.Equal(got, plain) {
		t.Errorf("GetObject: %d bytes (%v), not the %d uploaded", len(got), err, len(plain))
	}
	checkAtRest(t, m, bucket, key, plain)
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	clientsAbsent(t, m, bucket, key)
}

// clientsWantAPIError asserts err is an S3 error with this code and HTTP status.
func clientsWantAPIError(t *testing.T, what string, err error, code string, status int) {
	t.Helper()
	var ae smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) || ae.ErrorCode() != code || re.HTTPStatusCode() != status {
		t.Errorf("%s: %v, want %d %s", what, err, status, code)
	}
}

// TestClientsGoSDKOverTLS: aws-sdk-go-v2 service/s3 with its default checksum settings over the
// gateway's TLS listener uses aws-chunked bodies with a trailing CRC32 and asks for response
// checksums on GET; round trips with a seekable and an unseekable body succeed.
func TestClientsGoSDKOverTLS(t *testing.T) {
	gw, m, mat := startTLSGateway(t, nil)
	bucket := m.NewBucket(t)
	rec := &clientsRecorder{next: mat.Transport()}
	c := clientsDefaultSDK(t, gw, &http.Client{Transport: rec, Timeout: 2 * time.Minute})

	plain := testenv.RandomBytes(t, clientsSize, marker)
	clientsSDKRoundTrip(t, c, m, bucket, "sdk/seekable", plain, bytes.NewReader(plain))
	put := rec.first(t, http.MethodPut, "/sdk/seekable")
	if put.Header.Get("X-Amz-Content-Sha256") != clientsTrailerMode ||
		!strings.Contains(put.Header.Get("Content-Encoding"), "aws-chunked") ||
		!strings.HasPrefix(put.Header.Get("X-Amz-Trailer"), "x-amz-checksum-") {
		t.Errorf("the SDK's PutObject over TLS was not aws-chunked with a trailer: %v", put.Header)
	}
	if get := rec.first(t, http.MethodGet, "/sdk/seekable"); get.Header.Get("X-Amz-Checksum-Mode") != "ENABLED" {
		t.Errorf("the SDK's GetObject did not ask for checksums (x-amz-checksum-mode %q)", get.Header.Get("X-Amz-Checksum-Mode"))
	}

	// An unseekable body (a stream of known length).
	plain = testenv.RandomBytes(t, clientsSize, marker)
	clientsSDKRoundTrip(t, c, m, bucket, "sdk/unseekable", plain, struct{ io.Reader }{bytes.NewReader(plain)})
	put = rec.first(t, http.MethodPut, "/sdk/unseekable")
	t.Logf("unseekable PutObject over TLS: x-amz-content-sha256 %q, x-amz-trailer %q, content-encoding %q",
		put.Header.Get("X-Amz-Content-Sha256"), put.Header.Get("X-Amz-Trailer"), put.Header.Get("Content-Encoding"))
}

// clientsMinIORoundTrip: minio-go v7 with default options: PutObject, StatObject, ListObjects,
// GetObject, RemoveObject.
func clientsMinIORoundTrip(t *testing.T, gw *testenv.Gateway, m *testenv.MinIO, tr http.RoundTripper, bucket, key string) {
	t.Helper()
	u, err := url.Parse(gw.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := minio.New(u.Host, &minio.Options{
		Creds:     miniocreds.NewStaticV4(gw.AccessKeyID, gw.SecretAccessKey, ""),
		Secure:    u.Scheme == "https",
		Transport: tr,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plain := testenv.RandomBytes(t, clientsSize, marker)
	info, err := mc.PutObject(ctx, bucket, key, bytes.NewReader(plain), int64(len(plain)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("minio-go PutObject: %v", err)
	}
	if info.Size != int64(len(plain)) {
		t.Errorf("PutObject reports %d bytes, want %d", info.Size, len(plain))
	}
	st, err := mc.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil || st.Size != int64(len(plain)) {
		t.Errorf("StatObject: size %d (%v), want %d", st.Size, err, len(plain))
	}
	var listed []minio.ObjectInfo
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: key}) {
		if o.Err != nil {
			t.Fatalf("ListObjects: %v", o.Err)
		}
		listed = append(listed, o)
	}
	if len(listed) != 1 || listed[0].Key != key || listed[0].Size != int64(len(plain)) {
		t.Errorf("ListObjects: %+v, want %s of %d bytes", listed, key, len(plain))
	}
	obj, err := mc.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || !bytes.Equal(got, plain) {
		t.Errorf("GetObject: %d bytes (%v), not the %d uploaded", len(got), err, len(plain))
	}
	checkAtRest(t, m, bucket, key, plain)
	if err := mc.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("RemoveObject: %v", err)
	}
	clientsAbsent(t, m, bucket, key)
}

// TestClientsMinIOGo: minio-go v7 with default options, over plain HTTP and over TLS.
func TestClientsMinIOGo(t *testing.T) {
	t.Run("http", func(t *testing.T) {
		gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
		rec := &clientsRecorder{next: http.DefaultTransport.(*http.Transport).Clone()}
		clientsMinIORoundTrip(t, gw, m, rec, m.NewBucket(t), "minio-go/http")
		t.Logf("minio-go over http: PutObject payload %q", rec.first(t, http.MethodPut, "/minio-go/http").Header.Get("X-Amz-Content-Sha256"))
	})
	t.Run("tls", func(t *testing.T) {
		gw, m, mat := startTLSGateway(t, nil)
		rec := &clientsRecorder{next: mat.Transport()}
		clientsMinIORoundTrip(t, gw, m, rec, m.NewBucket(t), "minio-go/tls")
		t.Logf("minio-go over TLS: PutObject payload %q", rec.first(t, http.MethodPut, "/minio-go/tls").Header.Get("X-Amz-Content-Sha256"))
	})
}

// TestClientsVirtualHosted: a gateway with GATEWAY_BASE_DOMAINS=s3.test, driven by
// aws-sdk-go-v2 with virtual-hosted-style addressing (every connection goes to the gateway's
// port on 127.0.0.1), verifies bucket.s3.test requests and re-signs them path-style for MinIO.
func TestClientsVirtualHosted(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, map[string]string{"GATEWAY_BASE_DOMAINS": "s3.test"})
	bucket := m.NewBucket(t)
	addr := strings.TrimPrefix(gw.Endpoint, "http://")
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	rec := &clientsRecorder{next: tr}
	c := clientsDefaultSDK(t, gw, &http.Client{Transport: rec, Timeout: 2 * time.Minute}, func(o *s3.Options) {
		o.BaseEndpoint = aws.String("http://s3.test:" + port)
		o.UsePathStyle = false
	})

	plain := testenv.RandomBytes(t, clientsSize, marker)
	key := "vhost/dir/object.bin"
	// Path-style still works on the same gateway: check the object from there before deleting.
	ctx := context.Background()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("vhost/pathstyle-check"), Body: bytes.NewReader(plain[:1000])}); err != nil {
		t.Fatalf("virtual-hosted PutObject: %v", err)
	}
	get, err := gw.Client(t).GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("vhost/pathstyle-check")})
	if err != nil {
		t.Fatalf("path-style GetObject of a virtual-hosted upload: %v", err)
	}
	got, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if !bytes.Equal(got, plain[:1000]) {
		t.Errorf("path-style GetObject: %d bytes, not the 1000 uploaded", len(got))
	}

	clientsSDKRoundTrip(t, c, m, bucket, key, plain, bytes.NewReader(plain))
	put := rec.first(t, http.MethodPut, "/"+key)
	if put.Host != bucket+".s3.test:"+port || put.Path != "/"+key {
		t.Errorf("the SDK did not address virtual-hosted style: Host %q path %q", put.Host, put.Path)
	}
}

// clientsForwardingProxy is a reverse proxy in front of the gateway at target that rewrites
// Host to the gateway's and sets X-Forwarded-Host/-Proto to what the client used, as a load
// balancer does.
func clientsForwardingProxy(t *testing.T, target string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u) // Host becomes the gateway's
		pr.SetXForwarded()
		if pr.In.Host == u.Host || pr.Out.Header.Get("X-Forwarded-Host") != pr.In.Host {
			t.Errorf("proxy: the public host %q must differ from the gateway's %q and be forwarded", pr.In.Host, u.Host)
		}
	}})
	t.Cleanup(p.Close)
	return p
}

// TestClientsForwardedHost: behind a reverse proxy that rewrites Host, a gateway with
// GATEWAY_TRUST_FORWARDED_HEADERS=true accepts requests (header-signed and presigned) signed
// for the public host; an otherwise identical gateway without that setting rejects them.
func TestClientsForwardedHost(t *testing.T) {
	ctx := context.Background()
	t.Run("trusted", func(t *testing.T) {
		gw, m, _, _ := testenv.StartGatewayMinIO(t, map[string]string{"GATEWAY_TRUST_FORWARDED_HEADERS": "true"})
		bucket := m.NewBucket(t)
		lb := clientsForwardingProxy(t, gw.Endpoint)
		c := clientsDefaultSDK(t, gw, &http.Client{Timeout: 2 * time.Minute}, func(o *s3.Options) { o.BaseEndpoint = aws.String(lb.URL) })
		plain := testenv.RandomBytes(t, clientsSize, marker)
		clientsSDKRoundTrip(t, c, m, bucket, "lb/object", plain, bytes.NewReader(plain))

		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("lb/presigned"), Body: bytes.NewReader(plain)}); err != nil {
			t.Fatal(err)
		}
		status, got := clientsPresignedGet(t, c, bucket, "lb/presigned")
		if status != http.StatusOK || !bytes.Equal(got, plain) {
			t.Errorf("presigned GET through the proxy: %d, %d bytes (want 200 and the %d uploaded)", status, len(got), len(plain))
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
		bucket := m.NewBucket(t)
		lb := clientsForwardingProxy(t, gw.Endpoint)
		c := clientsDefaultSDK(t, gw, &http.Client{Timeout: 2 * time.Minute}, func(o *s3.Options) { o.BaseEndpoint = aws.String(lb.URL) })
		plain := testenv.RandomBytes(t, 1<<20, marker)
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("lb/refused"), Body: bytes.NewReader(plain)})
		clientsWantAPIError(t, "PutObject signed for the proxy's host", err, "SignatureDoesNotMatch", http.StatusForbidden)
		clientsAbsent(t, m, bucket, "lb/refused")

		// The same object stored directly is fine, but a presigned URL for the proxy is not.
		if _, err := gw.Client(t).PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("lb/direct"), Body: bytes.NewReader(plain)}); err != nil {
			t.Fatalf("direct PutObject: %v", err)
		}
		status, body := clientsPresignedGet(t, c, bucket, "lb/direct")
		if status != http.StatusForbidden || s3ErrorCode(body) != "SignatureDoesNotMatch" {
			t.Errorf("presigned GET through the proxy: %d %s, want 403 SignatureDoesNotMatch", status, s3ErrorCode(body))
		}
	})
}

// clientsPresignedGet presigns GetObject with c (SigV4, 15 minutes) and fetches it with a plain
// HTTP client; it returns the status and body.
func clientsPresignedGet(t *testing.T, c *s3.Client, bucket, key string) (int, []byte) {
	t.Helper()
	p, err := s3.NewPresignClient(c).PresignGetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key},
		s3.WithPresignExpires(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
