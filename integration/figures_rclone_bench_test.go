package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/benchutil"
	"github.com/s3seal/s3seal/internal/testenv"
)

// randomHex returns n random bytes in hex (for rclone's password and credentials).
func randomHex(n int) string {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return hex.EncodeToString(p)
}

const rcloneFigureName = "rclone serve s3 + crypt on the same MinIO, PUT / GET (gateway ÷ rclone)"

// rcloneEnv is the environment of an rclone process: this process's, without AWS_* (rclone
// 1.60 fails while AWS_CA_BUNDLE is set, and nothing of the SDK's environment is meant for
// it) or RCLONE_*, plus extra.
func rcloneEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "RCLONE_") {
			env = append(env, kv)
		}
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// startRclone starts `rclone serve s3` on a loopback port over a crypt remote (random password,
// file names not encrypted, as the gateway does not encrypt keys) over an s3 remote for the
// stack's MinIO, so the buckets it serves are MinIO's buckets; it returns the target and the
// first line of `rclone version`.
func (s *figStack) startRclone(b *testing.B, bin string) (*figTarget, string) {
	dir := b.TempDir()
	conf := filepath.Join(dir, "rclone.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	base := map[string]string{"RCLONE_CONFIG": conf}
	run := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Env = rcloneEnv(base)
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("rclone %s: %v", args[0], err)
		}
		return strings.TrimSpace(string(out))
	}
	version, _, _ := strings.Cut(run("version"), "\n")
	obscured := run("obscure", randomHex(12))
	env := map[string]string{
		"RCLONE_CONFIG":                                  conf,
		"RCLONE_CONFIG_BACKEND_TYPE":                     "s3",
		"RCLONE_CONFIG_BACKEND_PROVIDER":                 "Minio",
		"RCLONE_CONFIG_BACKEND_ENDPOINT":                 s.m.Endpoint,
		"RCLONE_CONFIG_BACKEND_REGION":                   s.m.Region,
		"RCLONE_CONFIG_BACKEND_ACCESS_KEY_ID":            s.m.AccessKey,
		"RCLONE_CONFIG_BACKEND_SECRET_ACCESS_KEY":        s.m.SecretKey,
		"RCLONE_CONFIG_SEALED_TYPE":                      "crypt",
		"RCLONE_CONFIG_SEALED_REMOTE":                    "backend:",
		"RCLONE_CONFIG_SEALED_PASSWORD":                  obscured,
		"RCLONE_CONFIG_SEALED_FILENAME_ENCRYPTION":       "off",
		"RCLONE_CONFIG_SEALED_DIRECTORY_NAME_ENCRYPTION": "false",
	}
	key, secret := "rk"+randomHex(6), "rs"+randomHex(12)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	logf, err := os.Create(filepath.Join(dir, "rclone.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "s3", "sealed:", "--addr", addr, "--auth-key", key+","+secret,
		"--cache-dir", filepath.Join(dir, "cache"), "--log-level", "NOTICE")
	cmd.Env = rcloneEnv(env)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			b.Fatalf("rclone serve s3 did not listen on %s: %v\n%s", addr, err, log)
		}
	}
	return &figTarget{name: "rclone", endpoint: "http://" + addr, key: key, secret: secret, region: "us-east-1",
		pid: cmd.Process.Pid, http: s.gate.http}, version
}

// rcloneFigure compares the gateway with `rclone serve s3` over a crypt remote on the same
// MinIO: a stream-size object PUT and GET with curl (presigned, UNSIGNED-PAYLOAD, as in the
// stream figures), the two alternating which goes first each round; medians of the per-round
// throughput ratios, and each process's CPU per GiB. The rclone binary comes from
// S3SEAL_BENCH_RCLONE_BIN, which scripts/bench --full and --figures set (they build rclone);
// without it (--quick, CI) the figure is not measured.
func (s *figStack) rcloneFigure(b *testing.B, t *benchutil.Table) {
	bin := os.Getenv("S3SEAL_BENCH_RCLONE_BIN")
	if bin == "" {
		t.Add(benchutil.Unmeasured(rcloneFigureName, "-", "measured by scripts/bench --full and --figures only (they build rclone)"))
		return
	}
	rc, version := s.startRclone(b, bin)
	n := s.cfg.stream
	file := s.streamFile(b, "rclone-stream.bin", n)
	defer os.Remove(file)
	type result struct{ put, get, cpuPut, cpuGet float64 }
	var putR, getR, gwMBPut, gwMBGet, rcMBPut, rcMBGet, gwCPUPut, gwCPUGet, rcCPUPut, rcCPUGet []float64
	targets := []*figTarget{s.gate, rc}
	per := gib / float64(n)
	mbps := func(d float64) float64 { return float64(n) / d / 1e6 }
	for r := 0; r < s.cfg.rounds; r++ {
		res := map[string]result{}
		for i := range targets {
			tg := targets[(i+r)%len(targets)]
			key := "rclone-figure/" + tg.name
			up, err := tg.presign("PUT", s.bucket, key)
			if err != nil {
				b.Fatal(err)
			}
			c0 := tg.cpu(b)
			d, _ := curl(b, "-T", file, up)
			c1 := tg.cpu(b)
			down, err := tg.presign("GET", s.bucket, key)
			if err != nil {
				b.Fatal(err)
			}
			g, size := curl(b, "-w", "%{size_download}", down)
			c2 := tg.cpu(b)
			if size != strconv.FormatInt(n, 10) {
				b.Fatalf("%s GET: %s bytes of %d", tg.name, size, n)
			}
			res[tg.name] = result{d.Seconds(), g.Seconds(), c1 - c0, c2 - c1}
		}
		gw, rcl := res["gateway"], res["rclone"]
		putR, getR = append(putR, rcl.put/gw.put), append(getR, rcl.get/gw.get)
		gwMBPut, gwMBGet = append(gwMBPut, mbps(gw.put)), append(gwMBGet, mbps(gw.get))
		rcMBPut, rcMBGet = append(rcMBPut, mbps(rcl.put)), append(rcMBGet, mbps(rcl.get))
		gwCPUPut, gwCPUGet = append(gwCPUPut, gw.cpuPut*per), append(gwCPUGet, gw.cpuGet*per)
		rcCPUPut, rcCPUGet = append(rcCPUPut, rcl.cpuPut*per), append(rcCPUGet, rcl.cpuGet*per)
		fmt.Fprintf(os.Stderr, "figures: rclone round %d: PUT gw %.2fs rclone %.2fs | GET gw %.2fs rclone %.2fs | CPU gw %.2f/%.2f s, rclone %.2f/%.2f s\n",
			r, gw.put, rcl.put, gw.get, rcl.get, gw.cpuPut, gw.cpuGet, rcl.cpuPut, rcl.cpuGet)
	}
	s.checkRcloneSealed(b, "rclone-figure/rclone", n)
	med := benchutil.Median
	t.Add(
		benchutil.Info(fmt.Sprintf("%s, %s with curl [%s]", rcloneFigureName, benchutil.SizeLabel(n), version),
			fmt.Sprintf("%.2f / %.2f (PUT %.0f vs %.0f MB/s, GET %.0f vs %.0f MB/s)", med(putR), med(getR),
				med(gwMBPut), med(rcMBPut), med(gwMBGet), med(rcMBGet))),
		benchutil.Info("CPU per GiB PUT / GET: gateway vs rclone serve s3 + crypt",
			fmt.Sprintf("%.2f / %.2f s vs %.2f / %.2f s", med(gwCPUPut), med(gwCPUGet), med(rcCPUPut), med(rcCPUGet))),
	)
	s.deleteKey(b, "rclone-figure/gateway")
	if _, err := s.m.Client(b).DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String("rclone-figure/rclone.bin")}); err != nil {
		b.Fatal(err)
	}
}

// checkRcloneSealed makes sure rclone stored key through its crypt remote: MinIO holds
// key + ".bin" (crypt's suffix when names are not encrypted), larger than the n bytes put.
func (s *figStack) checkRcloneSealed(b *testing.B, key string, n int64) {
	out, err := s.m.Client(b).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(key + ".bin")})
	if err != nil {
		b.Fatalf("rclone's object in MinIO: %v", err)
	}
	if aws.ToInt64(out.ContentLength) <= n {
		b.Fatalf("rclone's object in MinIO has %d bytes for %d put: not sealed by crypt", aws.ToInt64(out.ContentLength), n)
	}
}
