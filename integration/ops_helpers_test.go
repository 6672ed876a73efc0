package integration

// Helpers of the operations tests (ops_*_test.go): scraping /metrics, gateways with a metrics
// listener, a private moto_server, signed raw requests.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/s3seal/s3seal/internal/testenv"
)

// opsKMSDummy is the static credential moto_server accepts (any works).
const opsKMSDummy = "test"

// opsGatewayEnv is the environment of a gateway in front of MinIO m with KMS endpoint kmsEP and
// key keyID, plus a metrics listener on a free port (returned as a base URL).
func opsGatewayEnv(t *testing.T, m *testenv.MinIO, kmsEP, keyID string) (map[string]string, string) {
	t.Helper()
	ops := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	return map[string]string{
		"GATEWAY_BACKEND_ENDPOINT":          m.Endpoint,
		"GATEWAY_BACKEND_REGION":            m.Region,
		"GATEWAY_BACKEND_ACCESS_KEY_ID":     m.Data.AccessKey,
		"GATEWAY_BACKEND_SECRET_ACCESS_KEY": m.Data.SecretKey,
		"GATEWAY_BACKEND_PATH_STYLE":        "true",
		"GATEWAY_KMS_ENDPOINT":              kmsEP,
		"GATEWAY_KMS_REGION":                "us-east-1",
		"GATEWAY_KMS_ACCESS_KEY_ID":         opsKMSDummy,
		"GATEWAY_KMS_SECRET_ACCESS_KEY":     opsKMSDummy,
		"GATEWAY_KMS_KEY_ID":                keyID,
		"GATEWAY_METRICS_LISTEN":            ops,
	}, "http://" + ops
}

// opsConfigFile writes a YAML config file for -config and returns its path.
func opsConfigFile(t *testing.T, yml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(p, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// opsGet fetches url and returns status and body.
func opsGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// opsScrape fetches and parses <ops>/metrics (text exposition format).
func opsScrape(t *testing.T, ops string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := opsGet(t, ops+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// opsSum is the sum over the series of family name whose labels include want: counter and gauge
// values, histogram sample counts.
func opsSum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// opsLabels is a shorthand for label maps: opsLabels("op", "PutObject", "status", "200").
func opsLabels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// opsSign signs req for the gateway credentials with the given payload hash.
func opsSign(t *testing.T, req *http.Request, gw *testenv.Gateway, payloadHash string) {
	t.Helper()
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: gw.AccessKeyID, SecretAccessKey: gw.SecretAccessKey}, req, payloadHash,
		"s3", gw.Region, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
}

const opsEmptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// opsGen is a deterministic stream of n pseudo-random bytes (seeded), optionally throttled:
// it sleeps pause before every pauseEvery bytes.
type opsGen struct {
	r          *rand.ChaCha8
	left       int64
	pauseEvery int64
	pause      time.Duration
	sincePause int64
}

func newOpsGen(seed byte, n int64) *opsGen {
	var s [32]byte
	s[0] = seed
	return &opsGen{r: rand.NewChaCha8(s), left: n}
}

func (g *opsGen) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if g.pauseEvery > 0 {
		if g.sincePause >= g.pauseEvery {
			time.Sleep(g.pause)
			g.sincePause = 0
		}
		if rest := g.pauseEvery - g.sincePause; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	_, _ = g.r.Read(p)
	g.left -= int64(len(p))
	g.sincePause += int64(len(p))
	return len(p), nil
}

// opsMoto is a moto_server of the test's own, which it can stop and start again on the same port
// (its keys do not survive a restart: moto keeps state in memory).
type opsMoto struct {
	Endpoint string
	bin      string
	port     int
	log      string
	cmd      *exec.Cmd
}

func newOpsMoto(t *testing.T) *opsMoto {
	t.Helper()
	bin := os.Getenv("S3SEAL_TEST_MOTO_BIN")
	testenv.Require(t, "$S3SEAL_TEST_MOTO_BIN (moto_server)", bin != "")
	port := testenv.FreePort(t)
	k := &opsMoto{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), bin: bin, port: port,
		log: filepath.Join(t.TempDir(), "moto.log")}
	k.Start(t)
	t.Cleanup(func() { k.Stop(t) })
	return k
}

// Start runs moto_server and waits until it answers.
func (k *opsMoto) Start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(k.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(k.bin, "-H", "127.0.0.1", "-p", fmt.Sprint(k.port))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group: Stop ends it and its children
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting moto_server: %v", err)
	}
	k.cmd = cmd
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(k.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s", k.Endpoint)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends the moto_server this helper started (its process group) and waits for it.
func (k *opsMoto) Stop(t *testing.T) {
	t.Helper()
	if k.cmd == nil {
		return
	}
	pgid := k.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = k.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	k.cmd = nil
}
