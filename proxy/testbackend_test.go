package proxy_test

// The shared fixture of the in-process tests (inprocess_test.go, faults_test.go): a gateway built
// with proxy.New and served by an httptest.Server, in front of a real S3 implementation (the
// embedded store: gofakes3 with the fixes the gateway relies on, among them GET/HEAD
// ?partNumber, which plain gofakes3 with s3mem ignores), reached through a fault-injecting
// http.RoundTripper; the key provider is a keys.LocalFile behind cache.New, as the gateway wires
// it. Only the public surface of package proxy is used.

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/s3seal/s3seal/cache"
	"github.com/s3seal/s3seal/embedded"
	"github.com/s3seal/s3seal/keys"
	"github.com/s3seal/s3seal/proxy"
)

const (
	ipAK     = "AKIDINPROCESS"
	ipSK     = "inprocess-secret-key-0123456789"
	ipBucket = "bkt"
	segment  = 64 << 10 // the format's plaintext segment size
)

// faultKind is what a fault does to the backend round trips it applies to.
type faultKind int

const (
	noFault    faultKind = iota
	failBefore           // RoundTrip returns err; nothing reaches the backend
	badStatus            // the backend's answer is replaced by status, with an empty body
	slowDown             // nothing reaches the backend; the answer is 503 SlowDown (S3's XML)
	resetAt              // the response body fails with ECONNRESET after at bytes
	truncateAt           // the response body ends (clean EOF) after at bytes
	slowBody             // each of the first 6 reads of the response body waits delay
	flipAt               // the stored byte at offset at is flipped in a GET body that covers it
)

// fault is one injected backend misbehaviour. on selects the round trips it applies to (nil:
// all).
type fault struct {
	kind   faultKind
	on     func(*http.Request) bool
	at     int64
	err    error
	status int
	delay  time.Duration
	// observe, if set, sees every backend answer (before the fault changes it).
	observe func(*http.Request, *http.Response)
}

// faultTransport wraps the backend transport: it applies the current fault and keeps every
// request body byte sent to the backend, so that tests can check that no plaintext left.
type faultTransport struct {
	next http.RoundTripper

	mu    sync.Mutex
	fault fault
	hits  int // round trips the fault changed
	sent  bytes.Buffer
}

func (f *faultTransport) set(fl fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault, f.hits = fl, 0
}

func (f *faultTransport) hitCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits
}

func (f *faultTransport) hit() {
	f.mu.Lock()
	f.hits++
	f.mu.Unlock()
}

// sentContains reports whether marker is among the request body bytes sent to the backend.
func (f *faultTransport) sentContains(marker []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Contains(f.sent.Bytes(), marker)
}

func (f *faultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	fl := f.fault
	f.mu.Unlock()
	if fl.on != nil && !fl.on(r) {
		fl.kind = noFault
	}
	if fl.kind == failBefore {
		f.hit()
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, fl.err
	}
	if fl.kind == slowDown {
		f.hit()
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		doc := "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Slow Down", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/xml"}}, ContentLength: int64(len(doc)),
			Body: io.NopCloser(strings.NewReader(doc)), Request: r}, nil
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = teeBody{r.Body, f}
	}
	resp, err := f.next.RoundTrip(r)
	if err == nil && fl.observe != nil {
		fl.observe(r, resp)
	}
	if err != nil || fl.kind == noFault {
		return resp, err
	}
	switch fl.kind {
	case badStatus:
		f.hit()
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		resp.StatusCode, resp.Status = fl.status, fmt.Sprintf("%d Injected", fl.status)
		resp.Header = http.Header{"Content-Length": {"0"}}
		resp.ContentLength = 0
		resp.Body = io.NopCloser(bytes.NewReader(nil))
	case resetAt, truncateAt, slowBody:
		resp.Body = &faultyBody{rc: resp.Body, fl: fl, f: f}
	case flipAt:
		start := int64(0)
		if m := contentRangeRE.FindStringSubmatch(resp.Header.Get("Content-Range")); m != nil {
			start, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if r.Method == http.MethodGet && resp.StatusCode/100 == 2 && fl.at >= start &&
			(resp.ContentLength < 0 || fl.at < start+resp.ContentLength) {
			fl.at -= start
			resp.Body = &faultyBody{rc: resp.Body, fl: fl, f: f}
		}
	}
	return resp, nil
}

var contentRangeRE = regexp.MustCompile(`^bytes (\d+)-\d+/`)

// teeBody copies the request body bytes the transport reads into faultTransport.sent.
type teeBody struct {
	io.ReadCloser
	f *faultTransport
}

func (t teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	t.f.mu.Lock()
	t.f.sent.Write(p[:n])
	t.f.mu.Unlock()
	return n, err
}

// faultyBody is a response body that misbehaves as fl says.
type faultyBody struct {
	rc    io.ReadCloser
	fl    fault
	f     *faultTransport
	off   int64
	reads int
	fired bool
}

func (b *faultyBody) Read(p []byte) (int, error) {
	switch b.fl.kind {
	case resetAt, truncateAt:
		if left := b.fl.at - b.off; left <= 0 {
			if !b.fired {
				b.fired = true
				b.f.hit()
			}
			if b.fl.kind == truncateAt {
				return 0, io.EOF
			}
			return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
		} else if int64(len(p)) > left {
			p = p[:left]
		}
	case slowBody:
		if b.reads < 6 {
			if b.reads == 0 {
				b.f.hit()
			}
			time.Sleep(b.fl.delay)
		}
	}
	b.reads++
	n, err := b.rc.Read(p)
	if b.fl.kind == flipAt && b.fl.at >= b.off && b.fl.at < b.off+int64(n) {
		p[b.fl.at-b.off] ^= 0x01
		b.f.hit()
	}
	b.off += int64(n)
	return n, err
}

func (b *faultyBody) Close() error { return b.rc.Close() }

// fixture is a gateway in front of the embedded store, with bucket ipBucket created.
type fixture struct {
	t      *testing.T
	srv    *httptest.Server
	faults *faultTransport
	client *http.Client
	store  *embedded.Store // the backend, for tests that play it (backendDo)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, lf := newTestStore(t)
	ft := &faultTransport{next: store.Transport()}
	f := serveFixture(t, fixtureConfig(store, lf, ft), ft, store)
	f.createBucket()
	return f
}

// newTestStore starts an embedded store and creates a local key file in a fresh directory,
// all removed at the end of the test.
func newTestStore(t *testing.T) (*embedded.Store, *keys.LocalFile) {
	t.Helper()
	// The store listens on a unix socket under its dir: keep the path short.
	dir, err := os.MkdirTemp("", "s3seal-ip")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	store, err := embedded.Start(embedded.Options{Dir: filepath.Join(dir, "s")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	lf, err := keys.CreateLocalFile(filepath.Join(dir, "keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	return store, lf
}

// fixtureConfig is the fixtures' gateway configuration: the test credential, the store
// reached through tr with unsigned payloads, the key file's default key.
func fixtureConfig(store *embedded.Store, lf *keys.LocalFile, tr http.RoundTripper) proxy.Config {
	return proxy.Config{
		Credentials: []proxy.Credential{{AccessKeyID: ipAK, SecretAccessKey: ipSK}},
		Backend: proxy.Backend{Endpoint: store.Endpoint(), Region: "us-east-1", PathStyle: true, Transport: tr,
			Credentials: credentials.NewStaticCredentialsProvider("backend", "backend-secret", ""),
			Payload:     proxy.PayloadUnsigned},
		Keys:  cache.New(lf, cache.Config{}),
		KeyID: lf.DefaultKeyID(),
	}
}

// serveFixture serves a gateway of configuration c (whose transport is ft) for the test.
func serveFixture(t *testing.T, c proxy.Config, ft *faultTransport, store *embedded.Store) *fixture {
	t.Helper()
	gw, err := proxy.New(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	f := &fixture{t: t, srv: srv, faults: ft, client: &http.Client{Transport: &http.Transport{}}, store: store}
	t.Cleanup(f.client.CloseIdleConnections)
	return f
}

// createBucket creates the fixtures' bucket, ipBucket.
func (f *fixture) createBucket() {
	f.t.Helper()
	if r := f.do(http.MethodPut, "/"+ipBucket, nil, nil); r.status != http.StatusOK {
		f.t.Fatalf("CreateBucket: %d %s", r.status, r.body)
	}
}

// result is what the client got. An aborted transfer shows as readErr (doErr: no response).
type result struct {
	status  int
	header  http.Header
	body    []byte
	readErr error
	doErr   error
	code    string // the S3 error code of an error answer
}

var codeRE = regexp.MustCompile(`<Code>([^<]*)</Code>`)

// do sends a request signed with the client credential to the gateway.
func (f *fixture) do(method, path string, body []byte, hdr map[string]string) result {
	f.t.Helper()
	return f.doAs(proxy.Credential{AccessKeyID: ipAK, SecretAccessKey: ipSK}, method, path, body, hdr)
}

// doAs sends a request signed with credential cred to the gateway.
func (f *fixture) doAs(cred proxy.Credential, method, path string, body []byte, hdr map[string]string) result {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if len(body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	// S3 clients sign the path as sent (escaped once), not escaped again as other services.
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey},
		req, hash, "s3", "us-east-1", time.Now().UTC()); err != nil {
		f.t.Fatal(err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return result{status: -1, doErr: err}
	}
	defer resp.Body.Close()
	res := result{status: resp.StatusCode, header: resp.Header}
	res.body, res.readErr = io.ReadAll(resp.Body)
	if m := codeRE.FindSubmatch(res.body); m != nil && resp.StatusCode >= 300 {
		res.code = string(m[1])
	}
	return res
}

// backendDo sends an unsigned request straight to the backend (the embedded store does not
// check signatures on its socket), as an attacker holding the backend would.
func (f *fixture) backendDo(method, path string, body []byte) result {
	f.t.Helper()
	req, err := http.NewRequest(method, f.store.Endpoint()+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := f.store.Transport().RoundTrip(req)
	if err != nil {
		return result{status: -1, doErr: err}
	}
	defer resp.Body.Close()
	res := result{status: resp.StatusCode, header: resp.Header}
	res.body, res.readErr = io.ReadAll(resp.Body)
	return res
}

// put stores body at key through the gateway.
func (f *fixture) put(key string, body []byte) {
	f.t.Helper()
	if r := f.do(http.MethodPut, "/"+ipBucket+"/"+key, body, nil); r.status != http.StatusOK {
		f.t.Fatalf("PUT %s: %d %s %v", key, r.status, r.body, r.doErr)
	}
}

// plaintext returns n random bytes with marker at the start and every 4 KiB (n >= len(marker)),
// so that any stretch of plaintext sent to the backend contains it.
func plaintext(n int, marker string) []byte {
	b := make([]byte, n)
	rand.Read(b)
	for i := 0; i+len(marker) <= n; i += 4 << 10 {
		copy(b[i:], marker)
	}
	return b
}

// md5ETag is S3's ETag of a single-part object.
func md5ETag(b []byte) string {
	s := md5.Sum(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

// multipartETag is S3's ETag of a multipart object of these parts.
func multipartETag(parts ...[]byte) string {
	var all []byte
	for _, p := range parts {
		s := md5.Sum(p)
		all = append(all, s[:]...)
	}
	s := md5.Sum(all)
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(s[:]), len(parts))
}

// isObjectGet matches the backend GETs of object bodies (not listings or bucket calls).
func isObjectGet(r *http.Request) bool {
	return r.Method == http.MethodGet && len(r.URL.Path) > len("/"+ipBucket+"/")
}

func methodIs(m string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.Method == m }
}

var errInjected = errors.New("injected transport failure")
