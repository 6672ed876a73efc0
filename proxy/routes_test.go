package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/s3seal/s3seal/cache"
)

// noKeys is a KeyCache for tests that never reach the key provider.
type noKeys struct{}

func (noKeys) EncryptKey(context.Context, string, map[string]string, int64) (*cache.DataKey, error) {
	panic("EncryptKey called")
}

func (noKeys) DecryptKey(context.Context, string, []byte, map[string]string) ([]byte, error) {
	panic("DecryptKey called")
}

// recordingBackend answers every request 200 and records "METHOD path?query".
type recordingBackend struct {
	mu   sync.Mutex
	seen []string
}

func (b *recordingBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	b.mu.Lock()
	b.seen = append(b.seen, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	b.mu.Unlock()
}

func (b *recordingBackend) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.seen
	b.seen = nil
	return s
}

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestGateway(t *testing.T, creds ...Credential) (*Gateway, *recordingBackend) {
	t.Helper()
	return newTestGatewayConfig(t, nil, creds...)
}

// newTestGatewayConfig is newTestGateway with the configuration changed by edit (nil: none).
func newTestGatewayConfig(t *testing.T, edit func(*Config), creds ...Credential) (*Gateway, *recordingBackend) {
	t.Helper()
	rb := &recordingBackend{}
	srv := httptest.NewServer(rb)
	t.Cleanup(srv.Close)
	cfg := testConfig(srv.URL, creds)
	if edit != nil {
		edit(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g, rb
}

// testConfig is the configuration of the test gateways: backend at endpoint, path style,
// keys never used, virtual hosts under s3.example.test.
func testConfig(endpoint string, creds []Credential) Config {
	return Config{
		Credentials: creds,
		Backend: Backend{Endpoint: endpoint, Region: "us-east-1", PathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider("backend", "backendsecret", "")},
		Keys:        noKeys{},
		KeyID:       "k",
		BaseDomains: []string{"s3.example.test"},
		Now:         func() time.Time { return testNow },
	}
}

// classified is what classify makes of a request.
type classified struct {
	op           string
	write, admin bool
	notImpl      bool // the handler answers NotImplemented without reaching the backend
}

func TestClassifyTable(t *testing.T) {
	g, rb := newTestGateway(t, Credential{AccessKeyID: "A", SecretAccessKey: "s"})
	cases := []struct {
		method, target string
		hdr            map[string]string
		want           classified
	}{
		{"GET", "/bkt?list-type=2&prefix=x", nil, classified{op: "ListObjectsV2"}},
		{"GET", "/bkt", nil, classified{op: "ListObjects"}},
		{"GET", "/bkt?versions&prefix=x", nil, classified{op: "ListObjectVersions"}},
		{"GET", "/bkt?uploads", nil, classified{op: "ListMultipartUploads"}},
		{"GET", "/bkt?location", nil, classified{op: "GetBucketLocation"}},
		{"GET", "/bkt?versioning", nil, classified{op: "GetBucketVersioning"}},
		{"GET", "/bkt?acl", nil, classified{op: "GetBucketAcl"}},
		{"GET", "/bkt?policy", nil, classified{op: "GetBucketPolicy"}},
		{"PUT", "/bkt", nil, classified{op: "CreateBucket", write: true}},
		{"PUT", "/bkt?policy", nil, classified{op: "PutBucketPolicy", write: true, admin: true}},
		{"DELETE", "/bkt?policy", nil, classified{op: "DeleteBucketPolicy", write: true, admin: true}},
		{"PUT", "/bkt?acl", nil, classified{op: "PutBucketAcl", write: true, admin: true}},
		{"PUT", "/bkt?lifecycle", nil, classified{op: "PutBucketLifecycleConfiguration", write: true, admin: true}},
		{"DELETE", "/bkt?lifecycle", nil, classified{op: "DeleteBucketLifecycle", write: true, admin: true}},
		{"PUT", "/bkt?versioning", nil, classified{op: "PutBucketVersioning", write: true, admin: true}},
		{"PUT", "/bkt?object-lock", nil, classified{op: "PutObjectLockConfiguration", write: true, admin: true}},
		{"PUT", "/bkt?replication", nil, classified{op: "PutBucketReplication", write: true, admin: true}},
		{"PUT", "/bkt?logging", nil, classified{op: "PutBucketLogging", write: true, admin: true}},
		{"PUT", "/bkt?inventory&id=i1", nil, classified{op: "PutBucketInventoryConfiguration", write: true, admin: true}},
		{"PUT", "/bkt?notification", nil, classified{op: "PutBucketNotificationConfiguration", write: true, admin: true}},
		{"PUT", "/bkt?encryption", nil, classified{op: "PutBucketEncryption", write: true, admin: true}},
		{"DELETE", "/bkt?cors", nil, classified{op: "DeleteBucketCors", write: true, admin: true}},
		{"PUT", "/bkt?website", nil, classified{op: "PutBucketWebsite", write: true, admin: true}},
		{"PUT", "/bkt?tagging", nil, classified{op: "PutBucketTagging", write: true}},
		{"POST", "/bkt?delete", nil, classified{op: "DeleteObjects", write: true}},
		{"DELETE", "/bkt", nil, classified{op: "DeleteBucket", write: true}},
		{"PUT", "/bkt/k?acl", nil, classified{op: "PutObjectAcl", write: true, admin: true}},
		{"PUT", "/bkt/k?acl&versionId=v1", nil, classified{op: "PutObjectAcl", write: true, admin: true}},
		{"GET", "/bkt/k?acl", nil, classified{op: "GetObjectAcl"}},
		{"PUT", "/bkt/k?tagging", nil, classified{op: "PutObjectTagging", write: true}},
		{"DELETE", "/bkt/k?tagging", nil, classified{op: "DeleteObjectTagging", write: true}},
		{"PUT", "/bkt/k?retention", nil, classified{op: "PutObjectRetention", write: true}},
		{"GET", "/bkt/k?legal-hold", nil, classified{op: "GetObjectLegalHold"}},
		{"POST", "/bkt/k?restore", nil, classified{op: "RestoreObject", write: true}},
		{"GET", "/bkt/k", nil, classified{op: "GetObject"}},
		{"GET", "/bkt/k?versionId=v1&partNumber=1", nil, classified{op: "GetObject"}},
		{"PUT", "/bkt/k", nil, classified{op: "PutObject", write: true}},
		{"PUT", "/bkt/k?partNumber=1&uploadId=u", nil, classified{op: "UploadPart", write: true}},
		{"PUT", "/bkt/k", map[string]string{"X-Amz-Copy-Source": "/bkt/j"}, classified{op: "CopyObject", write: true}},
		{"DELETE", "/bkt/k?versionId=v1", nil, classified{op: "DeleteObject", write: true}},
		// Virtual-hosted style finds the same operations.
		{"PUT", "http://bkt.s3.example.test/?policy", nil, classified{op: "PutBucketPolicy", write: true, admin: true}},
		{"PUT", "http://bkt.s3.example.test/k?acl", nil, classified{op: "PutObjectAcl", write: true, admin: true}},

		// Not on the allowlist: NotImplemented, never forwarded.
		{"PUT", "/bkt?tagging&policy", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/bkt?tagging&replication", nil, classified{op: "Unknown", notImpl: true}},
		{"GET", "/bkt?versions&policy", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/bkt?policy&foo=1", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/bkt?location", nil, classified{op: "Unknown", notImpl: true}},
		{"DELETE", "/bkt?versioning", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/bkt?foo", nil, classified{op: "Unknown", notImpl: true}},
		{"DELETE", "/bkt?foo", nil, classified{op: "Unknown", notImpl: true}},
		{"GET", "/bkt?foo", nil, classified{op: "ListObjects", notImpl: true}},
		{"GET", "/bkt?list-type=2&allow-unordered=true", nil, classified{op: "ListObjectsV2", notImpl: true}},
		{"GET", "/bkt?events", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/bkt/k?policy", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/bkt/k?tagging&acl", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/bkt/k?partNumber=1&uploadId=u&acl", nil, classified{op: "Unknown", notImpl: true}},
		{"DELETE", "/bkt/k?acl", nil, classified{op: "Unknown", notImpl: true}},
		{"GET", "/bkt/k?restore", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/bkt/k?foo", nil, classified{op: "PutObject", write: true, notImpl: true}},
		{"PUT", "/bkt/k", map[string]string{"X-Amz-Write-Offset-Bytes": "100"}, classified{op: "PutObject", write: true, notImpl: true}},
		{"POST", "/bkt/k?select&select-type=2", nil, classified{op: "Unknown", notImpl: true}},
		{"POST", "/bkt/k?select", nil, classified{op: "SelectObjectContent", notImpl: true}},
		{"GET", "/bkt/k?torrent", nil, classified{op: "GetObjectTorrent", notImpl: true}},
		{"POST", "/bkt", nil, classified{op: "PostObject", write: true, notImpl: true}},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.target, nil)
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		q := &request{w: &responseWriter{ResponseWriter: rec}, r: r, id: "T"}
		var e error
		q.bucket, q.key, e = routeErr(g, r)
		if e != nil {
			t.Fatalf("%s %s: route: %v", c.method, c.target, e)
		}
		h := g.classify(q)
		got := classified{op: q.op, write: h.write, admin: h.admin}
		if c.want.notImpl {
			if err := h.fn(q); err != nil {
				g.answerError(q, err)
			}
			got.notImpl = rec.Code == http.StatusNotImplemented && strings.Contains(rec.Body.String(), "<Code>NotImplemented</Code>")
			if seen := rb.take(); len(seen) != 0 {
				t.Errorf("%s %s reached the backend: %v", c.method, c.target, seen)
			}
		}
		if got != c.want {
			t.Errorf("%s %s: got %+v, want %+v", c.method, c.target, got, c.want)
		}
	}
}

// routeErr is g.route with a plain error.
func routeErr(g *Gateway, r *http.Request) (string, string, error) {
	b, k, e := g.route(r)
	if e != nil {
		return "", "", e
	}
	return b, k, nil
}

// signedRequest is a SigV4-signed request (aws-sdk-go-v2's signer) to g.
func signedRequest(t *testing.T, c Credential, method, target, body string, hdr map[string]string) *http.Request {
	t.Helper()
	if !strings.HasPrefix(target, "http://") {
		target = "http://gw.test" + target // path style; a whole URL addresses a virtual host
	}
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	r.Header.Set("X-Amz-Content-Sha256", hash)
	err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}, r, hash, "s3", "us-east-1", testNow)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAuthorizeAdmin(t *testing.T) {
	user := Credential{AccessKeyID: "USER", SecretAccessKey: "usersecret"}
	admin := Credential{AccessKeyID: "ADMIN", SecretAccessKey: "adminsecret", Admin: true}
	roAdmin := Credential{AccessKeyID: "ROADMIN", SecretAccessKey: "roadminsecret", Admin: true, ReadOnly: true}
	g, rb := newTestGateway(t, user, admin, roAdmin)
	const policy = `{"Version":"2012-10-17","Statement":[]}`
	const restoreSelect = `<RestoreRequest><Type>SELECT</Type><OutputLocation><S3><BucketName>out</BucketName><Prefix>p</Prefix></S3></OutputLocation></RestoreRequest>`
	const restorePlain = `<RestoreRequest><Days>1</Days></RestoreRequest>`
	cases := []struct {
		name           string
		cred           Credential
		method, target string
		body           string
		hdr            map[string]string
		status         int
		code           string // S3 error code, "" for success
	}{
		{"user PutBucketPolicy", user, "PUT", "/bkt?policy", policy, nil, 403, "AccessDenied"},
		{"user DeleteBucketPolicy", user, "DELETE", "/bkt?policy", "", nil, 403, "AccessDenied"},
		{"user PutBucketAcl", user, "PUT", "/bkt?acl", "", map[string]string{"X-Amz-Acl": "public-read"}, 403, "AccessDenied"},
		{"user PutBucketLifecycle", user, "PUT", "/bkt?lifecycle", "<LifecycleConfiguration/>", nil, 403, "AccessDenied"},
		{"user PutBucketVersioning", user, "PUT", "/bkt?versioning", "<VersioningConfiguration/>", nil, 403, "AccessDenied"},
		{"user PutBucketReplication", user, "PUT", "/bkt?replication", "<ReplicationConfiguration/>", nil, 403, "AccessDenied"},
		{"user PutObjectAcl", user, "PUT", "/bkt/k?acl", "", map[string]string{"X-Amz-Acl": "public-read"}, 403, "AccessDenied"},
		{"user CreateBucket public-read", user, "PUT", "/newbkt", "", map[string]string{"X-Amz-Acl": "public-read"}, 403, "AccessDenied"},
		{"user CreateBucket grant", user, "PUT", "/newbkt", "", map[string]string{"X-Amz-Grant-Read": "id=x"}, 403, "AccessDenied"},
		{"user CreateBucket object lock", user, "PUT", "/newbkt", "", map[string]string{"X-Amz-Bucket-Object-Lock-Enabled": "true"}, 403, "AccessDenied"},
		{"user DeleteObject bypassing governance", user, "DELETE", "/bkt/k?versionId=v1", "", map[string]string{"X-Amz-Bypass-Governance-Retention": "true"}, 403, "AccessDenied"},
		{"user DeleteObjects bypassing governance", user, "POST", "/bkt?delete", "<Delete><Object><Key>k</Key></Object></Delete>", map[string]string{"X-Amz-Bypass-Governance-Retention": "true"}, 403, "AccessDenied"},
		{"user PutObjectRetention bypassing governance", user, "PUT", "/bkt/k?retention", "<Retention/>", map[string]string{"X-Amz-Bypass-Governance-Retention": "true"}, 403, "AccessDenied"},
		{"read-only admin PutBucketPolicy", roAdmin, "PUT", "/bkt?policy", policy, nil, 403, "AccessDenied"},
		{"user RestoreObject SELECT", user, "POST", "/bkt/k?restore", restoreSelect, nil, 501, "NotImplemented"},
		{"admin RestoreObject SELECT", admin, "POST", "/bkt/k?restore", restoreSelect, nil, 501, "NotImplemented"},
		{"user RestoreObject bad XML", user, "POST", "/bkt/k?restore", "<RestoreRequest", nil, 400, "MalformedXML"},

		{"user GetBucketVersioning", user, "GET", "/bkt?versioning", "", nil, 200, ""},
		{"user GetBucketAcl", user, "GET", "/bkt?acl", "", nil, 200, ""},
		{"user GetBucketLocation", user, "GET", "/bkt?location", "", nil, 200, ""},
		{"user PutBucketTagging", user, "PUT", "/bkt?tagging", "<Tagging/>", nil, 200, ""},
		{"user CreateBucket private", user, "PUT", "/newbkt", "", map[string]string{"X-Amz-Acl": "private"}, 200, ""},
		{"user RestoreObject", user, "POST", "/bkt/k?restore", restorePlain, nil, 200, ""},
		{"admin PutBucketPolicy", admin, "PUT", "/bkt?policy", policy, nil, 200, ""},
		{"admin PutBucketAcl", admin, "PUT", "/bkt?acl", "", map[string]string{"X-Amz-Acl": "public-read"}, 200, ""},
		{"admin PutBucketVersioning", admin, "PUT", "/bkt?versioning", "<VersioningConfiguration/>", nil, 200, ""},
		{"admin PutObjectAcl", admin, "PUT", "/bkt/k?acl", "", map[string]string{"X-Amz-Acl": "public-read"}, 200, ""},
		{"user PutObjectRetention", user, "PUT", "/bkt/k?retention", "<Retention/>", nil, 200, ""},
		{"admin PutObjectRetention bypassing governance", admin, "PUT", "/bkt/k?retention", "<Retention/>", map[string]string{"X-Amz-Bypass-Governance-Retention": "true"}, 200, ""},
		{"admin CreateBucket object lock", admin, "PUT", "/newbkt", "", map[string]string{"X-Amz-Bucket-Object-Lock-Enabled": "true"}, 200, ""},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, signedRequest(t, c.cred, c.method, c.target, c.body, c.hdr))
		seen := rb.take()
		if rec.Code != c.status || (c.code != "" && !strings.Contains(rec.Body.String(), "<Code>"+c.code+"</Code>")) {
			t.Errorf("%s: %d %s, want %d %s", c.name, rec.Code, rec.Body.String(), c.status, c.code)
			continue
		}
		if c.code != "" && len(seen) != 0 {
			t.Errorf("%s: refused, but the backend saw %v", c.name, seen)
		}
		if c.code == "" && len(seen) != 1 {
			t.Errorf("%s: backend saw %v, want the request once", c.name, seen)
		}
	}
}

// TestReadParamsCheckedFirst: a malformed partNumber, or partNumber with Range, is 400 before
// the backend is asked anything (S3 answers so even for a key that does not exist).
func TestReadParamsCheckedFirst(t *testing.T) {
	user := Credential{AccessKeyID: "USER", SecretAccessKey: "usersecret"}
	g, rb := newTestGateway(t, user)
	for _, c := range []struct {
		method, target string
		hdr            map[string]string
		code           string
	}{
		{"GET", "/bkt/k?partNumber=-3", nil, "InvalidArgument"},
		{"HEAD", "/bkt/k?partNumber=-3", nil, ""},
		{"HEAD", "/bkt/k?partNumber=0", nil, ""},
		{"GET", "/bkt/k?partNumber=10001", nil, "InvalidArgument"},
		{"GET", "/bkt/k?partNumber=x", nil, "InvalidArgument"},
		{"GET", "/bkt/k?partNumber=1", map[string]string{"Range": "bytes=0-1"}, "InvalidRequest"},
	} {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, signedRequest(t, user, c.method, c.target, "", c.hdr))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), c.code) {
			t.Errorf("%s %s: %d %s, want 400 %s", c.method, c.target, rec.Code, rec.Body.String(), c.code)
		}
		if seen := rb.take(); len(seen) != 0 {
			t.Errorf("%s %s: the backend saw %v", c.method, c.target, seen)
		}
	}
}
