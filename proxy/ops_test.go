package proxy

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/s3seal/s3seal/cache"
	"github.com/s3seal/s3seal/keys"
)

// hostileExtras are parameters a hostile client adds to any request: the admin APIs' own
// parameters (MinIO's accessKey, RGW's bucket and purge-objects), another operation's
// parameters, a second sub-resource, parameters S3 clients add (x-id: dropped) and nonsense.
var hostileExtras = []string{
	"accessKey=victim", "purge-objects=true", "bucket=other", "foo=1", "uploadId=u1", "partNumber=2",
	"versionId=v1", "policy", "x-id=PutObject", "list-type=2", "max-keys=1", "response-content-type=x",
	"X-Amz-Expires=1", "delete", "uploads", "prefix=a",
}

// recordedRequest is one request the recording backend saw.
type recordedRequest struct {
	method, path string
	query        url.Values
	copySource   string
	body         string
	contentMD5   string
}

// strictBackend answers every request 200 (an empty body) and records it with its body.
type strictBackend struct {
	mu   sync.Mutex
	seen []recordedRequest
}

func (b *strictBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.seen = append(b.seen, recordedRequest{r.Method, r.URL.EscapedPath(), r.URL.Query(), r.Header.Get("X-Amz-Copy-Source"), string(body), r.Header.Get("Content-Md5")})
	b.mu.Unlock()
}

func (b *strictBackend) take() []recordedRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.seen
	b.seen = nil
	return s
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	l.buf.Reset()
	return s
}

// newStrictGateway is a gateway in front of a strictBackend, logging to a buffer.
func newStrictGateway(t testing.TB, creds ...Credential) (*Gateway, *strictBackend, *logBuffer) {
	rb := &strictBackend{}
	srv := httptest.NewServer(rb)
	t.Cleanup(srv.Close)
	logs := &logBuffer{}
	cfg := testConfig(srv.URL, creds)
	lf, err := keys.CreateLocalFile(filepath.Join(t.TempDir(), "keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	cfg.Keys, cfg.KeyID = cache.New(lf, cache.Config{}), lf.DefaultKeyID()
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g, rb, logs
}

// checkRecorded is the property: a backend request's path is /<valid, unreserved bucket> or
// /<bucket>/<key> (or / for ListBuckets), its query keys are a subset of the parameters of the
// S3 operation it is, and a copy source names a valid bucket.
func checkRecorded(t testing.TB, what string, g *Gateway, req recordedRequest) {
	t.Helper()
	p, err := url.PathUnescape(req.path)
	if err != nil || !strings.HasPrefix(p, "/") {
		t.Errorf("%s: backend path %q", what, req.path)
		return
	}
	bucket, key, _ := strings.Cut(p[1:], "/")
	if bucket != "" && g.backend.names.check(bucket) != nil {
		t.Errorf("%s: backend request to bucket %q (%s %s)", what, bucket, req.method, req.path)
	}
	if len(key) > maxKeyBytes {
		t.Errorf("%s: backend key of %d bytes", what, len(key))
	}
	op, ok := backendOperation(req.method, target{bucket, key, req.query})
	if !ok {
		t.Errorf("%s: backend request %s %s?%s is no S3 operation", what, req.method, req.path, req.query.Encode())
		return
	}
	allowed := op.params()
	for k := range req.query {
		if !allowed[k] {
			t.Errorf("%s: backend %s (%s %s) got parameter %q, not one of its own", what, op.name, req.method, req.path, k)
		}
	}
	if req.copySource != "" {
		b, _, _, e := copySource(req.copySource)
		if e != nil || g.backend.names.check(b) != nil {
			t.Errorf("%s: backend copy source %q", what, req.copySource)
		}
	}
}

// knownRoutes are a request of every route the gateway knows: the forwarded sub-resources of
// buckets and objects and the operations with handlers of their own, each with the
// parameters S3 defines for it.
func knownRoutes() []struct{ method, target string } {
	var out []struct{ method, target string }
	add := func(method, target string) { out = append(out, struct{ method, target string }{method, target}) }
	for sub, methods := range bucketSubresources {
		for m := range methods {
			add(m, "/bkt?"+sub+"&id=i1")
		}
	}
	for sub, methods := range objectSubresources {
		for m := range methods {
			add(m, "/bkt/k?"+sub+"&versionId=v1")
		}
	}
	for k := range plainOps {
		target := "/bkt"
		if k.object {
			target = "/bkt/k"
		}
		if k.sub != "" {
			target += "?" + k.sub
		}
		add(k.method, target)
	}
	add("GET", "/")
	add("GET", "/bkt?list-type=2&prefix=a&max-keys=3")
	add("GET", "/bkt/k?versionId=v1&partNumber=1&response-content-type=text/plain")
	add("PUT", "/bkt/k?uploadId=AAAA&partNumber=1")
	sort.Slice(out, func(i, j int) bool { return out[i].method+out[i].target < out[j].method+out[j].target })
	return out
}

// TestHostileClientTable: for every route the gateway knows, a request with each hostile
// extra parameter, and the route's body replaced by odd XML (another root, trailing content),
// reaches the backend, if at all, only as a request within the allowlists (checkRecorded), and
// the gateway never had to refuse to sign one it built (checkBackendRequest).
func TestHostileClientTable(t *testing.T) {
	user := Credential{AccessKeyID: "USER", SecretAccessKey: "usersecret", Admin: true}
	g, rb, logs := newStrictGateway(t, user)
	bodies := []string{"", "<Remove><Object><Key>k</Key></Object></Remove>",
		"<Delete><Object><Key>k</Key></Object></Delete><Delete><Object><Key>\U0010FFFFs3seal/x</Key></Object></Delete>",
		"<Tagging><TagSet/></Tagging>trailing"}
	n := 0
	for _, route := range knownRoutes() {
		for _, extra := range append([]string{""}, hostileExtras...) {
			target := route.target
			if extra != "" {
				target += map[bool]string{true: "&", false: "?"}[strings.Contains(target, "?")] + extra
			}
			for _, body := range bodies {
				if body != "" && (route.method == "GET" || route.method == "HEAD") {
					continue
				}
				rec := httptest.NewRecorder()
				g.ServeHTTP(rec, signedRequest(t, user, route.method, target, body, nil))
				n++
				for _, req := range rb.take() {
					checkRecorded(t, route.method+" "+target, g, req)
				}
				if l := logs.take(); strings.Contains(l, "refusing to sign") {
					t.Errorf("%s %s: the gateway built a backend request outside the allowlists:\n%s", route.method, target, l)
				}
			}
		}
	}
	t.Logf("%d hostile requests", n)
}

// TestBackendQueryFromAllowlist pins what reaches the backend of requests that reached it
// unchanged before: the admin APIs' parameters are gone, S3's own stay.
func TestBackendQueryFromAllowlist(t *testing.T) {
	user := Credential{AccessKeyID: "USER", SecretAccessKey: "usersecret"}
	g, rb, _ := newStrictGateway(t, user)
	for _, c := range []struct {
		method, target string
		status         int
		want           string // the backend's query ("-": no backend request)
	}{
		{"DELETE", "/bkt/k?versionId=v1&accessKey=victim", 501, "-"},
		{"DELETE", "/bkt/k?versionId=v1&x-id=DeleteObject", 200, "versionId=v1"},
		{"GET", "/bkt/k?tagging&accessKey=victim", 501, "-"},
		{"GET", "/bkt/k?tagging&versionId=v1", 200, "tagging=&versionId=v1"},
		{"GET", "/bkt?acl&versionId=v1", 501, "-"},
		{"GET", "/bkt?uploads&accessKey=victim", 501, "-"},
		{"GET", "/bkt?uploads&prefix=a&x-id=ListMultipartUploads", 200, "prefix=a&uploads="},
		{"GET", "/?accessKey=victim", 501, "-"},
		{"GET", "/?max-buckets=5", 200, "max-buckets=5"},
		{"DELETE", "/bkt?purge-objects=true", 501, "-"},
		{"PUT", "/bkt?bucket=x", 501, "-"},
	} {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, signedRequest(t, user, c.method, c.target, "", nil))
		seen := rb.take()
		got := "-"
		if len(seen) > 0 {
			got = seen[0].query.Encode()
		}
		if rec.Code != c.status || got != c.want {
			t.Errorf("%s %s: %d, backend query %q; want %d, %q (%s)", c.method, c.target, rec.Code, got, c.status, c.want, rec.Body.String())
		}
	}
}

// TestOperationTablesCoverRouter: every operation the router names has its parameters in
// opParams or is a forwarded sub-resource, and opParams names no operation the router
// does not know.
func TestOperationTablesCoverRouter(t *testing.T) {
	known := map[string]bool{}
	for _, op := range routerOperations(t) {
		known[op] = true
	}
	sub := map[string]bool{}
	for _, table := range []map[string]map[string]subOp{bucketSubresources, objectSubresources} {
		for _, methods := range table {
			for _, op := range methods {
				sub[op.op] = true
			}
		}
	}
	refused := map[string]bool{"WriteGetObjectResponse": true, "PostObject": true, "SelectObjectContent": true, "GetObjectTorrent": true}
	for op := range known {
		if _, ok := opParams[op]; !ok && !sub[op] && !refused[op] {
			t.Errorf("operation %s has no row in opParams", op)
		}
	}
	for op := range opParams {
		if !known[op] {
			t.Errorf("opParams has a row for %s, which the router does not produce", op)
		}
	}
}

// FuzzBackendRequests holds the property of checkRecorded for any client request: any method,
// path, query and copy source, signed by a valid credential.
func FuzzBackendRequests(f *testing.F) {
	for _, s := range [][4]string{
		{"DELETE", "/minio/admin/v3/remove-user", "accessKey=victim", ""},
		{"GET", "/minio/admin/v3/info", "tagging", ""},
		{"DELETE", "/admin/bucket", "bucket=x&purge-objects=true", ""},
		{"DELETE", "/bkt/k", "versionId=v1&accessKey=victim", ""},
		{"GET", "/bkt/../minio/admin/v3/info", "", ""},
		{"PUT", "/bkt/k", "", "minio/admin/v3/info"},
		{"PUT", "/bkt/k", "partNumber=1&uploadId=x", "/bkt/src?versionId=1"},
		{"GET", "/bkt", "list-type=2&allow-unordered=true", ""},
		{"POST", "/bkt", "delete", ""},
		{"GET", "/", "Action=AssumeRole", ""},
		{"HEAD", "/bkt/k", "partNumber=1&x-id=HeadObject", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	user := Credential{AccessKeyID: "USER", SecretAccessKey: "usersecret", Admin: true}
	g, rb, logs := newStrictGateway(f, user)
	f.Fuzz(func(t *testing.T, method, path, rawQuery, copySrc string) {
		switch method {
		case "GET", "HEAD", "PUT", "DELETE", "POST":
		default:
			return
		}
		u, err := url.Parse("http://gw.test" + path)
		if err != nil || u.Host != "gw.test" || !strings.HasPrefix(path, "/") {
			return
		}
		if strings.IndexFunc(rawQuery, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }) >= 0 {
			return // not a query a client can send
		}
		u.RawQuery = rawQuery
		if _, err := url.ParseQuery(rawQuery); err != nil {
			return
		}
		hdr := map[string]string{}
		if copySrc != "" {
			if strings.ContainsAny(copySrc, "\r\n\x00") {
				return
			}
			hdr["X-Amz-Copy-Source"] = copySrc
		}
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, signedRequest(t, user, method, u.String(), "", hdr))
		for _, req := range rb.take() {
			checkRecorded(t, method+" "+u.String(), g, req)
		}
		if l := logs.take(); strings.Contains(l, "refusing to sign") {
			t.Errorf("%s %s: the gateway built a backend request outside the allowlists:\n%s", method, u, l)
		}
	})
}

// TestForwardedBodies: a forwarded operation's body reaches the backend only as the gateway
// serialised it (forwardBody → forwardedBody); a document with another root or trailing
// content reaches it not at all.
func TestForwardedBodies(t *testing.T) {
	user := Credential{AccessKeyID: "USER", SecretAccessKey: "usersecret"}
	g, rb, _ := newStrictGateway(t, user)
	const tags = `<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>`
	for _, c := range []struct {
		target, body string
		status       int
	}{
		{"/bkt/k?tagging", "<Remove><TagSet/></Remove>", 400},
		{"/bkt/k?tagging", tags + "<Tagging/>", 400},
		{"/bkt/k?tagging", tags + "trailing", 400},
		{"/bkt/k?tagging", "<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value><Extra/></Tag></TagSet></Tagging>", 400},
		{"/bkt/k?retention", "<Retention><Mode>GOVERNANCE</Mode><Other/></Retention>", 400},
		{"/bkt/k?legal-hold", "<LegalHold><Status>ON</Status></LegalHold><x/>", 400},
		{"/bkt/k?tagging", "  " + tags + "\n", 200},
	} {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, signedRequest(t, user, "PUT", c.target, c.body, nil))
		seen := rb.take()
		if rec.Code != c.status {
			t.Errorf("PUT %s %q: %d %s, want %d", c.target, c.body, rec.Code, rec.Body.String(), c.status)
		}
		switch {
		case c.status != 200 && len(seen) != 0:
			t.Errorf("PUT %s %q reached the backend: %+v", c.target, c.body, seen)
		case c.status == 200 && (len(seen) != 1 || !strings.Contains(seen[0].body, "<Key>a</Key><Value>b</Value>") || strings.HasPrefix(seen[0].body, " ")):
			t.Errorf("PUT %s %q: the backend got %+v, want the gateway's serialisation", c.target, c.body, seen)
		}
	}
}
