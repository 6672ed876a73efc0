package integration

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/s3err"
)

// TestParityConditionalPutRacingGet (issue 12, item 9): a PUT with If-Match: * whose body is
// still coming while the same client GETs the key. This MinIO holds the object locked for a
// conditional PUT until its body has arrived, so the GET waits (about 30 s) and the PUT ends
// with MinIO's RequestTimeout, directly as through the gateway (seen when this test also ran
// against MinIO: there the client's next request got a bare 499). What the
// gateway must add: only S3 answers (MinIO then answers 499 on the connection it timed out
// on, which is not one), and connections that recover: the client's next requests succeed.
func TestParityConditionalPutRacingGet(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	for _, side := range []struct {
		name, endpoint, ak, sk string
	}{{"gateway", gw.Endpoint, gw.AccessKeyID, gw.SecretAccessKey}} {
		t.Run(side.name, func(t *testing.T) {
			bucket := m.NewBucket(t)
			url := side.endpoint + "/" + bucket + "/k"
			hc := coreHTTPClient()
			put := func(body io.Reader, n int64, hdr http.Header) *http.Request {
				req, err := http.NewRequest(http.MethodPut, url, body)
				if err != nil {
					t.Fatal(err)
				}
				req.ContentLength = n
				for k, vs := range hdr {
					req.Header[k] = vs
				}
				req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
				if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
					aws.Credentials{AccessKeyID: side.ak, SecretAccessKey: side.sk}, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now().UTC()); err != nil {
					t.Fatal(err)
				}
				return req
			}
			old := bytes.Repeat([]byte("o"), 1000)
			if r := coreDo(hc, put(bytes.NewReader(old), int64(len(old)), nil)); r.Status != http.StatusOK {
				t.Fatalf("first PUT: %v", r)
			}
			pr, pw := io.Pipe()
			done := make(chan coreResult, 1)
			go func() { done <- coreDo(hc, put(pr, 2000, http.Header{"If-Match": {"*"}})) }()
			_, _ = pw.Write(bytes.Repeat([]byte("n"), 1000))
			time.Sleep(300 * time.Millisecond)
			start := time.Now()
			g := coreDo(hc, coreRequest(t, http.MethodGet, url, nil, side.ak, side.sk))
			took := time.Since(start)
			_, _ = pw.Write(bytes.Repeat([]byte("n"), 1000))
			pw.Close()
			p := <-done
			_, listErr := gwOrDirect(t, gw, m, side.name).ListBuckets(context.Background(), &s3.ListBucketsInput{})
			after := coreDo(hc, coreRequest(t, http.MethodGet, url, nil, side.ak, side.sk))
			t.Logf("%s: GET during the PUT %v after %v; PUT %v; ListBuckets after: %v; GET after: %v", side.name, g, took, p, listErr, after)
			if g.Status != http.StatusOK || !bytes.Equal(g.Body, old) {
				t.Errorf("GET during the PUT: %v, want the old object", g)
			}
			if !s3Answer(p) {
				t.Errorf("conditional PUT: %v, want success or an S3 error", p)
			}
			if listErr != nil {
				t.Errorf("ListBuckets after: %v", listErr)
			}
			if after.Status != http.StatusOK || (len(after.Body) != 1000 && len(after.Body) != 2000) {
				t.Errorf("GET after: %v", after)
			}
		})
	}
}

// s3Answer: a 2xx, or an error with an S3 status and an XML code.
func s3Answer(r coreResult) bool {
	return r.Status/100 == 2 || (s3err.IsS3Status(r.Status) && r.Code != "")
}

func gwOrDirect(t *testing.T, gw *testenv.Gateway, m *testenv.MinIO, name string) *s3.Client {
	if name == "gateway" {
		return gw.Client(t)
	}
	return m.Client(t)
}
