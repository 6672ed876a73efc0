package sigv4

import (
	"net/http"
	"net/url"
	"strings"
)

// StripHeaders removes everything client-auth related from h before the
// proxy forwards the request with its own signature: Authorization,
// X-Amz-Date, X-Amz-Content-Sha256, X-Amz-Security-Token,
// X-Amz-Decoded-Content-Length, X-Amz-Trailer, X-Amz-Sdk-Checksum-Algorithm,
// every X-Amz-Checksum-* header, Content-Md5, Expect, and the "aws-chunked"
// token of Content-Encoding (other codings are kept; the header is dropped
// when nothing is left).
func StripHeaders(h http.Header) {
	for _, name := range []string{"Authorization", "X-Amz-Date", "X-Amz-Content-Sha256",
		"X-Amz-Security-Token", "X-Amz-Decoded-Content-Length", "X-Amz-Trailer",
		"X-Amz-Sdk-Checksum-Algorithm", "Content-Md5", "Expect"} {
		h.Del(name)
	}
	for name := range h {
		if strings.HasPrefix(strings.ToLower(name), "x-amz-checksum-") {
			delete(h, name)
		}
	}
	if vals, ok := h["Content-Encoding"]; ok {
		var keep []string
		for _, v := range vals {
			for _, tok := range strings.Split(v, ",") {
				tok = strings.TrimSpace(tok)
				if tok != "" && !strings.EqualFold(tok, "aws-chunked") {
					keep = append(keep, tok)
				}
			}
		}
		if len(keep) == 0 {
			h.Del("Content-Encoding")
		} else {
			h["Content-Encoding"] = []string{strings.Join(keep, ",")}
		}
	}
}

// StripQuery removes the presign parameters: X-Amz-Algorithm, -Credential,
// -Date, -Expires, -SignedHeaders, -Signature, -Security-Token (and
// X-Amz-Content-Sha256), and SigV2's AWSAccessKeyId, Expires and Signature.
func StripQuery(q url.Values) {
	for _, name := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
		"X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token",
		"X-Amz-Content-Sha256", "AWSAccessKeyId", "Expires", "Signature"} {
		q.Del(name)
	}
}
