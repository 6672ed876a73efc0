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

// forwardedRequestHeaders are the client request headers S3 needs for the operations the
// gateway passes on (canonical names). Everything else stays at the gateway: authentication,
// body framing and checksums (they describe the client's bytes, not what the gateway sends;
// forward computes a Content-MD5 for the bodies it passes on unchanged), every SSE header
// (the gateway handles the client's encryption requests itself, and key material must never
// reach the backend), proxy, compression and client-identification headers, and anything
// unknown. Prefix rules are in forwardedRequestHeader.
var forwardedRequestHeaders = map[string]bool{
	// Object description (PutObject, CreateMultipartUpload, CopyObject REPLACE).
	"Content-Type": true, "Content-Disposition": true, "Content-Encoding": true,
	"Content-Language": true, "Cache-Control": true, "Expires": true,
	"X-Amz-Website-Redirect-Location": true, "X-Amz-Storage-Class": true,
	// Access control, ownership, tagging, object lock.
	"X-Amz-Acl": true, "X-Amz-Grant-Read": true, "X-Amz-Grant-Write": true,
	"X-Amz-Grant-Read-Acp": true, "X-Amz-Grant-Write-Acp": true, "X-Amz-Grant-Full-Control": true,
	"X-Amz-Object-Ownership": true, "X-Amz-Bucket-Object-Lock-Enabled": true,
	"X-Amz-Bucket-Object-Lock-Token": true, "X-Amz-Confirm-Remove-Self-Bucket-Access": true,
	"X-Amz-Tagging": true, "X-Amz-Tagging-Directive": true, "X-Amz-Metadata-Directive": true,
	"X-Amz-Object-Lock-Mode": true, "X-Amz-Object-Lock-Retain-Until-Date": true,
	"X-Amz-Object-Lock-Legal-Hold": true, "X-Amz-Bypass-Governance-Retention": true,
	"X-Amz-Mfa": true,
	// Account and billing checks.
	"X-Amz-Expected-Bucket-Owner": true, "X-Amz-Source-Expected-Bucket-Owner": true,
	"X-Amz-Request-Payer": true,
	// Conditions and ranges (PutObject and Complete translate If-Match; forwarded GET/HEAD of
	// objects without an envelope and forwarded operations use them as they are).
	"If-Match": true, "If-None-Match": true, "If-Modified-Since": true, "If-Unmodified-Since": true,
	"Range": true,
	// Operation parameters sent as headers.
	"X-Amz-Object-Attributes": true, "X-Amz-Max-Parts": true, "X-Amz-Part-Number-Marker": true,
	"X-Amz-Optional-Object-Attributes": true, "X-Amz-Transition-Default-Minimum-Object-Size": true,
	"X-Amz-Skip-Destination-Validation": true,
	// CORS preflight.
	"Origin": true, "Access-Control-Request-Method": true, "Access-Control-Request-Headers": true,
}

// forwardedRequestHeader reports whether the client request header name (canonical) goes to
// the backend: the allowlist above, and the client's own user metadata (never the gateway's
// reserved x-amz-meta-s3seal-*).
func forwardedRequestHeader(name string) bool {
	if forwardedRequestHeaders[name] {
		return true
	}
	return strings.HasPrefix(name, "X-Amz-Meta-") && !strings.HasPrefix(name, format.MetaPrefix)
}

// outboundHeaders returns the headers of a client request that go to the backend: only those
// forwardedRequestHeader allows (an allowlist: key material such as SSE-C keys and their MD5s
// is never among them), with the aws-chunked content coding removed, and the gateway's
// User-Agent.
func outboundHeaders(in http.Header) http.Header {
	h := http.Header{}
	for name, vs := range in {
		if cn := http.CanonicalHeaderKey(name); forwardedRequestHeader(cn) {
			h[cn] = append(h[cn], vs...)
		}
	}
	sigv4.StripHeaders(h) // the aws-chunked content coding describes the client's framing
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
			// S3 returns user metadata names in lower case; net/http writes a header key as it
			// is in the map, so the non-canonical key reaches the client as S3 sends it.
			dst[strings.ToLower(cn)] = append([]string(nil), vs...)
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
