package integration

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestCoreIOFailureIsNotTamper (issue 4: "a distinct, logged error kind for authentication
// failure versus I/O failure"): the connection between gateway and MinIO is cut in the middle
// of an object's body (stored data untouched). The client's download must fail, and the
// gateway must log the failure as an I/O failure, not as kind=tamper; the same object read
// without the cut is whole.
func TestCoreIOFailureIsNotTamper(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyID := k.CreateKey(t)
	proxy := newCoreProxy(t, m.Endpoint)
	gw := testenv.StartGateway(t, coreGatewayEnv(m, proxy.URL, k.Endpoint, keyID, nil))
	bucket := m.NewBucket(t)
	hc := coreHTTPClient()
	plain := testenv.RandomBytes(t, coreTamperPlain, "")
	key := "io/cut"
	corePutGateway(t, hc, gw, bucket, key, plain)
	url := gw.Endpoint + "/" + bucket + "/" + key
	get := func(hdr http.Header) coreResult {
		return coreDo(hc, coreRequest(t, http.MethodGet, url, hdr, gw.AccessKeyID, gw.SecretAccessKey))
	}
	if r := get(nil); !r.complete() || !bytes.Equal(r.Body, plain) {
		t.Fatalf("GET before the cut: %v", r)
	}

	// Cut inside the third segment: the gateway has sent the first segments already.
	proxy.cutAfter("/"+bucket+"/"+key, 2*(coreS+16)+1000)
	for _, hdr := range []http.Header{nil, {"Range": {"bytes=100-"}}} {
		r := get(hdr)
		if !r.failedAsSpecified(http.MethodGet) {
			t.Errorf("GET (Range %q) over a cut backend connection: %v, want a failure", hdr.Get("Range"), r)
		}
	}
	if n := tamperLogLines(t, gw.LogPath, bucket, key); n != 0 {
		log, _ := os.ReadFile(gw.LogPath)
		var lines []string
		for _, l := range strings.Split(string(log), "\n") {
			if strings.Contains(l, "kind=") {
				lines = append(lines, l)
			}
		}
		t.Errorf("a cut backend connection was logged as kind=tamper %d times:\n%s", n, strings.Join(lines, "\n"))
	}
	if log, _ := os.ReadFile(gw.LogPath); !strings.Contains(string(log), "kind=io") {
		t.Errorf("no kind=io line in the gateway log for the cut connection")
	}
}
