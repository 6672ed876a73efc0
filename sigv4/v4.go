package sigv4

import (
	"crypto/hmac"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CodeInvalidToken is returned for requests that carry a session token: the
// gateway's credentials are long-lived keys and it cannot validate STS tokens.
const CodeInvalidToken = "InvalidToken"

// maxPresignExpires is S3's limit for X-Amz-Expires: seven days.
const maxPresignExpires = 7 * 24 * 60 * 60

// parseQuery splits a raw query string into decoded pairs, keeping order and
// duplicates ('+' decodes to a space, as S3 does).
func parseQuery(raw string) ([]queryParam, *Error) {
	var out []queryParam
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		n, val, _ := strings.Cut(part, "=")
		name, err1 := url.QueryUnescape(n)
		value, err2 := url.QueryUnescape(val)
		if err1 != nil || err2 != nil {
			return nil, newError(CodeInvalidArgument, "the query string is not correctly percent-encoded")
		}
		out = append(out, queryParam{name, value})
	}
	return out, nil
}

func hasParam(params []queryParam, name string) bool {
	for _, p := range params {
		if p.name == name {
			return true
		}
	}
	return false
}

// singleParam returns the value of a parameter that must appear at most once.
func singleParam(params []queryParam, name string) (value string, n int) {
	for _, p := range params {
		if p.name == name {
			value = p.value
			n++
		}
	}
	return value, n
}

// v4Credential is the parsed Credential component.
type v4Credential struct {
	accessKeyID, date, region, service, terminator string
}

// v4Authorization is a parsed "AWS4-HMAC-SHA256 ..." Authorization header.
type v4Authorization struct {
	credential    v4Credential
	signedHeaders []string
	signature     []byte
}

// parseAuthorizationV4 parses the Authorization header of a SigV4 request.
func parseAuthorizationV4(h string) (v4Authorization, *Error) {
	var out v4Authorization
	malformed := func(msg string) (v4Authorization, *Error) {
		return v4Authorization{}, newError(CodeAuthorizationHeaderMalformed, "The authorization header is malformed; "+msg)
	}
	rest, ok := strings.CutPrefix(h, algorithmV4+" ")
	if !ok {
		return malformed("the authorization mechanism must be " + algorithmV4)
	}
	var cred, signed, sig string
	var seen [3]bool
	for _, comp := range strings.Split(rest, ",") {
		comp = strings.TrimSpace(comp)
		k, val, ok := strings.Cut(comp, "=")
		if !ok {
			return malformed("the authorization header requires Credential, SignedHeaders and Signature")
		}
		var idx int
		switch k {
		case "Credential":
			idx, cred = 0, val
		case "SignedHeaders":
			idx, signed = 1, val
		case "Signature":
			idx, sig = 2, val
		default:
			return malformed("unknown component " + strconv.Quote(truncate(k, 32)))
		}
		if seen[idx] {
			return malformed("duplicate component " + k)
		}
		seen[idx] = true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return malformed("the authorization header requires Credential, SignedHeaders and Signature")
	}
	var err *Error
	if out.credential, err = parseCredential(cred, CodeAuthorizationHeaderMalformed); err != nil {
		return v4Authorization{}, err
	}
	if out.signedHeaders, err = parseSignedHeaders(signed, CodeAuthorizationHeaderMalformed); err != nil {
		return v4Authorization{}, err
	}
	if out.signature, err = parseHexSignature(sig, CodeAuthorizationHeaderMalformed); err != nil {
		return v4Authorization{}, err
	}
	return out, nil
}

// credentialContext is how S3 begins a message about the credential: which part of the
// request it was parsing.
func credentialContext(code string) string {
	if code == CodeAuthorizationQueryParamsError {
		return "Error parsing the X-Amz-Credential parameter; "
	}
	return "The authorization header is malformed; "
}

func parseCredential(s, code string) (v4Credential, *Error) {
	parts := strings.Split(s, "/")
	if len(parts) != 5 {
		return v4Credential{}, newError(code, credentialContext(code)+"the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
	}
	for _, p := range parts {
		if p == "" {
			return v4Credential{}, newError(code, "the Credential has an empty component")
		}
	}
	c := v4Credential{parts[0], parts[1], parts[2], parts[3], parts[4]}
	if len(c.date) != 8 || strings.Trim(c.date, "0123456789") != "" {
		return v4Credential{}, newError(code, "the credential date is not in YYYYMMDD form")
	}
	return c, nil
}

func parseSignedHeaders(s, code string) ([]string, *Error) {
	if s == "" {
		return nil, newError(code, "SignedHeaders is empty")
	}
	names := strings.Split(s, ";")
	for i, n := range names {
		if n == "" || !isLowerToken(n) {
			return nil, newError(code, "SignedHeaders must be lower-case header names separated by ';'")
		}
		if i > 0 && names[i-1] >= n {
			return nil, newError(code, "SignedHeaders must be sorted and unique")
		}
	}
	return names, nil
}

func isLowerToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func parseHexSignature(s, code string) ([]byte, *Error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, newError(code, "the signature must be 64 hexadecimal characters")
	}
	return b, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// checkScope verifies region, service and terminator of a credential.
func (v *Verifier) checkScope(c v4Credential, code string) *Error {
	if c.region != v.region {
		return newError(code, "the region '"+truncate(c.region, 64)+"' is wrong; expecting '"+v.region+"'")
	}
	if c.service != v.service {
		return newError(code, "the service '"+truncate(c.service, 64)+"' in the credential scope is wrong; expecting '"+v.service+"'")
	}
	if c.terminator != scopeTerminator {
		return newError(code, "the credential scope must end in '"+scopeTerminator+"'")
	}
	return nil
}

func (v *Verifier) lookupSecret(accessKeyID string) (string, *Error) {
	if v.secrets != nil {
		if s, ok := v.secrets.Secret(accessKeyID); ok {
			return s, nil
		}
	}
	return "", newError(CodeInvalidAccessKeyID, "The AWS Access Key Id you provided does not exist in our records.")
}

// parseHTTPDate parses a Date or SigV2 x-amz-date header value.
func parseHTTPDate(s string) (time.Time, bool) {
	if t, err := http.ParseTime(s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC1123Z, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// requestTimeV4 returns the request time of a header-signed V4 request in
// ISO 8601 basic form, and whether it came from the Date header.
func requestTimeV4(h http.Header) (amzDate string, t time.Time, fromDate bool, err *Error) {
	bad := newError(CodeAccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
	if vals := h.Values("X-Amz-Date"); len(vals) > 0 {
		if len(vals) != 1 {
			return "", time.Time{}, false, bad
		}
		t, e := time.Parse(amzDateFormat, vals[0])
		if e != nil {
			return "", time.Time{}, false, bad
		}
		return vals[0], t, false, nil
	}
	vals := h.Values("Date")
	if len(vals) != 1 {
		return "", time.Time{}, false, bad
	}
	t, ok := parseHTTPDate(vals[0])
	if !ok {
		return "", time.Time{}, false, bad
	}
	t = t.UTC()
	return t.Format(amzDateFormat), t, true, nil
}

func (v *Verifier) checkSkew(t time.Time) *Error {
	d := v.now().Sub(t)
	if d > v.maxSkew || -d > v.maxSkew {
		return newError(CodeRequestTimeTooSkewed, "The difference between the request time and the current time is too large.")
	}
	return nil
}

// checkSignedHeaderSet enforces: host is signed, and every x-amz-* header
// present in the request is signed.
func checkSignedHeaderSet(h http.Header, signed []string, code string) *Error {
	if !containsSorted(signed, "host") {
		return newError(code, "the host header must be signed")
	}
	var unsigned []string
	for name := range h {
		l := strings.ToLower(name)
		if strings.HasPrefix(l, "x-amz-") && !containsSorted(signed, l) {
			unsigned = append(unsigned, l)
		}
	}
	if len(unsigned) > 0 {
		sort.Strings(unsigned)
		return newError(CodeAccessDenied, "There were headers present in the request which were not signed: "+truncate(strings.Join(unsigned, ", "), 256))
	}
	return nil
}

func containsSorted(list []string, s string) bool {
	i := sort.SearchStrings(list, s)
	return i < len(list) && list[i] == s
}

// canonicalHeaders builds the CanonicalHeaders block for the signed names.
func canonicalHeaders(r *http.Request, host string, signed []string) (string, *Error) {
	var b strings.Builder
	for _, name := range signed {
		var vals []string
		switch name {
		case "host":
			vals = []string{host}
		case "content-length":
			vals = r.Header.Values("Content-Length")
			if len(vals) == 0 && r.ContentLength > 0 {
				vals = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		case "transfer-encoding":
			vals = r.TransferEncoding
			if len(vals) == 0 {
				vals = r.Header.Values("Transfer-Encoding")
			}
		default:
			vals = r.Header.Values(name)
		}
		if vals == nil {
			return "", newError(CodeSignatureDoesNotMatch, "the signed header "+strconv.Quote(truncate(name, 64))+" is not present in the request")
		}
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(vals))
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// canonicalRequestV4 is the canonical request of r; skipParam names the
// query parameter left out (X-Amz-Signature for presigned requests).
func canonicalRequestV4(r *http.Request, host string, params []queryParam, signed []string, payloadHash, skipParam string) (string, *Error) {
	ch, err := canonicalHeaders(r, host, signed)
	if err != nil {
		return "", err
	}
	return canonicalRequest(r.Method, canonicalURI(r.URL.Path), canonicalQueryString(params, skipParam),
		ch, strings.Join(signed, ";"), payloadHash), nil
}

func rejectSessionToken(r *http.Request, params []queryParam) *Error {
	if len(r.Header.Values("X-Amz-Security-Token")) > 0 || hasParam(params, "X-Amz-Security-Token") {
		return newError(CodeInvalidToken, "session tokens are not supported by this gateway; use its access keys")
	}
	return nil
}

// payloadModeV4 maps x-amz-content-sha256 to a payload mode.
func payloadModeV4(hash string) (PayloadMode, []byte, *Error) {
	switch hash {
	case unsignedPayload:
		return PayloadUnsigned, nil, nil
	case streamingSignedPayload:
		return PayloadStreamingSigned, nil, nil
	case streamingUnsignedPayloadTrailer:
		return PayloadStreamingUnsignedTrailer, nil, nil
	case streamingSignedPayloadTrailer:
		return PayloadStreamingSignedTrailer, nil, nil
	case streamingECDSAPayload, streamingECDSAPayloadTrailer:
		return 0, nil, newError(CodeNotImplemented, "SigV4a streaming payloads are not supported")
	}
	if b, err := hex.DecodeString(hash); err == nil && len(b) == 32 {
		return PayloadSigned, b, nil
	}
	return 0, nil, newError(CodeInvalidArgument, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.")
}

// decodedLength is the payload length after aws-chunked decoding.
func decodedLength(r *http.Request, mode PayloadMode) (int64, *Error) {
	if !mode.streaming() {
		if r.ContentLength < 0 {
			return -1, nil
		}
		return r.ContentLength, nil
	}
	vals := r.Header.Values("X-Amz-Decoded-Content-Length")
	if len(vals) == 0 {
		return 0, newError(CodeMissingContentLength, "aws-chunked uploads must send x-amz-decoded-content-length")
	}
	n, err := strconv.ParseInt(vals[0], 10, 64)
	if len(vals) != 1 || err != nil || n < 0 || strings.TrimLeft(vals[0], "0123456789") != "" {
		return 0, newError(CodeInvalidArgument, "x-amz-decoded-content-length is not a valid length")
	}
	return n, nil
}

func (v *Verifier) authenticateHeaderV4(r *http.Request, authz string, params []queryParam) (*Auth, *Error) {
	ah, err := parseAuthorizationV4(authz)
	if err != nil {
		return nil, err
	}
	c := ah.credential
	if err := v.checkScope(c, CodeAuthorizationHeaderMalformed); err != nil {
		return nil, err
	}
	secret, err := v.lookupSecret(c.accessKeyID)
	if err != nil {
		return nil, err
	}
	amzDate, t, fromDate, err := requestTimeV4(r.Header)
	if err != nil {
		return nil, err
	}
	if amzDate[:8] != c.date {
		return nil, newError(CodeAuthorizationHeaderMalformed, "Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	if err := v.checkSkew(t); err != nil {
		return nil, err
	}
	if err := checkSignedHeaderSet(r.Header, ah.signedHeaders, CodeAuthorizationHeaderMalformed); err != nil {
		return nil, err
	}
	if fromDate && !containsSorted(ah.signedHeaders, "date") {
		return nil, newError(CodeAuthorizationHeaderMalformed, "the Date header must be signed when x-amz-date is absent")
	}
	if err := rejectSessionToken(r, params); err != nil {
		return nil, err
	}
	hashes := r.Header.Values("X-Amz-Content-Sha256")
	if len(hashes) != 1 {
		return nil, newError(CodeInvalidRequest, "Missing required header for this request: x-amz-content-sha256")
	}
	mode, digest, err := payloadModeV4(hashes[0])
	if err != nil {
		return nil, err
	}
	host := v.signedHost(r)
	creq, err := canonicalRequestV4(r, host, params, ah.signedHeaders, hashes[0], "")
	if err != nil {
		return nil, err
	}
	scope := credentialScope(c.date, c.region, c.service)
	key := v.signingKey(c.accessKeyID, secret, c.date, c.region, c.service)
	want := signature(key, stringToSign(amzDate, scope, creq))
	if !hmac.Equal(want, ah.signature) {
		clear(key)
		return nil, errSignature()
	}
	n, err := decodedLength(r, mode)
	if err != nil {
		clear(key)
		return nil, err
	}
	return &Auth{
		AccessKeyID: c.accessKeyID, Method: HeaderV4, Payload: mode,
		SignedHeaders: ah.signedHeaders, DecodedLength: n, Host: host,
		signingKey: key, amzDate: amzDate, scope: scope,
		seedSignature: hex.EncodeToString(want), payloadSHA256: digest,
	}, nil
}

func (v *Verifier) authenticatePresignedV4(r *http.Request, params []queryParam) (*Auth, *Error) {
	const code = CodeAuthorizationQueryParamsError
	names := []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"}
	vals := make([]string, len(names))
	for i, n := range names {
		val, count := singleParam(params, n)
		if count != 1 {
			return nil, newError(code, "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
		vals[i] = val
	}
	algorithm, credStr, amzDate, expiresStr, signedStr, sigStr := vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]
	if algorithm == "AWS4-ECDSA-P256-SHA256" {
		return nil, newError(CodeNotImplemented, "SigV4a presigned URLs are not supported")
	}
	if algorithm != algorithmV4 {
		return nil, newError(code, "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
	}
	c, err := parseCredential(credStr, code)
	if err != nil {
		return nil, err
	}
	if err := v.checkScope(c, code); err != nil {
		return nil, err
	}
	signed, err := parseSignedHeaders(signedStr, code)
	if err != nil {
		return nil, err
	}
	sig, err := parseHexSignature(sigStr, code)
	if err != nil {
		return nil, err
	}
	t, perr := time.Parse(amzDateFormat, amzDate)
	if perr != nil {
		return nil, newError(code, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	if amzDate[:8] != c.date {
		return nil, newError(code, "Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	expires, perr := strconv.Atoi(expiresStr)
	switch {
	case perr != nil || strings.Trim(strings.TrimPrefix(expiresStr, "-"), "0123456789") != "":
		return nil, newError(code, "X-Amz-Expires should be a number")
	case expires < 0:
		return nil, newError(code, "X-Amz-Expires must be non-negative")
	case expires > maxPresignExpires:
		return nil, newError(code, "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds")
	case expires == 0: // AWS documents 1 second as the minimum
		return nil, newError(code, "X-Amz-Expires must be between 1 and 604800 seconds (one week)")
	}
	secret, err := v.lookupSecret(c.accessKeyID)
	if err != nil {
		return nil, err
	}
	now := v.now()
	if now.After(t.Add(time.Duration(expires) * time.Second)) {
		return nil, newError(CodeAccessDenied, "Request has expired")
	}
	if t.After(now.Add(v.maxSkew)) {
		return nil, newError(CodeAccessDenied, "Request is not valid yet")
	}
	if err := checkSignedHeaderSet(r.Header, signed, code); err != nil {
		return nil, err
	}
	if err := rejectSessionToken(r, params); err != nil {
		return nil, err
	}
	payloadHash := unsignedPayload
	if qh, n := singleParam(params, "X-Amz-Content-Sha256"); n > 1 {
		return nil, newError(code, "X-Amz-Content-Sha256 given more than once")
	} else if n == 1 {
		payloadHash = qh
	} else if hv := r.Header.Values("X-Amz-Content-Sha256"); len(hv) == 1 && containsSorted(signed, "x-amz-content-sha256") {
		payloadHash = hv[0]
	}
	mode, digest, err := payloadModeV4(payloadHash)
	if err != nil {
		return nil, err
	}
	if mode != PayloadSigned && mode != PayloadUnsigned {
		return nil, newError(CodeInvalidRequest, "aws-chunked payloads cannot be used with presigned URLs")
	}
	host := v.signedHost(r)
	creq, err := canonicalRequestV4(r, host, params, signed, payloadHash, "X-Amz-Signature")
	if err != nil {
		return nil, err
	}
	scope := credentialScope(c.date, c.region, c.service)
	key := v.signingKey(c.accessKeyID, secret, c.date, c.region, c.service)
	want := signature(key, stringToSign(amzDate, scope, creq))
	if !hmac.Equal(want, sig) {
		clear(key)
		return nil, errSignature()
	}
	n, _ := decodedLength(r, mode)
	return &Auth{
		AccessKeyID: c.accessKeyID, Method: PresignedV4, Payload: mode,
		SignedHeaders: signed, DecodedLength: n, Host: host,
		signingKey: key, amzDate: amzDate, scope: scope,
		seedSignature: hex.EncodeToString(want), payloadSHA256: digest,
	}, nil
}
