package proxy

import (
	"net/http"
	"sort"
	"strings"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/sigv4"
)

// hopHeaders are hop-by-hop headers (RFC 9110 section 7.6.1), never forwarded.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func sortStrings(s []string) { sort.Strings(s) }

// removeHopHeaders deletes hop-by-hop headers, including those named in Connection.
func removeHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// outboundHeaders returns the headers of a client request that go to the backend: everything
// except hop-by-hop, client authentication, body framing and checksums (which describe the
// client's bytes, not what the gateway sends), proxy and compression negotiation headers.
func outboundHeaders(in http.Header) http.Header {
	h := in.Clone()
	removeHopHeaders(h)
	sigv4.StripHeaders(h)
	for _, name := range []string{
		"Host", "Content-Length", "Accept-Encoding", "Expect", "User-Agent",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Real-Ip",
	} {
		h.Del(name)
	}
	h.Set("User-Agent", "s3seal/1")
	return h
}

// hasReservedMeta reports whether h sets metadata in the gateway's reserved namespace.
func hasReservedMeta(h http.Header) bool {
	for name := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(name), format.MetaPrefix) {
			return true
		}
	}
	return false
}

// objectResponseHeaders are the backend response headers of GET/HEAD object that describe the
// object as the client stored it, copied to the client unchanged. Everything else (sizes,
// ETags, checksums, the backend's own encryption) is either recomputed in plaintext terms or
// dropped.
var objectResponseHeaders = []string{
	"Content-Type", "Content-Disposition", "Content-Encoding", "Content-Language",
	"Cache-Control", "Expires", "Last-Modified",
	"X-Amz-Version-Id", "X-Amz-Delete-Marker", "X-Amz-Storage-Class", "X-Amz-Tagging-Count",
	"X-Amz-Website-Redirect-Location", "X-Amz-Object-Lock-Mode",
	"X-Amz-Object-Lock-Retain-Until-Date", "X-Amz-Object-Lock-Legal-Hold", "X-Amz-Restore",
	"X-Amz-Replication-Status", "X-Amz-Expiration", "X-Amz-Missing-Meta",
}

// copyObjectHeaders copies the descriptive object headers and the client's own user metadata
// (never the gateway's) from the backend response src to dst.
func copyObjectHeaders(dst, src http.Header) {
	for _, name := range objectResponseHeaders {
		if vs := src.Values(name); len(vs) > 0 {
			dst[name] = append([]string(nil), vs...)
		}
	}
	for name, vs := range src {
		cn := http.CanonicalHeaderKey(name)
		if strings.HasPrefix(cn, "X-Amz-Meta-") && !strings.HasPrefix(cn, format.MetaPrefix) && !isS3ECMeta(cn) {
			dst[cn] = append([]string(nil), vs...)
		}
	}
}

// responseOverrides are the GetObject query parameters that override response headers.
var responseOverrides = map[string]string{
	"response-content-type":        "Content-Type",
	"response-content-language":    "Content-Language",
	"response-expires":             "Expires",
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
}

// forwardedResponseHeaders filters the headers of a response the gateway forwards without
// changing its body (bucket operations, subresources): hop-by-hop and the gateway's reserved
// metadata are removed.
func forwardedResponseHeaders(dst, src http.Header) {
	for name, vs := range src {
		cn := http.CanonicalHeaderKey(name)
		if strings.HasPrefix(cn, format.MetaPrefix) || cn == "X-Amz-Request-Id" || cn == "X-Amz-Id-2" {
			continue
		}
		dst[cn] = append([]string(nil), vs...)
	}
	removeHopHeaders(dst)
}
