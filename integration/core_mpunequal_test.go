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
// another, which has seen nothing of the upload and learns the layout from the object's tail
// (FORMAT.md 3.6: the manifest's runs list every part's size). The stored object must be the
// three parts and then the tail; HEAD must give the plaintext size, GET the plaintext, ranges
// in the middle part, across the boundary of parts 2 and 3 and in the last part the right
// bytes, GET ?partNumber=2 the middle part.
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
	obj, _ := coreMPUpload(t, writer, m.Client(t), bucket, "unequal", parts)
	if len(obj.parts) != 3 || coreTailLength(obj.tail) != len(obj.tail) {
		t.Fatalf("stored object: %d parts, tail of %d bytes", len(obj.parts), len(obj.tail))
	}
	url := gw.Endpoint + "/" + bucket + "/unequal"
	h := coreDo(hc, coreRequest(t, http.MethodHead, url, nil, gw.AccessKeyID, gw.SecretAccessKey))
	if h.Header.Get("Content-Length") != strconv.Itoa(len(plain)) {
		t.Errorf("HEAD Content-Length %s, want %d", h.Header.Get("Content-Length"), len(plain))
	}
	r := coreDo(hc, coreRequest(t, http.MethodGet, url, nil, gw.AccessKeyID, gw.SecretAccessKey))
	if !r.complete() || !bytes.Equal(r.Body, plain) {
		t.Errorf("GET: %v (equal: %v)", r, bytes.Equal(r.Body, plain))
	}
	b2 := len(parts[0]) + len(parts[1]) // the first byte of part 3
	for _, a := range []int{
		len(parts[0]) + 5<<20 + 500, // inside part 2, past where an equal-sized part would end
		b2 - 500,                    // across parts 2 and 3
		len(plain) - 50_000,         // inside the last part
	} {
		rg := coreDo(hc, coreRequest(t, http.MethodGet, url, http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", a, a+999)}}, gw.AccessKeyID, gw.SecretAccessKey))
		if !rg.complete() || !bytes.Equal(rg.Body, plain[a:a+1000]) {
			t.Errorf("range %d-%d: %v", a, a+999, rg)
		}
	}
	if r := coreDo(hc, coreRequest(t, http.MethodGet, url+"?partNumber=2", nil, gw.AccessKeyID, gw.SecretAccessKey)); !r.complete() || !bytes.Equal(r.Body, parts[1]) {
		t.Errorf("GET ?partNumber=2: %v (equal: %v)", r, bytes.Equal(r.Body, parts[1]))
	}
}
