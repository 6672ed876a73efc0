package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/s3seal/s3seal/internal/s3path"
	"github.com/s3seal/s3seal/s3err"
)

// Backend is the S3 service behind the gateway.
type Backend struct {
	// Endpoint is the backend's base URL, e.g. "http://127.0.0.1:9000". Empty means AWS S3
	// ("https://s3.<region>.amazonaws.com").
	Endpoint string
	// Region the backend requests are signed for.
	Region string
	// PathStyle addresses buckets as http://host/bucket/key rather than http://bucket.host/key.
	PathStyle bool
	// Credentials sign backend requests (static, or the AWS default chain).
	Credentials aws.CredentialsProvider
	// Transport sends backend requests; nil = NewTransport(TransportOptions{}).
	Transport http.RoundTripper
	// Payload is how object bodies are sent: PayloadAuto (default), PayloadUnsigned or
	// PayloadCRCTrailer.
	Payload string
}

// TransportOptions configures NewTransport.
type TransportOptions struct {
	// CABundle is a PEM file of extra trusted CAs ("" = system roots only).
	CABundle string
	// ResponseHeaderTimeout bounds the wait for a backend's response headers (0 = 60s).
	ResponseHeaderTimeout time.Duration
}

// NewTransport returns the HTTP transport the gateway uses for a remote backend. Compression is
// off: the gateway must see stored bytes exactly as stored.
func NewTransport(o TransportOptions) (*http.Transport, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CABundle != "" {
		pem, err := os.ReadFile(o.CABundle)
		if err != nil {
			return nil, fmt.Errorf("backend CA bundle: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("backend CA bundle %s: no certificates found", o.CABundle)
		}
		tlsCfg.RootCAs = pool
	}
	if o.ResponseHeaderTimeout == 0 {
		o.ResponseHeaderTimeout = 60 * time.Second
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		ForceAttemptHTTP2:     false,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		DisableCompression:    true,
	}, nil
}

// backend sends signed requests to the backend.
type backend struct {
	base      *url.URL
	region    string
	pathStyle bool
	crcStream bool // object bodies as aws-chunked with a CRC32C trailer
	creds     aws.CredentialsProvider
	signer    *v4.Signer
	client    *http.Client
	names     bucketNames // bucket names it may address (checkBackendRequest)
}

func newBackend(b Backend) (*backend, error) {
	ep := b.Endpoint
	if ep == "" {
		ep = "https://s3." + b.Region + ".amazonaws.com"
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("backend endpoint %q is not an http(s) URL", ep)
	}
	if b.Credentials == nil {
		return nil, errors.New("backend credentials are required")
	}
	var crcStream bool
	switch b.Payload {
	case "", PayloadAuto:
		crcStream = u.Scheme == "http"
	case PayloadUnsigned:
	case PayloadCRCTrailer:
		crcStream = true
	default:
		return nil, fmt.Errorf("backend payload mode %q: want %q, %q or %q", b.Payload, PayloadAuto, PayloadUnsigned, PayloadCRCTrailer)
	}
	tr := b.Transport
	if tr == nil {
		t, err := NewTransport(TransportOptions{})
		if err != nil {
			return nil, err
		}
		tr = t
	}
	return &backend{
		base:      u,
		region:    b.Region,
		pathStyle: b.PathStyle,
		crcStream: crcStream,
		creds:     b.Credentials,
		names:     newBucketNames(nil),
		// S3 canonical URIs are not escaped a second time.
		signer: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }),
		// Redirects are not followed: a 301/307 from S3 is passed to the client as S3 would.
		client: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// target is what a backend request addresses.
type target struct {
	bucket, key string
	query       url.Values
}

func (b *backend) url(t target) *url.URL {
	u := *b.base
	basePath := strings.TrimSuffix(u.Path, "/")
	var p string
	switch {
	case t.bucket == "":
		p = basePath + "/"
	case b.pathStyle:
		p = basePath + "/" + t.bucket
		if t.key != "" {
			p += "/" + t.key
		}
	default:
		u.Host = t.bucket + "." + u.Host
		p = basePath + "/" + t.key
	}
	u.Path = p
	u.RawPath = s3path.Escape(p)
	u.RawQuery = ""
	if len(t.query) > 0 {
		// S3 wants %20 for spaces; url.Values.Encode uses '+', which S3 reads as a space in the
		// query but signs differently: encode by hand.
		u.RawQuery = encodeQuery(t.query)
	}
	return &u
}

// encodeQuery encodes q sorted by name with RFC 3986 escaping (%20 for space), as SigV4 wants.
func encodeQuery(q url.Values) string {
	var parts []string
	for k, vs := range q {
		for _, v := range vs {
			if v == "" && isBareSubresource(k) {
				parts = append(parts, queryEscape(k))
				continue
			}
			parts = append(parts, queryEscape(k)+"="+queryEscape(v))
		}
	}
	sortStrings(parts)
	return strings.Join(parts, "&")
}

// isBareSubresource reports names that S3 writes without "=" (e.g. "?uploads", "?tagging").
// Either form is accepted by S3; keeping the bare form keeps logs readable.
func isBareSubresource(k string) bool {
	return !strings.HasPrefix(strings.ToLower(k), "x-amz-") && !strings.HasPrefix(k, "response-")
}

func queryEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// unsignedPayload is the payload hash for bodies the gateway does not hash a second time: the
// encrypted stream is authenticated by its own format, and over TLS by the transport.
const unsignedPayload = "UNSIGNED-PAYLOAD"

// emptySHA256 is the SHA-256 of the empty string.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// send signs and sends one backend request. body may be nil; length is its exact size (-1 for
// none). payloadHash is unsignedPayload or the hex SHA-256 of the body.
//
// An answer with a status S3 never sends marks a connection the backend will not serve again:
// MinIO answers 499, with no body, to every later request on a keep-alive connection on which a
// request timed out. Such a connection is not reused (the idle pool is dropped when its body is
// closed), and a GET or HEAD without a body, which cannot have changed anything, is sent once
// more on a new connection. A request answered 503 (SlowDown: MinIO answers SlowDownRead and
// SlowDownWrite when many requests wait for one object's lock) is sent again after a short
// pause, up to slowDownRetries times, as the SDKs do, when its body can be sent again: none,
// or the in-memory body of sendSmall (a conditional manifest copy, a Complete, a DeleteObjects).
func (b *backend) send(ctx context.Context, method string, t target, h http.Header, body io.Reader, length int64, payloadHash string) (*http.Response, error) {
	retryable := (method == http.MethodGet || method == http.MethodHead) && (body == nil || length == 0)
	replay, replayable := body.(*bytes.Reader)
	replayable = replayable || body == nil || length == 0
	var saved http.Header
	if (retryable || replayable) && h != nil {
		saved = h.Clone() // signing adds headers
	}
	resp, err := b.sendOnce(ctx, method, t, h, body, length, payloadHash)
	for attempt := 1; replayable && err == nil && resp.StatusCode == http.StatusServiceUnavailable && attempt <= slowDownRetries; attempt++ {
		drain(resp)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt) * slowDownPause):
		}
		var again io.Reader
		if replay != nil && length > 0 {
			if _, err := replay.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
			again = replay
		}
		resp, err = b.sendOnce(ctx, method, t, cloneHeader(saved), again, length, payloadHash)
	}
	if err != nil || resp.StatusCode < 400 || s3err.IsS3Status(resp.StatusCode) {
		return resp, err
	}
	if retryable {
		drain(resp)
		b.client.CloseIdleConnections()
		if resp, err = b.sendOnce(ctx, method, t, cloneHeader(saved), nil, 0, payloadHash); err != nil || resp.StatusCode < 400 || s3err.IsS3Status(resp.StatusCode) {
			return resp, err
		}
	}
	resp.Body = dropConnOnClose{resp.Body, b.client}
	return resp, nil
}

// Retries of a bodyless GET or HEAD answered 503: attempt n waits n × slowDownPause.
const (
	slowDownRetries = 3
	slowDownPause   = 150 * time.Millisecond
)

// drain reads a little of an answer that is thrown away (so its connection can be reused) and
// closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// cloneHeader copies h (nil stays nil).
func cloneHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	return h.Clone()
}

// dropConnOnClose closes a response body and then the client's idle connections, so the
// connection it came on is not used again.
type dropConnOnClose struct {
	io.ReadCloser
	client *http.Client
}

func (d dropConnOnClose) Close() error {
	err := d.ReadCloser.Close()
	d.client.CloseIdleConnections()
	return err
}

// sendOnce is one signed round trip of send.
func (b *backend) sendOnce(ctx context.Context, method string, t target, h http.Header, body io.Reader, length int64, payloadHash string) (*http.Response, error) {
	if err := b.checkBackendRequest(method, t, h); err != nil {
		return nil, err
	}
	u := b.url(t)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.URL = u
	if h != nil {
		req.Header = h
	}
	req.Header.Del("Host")
	if body != nil && length != 0 {
		req.Body = io.NopCloser(body)
		req.ContentLength = length
	} else {
		req.ContentLength = 0
		req.Body = http.NoBody
	}
	// No GetBody: the transport must never replay a streamed body on its own.
	req.GetBody = nil
	if payloadHash == "" {
		payloadHash = emptySHA256
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	creds, err := b.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("backend credentials: %w", err)
	}
	if err := b.signer.SignHTTP(ctx, creds, req, payloadHash, "s3", b.region, time.Now().UTC()); err != nil {
		return nil, fmt.Errorf("signing backend request: %w", err)
	}
	return b.client.Do(req)
}

// sendObject sends an object body (exactly length bytes) without hashing it: as
// UNSIGNED-PAYLOAD, or framed as aws-chunked with a CRC32C trailer that the backend verifies
// (see the Payload modes).
func (b *backend) sendObject(ctx context.Context, method string, t target, h http.Header, body io.Reader, length int64) (*http.Response, error) {
	if !b.crcStream {
		return b.send(ctx, method, t, h, body, length, unsignedPayload)
	}
	if h == nil {
		h = http.Header{}
	}
	enc := h.Values("Content-Encoding")
	h.Del("Content-Encoding")
	h.Add("Content-Encoding", "aws-chunked")
	for _, v := range enc {
		h.Add("Content-Encoding", v)
	}
	h.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(length, 10))
	h.Set("X-Amz-Trailer", crcTrailerName)
	return b.send(ctx, method, t, h, newChunkedEncoder(body, length), chunkedLength(length), "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
}

// sendSmall sends a request whose body is held in memory, signed with its SHA-256.
func (b *backend) sendSmall(ctx context.Context, method string, t target, h http.Header, body []byte) (*http.Response, error) {
	sum := sha256.Sum256(body)
	return b.send(ctx, method, t, h, bytes.NewReader(body), int64(len(body)), hex.EncodeToString(sum[:]))
}

// roundTripErr is the error of a backend round trip that failed (err) or did not answer 2xx
// (the S3 error to show, body closed); nil when the caller may use resp.
func (g *Gateway) roundTripErr(q *request, t target, resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return g.backendError(q, resp, t)
	}
	return nil
}

// backendError is backendErrorOf, with 5xx answers reported to the observer.
func (g *Gateway) backendError(q *request, resp *http.Response, t target) *s3err.Error {
	if resp.StatusCode >= 500 {
		g.obs.BackendError(q.op)
	}
	return backendErrorOf(resp, t)
}

// backendErrorOf turns a non-2xx backend response into the S3 error to show the client. The body
// is read (bounded) and closed. A status S3 does not answer with becomes InternalError (500);
// the delete-marker headers of a GET or HEAD are kept.
func backendErrorOf(resp *http.Response, t target) *s3err.Error {
	e := backendErrorCode(resp, t)
	if !s3err.IsS3Status(e.Status) {
		e.Message = fmt.Sprintf("The storage backend answered %d (%s).", e.Status, e.Code)
		e.Code, e.Status = "InternalError", http.StatusInternalServerError
	}
	if resp.Header.Get("X-Amz-Delete-Marker") == "true" {
		e.Header = http.Header{"X-Amz-Delete-Marker": {"true"}}
		if v := resp.Header.Get("X-Amz-Version-Id"); v != "" {
			e.Header.Set("X-Amz-Version-Id", v)
		}
	}
	return e
}

// backendErrorCode is the backend's error, from its XML body or, without one, its status.
func backendErrorCode(resp *http.Response, t target) *s3err.Error {
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if e := s3err.Parse(data, resp.StatusCode); e != nil {
		if e.Status == 0 {
			e.Status = resp.StatusCode
		}
		return e
	}
	// HEAD responses and some proxies carry no XML: derive the code from the status.
	switch resp.StatusCode {
	case http.StatusNotFound:
		if t.key == "" {
			return s3err.New("NoSuchBucket", "")
		}
		return s3err.New("NoSuchKey", "")
	case http.StatusForbidden:
		return s3err.New("AccessDenied", "")
	case http.StatusMethodNotAllowed:
		return s3err.New("MethodNotAllowed", "")
	case http.StatusPreconditionFailed:
		return s3err.New("PreconditionFailed", "")
	case http.StatusNotModified:
		return s3err.New("NotModified", "")
	case http.StatusRequestedRangeNotSatisfiable:
		return s3err.New("InvalidRange", "")
	case http.StatusServiceUnavailable:
		return s3err.New("ServiceUnavailable", "")
	}
	e := s3err.New("InternalError", fmt.Sprintf("backend answered %d", resp.StatusCode))
	e.Status = resp.StatusCode
	if e.Status < 400 {
		e.Status = http.StatusBadGateway
	}
	return e
}
