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
	rb := &recordingBackend{}
	srv := httptest.NewServer(rb)
	t.Cleanup(srv.Close)
	g, err := New(Config{
		Credentials: creds,
		Backend: Backend{Endpoint: srv.URL, Region: "us-east-1", PathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider("backend", "backendsecret", "")},
		Keys:        noKeys{},
		KeyID:       "k",
		BaseDomains: []string{"s3.example.test"},
		Now:         func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return g, rb
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
		{"GET", "/b?list-type=2&prefix=x", nil, classified{op: "ListObjectsV2"}},
		{"GET", "/b", nil, classified{op: "ListObjects"}},
		{"GET", "/b?versions&prefix=x", nil, classified{op: "ListObjectVersions"}},
		{"GET", "/b?uploads", nil, classified{op: "ListMultipartUploads"}},
		{"GET", "/b?location", nil, classified{op: "GetBucketLocation"}},
		{"GET", "/b?versioning", nil, classified{op: "GetBucketVersioning"}},
		{"GET", "/b?acl", nil, classified{op: "GetBucketAcl"}},
		{"GET", "/b?policy", nil, classified{op: "GetBucketPolicy"}},
		{"PUT", "/b", nil, classified{op: "CreateBucket", write: true}},
		{"PUT", "/b?policy", nil, classified{op: "PutBucketPolicy", write: true, admin: true}},
		{"DELETE", "/b?policy", nil, classified{op: "DeleteBucketPolicy", write: true, admin: true}},
		{"PUT", "/b?acl", nil, classified{op: "PutBucketAcl", write: true, admin: true}},
		{"PUT", "/b?lifecycle", nil, classified{op: "PutBucketLifecycleConfiguration", write: true, admin: true}},
		{"DELETE", "/b?lifecycle", nil, classified{op: "DeleteBucketLifecycle", write: true, admin: true}},
		{"PUT", "/b?versioning", nil, classified{op: "PutBucketVersioning", write: true, admin: true}},
		{"PUT", "/b?object-lock", nil, classified{op: "PutObjectLockConfiguration", write: true, admin: true}},
		{"PUT", "/b?replication", nil, classified{op: "PutBucketReplication", write: true, admin: true}},
		{"PUT", "/b?logging", nil, classified{op: "PutBucketLogging", write: true, admin: true}},
		{"PUT", "/b?inventory&id=i1", nil, classified{op: "PutBucketInventoryConfiguration", write: true, admin: true}},
		{"PUT", "/b?notification", nil, classified{op: "PutBucketNotificationConfiguration", write: true, admin: true}},
		{"PUT", "/b?encryption", nil, classified{op: "PutBucketEncryption", write: true, admin: true}},
		{"DELETE", "/b?cors", nil, classified{op: "DeleteBucketCors", write: true, admin: true}},
		{"PUT", "/b?website", nil, classified{op: "PutBucketWebsite", write: true, admin: true}},
		{"PUT", "/b?tagging", nil, classified{op: "PutBucketTagging", write: true}},
		{"POST", "/b?delete", nil, classified{op: "DeleteObjects", write: true}},
		{"DELETE", "/b", nil, classified{op: "DeleteBucket", write: true}},
		{"PUT", "/b/k?acl", nil, classified{op: "PutObjectAcl", write: true, admin: true}},
		{"PUT", "/b/k?acl&versionId=v1", nil, classified{op: "PutObjectAcl", write: true, admin: true}},
		{"GET", "/b/k?acl", nil, classified{op: "GetObjectAcl"}},
		{"PUT", "/b/k?tagging", nil, classified{op: "PutObjectTagging", write: true}},
		{"DELETE", "/b/k?tagging", nil, classified{op: "DeleteObjectTagging", write: true}},
		{"PUT", "/b/k?retention", nil, classified{op: "PutObjectRetention", write: true}},
		{"GET", "/b/k?legal-hold", nil, classified{op: "GetObjectLegalHold"}},
		{"POST", "/b/k?restore", nil, classified{op: "RestoreObject", write: true}},
		{"GET", "/b/k", nil, classified{op: "GetObject"}},
		{"GET", "/b/k?versionId=v1&partNumber=1", nil, classified{op: "GetObject"}},
		{"PUT", "/b/k", nil, classified{op: "PutObject", write: true}},
		{"PUT", "/b/k?partNumber=1&uploadId=u", nil, classified{op: "UploadPart", write: true}},
		{"PUT", "/b/k", map[string]string{"X-Amz-Copy-Source": "/b/j"}, classified{op: "CopyObject", write: true}},
		{"DELETE", "/b/k?versionId=v1", nil, classified{op: "DeleteObject", write: true}},
		// Virtual-hosted style finds the same operations.
		{"PUT", "http://b.s3.example.test/?policy", nil, classified{op: "PutBucketPolicy", write: true, admin: true}},
		{"PUT", "http://b.s3.example.test/k?acl", nil, classified{op: "PutObjectAcl", write: true, admin: true}},

		// Not on the allowlist: NotImplemented, never forwarded.
		{"PUT", "/b?tagging&policy", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/b?tagging&replication", nil, classified{op: "Unknown", notImpl: true}},
		{"GET", "/b?versions&policy", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/b?policy&foo=1", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/b?location", nil, classified{op: "Unknown", notImpl: true}},
		{"DELETE", "/b?versioning", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/b?foo", nil, classified{op: "Unknown", notImpl: true}},
		{"DELETE", "/b?foo", nil, classified{op: "Unknown", notImpl: true}},
		{"GET", "/b?foo", nil, classified{op: "Unknown", notImpl: true}},
		{"GET", "/b?events", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/b/k?policy", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/b/k?tagging&acl", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/b/k?partNumber=1&uploadId=u&acl", nil, classified{op: "Unknown", notImpl: true}},
		{"DELETE", "/b/k?acl", nil, classified{op: "Unknown", notImpl: true}},
		{"GET", "/b/k?restore", nil, classified{op: "Unknown", notImpl: true}},
		{"PUT", "/b/k?foo", nil, classified{op: "PutObject", write: true, notImpl: true}},
		{"PUT", "/b/k", map[string]string{"X-Amz-Write-Offset-Bytes": "100"}, classified{op: "PutObject", write: true, notImpl: true}},
		{"POST", "/b/k?select&select-type=2", nil, classified{op: "Unknown", notImpl: true}},
		{"POST", "/b/k?select", nil, classified{op: "SelectObjectContent", notImpl: true}},
		{"GET", "/b/k?torrent", nil, classified{op: "GetObjectTorrent", notImpl: true}},
		{"POST", "/b", nil, classified{op: "PostObject", write: true, notImpl: true}},
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
	r := httptest.NewRequest(method, "http://gw.test"+target, strings.NewReader(body))
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
		{"user PutBucketPolicy", user, "PUT", "/b?policy", policy, nil, 403, "AccessDenied"},
		{"user DeleteBucketPolicy", user, "DELETE", "/b?policy", "", nil, 403, "AccessDenied"},
		{"user PutBucketAcl", user, "PUT", "/b?acl", "", map[string]string{"X-Amz-Acl": "public-read"}, 403, "AccessDenied"},
		{"user PutBucketLifecycle", user, "PUT", "/b?lifecycle", "<LifecycleConfiguration/>", nil, 403, "AccessDenied"},
		{"user PutBucketVersioning", user, "PUT", "/b?versioning", "<VersioningConfiguration/>", nil, 403, "AccessDenied"},
		{"user PutBucketReplication", user, "PUT", "/b?replication", "<ReplicationConfiguration/>", nil, 403, "AccessDenied"},
		{"user PutObjectAcl", user, "PUT", "/b/k?acl", "", map[string]string{"X-Amz-Acl": "public-read"}, 403, "AccessDenied"},
		{"user CreateBucket public-read", user, "PUT", "/nb", "", map[string]string{"X-Amz-Acl": "public-read"}, 403, "AccessDenied"},
		{"user CreateBucket grant", user, "PUT", "/nb", "", map[string]string{"X-Amz-Grant-Read": "id=x"}, 403, "AccessDenied"},
		{"user CreateBucket object lock", user, "PUT", "/nb", "", map[string]string{"X-Amz-Bucket-Object-Lock-Enabled": "true"}, 403, "AccessDenied"},
		{"user DeleteObject bypassing governance", user, "DELETE", "/b/k?versionId=v1", "", map[string]string{"X-Amz-Bypass-Governance-Retention": "true"}, 403, "AccessDenied"},
		{"user DeleteObjects bypassing governance", user, "POST", "/b?delete", "<Delete><Object><Key>k</Key></Object></Delete>", map[string]string{"X-Amz-Bypass-Governance-Retention": "true"}, 403, "AccessDenied"},
		{"user PutObjectRetention bypassing governance", user, "PUT", "/b/k?retention", "<Retention/>", map[string]string{"X-Amz-Bypass-Governance-Retention": "true"}, 403, "AccessDenied"},
		{"read-only admin PutBucketPolicy", roAdmin, "PUT", "/b?policy", policy, nil, 403, "AccessDenied"},
		{"user RestoreObject SELECT", user, "POST", "/b/k?restore", restoreSelect, nil, 501, "NotImplemented"},
		{"admin RestoreObject SELECT", admin, "POST", "/b/k?restore", restoreSelect, nil, 501, "NotImplemented"},
		{"user RestoreObject bad XML", user, "POST", "/b/k?restore", "<RestoreRequest", nil, 400, "MalformedXML"},

		{"user GetBucketVersioning", user, "GET", "/b?versioning", "", nil, 200, ""},
		{"user GetBucketAcl", user, "GET", "/b?acl", "", nil, 200, ""},
		{"user GetBucketLocation", user, "GET", "/b?location", "", nil, 200, ""},
		{"user PutBucketTagging", user, "PUT", "/b?tagging", "<Tagging/>", nil, 200, ""},
		{"user CreateBucket private", user, "PUT", "/nb", "", map[string]string{"X-Amz-Acl": "private"}, 200, ""},
		{"user RestoreObject", user, "POST", "/b/k?restore", restorePlain, nil, 200, ""},
		{"admin PutBucketPolicy", admin, "PUT", "/b?policy", policy, nil, 200, ""},
		{"admin PutBucketAcl", admin, "PUT", "/b?acl", "", map[string]string{"X-Amz-Acl": "public-read"}, 200, ""},
		{"admin PutBucketVersioning", admin, "PUT", "/b?versioning", "<VersioningConfiguration/>", nil, 200, ""},
		{"admin PutObjectAcl", admin, "PUT", "/b/k?acl", "", map[string]string{"X-Amz-Acl": "public-read"}, 200, ""},
		{"user PutObjectRetention", user, "PUT", "/b/k?retention", "<Retention/>", nil, 200, ""},
		{"admin PutObjectRetention bypassing governance", admin, "PUT", "/b/k?retention", "<Retention/>", map[string]string{"X-Amz-Bypass-Governance-Retention": "true"}, 200, ""},
		{"admin CreateBucket object lock", admin, "PUT", "/nb", "", map[string]string{"X-Amz-Bucket-Object-Lock-Enabled": "true"}, 200, ""},
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
		{"GET", "/b/k?partNumber=-3", nil, "InvalidArgument"},
		{"HEAD", "/b/k?partNumber=-3", nil, ""},
		{"HEAD", "/b/k?partNumber=0", nil, ""},
		{"GET", "/b/k?partNumber=10001", nil, "InvalidArgument"},
		{"GET", "/b/k?partNumber=x", nil, "InvalidArgument"},
		{"GET", "/b/k?partNumber=1", map[string]string{"Range": "bytes=0-1"}, "InvalidRequest"},
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
