package sigv4

import (
	"crypto/sha256"
	"net"
	"net/http"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// SecretStore returns the secret for an access key id (the proxy owns
// credentials).
type SecretStore interface {
	Secret(accessKeyID string) (secret string, ok bool)
}

// Config configures a Verifier. Zero values get the documented defaults.
type Config struct {
	// Region clients sign for; the credential scope must match. Default "us-east-1".
	Region string
	// Service in the credential scope. Default "s3".
	Service string
	// Secrets looks up access keys. Without it every request is InvalidAccessKeyId.
	Secrets SecretStore
	// MaxSkew is the largest accepted difference between the request time and
	// Now (RequestTimeTooSkewed). Default 15 minutes.
	MaxSkew time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// TrustForwardedHeaders uses X-Forwarded-Host (with the default port of
	// X-Forwarded-Proto removed) as the signed host. Only set this behind a
	// proxy that overwrites those headers.
	TrustForwardedHeaders bool
	// SigV2 accepts legacy Signature Version 2 header and query auth.
	SigV2 bool
	// BaseDomains are the virtual-hosted-style base domains (for example
	// "s3.example.com"); SigV2 needs them to find the bucket in the Host.
	BaseDomains []string
	// MaxChunkSize is the largest signed aws-chunked chunk that is buffered
	// for verification. Default 16 MiB.
	MaxChunkSize int64
}

// signingKeyCacheSize bounds the signing-key cache; a key is valid for one
// day, so this is roughly the number of distinct access keys in use per day.
const signingKeyCacheSize = 4096

type signingKeyID struct {
	accessKeyID, date, region, service string
	secretFingerprint                  [16]byte
}

// Verifier authenticates requests. It is safe for concurrent use.
type Verifier struct {
	region, service string
	secrets         SecretStore
	maxSkew         time.Duration
	now             func() time.Time
	trustForwarded  bool
	sigV2           bool
	baseDomains     []string
	maxChunkSize    int64
	// keys caches derived signing keys per (access key, date, region,
	// service, secret fingerprint). Values are arrays so a Get copies the
	// key out under the cache lock.
	keys *lru.Cache[signingKeyID, [32]byte]
}

// NewVerifier returns a Verifier for c.
func NewVerifier(c Config) *Verifier {
	v := &Verifier{
		region:         c.Region,
		service:        c.Service,
		secrets:        c.Secrets,
		maxSkew:        c.MaxSkew,
		now:            c.Now,
		trustForwarded: c.TrustForwardedHeaders,
		sigV2:          c.SigV2,
		maxChunkSize:   c.MaxChunkSize,
	}
	if v.region == "" {
		v.region = "us-east-1"
	}
	if v.service == "" {
		v.service = "s3"
	}
	if v.maxSkew <= 0 {
		v.maxSkew = 15 * time.Minute
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxChunkSize <= 0 {
		v.maxChunkSize = 16 << 20
	}
	for _, d := range c.BaseDomains {
		d = strings.ToLower(strings.Trim(strings.TrimSpace(d), "."))
		if d != "" {
			v.baseDomains = append(v.baseDomains, d)
		}
	}
	cache, err := lru.New[signingKeyID, [32]byte](signingKeyCacheSize)
	if err != nil { // only for a non-positive size
		panic("sigv4: " + err.Error())
	}
	v.keys = cache
	return v
}

// Method is how a request was authenticated.
type Method int

// Authentication methods.
const (
	HeaderV4    Method = iota + 1 // Authorization: AWS4-HMAC-SHA256 ...
	PresignedV4                   // X-Amz-Algorithm=AWS4-HMAC-SHA256 query
	HeaderV2                      // Authorization: AWS AKID:signature
	PresignedV2                   // AWSAccessKeyId, Expires, Signature query
)

func (m Method) String() string {
	switch m {
	case HeaderV4:
		return "HeaderV4"
	case PresignedV4:
		return "PresignedV4"
	case HeaderV2:
		return "HeaderV2"
	case PresignedV2:
		return "PresignedV2"
	}
	return "Method(?)"
}

// PayloadMode is what the client promised about the body.
type PayloadMode int

// Payload modes.
const (
	PayloadSigned                   PayloadMode = iota + 1 // x-amz-content-sha256 = hex SHA-256 of the body
	PayloadUnsigned                                        // UNSIGNED-PAYLOAD, or presigned without a hash
	PayloadStreamingSigned                                 // STREAMING-AWS4-HMAC-SHA256-PAYLOAD
	PayloadStreamingUnsignedTrailer                        // STREAMING-UNSIGNED-PAYLOAD-TRAILER
	PayloadStreamingSignedTrailer                          // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
	PayloadNone                                            // SigV2: only Content-MD5 protects the body
)

func (p PayloadMode) String() string {
	switch p {
	case PayloadSigned:
		return "PayloadSigned"
	case PayloadUnsigned:
		return "PayloadUnsigned"
	case PayloadStreamingSigned:
		return "PayloadStreamingSigned"
	case PayloadStreamingUnsignedTrailer:
		return "PayloadStreamingUnsignedTrailer"
	case PayloadStreamingSignedTrailer:
		return "PayloadStreamingSignedTrailer"
	case PayloadNone:
		return "PayloadNone"
	}
	return "PayloadMode(?)"
}

// streaming reports whether the body is aws-chunked.
func (p PayloadMode) streaming() bool {
	return p == PayloadStreamingSigned || p == PayloadStreamingUnsignedTrailer || p == PayloadStreamingSignedTrailer
}

// Auth is a successfully authenticated request.
type Auth struct {
	AccessKeyID   string
	Method        Method
	Payload       PayloadMode
	SignedHeaders []string // lower-case; nil for SigV2
	// DecodedLength is the payload length after aws-chunked decoding:
	// Content-Length for plain bodies, x-amz-decoded-content-length for
	// aws-chunked; -1 if unknown (no length given).
	DecodedLength int64
	// Host is the host the client signed: r.Host, or X-Forwarded-Host when
	// Config.TrustForwardedHeaders is set.
	Host string

	// What Body needs to continue the signature chain.
	signingKey    []byte // a private copy; zeroed when the body is done
	amzDate       string
	scope         string
	seedSignature string // hex request signature
	payloadSHA256 []byte // declared digest for PayloadSigned
	maxChunkSize  int64
	integrity     integrityHeaders // captured at Authenticate time
}

// Authenticate checks the request's signature (header or query; V4, or V2 if
// enabled) without reading the body: credential lookup (InvalidAccessKeyId),
// scope (date, region, service, "aws4_request"), clock skew, presign expiry
// (at most 7 days, "Request has expired" AccessDenied), signed headers
// present (host always signed, every x-amz-* header signed), and a
// constant-time signature comparison. It also validates the integrity headers
// (Content-MD5, x-amz-checksum-*, x-amz-trailer, x-amz-decoded-content-length)
// so a malformed request is refused before its body is read.
func (v *Verifier) Authenticate(r *http.Request) (*Auth, error) {
	params, perr := parseQuery(r.URL.RawQuery)
	authz, hasAuthz := r.Header["Authorization"]
	v4Query := hasParam(params, "X-Amz-Algorithm") || hasParam(params, "X-Amz-Credential") || hasParam(params, "X-Amz-Signature")
	v2Query := hasParam(params, "AWSAccessKeyId") || hasParam(params, "Signature")
	if hasAuthz && (v4Query || v2Query) {
		return nil, newError(CodeInvalidArgument, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
	}
	if perr != nil {
		return nil, perr
	}
	var a *Auth
	var err *Error
	switch {
	case hasAuthz:
		if len(authz) != 1 {
			return nil, newError(CodeInvalidArgument, "more than one Authorization header")
		}
		a, err = v.authenticateHeader(r, authz[0], params)
	case v4Query:
		a, err = v.authenticatePresignedV4(r, params)
	case v2Query:
		if !v.sigV2 {
			return nil, errV2Disabled()
		}
		a, err = v.authenticatePresignedV2(r, params)
	default:
		return nil, newError(CodeAccessDenied, "Anonymous access is not allowed; sign the request.")
	}
	if err != nil {
		return nil, err
	}
	a.maxChunkSize = v.maxChunkSize
	complete := r.Method == http.MethodPost && hasParam(params, "uploadId")
	h := r.Header
	if complete {
		h = withoutPartCounts(h)
	}
	if a.integrity, err = parseIntegrityHeaders(h, a.Payload); err != nil {
		a.zero()
		return nil, err
	}
	if complete && !a.integrity.trailer {
		// CompleteMultipartUpload: x-amz-checksum-* headers carry the
		// checksum of the whole object, not of the XML body; they are the
		// proxy's business, not something to verify against this body.
		a.integrity.hasChecksum, a.integrity.checksumWant = false, nil
	}
	return a, nil
}

// withoutPartCounts returns h, or a copy of it whose x-amz-checksum-*
// values lose a "-<digits>" suffix: CompleteMultipartUpload's whole-object
// checksum of a COMPOSITE upload is "<base64>-<part count>", which the
// proxy checks in full; here only the base64 value's form is checked.
func withoutPartCounts(h http.Header) http.Header {
	var out http.Header
	for name, vals := range h {
		if !strings.HasPrefix(strings.ToLower(name), "x-amz-checksum-") {
			continue
		}
		for i, v := range vals {
			j := strings.IndexByte(v, '-')
			if j < 0 || j == len(v)-1 || strings.Trim(v[j+1:], "0123456789") != "" {
				continue
			}
			if out == nil {
				out = h.Clone()
			}
			out[name][i] = v[:j]
		}
	}
	if out == nil {
		return h
	}
	return out
}

func (v *Verifier) authenticateHeader(r *http.Request, authz string, params []queryParam) (*Auth, *Error) {
	switch {
	case strings.HasPrefix(authz, algorithmV4+" "):
		return v.authenticateHeaderV4(r, authz, params)
	case strings.HasPrefix(authz, "AWS "):
		if !v.sigV2 {
			return nil, errV2Disabled()
		}
		return v.authenticateHeaderV2(r, authz)
	case strings.HasPrefix(authz, "AWS4-ECDSA-P256-SHA256"):
		return nil, newError(CodeNotImplemented, "SigV4a (AWS4-ECDSA-P256-SHA256) is not supported")
	}
	return nil, newError(CodeInvalidArgument, "Unsupported Authorization Type")
}

func errV2Disabled() *Error {
	return newError(CodeInvalidRequest, "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
}

// signedHost is the host the client signed.
func (v *Verifier) signedHost(r *http.Request) string {
	if !v.trustForwarded {
		return r.Host
	}
	fh := firstListValue(r.Header.Get("X-Forwarded-Host"))
	if fh == "" {
		return r.Host
	}
	proto := strings.ToLower(firstListValue(r.Header.Get("X-Forwarded-Proto")))
	if h, port, err := net.SplitHostPort(fh); err == nil &&
		(proto == "https" && port == "443" || proto == "http" && port == "80") {
		if strings.Contains(h, ":") { // IPv6 literal
			return "[" + h + "]"
		}
		return h
	}
	return fh
}

func firstListValue(s string) string {
	if i := strings.IndexByte(s, ','); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// signingKey returns a private copy of the signing key for the scope, from
// the cache or freshly derived.
func (v *Verifier) signingKey(accessKeyID, secret, date, region, service string) []byte {
	id := signingKeyID{accessKeyID: accessKeyID, date: date, region: region, service: service}
	fp := sha256.Sum256([]byte("s3seal sigv4 cache\x00" + secret))
	copy(id.secretFingerprint[:], fp[:])
	k, ok := v.keys.Get(id)
	if !ok {
		derived := deriveSigningKey(secret, date, region, service)
		copy(k[:], derived)
		clear(derived)
		v.keys.Add(id, k)
	}
	out := make([]byte, len(k))
	copy(out, k[:])
	clear(k[:])
	return out
}

func (a *Auth) zero() {
	clear(a.signingKey)
	a.signingKey = nil
}
