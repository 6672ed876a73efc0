package integration

// Shared helpers of the encryption-core acceptance tests (core_*_test.go, issue 4): gateways
// that share one KMS key, counting reverse proxies placed in front of MinIO and of the KMS
// emulator, signed raw requests, and a reader of the envelope's field layout written from
// docs/FORMAT.md section 4 (independent of package format, so tests can alter single fields).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// coreS is the segment size of the format (FORMAT.md section 1), written out here rather than
// taken from package format so that a wrong constant there cannot hide in the expectations.
const coreS = 65536

// coreMetaEnv is the user-metadata name of the envelope (without x-amz-meta-).
const coreMetaEnv = "s3seal-env"

// coreStoredSize is EncryptedSize of FORMAT.md 3.3: p + 16·max(1, ceil(p/S)) + 32.
func coreStoredSize(p int64) int64 {
	n := max(1, (p+coreS-1)/coreS)
	return p + 16*n + 32
}

// coreGatewayEnv is the environment of a gateway in front of backend (MinIO, or a proxy in
// front of it, which needs the same credentials) using KMS key keyID at kmsEndpoint; extra is
// merged on top. It mirrors testenv.StartGatewayMinIO but lets several gateways share a key.
func coreGatewayEnv(m *testenv.MinIO, backend, kmsEndpoint, keyID string, extra map[string]string) map[string]string {
	env := map[string]string{
		"GATEWAY_BACKEND_ENDPOINT":          backend,
		"GATEWAY_BACKEND_REGION":            m.Region,
		"GATEWAY_BACKEND_ACCESS_KEY_ID":     m.Data.AccessKey,
		"GATEWAY_BACKEND_SECRET_ACCESS_KEY": m.Data.SecretKey,
		"GATEWAY_BACKEND_PATH_STYLE":        "true",
		"GATEWAY_KMS_ENDPOINT":              kmsEndpoint,
		"GATEWAY_KMS_REGION":                "us-east-1",
		"GATEWAY_KMS_ACCESS_KEY_ID":         "test",
		"GATEWAY_KMS_SECRET_ACCESS_KEY":     "test",
		"GATEWAY_KMS_KEY_ID":                keyID,
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// coreProxyReq is one request that went through a coreProxy.
type coreProxyReq struct {
	Method, Path, Range, Target string
	Status                      int
	body                        atomic.Int64  // response body bytes read from the upstream
	done                        chan struct{} // closed when the upstream body was closed
}

// Body returns the response body bytes read from the upstream so far.
func (r *coreProxyReq) Body() int64 { return r.body.Load() }

// coreCountingBody counts what the proxy reads of an upstream response body.
type coreCountingBody struct {
	io.ReadCloser
	rec  *coreProxyReq
	once sync.Once
}

func (b *coreCountingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.rec.body.Add(int64(n))
	return n, err
}

func (b *coreCountingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { close(b.rec.done) })
	return err
}

// coreProxy is an httputil.ReverseProxy in front of an upstream (MinIO or the KMS emulator)
// that records every request: method, path, Range, X-Amz-Target, status and the response
// body bytes it read from the upstream. The Host header is passed on unchanged, so SigV4
// signatures made for the proxy's address stay valid upstream.
type coreProxy struct {
	URL string

	mu      sync.Mutex
	reqs    []*coreProxyReq
	drained map[string]int // per path: how many of its records drain returned already
	cuts    map[string]int64
}

// cutAfter makes the proxy abort the connection after n response body bytes of every later
// GET of path (an I/O failure between gateway and backend, not a change of stored data).
func (p *coreProxy) cutAfter(path string, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cuts[path] = n
}

// coreCutWriter passes on at most left body bytes, then fails every write, which makes
// httputil.ReverseProxy abort the client connection.
type coreCutWriter struct {
	http.ResponseWriter
	left int64
}

func (w *coreCutWriter) Write(b []byte) (int, error) {
	if int64(len(b)) <= w.left {
		n, err := w.ResponseWriter.Write(b)
		w.left -= int64(n)
		return n, err
	}
	n, _ := w.ResponseWriter.Write(b[:w.left])
	w.left = 0
	return n, errors.New("proxy: connection cut on purpose")
}

func (w *coreCutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func newCoreProxy(t testing.TB, upstream string) *coreProxy {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	p := &coreProxy{drained: map[string]int{}, cuts: map[string]int64{}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	tr.MaxIdleConnsPerHost = 64
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		Transport:     tr,
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			rec := &coreProxyReq{
				Method: resp.Request.Method, Path: resp.Request.URL.Path,
				Range: resp.Request.Header.Get("Range"), Target: resp.Request.Header.Get("X-Amz-Target"),
				Status: resp.StatusCode, done: make(chan struct{}),
			}
			resp.Body = &coreCountingBody{ReadCloser: resp.Body, rec: rec}
			p.mu.Lock()
			p.reqs = append(p.reqs, rec)
			p.mu.Unlock()
			return nil
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		n, cut := p.cuts[r.URL.Path]
		p.mu.Unlock()
		if cut && r.Method == http.MethodGet {
			w = &coreCutWriter{ResponseWriter: w, left: n}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// all returns every record so far.
func (p *coreProxy) all() []*coreProxyReq {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*coreProxyReq(nil), p.reqs...)
}

// countTarget counts requests whose X-Amz-Target ends with op (e.g. "GenerateDataKey").
func (p *coreProxy) countTarget(op string) int {
	n := 0
	for _, r := range p.all() {
		if strings.HasSuffix(r.Target, "."+op) {
			n++
		}
	}
	return n
}

// drain returns the records for path not returned before, after waiting (up to 10 s) until the
// proxy has finished reading each of their upstream bodies. Callers issue one client request
// at a time per path, so the records belong to the request just completed. Safe to call from
// goroutines other than the test's (it reports with Errorf).
func (p *coreProxy) drain(t testing.TB, path string) []*coreProxyReq {
	t.Helper()
	p.mu.Lock()
	var mine []*coreProxyReq
	for _, r := range p.reqs {
		if r.Path == path {
			mine = append(mine, r)
		}
	}
	mine = mine[p.drained[path]:]
	p.drained[path] += len(mine)
	p.mu.Unlock()
	deadline := time.After(10 * time.Second)
	for _, r := range mine {
		select {
		case <-r.done:
		case <-deadline:
			t.Errorf("proxy: %s %s (Range %q) body still open after 10s", r.Method, r.Path, r.Range)
			return mine
		}
	}
	return mine
}

// coreRequest builds a request to a gateway (or MinIO) signed with SigV4 for an empty payload,
// with the given extra headers signed too.
func coreRequest(t testing.TB, method, url string, hdr http.Header, accessKey, secret string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("X-Amz-Content-Sha256", emptyHash)
	err = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secret}, req, emptyHash, "s3", "us-east-1", time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// coreResult is what a client received for one request.
type coreResult struct {
	Status  int
	Header  http.Header
	Body    []byte
	ReadErr error  // reading the body failed (e.g. the connection was aborted)
	Code    string // <Code> of an S3 error body
}

// complete reports whether the client received a whole 2xx response: status 2xx, the body
// read to its end without error and as long as Content-Length said. A client would accept it.
func (r coreResult) complete() bool {
	return r.Status/100 == 2 && r.ReadErr == nil
}

// failedAsSpecified reports whether the response is one of the two failures FORMAT.md and
// issue 4 allow: an S3 error (non-2xx status with an XML <Code>, for HEAD a non-2xx status)
// before the first byte, or a 2xx response whose body could not be read to its end.
func (r coreResult) failedAsSpecified(method string) bool {
	if r.Status/100 == 2 {
		return r.ReadErr != nil
	}
	return method == http.MethodHead || r.Code != ""
}

func (r coreResult) String() string {
	s := fmt.Sprintf("status %d", r.Status)
	if r.Code != "" {
		s += " " + r.Code
	}
	s += fmt.Sprintf(", %d body bytes", len(r.Body))
	if r.ReadErr != nil {
		s += fmt.Sprintf(", read error %v", r.ReadErr)
	}
	return s
}

// coreHTTPClient returns the HTTP client of the core tests: a pool of keep-alive connections
// large enough for parallel requests, no transparent compression, bounded time.
func coreHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.DisableCompression = true
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// coreDo sends req and reads the whole response. A transport error before any response (the
// gateway closed the connection without answering) is returned as status 0 with ReadErr set.
func coreDo(c *http.Client, req *http.Request) coreResult {
	resp, err := c.Do(req)
	if err != nil {
		return coreResult{ReadErr: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r := coreResult{Status: resp.StatusCode, Header: resp.Header, Body: body, ReadErr: err}
	if err == nil && resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength && req.Method != http.MethodHead {
		r.ReadErr = fmt.Errorf("body of %d bytes, Content-Length %d", len(body), resp.ContentLength)
	}
	if resp.StatusCode/100 != 2 {
		r.Code = s3ErrorCode(body)
	}
	return r
}

// coreEnvField is one field of an encoded envelope: its name and byte span.
type coreEnvField struct {
	Name     string
	Off, Len int
}

// coreEnvFields splits a decoded envelope into its fields (FORMAT.md section 4).
func coreEnvFields(b []byte) ([]coreEnvField, error) {
	if len(b) < 6 {
		return nil, errors.New("envelope too short")
	}
	f := []coreEnvField{{"version", 0, 1}, {"kind", 1, 1}, {"wrap", 2, 1}, {"seg_shift", 3, 1}, {"key_id_len", 4, 2}}
	k := int(binary.BigEndian.Uint16(b[4:]))
	f = append(f, coreEnvField{"key_id", 6, k})
	pos := 6 + k
	if len(b) < pos+2 {
		return nil, errors.New("envelope truncated in the wrapped-key length")
	}
	w := int(binary.BigEndian.Uint16(b[pos:]))
	f = append(f, coreEnvField{"wrapped_len", pos, 2}, coreEnvField{"wrapped_dk", pos + 2, w})
	pos += 2 + w
	f = append(f, coreEnvField{"es", pos, 32}, coreEnvField{"kc", pos + 32, 32},
		coreEnvField{"sealed_ok", pos + 64, 48})
	if len(b) != pos+112 {
		return nil, fmt.Errorf("envelope is %d bytes, the fields need %d", len(b), pos+112)
	}
	return f, nil
}

// coreEnvParts returns the key id and wrapped data key of a base64 envelope.
func coreEnvParts(t testing.TB, env string) (keyID string, wrapped []byte) {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(env)
	if err != nil {
		t.Fatalf("envelope base64: %v", err)
	}
	fs, err := coreEnvFields(b)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]coreEnvField{}
	for _, f := range fs {
		byName[f.Name] = f
	}
	id, w := byName["key_id"], byName["wrapped_dk"]
	return string(b[id.Off : id.Off+id.Len]), bytes.Clone(b[w.Off : w.Off+w.Len])
}

// corePutDirect writes an object straight to MinIO with the given user metadata (names without
// x-amz-meta-), as somebody with backend access would.
func corePutDirect(t testing.TB, c *s3.Client, bucket, key string, body []byte, meta map[string]string) {
	t.Helper()
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: bytes.NewReader(body), Metadata: meta,
		ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		t.Fatalf("direct PUT %s/%s: %v", bucket, key, err)
	}
}

// corePutGateway stores body at bucket/key through the gateway with a signed raw PUT and
// returns the ETag the gateway answered.
func corePutGateway(t *testing.T, c *http.Client, gw *testenv.Gateway, bucket, key string, body []byte) string {
	t.Helper()
	req := signedRequest(t, http.MethodPut, gw.Endpoint+"/"+bucket+"/"+key, body, "", gw.AccessKeyID, gw.SecretAccessKey)
	r := coreDo(c, req)
	if r.Status != http.StatusOK || r.ReadErr != nil {
		t.Fatalf("PUT %s/%s through the gateway: %v %s", bucket, key, r, r.Body)
	}
	return r.Header.Get("Etag")
}
