package proxy

import (
	"net/http"
	"testing"
)

// Which client request headers reach the backend: S3's operation headers do, key material,
// the client's SSE requests, authentication, checksums and framing never do.
func TestOutboundHeadersAllowlist(t *testing.T) {
	cases := []struct {
		name    string
		forward bool
	}{
		// Key material and the client's own encryption requests: the gateway handles them.
		{"x-amz-server-side-encryption-customer-algorithm", false},
		{"x-amz-server-side-encryption-customer-key", false},
		{"x-amz-server-side-encryption-customer-key-MD5", false},
		{"x-amz-copy-source-server-side-encryption-customer-algorithm", false},
		{"x-amz-copy-source-server-side-encryption-customer-key", false},
		{"x-amz-copy-source-server-side-encryption-customer-key-md5", false},
		{"x-amz-server-side-encryption", false},
		{"x-amz-server-side-encryption-aws-kms-key-id", false},
		{"x-amz-server-side-encryption-context", false},
		{"x-amz-server-side-encryption-bucket-key-enabled", false},
		// Authentication, framing, checksums of the client's bytes.
		{"Authorization", false},
		{"X-Amz-Date", false},
		{"X-Amz-Security-Token", false},
		{"X-Amz-Content-Sha256", false},
		{"X-Amz-Decoded-Content-Length", false},
		{"X-Amz-Trailer", false},
		{"Content-MD5", false},
		{"Content-Length", false},
		{"x-amz-checksum-crc32", false},
		{"x-amz-checksum-sha256", false},
		{"x-amz-sdk-checksum-algorithm", false},
		{"x-amz-checksum-type", false},
		{"Expect", false},
		{"Host", false},
		{"Transfer-Encoding", false},
		{"Connection", false},
		{"Accept-Encoding", false},
		{"X-Forwarded-For", false},
		{"Forwarded", false},
		{"Amz-Sdk-Invocation-Id", false},
		{"X-Some-Unknown-Header", false},
		{"x-amz-meta-s3seal-envelope", false},
		{"X-Amz-Copy-Source", false}, // the gateway writes its own copy source
		// What S3 needs for the operations.
		{"Content-Type", true},
		{"Content-Disposition", true},
		{"Content-Language", true},
		{"Cache-Control", true},
		{"Expires", true},
		{"x-amz-meta-color", true},
		{"x-amz-acl", true},
		{"x-amz-grant-full-control", true},
		{"x-amz-grant-read", true},
		{"x-amz-storage-class", true},
		{"x-amz-tagging", true},
		{"x-amz-tagging-directive", true},
		{"x-amz-metadata-directive", true},
		{"x-amz-object-lock-mode", true},
		{"x-amz-object-lock-retain-until-date", true},
		{"x-amz-object-lock-legal-hold", true},
		{"x-amz-bypass-governance-retention", true},
		{"x-amz-mfa", true},
		{"x-amz-website-redirect-location", true},
		{"x-amz-expected-bucket-owner", true},
		{"x-amz-request-payer", true},
		{"x-amz-bucket-object-lock-enabled", true},
		{"x-amz-object-ownership", true},
		{"x-amz-object-attributes", true},
		{"If-Match", true},
		{"If-None-Match", true},
		{"If-Modified-Since", true},
		{"If-Unmodified-Since", true},
		{"Range", true},
	}
	for _, c := range cases {
		in := http.Header{}
		in.Set(c.name, "v")
		out := outboundHeaders(in)
		_, got := out[http.CanonicalHeaderKey(c.name)]
		if got != c.forward {
			t.Errorf("%s: forwarded = %v, want %v", c.name, got, c.forward)
		}
	}
}

// The content coding keeps the client's codings but not aws-chunked, values of repeated
// headers are kept, and the gateway names itself.
func TestOutboundHeadersValues(t *testing.T) {
	in := http.Header{}
	in.Set("Content-Encoding", "aws-chunked,gzip")
	in.Add("X-Amz-Meta-Tag", "a")
	in.Add("X-Amz-Meta-Tag", "b")
	in.Set("User-Agent", "aws-cli/2")
	out := outboundHeaders(in)
	if got := out.Get("Content-Encoding"); got != "gzip" {
		t.Errorf("Content-Encoding = %q, want gzip", got)
	}
	if got := out.Values("X-Amz-Meta-Tag"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("X-Amz-Meta-Tag = %q", got)
	}
	if got := out.Get("User-Agent"); got != "s3seal/1" {
		t.Errorf("User-Agent = %q", got)
	}
	in = http.Header{"Content-Encoding": {"aws-chunked"}}
	if _, ok := outboundHeaders(in)["Content-Encoding"]; ok {
		t.Error("a content coding of only aws-chunked is forwarded")
	}
}
