package proxy

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/s3seal/s3seal/format"
)

// partsBackend answers every HEAD with the given part count and part size.
type partsBackend struct {
	count, length string
	seen          int
}

func (b *partsBackend) RoundTrip(r *http.Request) (*http.Response, error) {
	b.seen++
	h := http.Header{}
	h.Set("X-Amz-Mp-Parts-Count", b.count)
	h.Set("Content-Length", b.length)
	n, _ := strconv.ParseInt(b.length, 10, 64)
	return &http.Response{StatusCode: http.StatusOK, Header: h, ContentLength: n, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// TestBackendPartCountBounded (issue 10, acceptance 3): a backend claiming 2^40 parts, or a
// part larger than the object, gets an error after one request: the count sizes no
// allocation and no further requests.
func TestBackendPartCountBounded(t *testing.T) {
	for _, c := range []struct{ count, length string }{
		{"1099511627776", "6000000"}, // 2^40 parts
		{"10001", "6000000"},         // one more than S3 allows
		{"-3", "6000000"},
		{"2", "99999999999"}, // a part larger than the object
	} {
		be := &partsBackend{count: c.count, length: c.length}
		g, err := New(Config{Keys: noKeys{}, Backend: Backend{Endpoint: "http://backend.test", Region: "us-east-1", PathStyle: true,
			Transport: be, Credentials: credentials.NewStaticCredentialsProvider("bk", "bs", "")}})
		if err != nil {
			t.Fatal(err)
		}
		q := &request{r: httptest.NewRequest(http.MethodGet, "http://gw.test/bkt/k", nil), bucket: "bkt", key: "k", op: "GetObject"}
		o := &storedObject{header: http.Header{}, storedSize: 12_000_000, backendETag: `"x-2"`, env: &format.Envelope{Kind: format.KindMultipart}}
		_, err = g.discoverLayout(q, o, nil)
		if !errors.Is(err, format.ErrAuth) {
			t.Errorf("count %s, part %s: %v, want an authentication error", c.count, c.length, err)
		}
		if be.seen != 1 {
			t.Errorf("count %s, part %s: %d backend requests, want 1", c.count, c.length, be.seen)
		}
	}
}
