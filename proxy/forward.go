package proxy

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/s3seal/s3seal/s3err"
	"github.com/s3seal/s3seal/sigv4"
)

// maxForwardBody bounds request bodies of forwarded operations (XML documents such as
// DeleteObjects, tagging, lifecycle). S3's own limits for these are far smaller.
const maxForwardBody = 16 << 20

// backendQuery returns the client's query without presign parameters.
func backendQuery(r *http.Request) url.Values {
	v := r.URL.Query()
	sigv4.StripQuery(v)
	return v
}

// readSmallBody reads and verifies a forwarded request's body (at most maxForwardBody bytes).
func (g *Gateway) readSmallBody(q *request) ([]byte, error) {
	p := q.auth.Body(q.r.Body, q.r.Header)
	defer p.Close()
	data, err := io.ReadAll(io.LimitReader(p, maxForwardBody+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxForwardBody {
		return nil, s3err.New("MaxMessageLengthExceeded", "")
	}
	return data, nil
}

// forward sends the client's request to the backend unchanged but for authentication, and the
// backend's response back unchanged but for hop-by-hop headers and the gateway's reserved
// metadata. For operations that carry no object bytes.
func (g *Gateway) forward(q *request) {
	body, err := g.readSmallBody(q)
	if err != nil {
		g.failErr(q, err)
		return
	}
	g.forwardBody(q, body)
}

// forwardBody is forward with the client's body already read and verified (readSmallBody).
func (g *Gateway) forwardBody(q *request, body []byte) {
	h := outboundHeaders(q.r.Header)
	if len(body) > 0 {
		// The client's checksum headers were verified and stripped (they may have come as an
		// aws-chunked trailer); S3 requires one for some of these operations.
		sum := md5.Sum(body)
		h.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	}
	resp, err := g.backend.sendSmall(q.ctx(), q.r.Method, target{q.bucket, q.key, backendQuery(q.r)}, h, body)
	if err != nil {
		g.failBackend(q, err)
		return
	}
	defer resp.Body.Close()
	g.relay(q, resp)
}

// relay copies a backend response to the client as it is (headers filtered).
func (g *Gateway) relay(q *request, resp *http.Response) {
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotModified && !s3err.IsS3Status(resp.StatusCode) {
		// A status S3 never sends (MinIO's 499 for a request it saw canceled) is not relayed.
		g.fail(q, backendErrorOf(resp, target{q.bucket, q.key, nil}))
		return
	}
	forwardedResponseHeaders(q.w.Header(), resp.Header)
	q.w.Header().Set("X-Amz-Request-Id", q.id)
	q.w.WriteHeader(resp.StatusCode)
	if q.r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(q.w, resp.Body); err != nil {
		g.log.Warn("relaying backend response", "request_id", q.id, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// failBackend answers a request whose backend round trip failed: the client's own payload
// errors (signature, checksum) as they are, an unreachable backend as 503 ServiceUnavailable.
func (g *Gateway) failBackend(q *request, err error) {
	var ve *sigv4.Error
	var se *s3err.Error
	if errors.As(err, &ve) || errors.As(err, &se) || keyError(err) != nil || formatError(err) != nil {
		g.failErr(q, err)
		return
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) {
		g.obs.BackendError(q.op)
		g.log.Warn("backend unreachable", "request_id", q.id, "op", q.op, "err", err)
		g.fail(q, s3err.New("ServiceUnavailable", "The storage backend is unreachable."))
		return
	}
	g.failErr(q, err)
}
