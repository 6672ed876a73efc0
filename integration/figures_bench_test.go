package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/s3seal/s3seal/internal/benchutil"
	"github.com/s3seal/s3seal/internal/testenv"
)

// figConfig holds the sizes of one BenchmarkFigures run: the issue-14 sizes (full) or smaller
// ones for CI (quick). Every figure is measured in both modes.
type figConfig struct {
	mode        string
	rounds      int           // alternating A/B rounds of the paired figures
	stream      int64         // curl PUT/GET object (512 MiB)
	sweep       []int64       // object sizes of the throughput plot
	sweepBytes  int64         // bytes moved per size and target in the sweep (more ops for small sizes)
	smallFor    time.Duration // per round, target and operation, 4 KiB objects at 8 clients
	listKeys    int           // ListObjectsV2 keys
	rangeObject int64         // object a 1 MiB range is read from (1 GiB)
	rssStream   int64         // object streamed up and down for peak RSS (10 GiB)
	concN       int           // concurrent uploads for peak RSS (64)
	concSize    int64         // size of each (64 MiB)
	mpSize      int64         // multipart upload (1 GiB)
	mpPart      int64         // part size (8 parallel parts at a time)
}

func figConfigFor(b *testing.B) figConfig {
	switch m := os.Getenv("S3SEAL_BENCH_MODE"); m {
	case "full":
		return figConfig{mode: m, rounds: 5, stream: 512 << 20,
			sweep:      []int64{4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20, 256 << 20, 1 << 30},
			sweepBytes: 256 << 20, smallFor: 6 * time.Second, listKeys: 1000, rangeObject: 1 << 30,
			rssStream: 10 << 30, concN: 64, concSize: 64 << 20, mpSize: 1 << 30, mpPart: 16 << 20}
	case "quick":
		return figConfig{mode: "quick", rounds: 3, stream: 64 << 20,
			sweep:      []int64{4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20},
			sweepBytes: 16 << 20, smallFor: 1500 * time.Millisecond, listKeys: 1000, rangeObject: 64 << 20,
			rssStream: 512 << 20, concN: 64, concSize: 4 << 20, mpSize: 128 << 20, mpPart: 8 << 20}
	default:
		b.Fatalf("S3SEAL_BENCH_MODE=%q: quick or full", m)
		return figConfig{}
	}
}

// figTarget is one endpoint the figures are measured against: MinIO directly, the gateway, or
// the pass-through proxy in front of MinIO (which takes MinIO's credentials).
type figTarget struct {
	name, endpoint, key, secret, region string
	pid                                 int // the process serving it
	http                                *http.Client
}

func (t *figTarget) sign(req *http.Request, payload string) error {
	req.Header.Set("X-Amz-Content-Sha256", payload)
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: t.key, SecretAccessKey: t.secret}, req, payload, "s3", t.region, time.Now().UTC())
}

// presign returns a presigned URL (UNSIGNED-PAYLOAD, one hour) for method on bucket/key.
func (t *figTarget) presign(method, bucket, key string) (string, error) {
	req, err := http.NewRequest(method, t.endpoint+"/"+bucket+"/"+key+"?X-Amz-Expires=3600", nil)
	if err != nil {
		return "", err
	}
	u, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: t.key, SecretAccessKey: t.secret}, req, "UNSIGNED-PAYLOAD", "s3", t.region, time.Now().UTC())
	return u, err
}

// put uploads n bytes of body (UNSIGNED-PAYLOAD) and returns the time it took.
func (t *figTarget) put(bucket, key string, body io.Reader, n int64) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodPut, t.endpoint+"/"+bucket+"/"+key, body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = n
	if err := t.sign(req, "UNSIGNED-PAYLOAD"); err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := t.http.Do(req)
	if err != nil {
		return 0, err
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s PUT %s: %d %.300s", t.name, key, resp.StatusCode, msg)
	}
	return time.Since(start), nil
}

// putPart uploads part num of an upload (UNSIGNED-PAYLOAD) and returns its ETag.
func (t *figTarget) putPart(bucket, key, uploadID string, num int32, body io.Reader, n int64) (string, error) {
	u := fmt.Sprintf("%s/%s/%s?partNumber=%d&uploadId=%s", t.endpoint, bucket, key, num, url.QueryEscape(uploadID))
	req, err := http.NewRequest(http.MethodPut, u, body)
	if err != nil {
		return "", err
	}
	req.ContentLength = n
	if err := t.sign(req, "UNSIGNED-PAYLOAD"); err != nil {
		return "", err
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return "", err
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s PUT %s part %d: %d %.300s", t.name, key, num, resp.StatusCode, msg)
	}
	return resp.Header.Get("Etag"), nil
}

// get downloads bucket/key (with a Range header when rng is not empty) into w and returns the
// time and the body length.
func (t *figTarget) get(bucket, key, rng string, w io.Writer) (time.Duration, int64, error) {
	req, err := http.NewRequest(http.MethodGet, t.endpoint+"/"+bucket+"/"+key, nil)
	if err != nil {
		return 0, 0, err
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	if err := t.sign(req, emptyHash); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := t.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		return 0, 0, fmt.Errorf("%s GET %s: %d %.300s", t.name, key, resp.StatusCode, msg)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return 0, n, fmt.Errorf("%s GET %s: %w after %d bytes", t.name, key, err, n)
	}
	return time.Since(start), n, nil
}

// cpu returns the CPU seconds of the target's process so far (0 when it has none).
func (t *figTarget) cpu(b *testing.B) float64 {
	if t.pid == 0 {
		return 0
	}
	s, err := benchutil.CPUSeconds(t.pid)
	if err != nil {
		b.Fatalf("%s: %v", t.name, err)
	}
	return s
}

// figStack is what every figure runs against: the shared MinIO (and its PID), a gateway with
// a metrics listener, the pass-through proxy, and a bucket.
type figStack struct {
	cfg                figConfig
	m                  *testenv.MinIO
	env                map[string]string // the gateway's environment, for fresh gateways
	gw                 *testenv.Gateway
	ops                string // the gateway's metrics base URL
	direct, gate, pass *figTarget
	bucket, scratchDir string
	minioPID           int
}

func newFigStack(b *testing.B, cfg figConfig) *figStack {
	m := testenv.NewMinIO(b)
	k := testenv.NewKMS(b)
	keyID := k.CreateKey(b)
	s := &figStack{cfg: cfg, m: m, scratchDir: b.TempDir()}
	s.minioPID = minioPID(b)
	s.env = coreGatewayEnv(m, m.Endpoint, k.Endpoint, keyID, nil)
	s.gw, s.ops = s.startGateway(b)
	client := func() *http.Client {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		return &http.Client{Transport: tr}
	}
	s.direct = &figTarget{name: "direct", endpoint: m.Endpoint, key: m.AccessKey, secret: m.SecretKey, region: m.Region, pid: s.minioPID, http: client()}
	s.gate = &figTarget{name: "gateway", endpoint: s.gw.Endpoint, key: s.gw.AccessKeyID, secret: s.gw.SecretAccessKey, region: s.gw.Region, pid: s.gw.Cmd.Process.Pid, http: client()}
	pass, pid := startPassProxy(b, m.Endpoint)
	s.pass = &figTarget{name: "pass-through", endpoint: pass, key: m.AccessKey, secret: m.SecretKey, region: m.Region, pid: pid, http: client()}
	s.bucket = m.NewBucket(b)
	return s
}

// startGateway starts a gateway (fresh caches) on the stack's MinIO and KMS key, with a metrics
// listener; it returns it and its metrics base URL.
func (s *figStack) startGateway(b *testing.B) (*testenv.Gateway, string) {
	env := map[string]string{}
	for k, v := range s.env {
		env[k] = v
	}
	ops := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	env["GATEWAY_METRICS_LISTEN"] = ops
	return testenv.StartGateway(b, env), "http://" + ops
}

// minioPID is the PID of the shared MinIO that scripts/test started.
func minioPID(b *testing.B) int {
	f := os.Getenv("S3SEAL_TEST_MINIO_PIDFILE")
	raw, err := os.ReadFile(f)
	if err != nil {
		b.Fatalf("MinIO PID file %q: %v", f, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		b.Fatalf("MinIO PID file %q: %q", f, raw)
	}
	return pid
}

// startPassProxy builds and starts internal/benchutil/passproxy in front of backend and returns
// its endpoint and PID; it is stopped at the end of the benchmark.
func startPassProxy(b *testing.B, backend string) (string, int) {
	bin := filepath.Join(b.TempDir(), "passproxy")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/s3seal/s3seal/internal/benchutil/passproxy").CombinedOutput(); err != nil {
		b.Fatalf("building passproxy: %v\n%s", err, out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	cmd := exec.Command(bin, "-listen", addr, "-target", backend)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("passproxy did not listen on %s: %v", addr, err)
		}
	}
	return "http://" + addr, cmd.Process.Pid
}

// gatewayCounter sums a counter family of the gateway's /metrics over the series whose labels
// include want.
func gatewayCounter(b *testing.B, ops, name string, want map[string]string) float64 {
	resp, err := http.Get(ops + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	fams, err := parseMetrics(string(body))
	if err != nil {
		b.Fatalf("parsing /metrics: %v", err)
	}
	return opsSum(fams, name, want)
}

// BenchmarkFigures (issue 14) measures every figure of docs/BENCHMARKS.md in one run, paired
// figures in alternating A/B rounds with medians of per-round ratios, and prints the table with
// MET/MISSED against each target. S3SEAL_BENCH_MODE=quick (default, CI) or full (the issue's
// sizes); S3SEAL_BENCH_OUT_DIR, when set, receives figures.md and throughput.png. Run through
// scripts/bench (which starts MinIO and the KMS emulator when they are not running).
// S3SEAL_BENCH_PHASES, a comma-separated list of phases' first words (peak, stream, small, list,
// range, multipart, rclone, throughput), runs only those: for A/B runs of one figure.
func BenchmarkFigures(b *testing.B) {
	if os.Getenv("S3SEAL_BENCH_MODE") == "" {
		b.Skip("run by scripts/bench (S3SEAL_BENCH_MODE=quick or full)")
	}
	if b.N > 1 {
		b.Skip("one iteration is the whole benchmark: run with -benchtime 1x")
	}
	cfg := figConfigFor(b)
	benchGatewayBin(b)
	testenv.LookPath(b, "curl")
	s := newFigStack(b, cfg)
	var table benchutil.Table
	start := time.Now()
	only := os.Getenv("S3SEAL_BENCH_PHASES") // "stream,list": only these phases (A/B of one figure)
	phase := func(name string, fn func(*benchutil.Table)) {
		if only != "" && !slices.Contains(strings.Split(only, ","), strings.Fields(name)[0]) {
			return
		}
		t0 := time.Now()
		fn(&table)
		fmt.Fprintf(os.Stderr, "figures: %s done in %.1f s\n", name, time.Since(t0).Seconds())
	}
	var rss benchutil.Table // first, so that a failure of the longest phase shows early
	phase("peak RSS", func(*benchutil.Table) { s.rssFigures(b, &rss) })
	phase("stream", func(t *benchutil.Table) { s.streamFigures(b, t) })
	phase("small objects", func(t *benchutil.Table) { s.smallFigures(b, t) })
	phase("list", func(t *benchutil.Table) { s.listFigures(b, t) })
	phase("range", func(t *benchutil.Table) { s.rangeFigure(b, t) })
	table.Add(rss.Rows...)
	phase("multipart", func(t *benchutil.Table) { s.multipartFigure(b, t) })
	phase("rclone", func(t *benchutil.Table) { s.rcloneFigure(b, t) })
	var series []benchutil.Series
	phase("throughput sweep", func(*benchutil.Table) { series = s.sweep(b) })

	load, _ := os.ReadFile("/proc/loadavg")
	head := fmt.Sprintf("mode %s, %d rounds, %s, load average %s, %.0f s",
		cfg.mode, cfg.rounds, time.Now().UTC().Format("2006-01-02 15:04 UTC"), strings.Join(strings.Fields(string(load))[:3], " "), time.Since(start).Seconds())
	md := table.Markdown()
	fmt.Printf("\n%s\n\n%s\n%d MET, %d MISSED, %d not measured, %d without target\n", head, md,
		table.Count(benchutil.Met), table.Count(benchutil.Missed), table.Count(benchutil.NotMeasured), table.Count(benchutil.NoTarget))
	if dir := os.Getenv("S3SEAL_BENCH_OUT_DIR"); dir != "" && only == "" { // a partial table is not written
		if err := os.WriteFile(filepath.Join(dir, "figures.md"), []byte(head+"\n\n"+md), 0o644); err != nil {
			b.Fatal(err)
		}
		title := fmt.Sprintf("PUT and GET throughput, gateway and MinIO direct (%s mode, 2 shared cores)", cfg.mode)
		if err := benchutil.ThroughputPlot(filepath.Join(dir, "throughput.png"), title, series); err != nil {
			b.Fatal(err)
		}
	}
}

// parseMetrics parses the Prometheus text exposition format.
func parseMetrics(body string) (map[string]*dto.MetricFamily, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(strings.NewReader(body))
}
