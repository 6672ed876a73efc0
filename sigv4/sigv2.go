package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// v2SubResources are the query parameters that belong to SigV2's
// CanonicalizedResource: the union of the lists used by botocore (HmacV1Auth)
// and by minio-go/MinIO, plus the response-* overrides from the S3
// documentation.
func v2SubResource(name string) bool {
	switch name {
	case "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "encryption",
		"inventory", "legal-hold", "lifecycle", "location", "logging", "metrics", "notification",
		"object-lock", "partNumber", "policy", "replication", "requestPayment", "restore",
		"retention", "select", "select-type", "storageClass", "tagging", "torrent", "uploadId",
		"uploads", "versionId", "versioning", "versions", "website",
		"response-cache-control", "response-content-disposition", "response-content-encoding",
		"response-content-language", "response-content-type", "response-expires":
		return true
	}
	return false
}

// canonicalAmzHeadersV2 is SigV2's CanonicalizedAmzHeaders: every x-amz-*
// header, lower-cased, sorted, values trimmed and joined with ",".
func canonicalAmzHeadersV2(h http.Header) string {
	type kv struct{ k, v string }
	var list []kv
	for name, vals := range h {
		l := strings.ToLower(name)
		if !strings.HasPrefix(l, "x-amz-") {
			continue
		}
		trimmed := make([]string, len(vals))
		for i, v := range vals {
			trimmed[i] = strings.TrimSpace(v)
		}
		list = append(list, kv{l, strings.Join(trimmed, ",")})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].k < list[j].k })
	var b strings.Builder
	for _, e := range list {
		b.WriteString(e.k)
		b.WriteByte(':')
		b.WriteString(e.v)
		b.WriteByte('\n')
	}
	return b.String()
}

// HostBucket returns the bucket that r's Host (X-Forwarded-Host when trusted, as signed)
// names in virtual-hosted style, bucket.<base domain>, or "" for a path-style request. The
// gateway's router and SigV2's CanonicalizedResource both find the bucket with it, so that a
// SigV2 signature is verified for the bucket and key the request is routed to. SigV4 needs
// no such care: it signs the Host header (required, the same value as here) and the path,
// from which the router derives bucket and key.
func (v *Verifier) HostBucket(r *http.Request) string {
	return v.virtualBucket(v.signedHost(r))
}

// virtualBucket returns the bucket named by a virtual-hosted-style Host, or ""
// for path-style requests. A Host outside the base domains is path-style:
// SigV2's CNAME rule (the whole Host names the bucket) is not applied, because
// the router does not apply it either; a signature for bucket.<base
// domain>/a/b replayed with "Host: bucket" would otherwise verify and be
// routed to bucket a, key b.
func (v *Verifier) virtualBucket(host string) string {
	h := strings.ToLower(host)
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(h, ".")
	if len(v.baseDomains) == 0 || h == "" || h == "localhost" || net.ParseIP(strings.Trim(h, "[]")) != nil {
		return ""
	}
	for _, d := range v.baseDomains {
		if h == d {
			return ""
		}
		if strings.HasSuffix(h, "."+d) {
			return h[:len(h)-len(d)-1]
		}
	}
	return ""
}

// canonicalResourceV2 is SigV2's CanonicalizedResource: the bucket of a
// virtual-hosted request, the path exactly as sent, and the sub-resources
// sorted by name with decoded values.
func (v *Verifier) canonicalResourceV2(r *http.Request, host string) string {
	var b strings.Builder
	if bucket := v.virtualBucket(host); bucket != "" {
		b.WriteByte('/')
		b.WriteString(bucket)
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(path)
	type sub struct {
		name, value string
		hasValue    bool
	}
	var subs []sub
	for _, part := range strings.Split(r.URL.RawQuery, "&") {
		name, value, hasValue := strings.Cut(part, "=")
		if !v2SubResource(name) {
			continue
		}
		if dec, err := url.PathUnescape(value); err == nil {
			value = dec
		}
		subs = append(subs, sub{name, value, hasValue})
	}
	sort.SliceStable(subs, func(i, j int) bool { return subs[i].name < subs[j].name })
	for i, s := range subs {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(s.name)
		if s.hasValue {
			b.WriteByte('=')
			b.WriteString(s.value)
		}
	}
	return b.String()
}

// stringToSignV2 is VERB, Content-MD5, Content-Type, the date (or Expires),
// the canonical amz headers and the canonical resource.
func stringToSignV2(r *http.Request, date, resource string) string {
	return r.Method + "\n" + r.Header.Get("Content-Md5") + "\n" + r.Header.Get("Content-Type") + "\n" +
		date + "\n" + canonicalAmzHeadersV2(r.Header) + resource
}

// signatureV2 is the HMAC-SHA1 of the string to sign under the secret.
func signatureV2(secret, sts string) []byte {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(sts))
	return m.Sum(nil)
}

func decodeSignatureV2(s string) ([]byte, bool) {
	// A '+' sent unencoded in a query string arrives as a space. Strict: the padding bits of
	// the last character must be zero, so one signature has exactly one spelling (the lenient
	// decoder took "...GmlO=" for "...GmlM=").
	b, err := base64.StdEncoding.Strict().DecodeString(strings.ReplaceAll(s, " ", "+"))
	return b, err == nil && len(b) == sha1.Size
}

func (v *Verifier) authenticateHeaderV2(r *http.Request, authz string) (*Auth, *Error) {
	cred := strings.TrimPrefix(authz, "AWS ")
	akid, sigStr, ok := strings.Cut(cred, ":")
	sig, sigOK := decodeSignatureV2(sigStr)
	if !ok || akid == "" || !sigOK {
		return nil, newError(CodeInvalidArgument, "AWS authorization header is invalid. Expected AwsAccessKeyId:signature")
	}
	bad := newError(CodeAccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
	var t time.Time
	date := ""
	if vals := r.Header.Values("X-Amz-Date"); len(vals) > 0 {
		if t, ok = parseHTTPDate(vals[0]); len(vals) != 1 || !ok {
			return nil, bad
		}
	} else {
		vals := r.Header.Values("Date")
		if len(vals) != 1 {
			return nil, bad
		}
		if t, ok = parseHTTPDate(vals[0]); !ok {
			return nil, bad
		}
		date = vals[0]
	}
	secret, err := v.lookupSecret(akid)
	if err != nil {
		return nil, err
	}
	if err := v.checkSkew(t); err != nil {
		return nil, err
	}
	if err := rejectSessionToken(r, nil); err != nil {
		return nil, err
	}
	host := v.signedHost(r)
	want := signatureV2(secret, stringToSignV2(r, date, v.canonicalResourceV2(r, host)))
	if !hmac.Equal(want, sig) {
		return nil, errSignature()
	}
	return &Auth{AccessKeyID: akid, Method: HeaderV2, Payload: PayloadNone,
		DecodedLength: max(r.ContentLength, -1), Host: host}, nil
}

func (v *Verifier) authenticatePresignedV2(r *http.Request, params []queryParam) (*Auth, *Error) {
	akid, n1 := singleParam(params, "AWSAccessKeyId")
	expires, n2 := singleParam(params, "Expires")
	sigStr, n3 := singleParam(params, "Signature")
	if n1 != 1 || n2 != 1 || n3 != 1 || akid == "" {
		return nil, newError(CodeAccessDenied, "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
	}
	exp, perr := strconv.ParseInt(expires, 10, 64)
	if perr != nil || strings.Trim(expires, "0123456789") != "" {
		return nil, newError(CodeAccessDenied, "Invalid date (should be seconds since epoch): "+truncate(expires, 32))
	}
	sig, ok := decodeSignatureV2(sigStr)
	if !ok {
		return nil, errSignature()
	}
	secret, err := v.lookupSecret(akid)
	if err != nil {
		return nil, err
	}
	if v.now().Unix() > exp {
		return nil, newError(CodeAccessDenied, "Request has expired")
	}
	if err := rejectSessionToken(r, params); err != nil {
		return nil, err
	}
	host := v.signedHost(r)
	want := signatureV2(secret, stringToSignV2(r, expires, v.canonicalResourceV2(r, host)))
	if !hmac.Equal(want, sig) {
		return nil, errSignature()
	}
	return &Auth{AccessKeyID: akid, Method: PresignedV2, Payload: PayloadNone,
		DecodedLength: max(r.ContentLength, -1), Host: host}, nil
}
