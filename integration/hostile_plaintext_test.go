package integration

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestHostilePlaintextSubstitution (issue 10 item 2): an attacker with write access to the
// backend deletes encrypted objects and puts plaintext of their choice at the same keys. A
// gateway with the default configuration refuses them (GET, ranged GET, HEAD: 403
// AccessDenied), with or without SSE-C headers. A gateway that allows plaintext only under
// legacy/ (GATEWAY_ALLOW_UNENCRYPTED=<bucket>/legacy/) refuses them outside that prefix, and
// inside it still refuses every read that asks for encryption (SSE-C headers: 400
// InvalidRequest, as S3 answers encryption parameters for an object not stored with them;
// SSE-KMS headers: 400 InvalidArgument, as on any GET); only a plain read inside the scope gets the stored bytes. No
// refusal carries the substituted bytes.
func TestHostilePlaintextSubstitution(t *testing.T) {
	m := testenv.NewMinIO(t)
	bucket := m.NewBucket(t)
	ssecOn := map[string]string{"GATEWAY_SSEC_ALLOW_HTTP": "true"}
	def, _, _, _ := testenv.StartGatewayMinIO(t, ssecOn)
	scoped, _, _, _ := testenv.StartGatewayMinIO(t, map[string]string{
		"GATEWAY_SSEC_ALLOW_HTTP": "true", "GATEWAY_ALLOW_UNENCRYPTED": bucket + "/legacy/"})
	ctx := context.Background()
	direct := m.Client(t)
	hc := coreHTTPClient()
	_, keyB64, md5B64 := ssecKey(t)
	ssecHdr := http.Header{
		"X-Amz-Server-Side-Encryption-Customer-Algorithm": {"AES256"},
		"X-Amz-Server-Side-Encryption-Customer-Key":       {keyB64},
		"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   {md5B64},
	}

	// The genuine objects, written through the gateway: SSE-KMS (default) and SSE-C.
	gc := def.Client(t)
	genuine := testenv.RandomBytes(t, 200000, marker)
	for _, key := range []string{"obj", "legacy/obj"} {
		if _, err := gc.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader(genuine)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"ssec", "legacy/ssec"} {
		if _, err := gc.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader(genuine),
			SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(keyB64), SSECustomerKeyMD5: aws.String(md5B64)}); err != nil {
			t.Fatal(err)
		}
	}
	// The substitution, straight in MinIO.
	forged := bytes.Repeat([]byte("ATTACKER-CHOSEN-PLAINTEXT "), 4000)
	for _, key := range []string{"obj", "legacy/obj", "ssec", "legacy/ssec"} {
		if _, err := direct.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
		corePutDirect(t, direct, bucket, key, forged, nil)
	}

	do := func(gw *testenv.Gateway, method, key string, hdr http.Header, rng string) coreResult {
		h := hdr.Clone()
		if h == nil {
			h = http.Header{}
		}
		if rng != "" {
			h.Set("Range", rng)
		}
		return coreDo(hc, coreRequest(t, method, gw.Endpoint+"/"+bucket+"/"+key, h, gw.AccessKeyID, gw.SecretAccessKey))
	}
	cases := []struct {
		name   string
		gw     *testenv.Gateway
		key    string
		hdr    http.Header
		status int
		code   string // for GET (HEAD answers carry no body)
	}{
		{"default", def, "obj", nil, http.StatusForbidden, "AccessDenied"},
		{"default", def, "legacy/obj", nil, http.StatusForbidden, "AccessDenied"},
		{"default, SSE-C", def, "ssec", ssecHdr, http.StatusForbidden, "AccessDenied"},
		{"default, SSE-C", def, "legacy/ssec", ssecHdr, http.StatusForbidden, "AccessDenied"},
		{"scoped, outside", scoped, "obj", nil, http.StatusForbidden, "AccessDenied"},
		{"scoped, outside, SSE-C", scoped, "ssec", ssecHdr, http.StatusForbidden, "AccessDenied"},
		{"scoped, inside, SSE-C", scoped, "legacy/ssec", ssecHdr, http.StatusBadRequest, "InvalidRequest"},
		{"scoped, inside, SSE-C", scoped, "legacy/obj", ssecHdr, http.StatusBadRequest, "InvalidRequest"},
		// SSE-KMS headers are refused on any GET/HEAD, as S3 and MinIO do (InvalidArgument).
		{"scoped, inside, SSE-KMS", scoped, "legacy/obj", http.Header{"X-Amz-Server-Side-Encryption": {"aws:kms"}}, http.StatusBadRequest, "InvalidArgument"},
	}
	for _, c := range cases {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			for _, rng := range []string{"", "bytes=100-5099"} {
				r := do(c.gw, method, c.key, c.hdr, rng)
				if r.Status != c.status || (method == http.MethodGet && r.Code != c.code) {
					t.Errorf("%s: %s %s (Range %q): %v, want %d %s", c.name, method, c.key, rng, r, c.status, c.code)
				}
				if bytes.Contains(r.Body, forged[:20]) {
					t.Errorf("%s: %s %s (Range %q): the refusal carries the substituted bytes", c.name, method, c.key, rng)
				}
			}
		}
	}

	// The explicit migration choice: a plain read inside the scope gets what is stored.
	if r := do(scoped, http.MethodGet, "legacy/obj", nil, ""); !r.complete() || !bytes.Equal(r.Body, forged) {
		t.Errorf("scoped, inside: GET %v, want 200 and the stored bytes", r)
	}
	if r := do(scoped, http.MethodGet, "legacy/obj", nil, "bytes=100-5099"); r.Status != http.StatusPartialContent || !bytes.Equal(r.Body, forged[100:5100]) {
		t.Errorf("scoped, inside: ranged GET %v, want 206 and the stored bytes", r)
	}
}
