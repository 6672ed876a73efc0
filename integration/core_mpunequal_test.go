package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestCoreMultipartUnequalParts: a multipart object whose middle part is larger than the first
// (the last part making up the difference), written through one gateway and read through
// another, which has to discover the layout from the backend (FORMAT.md 3.4: "when that does
// not fit, every part is asked for"). HEAD must give the plaintext size, GET the plaintext,
// a range in the last part the right bytes.
func TestCoreMultipartUnequalParts(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyID := k.CreateKey(t)
	writer := testenv.StartGateway(t, coreGatewayEnv(m, m.Endpoint, k.Endpoint, keyID, nil))
	gw := testenv.StartGateway(t, coreGatewayEnv(m, m.Endpoint, k.Endpoint, keyID, nil))
	bucket := m.NewBucket(t)
	hc := coreHTTPClient()
	var parts [][]byte
	var plain []byte
	for _, n := range []int{5 << 20, 5<<20 + 1000, 100_000} {
		p := testenv.RandomBytes(t, n, "")
		parts = append(parts, p)
		plain = append(plain, p...)
	}
	coreMPUpload(t, writer, m.Client(t), bucket, "unequal", parts)
	url := gw.Endpoint + "/" + bucket + "/unequal"
	h := coreDo(hc, coreRequest(t, http.MethodHead, url, nil, gw.AccessKeyID, gw.SecretAccessKey))
	if h.Header.Get("Content-Length") != strconv.Itoa(len(plain)) {
		t.Errorf("HEAD Content-Length %s, want %d", h.Header.Get("Content-Length"), len(plain))
	}
	r := coreDo(hc, coreRequest(t, http.MethodGet, url, nil, gw.AccessKeyID, gw.SecretAccessKey))
	if !r.complete() || !bytes.Equal(r.Body, plain) {
		t.Errorf("GET: %v (equal: %v)", r, bytes.Equal(r.Body, plain))
	}
	a := len(plain) - 50_000 // inside the last part
	rg := coreDo(hc, coreRequest(t, http.MethodGet, url, http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", a, a+999)}}, gw.AccessKeyID, gw.SecretAccessKey))
	if !rg.complete() || !bytes.Equal(rg.Body, plain[a:a+1000]) {
		t.Errorf("range %d-%d in the last part: %v", a, a+999, rg)
	}
}
