package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Hostile is a backend under an attacker's control, for tests of what the gateway does when
// the backend is the adversary (the threat model: whoever controls the backend must neither
// read nor change data without detection). It is an HTTP proxy on a loopback port between a
// gateway and MinIO (httputil.ReverseProxy, the Host header passed on as the gateway signed
// it, so MinIO's signature checks pass) that
//
//   - records every request the backend receives (Requests): method, path, query, all headers,
//     and for a GET the how-many-th GET of that path it is;
//   - lets a test change any backend response before the gateway sees it (Hook for every
//     response, OnRead for the N-th GET of one object), with helpers for the common attacks:
//     FlipOnRead (change bytes of the body), ReplayOnRead (serve an answer recorded earlier for
//     the same object and Range), RefuseOnRead (an S3 error) and ResetOnRead (cut the
//     connection).
//
// Objects are named by their path-style request path, ObjectPath(bucket, key) =
// "/bucket/key" (StartGatewayHostile configures path style). A GET's read number counts every
// GET of that path through this proxy, ranged or not, from 1; the gateway may read an object
// more than once per client request (a 32-byte tail read for the facts, then the body), so a
// test that targets "the body read" either counts those or matches on Range in a Hook.
//
// The 2xx answers to GETs are kept for ReplayOnRead (bodies up to 64 MiB each).
type Hostile struct {
	// URL is the proxy's base URL (http://127.0.0.1:PORT): the gateway's backend endpoint.
	URL string

	mu     sync.Mutex
	reqs   []BackendRequest
	reads  map[string]int
	saved  map[string][]savedResponse // GET answers by path, in order
	hooks  []ResponseHook
	onRead map[readKey][]ResponseHook
}

// BackendRequest is one request the backend received.
type BackendRequest struct {
	Method string
	Path   string // decoded, path-style: "/bucket/key"
	Query  url.Values
	Header http.Header // as the backend received it, including Host
	// Read is, for a GET, the how-many-th GET of Path this is (from 1); 0 for other methods.
	Read int
	// Body is the request body of an UploadPart (PUT with partNumber) of at most 64 MiB, as
	// the backend received it (raw part bytes when the gateway sends unsigned payloads,
	// GATEWAY_BACKEND_PAYLOAD=unsigned), so that a test can replay an earlier upload of a part.
	Body []byte
}

// ResponseHook may change resp (status, headers, body) before the gateway sees it; req is the
// request it answers. An error makes the proxy answer 502 instead, or cut the connection if
// the error is ErrReset.
type ResponseHook func(req BackendRequest, resp *http.Response) error

// ErrReset returned by a ResponseHook makes the proxy close the gateway's connection without
// an answer.
var ErrReset = errors.New("hostile backend: connection reset on purpose")

type readKey struct {
	path string
	n    int
}

type savedResponse struct {
	rangeHeader string
	status      int
	header      http.Header
	body        []byte
}

const maxSavedBody = 64 << 20

type hostileCtxKey struct{}

// ObjectPath is the request path of an object in a path-style backend.
func ObjectPath(bucket, key string) string { return "/" + bucket + "/" + key }

// NewHostile starts a hostile proxy in front of upstream (a backend base URL, e.g.
// MinIO.Endpoint); it is stopped at the end of the test.
func NewHostile(t testing.TB, upstream string) *Hostile {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	h := &Hostile{reads: map[string]int{}, saved: map[string][]savedResponse{}, onRead: map[readKey][]ResponseHook{}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	tr.MaxIdleConnsPerHost = 64
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // as signed by the gateway
		},
		Transport:      tr,
		FlushInterval:  -1,
		ModifyResponse: h.modify,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, ErrReset) {
				if hj, ok := w.(http.Hijacker); ok {
					if conn, _, herr := hj.Hijack(); herr == nil {
						conn.Close()
						return
					}
				}
				panic(http.ErrAbortHandler)
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := BackendRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()}
		rec.Header.Set("Host", r.Host)
		if r.Method == http.MethodPut && rec.Query.Has("partNumber") && r.ContentLength >= 0 && r.ContentLength <= maxSavedBody {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				panic(http.ErrAbortHandler)
			}
			rec.Body = body
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.mu.Lock()
		if r.Method == http.MethodGet {
			h.reads[r.URL.Path]++
			rec.Read = h.reads[r.URL.Path]
		}
		h.reqs = append(h.reqs, rec)
		h.mu.Unlock()
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), hostileCtxKey{}, rec)))
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// modify runs the hooks for one response and saves GET answers for replay.
func (h *Hostile) modify(resp *http.Response) error {
	rec, _ := resp.Request.Context().Value(hostileCtxKey{}).(BackendRequest)
	if rec.Method == http.MethodGet && resp.StatusCode/100 == 2 && resp.ContentLength <= maxSavedBody {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxSavedBody+1))
		if err != nil {
			resp.Body.Close()
			return err
		}
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		if len(body) <= maxSavedBody {
			h.mu.Lock()
			h.saved[rec.Path] = append(h.saved[rec.Path], savedResponse{
				rangeHeader: rec.Header.Get("Range"), status: resp.StatusCode, header: resp.Header.Clone(), body: body})
			h.mu.Unlock()
		}
	}
	h.mu.Lock()
	hooks := append(append([]ResponseHook(nil), h.hooks...), h.onRead[readKey{rec.Path, rec.Read}]...)
	h.mu.Unlock()
	for _, fn := range hooks {
		if err := fn(rec, resp); err != nil {
			return err
		}
	}
	return nil
}

// Hook adds fn, called for every later backend response (in the order hooks were added).
func (h *Hostile) Hook(fn ResponseHook) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hooks = append(h.hooks, fn)
}

// OnRead adds fn, called for the response to the n-th GET of path only (after the Hooks).
func (h *Hostile) OnRead(path string, n int, fn ResponseHook) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := readKey{path, n}
	h.onRead[k] = append(h.onRead[k], fn)
}

// Reads returns how many GETs of path the backend has received so far.
func (h *Hostile) Reads(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reads[path]
}

// Requests returns every request the backend has received so far, in order.
func (h *Hostile) Requests() []BackendRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]BackendRequest(nil), h.reqs...)
}

// FlipOnRead flips (XOR 0xff) the body bytes at the given offsets (from the start of the
// response body; offsets beyond it are ignored) in the answer to the n-th GET of path.
func (h *Hostile) FlipOnRead(path string, n int, offsets ...int64) {
	h.OnRead(path, n, func(_ BackendRequest, resp *http.Response) error {
		resp.Body = &flipBody{ReadCloser: resp.Body, at: offsets}
		return nil
	})
}

// ReplayOnRead answers the n-th GET of path with the first answer recorded for an earlier GET
// of path with the same Range header (status, headers and body, e.g. an older version of the
// object). The test fails if there is none.
func (h *Hostile) ReplayOnRead(t testing.TB, path string, n int) {
	h.OnRead(path, n, func(req BackendRequest, resp *http.Response) error {
		h.mu.Lock()
		var old *savedResponse
		for i, s := range h.saved[path] {
			if s.rangeHeader == req.Header.Get("Range") {
				old = &h.saved[path][i]
				break
			}
		}
		h.mu.Unlock()
		if old == nil {
			t.Errorf("hostile backend: nothing recorded to replay for GET %s (Range %q)", path, req.Header.Get("Range"))
			return fmt.Errorf("nothing to replay")
		}
		resp.Body.Close()
		resp.StatusCode, resp.Status = old.status, ""
		resp.Header = old.header.Clone()
		resp.Body = io.NopCloser(bytes.NewReader(old.body))
		resp.ContentLength = int64(len(old.body))
		return nil
	})
}

// RefuseOnRead answers the n-th GET of path with an S3 XML error of the given status and code.
func (h *Hostile) RefuseOnRead(path string, n, status int, code string) {
	h.OnRead(path, n, func(_ BackendRequest, resp *http.Response) error {
		body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>refused by the hostile backend</Message></Error>`, code)
		resp.Body.Close()
		resp.StatusCode, resp.Status = status, ""
		resp.Header = http.Header{"Content-Type": {"application/xml"}}
		resp.Body = io.NopCloser(strings.NewReader(body))
		resp.ContentLength = int64(len(body))
		return nil
	})
}

// ResetOnRead closes the connection instead of answering the n-th GET of path. Go's HTTP
// transport (the gateway's) may retry an idempotent request whose reused connection closed
// before any answer; that retry is read n+1.
func (h *Hostile) ResetOnRead(path string, n int) {
	h.OnRead(path, n, func(BackendRequest, *http.Response) error { return ErrReset })
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// flipBody XORs the bytes at the offsets in at with 0xff as they are read.
type flipBody struct {
	io.ReadCloser
	at  []int64
	pos int64
}

func (b *flipBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	for _, off := range b.at {
		if off >= b.pos && off < b.pos+int64(n) {
			p[off-b.pos] ^= 0xff
		}
	}
	b.pos += int64(n)
	return n, err
}

// StartGatewayHostile starts a gateway like StartGatewayMinIO whose backend is a Hostile proxy
// in front of the shared MinIO; extra is merged on top of the environment.
func StartGatewayHostile(t testing.TB, extra map[string]string) (*Gateway, *Hostile, *MinIO) {
	t.Helper()
	m := NewMinIO(t)
	h := NewHostile(t, m.Endpoint)
	env := map[string]string{"GATEWAY_BACKEND_ENDPOINT": h.URL}
	for k, v := range extra {
		env[k] = v
	}
	gw, _, _, _ := StartGatewayMinIO(t, env)
	return gw, h, m
}
