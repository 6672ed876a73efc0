package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestValidBucketName: S3's general purpose bucket naming rules, with the examples of S3's
// "Bucket naming rules" page.
func TestValidBucketName(t *testing.T) {
	for _, n := range []string{
		"docexamplebucket1", "log-delivery-march-2020", "my-hosted-content", "docexamplewebsite.com",
		"www.docexamplewebsite.com", "my.example.s3.bucket", "abc", strings.Repeat("a", 63), "1.2.3",
		"a-b", "xn-a", "sthree", "my-s3alias-bucket",
	} {
		if !validBucketName(n) {
			t.Errorf("%q refused, want valid", n)
		}
	}
	for _, n := range []string{
		"", "ab", strings.Repeat("a", 64), "doc_example_bucket", "DocExampleBucket", "doc-example-bucket-",
		"-doc", ".doc", "doc.", "my..bucket", "192.168.5.4", "10.0.0.1", "::1", "xn--bucket", "sthree-x",
		"sthree-configurator", "amzn-s3-demo-bucket", "b-s3alias", "b--ol-s3", "b.mrap", "b--x-s3",
		"b--table-s3", "bucket/key", "bu cket", "bücket", "bucket%2f",
	} {
		if validBucketName(n) {
			t.Errorf("%q accepted, want invalid", n)
		}
	}
}

// TestReservedBuckets: the backend's own names are refused by default and as configured, with
// InvalidBucketName and no backend request, for every method and in both addressing styles.
func TestReservedBuckets(t *testing.T) {
	user := Credential{AccessKeyID: "USER", SecretAccessKey: "usersecret"}
	g, rb := newTestGateway(t, user)
	for _, target := range []string{
		"/minio/admin/v3/remove-user?accessKey=victim", "/minio/admin/v3/info?tagging", "/minio/admin/v3/info",
		"/admin/bucket?bucket=x&purge-objects=true", "/minio", "/admin?acl", "/minio/health/live",
		"http://minio.s3.example.test/admin/v3/info", "http://admin.s3.example.test/bucket?bucket=x",
		"/MINIO/admin/v3/info", "/x/admin", "/192.168.1.1/k",
	} {
		for _, m := range []string{"GET", "HEAD", "PUT", "DELETE", "POST"} {
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, signedRequest(t, user, m, target, "", nil))
			if rec.Code != http.StatusBadRequest || (m != "HEAD" && !strings.Contains(rec.Body.String(), "<Code>InvalidBucketName</Code>")) {
				t.Errorf("%s %s: %d %s, want 400 InvalidBucketName", m, target, rec.Code, rec.Body.String())
			}
			if seen := rb.take(); len(seen) != 0 {
				t.Errorf("%s %s reached the backend: %v", m, target, seen)
			}
		}
	}
	// A copy source in a reserved or invalid bucket.
	for _, src := range []string{"minio/admin/v3/info", "/admin/bucket", "Bad_Bucket/k", "minio%2Fadmin/x"} {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, signedRequest(t, user, "PUT", "/bkt/dst", "", map[string]string{"X-Amz-Copy-Source": src}))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("copy source %s: %d %s, want 400", src, rec.Code, rec.Body.String())
		}
		if seen := rb.take(); len(seen) != 0 {
			t.Errorf("copy source %s reached the backend: %v", src, seen)
		}
	}

	// The list is configurable: with ReservedBuckets empty, "admin" is a bucket like any other
	// (AWS has no admin API on the S3 port), and another name can be reserved.
	g2, rb2 := newTestGatewayConfig(t, func(c *Config) { c.ReservedBuckets = []string{"rgwadmin"} }, user)
	for target, want := range map[string]int{"/admin?location": http.StatusOK, "/minio?location": http.StatusOK, "/rgwadmin?location": http.StatusBadRequest} {
		rec := httptest.NewRecorder()
		g2.ServeHTTP(rec, signedRequest(t, user, "GET", target, "", nil))
		if rec.Code != want {
			t.Errorf("ReservedBuckets [rgwadmin]: GET %s: %d, want %d", target, rec.Code, want)
		}
		rb2.take()
	}
}

// TestWriteGetObjectResponse: S3 Object Lambda's POST /WriteGetObjectResponse is no bucket
// (an invalid one): it is refused as an operation, NotImplemented.
func TestWriteGetObjectResponse(t *testing.T) {
	user := Credential{AccessKeyID: "USER", SecretAccessKey: "usersecret"}
	g, rb := newTestGateway(t, user)
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, signedRequest(t, user, "POST", "/WriteGetObjectResponse", "data", nil))
	if rec.Code != http.StatusNotImplemented {
		t.Errorf("POST /WriteGetObjectResponse: %d %s, want 501", rec.Code, rec.Body.String())
	}
	if seen := rb.take(); len(seen) != 0 {
		t.Errorf("reached the backend: %v", seen)
	}
}

// TestKeyLimits: keys above S3's 1,024 bytes are KeyTooLongError before any backend request.
func TestKeyLimits(t *testing.T) {
	user := Credential{AccessKeyID: "USER", SecretAccessKey: "usersecret"}
	g, rb := newTestGateway(t, user)
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, signedRequest(t, user, "GET", "/bkt/"+strings.Repeat("k", 1025), "", nil))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "<Code>KeyTooLongError</Code>") {
		t.Errorf("1,025-byte key: %d %s, want 400 KeyTooLongError", rec.Code, rec.Body.String())
	}
	if seen := rb.take(); len(seen) != 0 {
		t.Errorf("1,025-byte key reached the backend: %v", seen)
	}
	rec = httptest.NewRecorder()
	g.ServeHTTP(rec, signedRequest(t, user, "GET", "/bkt/"+strings.Repeat("k", 1024)+"?acl", "", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("1,024-byte key: %d %s, want 200", rec.Code, rec.Body.String())
	}
	rb.take()
}
