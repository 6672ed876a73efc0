package integration

// The negative matrix (issue 3, acceptance 3): requests that must be refused, each through the
// real gateway in front of MinIO, each checked for its S3 error code, its HTTP status, and
// that nothing was stored (MinIO has no object under a fresh key, and an existing object that
// the request tried to overwrite is unchanged). Every refusal has a passing control built the
// same way, so a refusal cannot come from a broken test signer. The aws-chunked cases are in
// negative_streaming_test.go.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// negCred is a client access key.
type negCred struct{ id, secret string }

// negGateway is a gateway with three credentials (from a config file and the environment) in
// front of the shared MinIO, and an object that refused writes must leave alone.
type negGateway struct {
	gw            *testenv.Gateway
	m             *testenv.MinIO
	bucket        string  // every credential may use it
	other         string  // the restricted credential may not
	full          negCred // every bucket, read-write (GATEWAY_ACCESS_KEY_ID)
	restricted    negCred // only bucket
	readOnly      negCred // every bucket, read-only; its secret comes from a file
	existingKey   string
	existingPlain []byte
	existingETag  string // MinIO's ETag of the stored ciphertext
}

func negRandom(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// negStart writes the config file and starts the gateway with it; backend and KMS settings
// come from the environment, as testenv.StartGatewayMinIO sets them.
func negStart(t *testing.T) *negGateway {
	t.Helper()
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	n := &negGateway{
		m: m, bucket: m.NewBucket(t), other: m.NewBucket(t),
		restricted: negCred{"AKRESTRICTED" + negRandom(t, 6), negRandom(t, 20)},
		readOnly:   negCred{"AKREADONLY" + negRandom(t, 6), negRandom(t, 20)},
	}
	dir := t.TempDir()
	secretFile := writeFile(t, dir, "readonly.secret", []byte(n.readOnly.secret+"\n"))
	cfg := fmt.Sprintf(`credentials:
  - access_key_id: %s
    secret_access_key: %s
    buckets: [%s]
  - access_key_id: %s
    secret_access_key_file: %s
    read_only: true
`, n.restricted.id, n.restricted.secret, n.bucket, n.readOnly.id, secretFile)
	cfgPath := writeFile(t, dir, "gateway.yaml", []byte(cfg))
	n.gw = testenv.StartGatewayWithArgs(t, map[string]string{
		"GATEWAY_BACKEND_ENDPOINT":          m.Endpoint,
		"GATEWAY_BACKEND_REGION":            m.Region,
		"GATEWAY_BACKEND_ACCESS_KEY_ID":     m.Data.AccessKey,
		"GATEWAY_BACKEND_SECRET_ACCESS_KEY": m.Data.SecretKey,
		"GATEWAY_BACKEND_PATH_STYLE":        "true",
		"GATEWAY_KMS_ENDPOINT":              k.Endpoint,
		"GATEWAY_KMS_REGION":                k.Region,
		"GATEWAY_KMS_ACCESS_KEY_ID":         "test", // moto accepts any credentials
		"GATEWAY_KMS_SECRET_ACCESS_KEY":     "test",
		"GATEWAY_KMS_KEY_ID":                k.CreateKey(t),
	}, "-config", cfgPath)
	n.full = negCred{n.gw.AccessKeyID, n.gw.SecretAccessKey}

	n.existingKey = "existing/object"
	n.existingPlain = testenv.RandomBytes(t, 256<<10, marker)
	if r := negDo(t, n.put(t, n.full, n.bucket, n.existingKey, n.existingPlain)); r.status != http.StatusOK {
		t.Fatalf("PUT of the existing object: %d %s %s", r.status, r.code, r.message)
	}
	n.existingETag = n.storedETag(t, n.bucket, n.existingKey)
	return n
}

func (n *negGateway) url(bucket, key string) string { return n.gw.Endpoint + "/" + bucket + "/" + key }

// put is a header-signed PUT with the body's SHA-256 as payload hash.
func (n *negGateway) put(t *testing.T, c negCred, bucket, key string, body []byte) *http.Request {
	t.Helper()
	return negRequest(t, http.MethodPut, n.url(bucket, key), body, negSig{cred: c}, nil)
}

// negRequest builds a request with header (signed too) and signs it with sig; an empty
// sig.payload means the body's SHA-256.
func negRequest(t *testing.T, method, url string, body []byte, sig negSig, header http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	for k, v := range header {
		req.Header[k] = v
	}
	if sig.payload == "" {
		sig.payload = negHexSHA256(body)
	}
	negSign(t, req, sig)
	return req
}

// negPresign returns a presigned URL (SigV4 query authentication, UNSIGNED-PAYLOAD) made with
// aws-sdk-go-v2's signer.
func negPresign(t *testing.T, method, url string, sig negSig, expires time.Duration) string {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(expires.Seconds())))
	req.URL.RawQuery = q.Encode()
	at := sig.at
	if at.IsZero() {
		at = time.Now()
	}
	creds := aws.Credentials{AccessKeyID: sig.cred.id, SecretAccessKey: sig.cred.secret}
	u, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		PresignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", sig.serviceOr(), sig.regionOr(), at.UTC())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// negResp is what the gateway answered.
type negResp struct {
	status        int
	code, message string
	body          []byte
}

var (
	negCodeRE    = regexp.MustCompile(`<Code>([^<]*)</Code>`)
	negMessageRE = regexp.MustCompile(`<Message>([^<]*)</Message>`)
)

// negDo sends req and reads the whole answer.
func negDo(t *testing.T, req *http.Request) negResp {
	t.Helper()
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", req.Method, req.URL.Path, err)
	}
	r := negResp{status: resp.StatusCode, body: b}
	if m := negCodeRE.FindSubmatch(b); m != nil {
		r.code = string(m[1])
	}
	if m := negMessageRE.FindSubmatch(b); m != nil {
		r.message = string(m[1])
	}
	return r
}

// storedETag is MinIO's ETag of what it stores under bucket/key (the ciphertext's: every new
// write of the object changes it).
func (n *negGateway) storedETag(t *testing.T, bucket, key string) string {
	t.Helper()
	h, err := n.m.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("direct HEAD %s/%s: %v", bucket, key, err)
	}
	return aws.ToString(h.ETag)
}

// checkExisting asserts the existing object is the one negStart stored: the same stored
// ciphertext in MinIO, and its plaintext through the gateway.
func (n *negGateway) checkExisting(t *testing.T) {
	t.Helper()
	if got := n.storedETag(t, n.bucket, n.existingKey); got != n.existingETag {
		t.Errorf("the existing object was replaced in MinIO (ETag %s, was %s)", got, n.existingETag)
	}
	r := negDo(t, negRequest(t, http.MethodGet, n.url(n.bucket, n.existingKey), nil, negSig{cred: n.full}, nil))
	if r.status != http.StatusOK || !bytes.Equal(r.body, n.existingPlain) {
		t.Errorf("GET of the existing object: %d %s, %d bytes (want its %d bytes)", r.status, r.code, len(r.body), len(n.existingPlain))
	}
}

// refusedWrite sends the write that build makes, once to a fresh key and once over the existing
// object, and asserts status and code each time, then that nothing was stored.
func (n *negGateway) refusedWrite(t *testing.T, status int, code string, build func(key string) *http.Request) {
	t.Helper()
	fresh := "neg/" + strings.ReplaceAll(t.Name(), "/", "-")
	for _, key := range []string{fresh, n.existingKey} {
		r := negDo(t, build(key))
		if r.status != status || r.code != code {
			t.Errorf("%s: %d %s (%s), want %d %s", key, r.status, r.code, r.message, status, code)
		}
	}
	clientsAbsent(t, n.m, n.bucket, fresh)
	n.checkExisting(t)
}

// acceptedWrite sends the control request to a fresh key and asserts it stored want.
func (n *negGateway) acceptedWrite(t *testing.T, req *http.Request, key string, want []byte) {
	t.Helper()
	if r := negDo(t, req); r.status != http.StatusOK {
		t.Fatalf("control %s: %d %s (%s)", key, r.status, r.code, r.message)
	}
	r := negDo(t, negRequest(t, http.MethodGet, n.url(n.bucket, key), nil, negSig{cred: n.full}, nil))
	if r.status != http.StatusOK || !bytes.Equal(r.body, want) {
		t.Fatalf("control %s: GET %d, %d bytes (want the %d written)", key, r.status, len(r.body), len(want))
	}
	checkAtRest(t, n.m, n.bucket, key, want)
}

// TestNegativeHeaderAuth: header-signed writes with a wrong secret, an unknown key, a tampered
// signed header, a skewed clock, and a wrong region or service in the credential scope.
func TestNegativeHeaderAuth(t *testing.T) {
	n := negStart(t)
	body := testenv.RandomBytes(t, 256<<10, marker)
	meta := http.Header{"X-Amz-Meta-Note": {"signed value"}}
	now := time.Now()

	t.Run("control", func(t *testing.T) {
		n.acceptedWrite(t, negRequest(t, http.MethodPut, n.url(n.bucket, "ok/header"), body, negSig{cred: n.full}, meta), "ok/header", body)
	})
	cases := []struct {
		name   string
		sig    negSig
		status int
		code   string
	}{
		{"wrong-secret", negSig{cred: negCred{n.full.id, n.full.secret[:len(n.full.secret)-1] + "x"}}, 403, "SignatureDoesNotMatch"},
		{"unknown-key", negSig{cred: negCred{"AKUNKNOWN" + negRandom(t, 6), n.full.secret}}, 403, "InvalidAccessKeyId"},
		{"clock-20min-behind", negSig{cred: n.full, at: now.Add(-20 * time.Minute)}, 403, "RequestTimeTooSkewed"},
		{"clock-20min-ahead", negSig{cred: n.full, at: now.Add(20 * time.Minute)}, 403, "RequestTimeTooSkewed"},
		{"wrong-region", negSig{cred: n.full, region: "eu-west-1"}, 400, "AuthorizationHeaderMalformed"},
		{"wrong-service", negSig{cred: n.full, service: "ec2"}, 400, "AuthorizationHeaderMalformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n.refusedWrite(t, c.status, c.code, func(key string) *http.Request {
				return negRequest(t, http.MethodPut, n.url(n.bucket, key), body, c.sig, meta)
			})
		})
	}
	t.Run("tampered-signed-header", func(t *testing.T) {
		n.refusedWrite(t, 403, "SignatureDoesNotMatch", func(key string) *http.Request {
			req := negRequest(t, http.MethodPut, n.url(n.bucket, key), body, negSig{cred: n.full}, meta)
			if !strings.Contains(req.Header.Get("Authorization"), "x-amz-meta-note") {
				t.Fatalf("x-amz-meta-note is not signed: %s", req.Header.Get("Authorization"))
			}
			req.Header.Set("X-Amz-Meta-Note", "tampered value")
			return req
		})
	})
}

// negTamperQuery replaces the value of one query parameter in a presigned URL.
func negTamperQuery(t *testing.T, u, name string, edit func(string) string) string {
	t.Helper()
	re := regexp.MustCompile(`([?&]` + regexp.QuoteMeta(name) + `=)([^&]*)`)
	m := re.FindStringSubmatch(u)
	if m == nil {
		t.Fatalf("no %s in %s", name, u)
	}
	out := re.ReplaceAllString(u, "${1}"+edit(m[2]))
	if out == u {
		t.Fatalf("tampering with %s changed nothing", name)
	}
	return out
}

// TestNegativePresigned: presigned PUTs with a tampered query parameter, expired, or with a
// wrong region or service in the credential scope; and a presigned GET whose signed response
// override was changed.
func TestNegativePresigned(t *testing.T) {
	n := negStart(t)
	body := testenv.RandomBytes(t, 256<<10, marker)
	presignedPut := func(t *testing.T, url string) *http.Request {
		req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	sig := negSig{cred: n.full}

	t.Run("control", func(t *testing.T) {
		u := negPresign(t, http.MethodPut, n.url(n.bucket, "ok/presigned"), sig, 15*time.Minute)
		n.acceptedWrite(t, presignedPut(t, u), "ok/presigned", body)
	})
	t.Run("tampered-expires", func(t *testing.T) {
		n.refusedWrite(t, 403, "SignatureDoesNotMatch", func(key string) *http.Request {
			u := negPresign(t, http.MethodPut, n.url(n.bucket, key), sig, 15*time.Minute)
			return presignedPut(t, negTamperQuery(t, u, "X-Amz-Expires", func(string) string { return "901" }))
		})
	})
	t.Run("tampered-date", func(t *testing.T) {
		n.refusedWrite(t, 403, "SignatureDoesNotMatch", func(key string) *http.Request {
			u := negPresign(t, http.MethodPut, n.url(n.bucket, key), negSig{cred: n.full, at: time.Now().Add(-time.Minute).Truncate(time.Second)}, 15*time.Minute)
			// One second later, same day: still valid in time, but not what was signed.
			return presignedPut(t, negTamperQuery(t, u, "X-Amz-Date", func(v string) string {
				at, err := time.Parse("20060102T150405Z", v)
				if err != nil {
					t.Fatal(err)
				}
				return at.Add(time.Second).Format("20060102T150405Z")
			}))
		})
	})
	t.Run("tampered-signature", func(t *testing.T) {
		n.refusedWrite(t, 403, "SignatureDoesNotMatch", func(key string) *http.Request {
			u := negPresign(t, http.MethodPut, n.url(n.bucket, key), sig, 15*time.Minute)
			return presignedPut(t, negTamperQuery(t, u, "X-Amz-Signature", negFlipHex))
		})
	})
	t.Run("expired", func(t *testing.T) {
		n.refusedWrite(t, 403, "AccessDenied", func(key string) *http.Request {
			u := negPresign(t, http.MethodPut, n.url(n.bucket, key), negSig{cred: n.full, at: time.Now().Add(-2 * time.Hour)}, time.Hour)
			return presignedPut(t, u)
		})
		u := negPresign(t, http.MethodGet, n.url(n.bucket, n.existingKey), negSig{cred: n.full, at: time.Now().Add(-2 * time.Hour)}, time.Hour)
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if r := negDo(t, req); r.status != 403 || r.code != "AccessDenied" || r.message != "Request has expired" {
			t.Errorf("expired presigned GET: %d %s %q, want 403 AccessDenied \"Request has expired\"", r.status, r.code, r.message)
		}
	})
	t.Run("wrong-region", func(t *testing.T) {
		n.refusedWrite(t, 400, "AuthorizationQueryParametersError", func(key string) *http.Request {
			return presignedPut(t, negPresign(t, http.MethodPut, n.url(n.bucket, key), negSig{cred: n.full, region: "eu-west-1"}, 15*time.Minute))
		})
	})
	t.Run("wrong-service", func(t *testing.T) {
		n.refusedWrite(t, 400, "AuthorizationQueryParametersError", func(key string) *http.Request {
			return presignedPut(t, negPresign(t, http.MethodPut, n.url(n.bucket, key), negSig{cred: n.full, service: "sts"}, 15*time.Minute))
		})
	})
	t.Run("tampered-response-override", func(t *testing.T) {
		base := n.url(n.bucket, n.existingKey) + "?response-content-type=text%2Fplain"
		u := negPresign(t, http.MethodGet, base, sig, 15*time.Minute)
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if r := negDo(t, req); r.status != 200 || !bytes.Equal(r.body, n.existingPlain) {
			t.Fatalf("control presigned GET: %d %s, %d bytes", r.status, r.code, len(r.body))
		}
		req, _ = http.NewRequest(http.MethodGet, negTamperQuery(t, u, "response-content-type", func(string) string { return "text%2Fhtml" }), nil)
		if r := negDo(t, req); r.status != 403 || r.code != "SignatureDoesNotMatch" {
			t.Errorf("presigned GET with a changed response-content-type: %d %s, want 403 SignatureDoesNotMatch", r.status, r.code)
		}
	})
}

// negFlipHex changes the first hexadecimal digit of s.
func negFlipHex(s string) string {
	if s == "" {
		return s
	}
	c := byte('0')
	if s[0] == '0' {
		c = '1'
	}
	return string(c) + s[1:]
}

// negBucketList is the body of ListBuckets.
type negBucketList struct {
	Names []string `xml:"Buckets>Bucket>Name"`
}

// TestNegativeCredentials: a credential limited to one bucket cannot read, list or write
// another (and ListBuckets shows it only its own); a read-only credential cannot write or
// delete but can read.
func TestNegativeCredentials(t *testing.T) {
	n := negStart(t)
	body := testenv.RandomBytes(t, 64<<10, marker)

	// An object in the other bucket that the restricted credential must not see or change.
	otherKey := "other/object"
	if r := negDo(t, n.put(t, n.full, n.other, otherKey, body)); r.status != 200 {
		t.Fatalf("PUT in the other bucket: %d %s", r.status, r.code)
	}
	otherETag := n.storedETag(t, n.other, otherKey)

	t.Run("restricted-own-bucket", func(t *testing.T) {
		n.acceptedWrite(t, n.put(t, n.restricted, n.bucket, "ok/restricted", body), "ok/restricted", body)
	})
	t.Run("restricted-other-bucket", func(t *testing.T) {
		for _, key := range []string{"neg/restricted", otherKey} {
			if r := negDo(t, n.put(t, n.restricted, n.other, key, body)); r.status != 403 || r.code != "AccessDenied" {
				t.Errorf("PUT %s in another credential's bucket: %d %s, want 403 AccessDenied", key, r.status, r.code)
			}
		}
		clientsAbsent(t, n.m, n.other, "neg/restricted")
		if got := n.storedETag(t, n.other, otherKey); got != otherETag {
			t.Errorf("the other bucket's object was replaced")
		}
		for _, req := range []*http.Request{
			negRequest(t, http.MethodGet, n.url(n.other, otherKey), nil, negSig{cred: n.restricted}, nil),
			negRequest(t, http.MethodGet, n.gw.Endpoint+"/"+n.other+"?list-type=2", nil, negSig{cred: n.restricted}, nil),
			negRequest(t, http.MethodDelete, n.url(n.other, otherKey), nil, negSig{cred: n.restricted}, nil),
		} {
			if r := negDo(t, req); r.status != 403 || r.code != "AccessDenied" || bytes.Contains(r.body, body[:64]) {
				t.Errorf("%s %s?%s with another credential's bucket: %d %s, want 403 AccessDenied", req.Method, req.URL.Path, req.URL.RawQuery, r.status, r.code)
			}
		}
		head := negRequest(t, http.MethodHead, n.url(n.other, otherKey), nil, negSig{cred: n.restricted}, nil)
		if r := negDo(t, head); r.status != 403 {
			t.Errorf("HEAD in another credential's bucket: %d, want 403", r.status)
		}
		if got := n.storedETag(t, n.other, otherKey); got != otherETag {
			t.Errorf("the other bucket's object was changed or deleted")
		}
	})
	t.Run("list-buckets", func(t *testing.T) {
		list := func(c negCred) []string {
			r := negDo(t, negRequest(t, http.MethodGet, n.gw.Endpoint+"/", nil, negSig{cred: c}, nil))
			var l negBucketList
			if r.status != 200 || xml.Unmarshal(r.body, &l) != nil {
				t.Fatalf("ListBuckets as %s: %d %s", c.id, r.status, r.code)
			}
			return l.Names
		}
		if got := list(n.restricted); !slices.Equal(got, []string{n.bucket}) {
			t.Errorf("ListBuckets for the restricted credential shows %v, want only [%s]", got, n.bucket)
		}
		if got := list(n.full); !slices.Contains(got, n.bucket) || !slices.Contains(got, n.other) {
			t.Errorf("ListBuckets for the unrestricted credential shows %v, want both %s and %s", got, n.bucket, n.other)
		}
	})
	t.Run("read-only", func(t *testing.T) {
		// It can read (and its secret, read from a file, works).
		r := negDo(t, negRequest(t, http.MethodGet, n.url(n.bucket, n.existingKey), nil, negSig{cred: n.readOnly}, nil))
		if r.status != 200 || !bytes.Equal(r.body, n.existingPlain) {
			t.Fatalf("read-only GET: %d %s, %d bytes", r.status, r.code, len(r.body))
		}
		n.refusedWrite(t, 403, "AccessDenied", func(key string) *http.Request {
			return n.put(t, n.readOnly, n.bucket, key, body)
		})
		del := negRequest(t, http.MethodDelete, n.url(n.bucket, n.existingKey), nil, negSig{cred: n.readOnly}, nil)
		if r := negDo(t, del); r.status != 403 || r.code != "AccessDenied" {
			t.Errorf("read-only DELETE: %d %s, want 403 AccessDenied", r.status, r.code)
		}
		presigned := negPresign(t, http.MethodPut, n.url(n.bucket, "neg/read-only-presigned"), negSig{cred: n.readOnly}, 15*time.Minute)
		req, _ := http.NewRequest(http.MethodPut, presigned, bytes.NewReader(body))
		if r := negDo(t, req); r.status != 403 || r.code != "AccessDenied" {
			t.Errorf("read-only presigned PUT: %d %s, want 403 AccessDenied", r.status, r.code)
		}
		clientsAbsent(t, n.m, n.bucket, "neg/read-only-presigned")
		n.checkExisting(t)
	})
}
