package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
)

// The SigV4 steps, each a small function named after the step in the AWS
// documentation. They only build strings and MACs; all policy lives in the
// callers.

const (
	algorithmV4      = "AWS4-HMAC-SHA256"
	algorithmPayload = "AWS4-HMAC-SHA256-PAYLOAD"
	algorithmTrailer = "AWS4-HMAC-SHA256-TRAILER"
	scopeTerminator  = "aws4_request"
	amzDateFormat    = "20060102T150405Z"
	emptySHA256      = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	unsignedPayload                 = "UNSIGNED-PAYLOAD"
	streamingSignedPayload          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedPayloadTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedPayloadTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	streamingECDSAPayload           = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
	streamingECDSAPayloadTrailer    = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"
)

// uriEncode is S3's URI encoding: every byte except the unreserved characters
// A-Z a-z 0-9 - . _ ~ is written as %XY with upper-case hex; '/' is kept when
// keepSlash is set (object key paths) and encoded otherwise (query strings).
func uriEncode(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || (c == '/' && keepSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// canonicalURI is the CanonicalURI line: the decoded request path encoded once
// with S3's rules. S3 does not double-encode, and it canonicalizes what the
// client sent, so "/test$file.text" and "/test%24file.text" both become
// "/test%24file.text". Empty segments ("//") and a trailing '/' are kept.
func canonicalURI(decodedPath string) string {
	if decodedPath == "" {
		return "/"
	}
	return uriEncode(decodedPath, true)
}

// queryParam is one decoded name=value pair of a query string.
type queryParam struct{ name, value string }

// canonicalQueryString is the CanonicalQueryString line: names and values
// encoded with S3's rules, sorted by encoded name then encoded value, empty
// values written as "name=". Parameters named skip (the presigned signature)
// are left out.
func canonicalQueryString(params []queryParam, skip string) string {
	type pair struct{ n, v string }
	pairs := make([]pair, 0, len(params))
	for _, p := range params {
		if skip != "" && p.name == skip {
			continue
		}
		pairs = append(pairs, pair{uriEncode(p.name, false), uriEncode(p.value, false)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].n != pairs[j].n {
			return pairs[i].n < pairs[j].n
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.n)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// canonicalHeaderValue joins the values of one header with "," after trimming
// each and collapsing inner runs of spaces to one space.
func canonicalHeaderValue(values []string) string {
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		v = strings.TrimSpace(v)
		space := false
		for j := 0; j < len(v); j++ {
			if v[j] == ' ' {
				if !space {
					b.WriteByte(' ')
				}
				space = true
				continue
			}
			space = false
			b.WriteByte(v[j])
		}
	}
	return b.String()
}

// canonicalRequest assembles the canonical request from its six lines.
// canonicalHeaders holds one "name:value\n" per signed header.
func canonicalRequest(method, uri, query, canonicalHeaders, signedHeaders, payloadHash string) string {
	return method + "\n" + uri + "\n" + query + "\n" + canonicalHeaders + "\n" + signedHeaders + "\n" + payloadHash
}

// credentialScope is date/region/service/aws4_request.
func credentialScope(date, region, service string) string {
	return date + "/" + region + "/" + service + "/" + scopeTerminator
}

// stringToSign is the request string to sign.
func stringToSign(amzDate, scope, canonicalReq string) string {
	return algorithmV4 + "\n" + amzDate + "\n" + scope + "\n" + hexSHA256([]byte(canonicalReq))
}

// chunkStringToSign is the string to sign of one aws-chunked chunk; chunkHash
// is the hex SHA-256 of the chunk data.
func chunkStringToSign(amzDate, scope, prevSignature, chunkHash string) string {
	return algorithmPayload + "\n" + amzDate + "\n" + scope + "\n" + prevSignature + "\n" + emptySHA256 + "\n" + chunkHash
}

// trailerStringToSign is the string to sign of the trailing headers;
// trailerHash is the hex SHA-256 of the canonical trailer lines.
func trailerStringToSign(amzDate, scope, prevSignature, trailerHash string) string {
	return algorithmTrailer + "\n" + amzDate + "\n" + scope + "\n" + prevSignature + "\n" + trailerHash
}

// deriveSigningKey is HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
func deriveSigningKey(secret, date, region, service string) []byte {
	seed := make([]byte, 0, 4+len(secret))
	seed = append(seed, "AWS4"...)
	seed = append(seed, secret...)
	k := hmacSHA256(seed, []byte(date))
	clear(seed)
	for _, part := range []string{region, service, scopeTerminator} {
		next := hmacSHA256(k, []byte(part))
		clear(k)
		k = next
	}
	return k
}

// signature is the raw HMAC-SHA256 of the string to sign under the signing key.
func signature(signingKey []byte, sts string) []byte {
	return hmacSHA256(signingKey, []byte(sts))
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
