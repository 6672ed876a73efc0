package proxy

import (
	"crypto/md5"
	"encoding/base64"
	"io"
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

// forward sends the client's request to the backend, re-signed: the operation's parameters
// (q.query), the allowlisted headers and the body forwardBody decides; and the backend's
// response back unchanged but for hop-by-hop headers and the gateway's reserved metadata. For
// operations that carry no object bytes.
func (g *Gateway) forward(q *request) error {
	body, err := g.readSmallBody(q)
	if err != nil {
		return err
	}
	return g.forwardBody(q, body)
}

// forwardBody is forward with the client's body already read and verified (readSmallBody).
// The backend gets the body forwardedBody makes of it: the client's bytes only for admin
// operations (bucket configuration), the gateway's serialisation of the strictly parsed
// document for the others, no body where S3 defines none.
func (g *Gateway) forwardBody(q *request, body []byte) error {
	body, e := forwardedBody(q.op, body)
	if e != nil {
		return e
	}
	h := outboundHeaders(q.r.Header)
	if len(body) > 0 {
		// The client's checksum headers were verified and stripped (they may have come as an
		// aws-chunked trailer); S3 requires one for some of these operations.
		sum := md5.Sum(body)
		h.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	}
	resp, err := g.backend.sendSmall(q.ctx(), q.r.Method, target{q.bucket, q.key, backendQuery(q.r)}, h, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return g.relay(q, resp)
}

// relay copies a backend response to the client as it is (headers filtered).
func (g *Gateway) relay(q *request, resp *http.Response) error {
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotModified &&
		(!s3err.IsS3Status(resp.StatusCode) || (resp.ContentLength == 0 && q.r.Method != http.MethodHead)) {
		// A status S3 never sends (MinIO's 499 for a request it saw canceled) is not relayed,
		// and an error without its XML document gets one.
		return backendErrorOf(resp, target{q.bucket, q.key, nil})
	}
	forwardedResponseHeaders(q.w.Header(), resp.Header)
	q.w.Header().Set("X-Amz-Request-Id", q.id)
	q.w.WriteHeader(resp.StatusCode)
	if q.r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(q.w, resp.Body); err != nil {
		g.log.Warn("relaying backend response", "request_id", q.id, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}
