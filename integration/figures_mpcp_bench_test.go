package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/benchutil"
	"github.com/s3seal/s3seal/internal/testenv"
)

// BenchmarkFiguresMultipart (issue 22) measures the multipart figures on the same stack as
// BenchmarkFigures (newFigStack: the shared MinIO, a gateway, the pass-through proxy):
//
//   - awscp: `aws s3 cp` of a 256 MiB file with aws-cli's defaults (8 MiB parts, 10 at a
//     time), straight to MinIO, through the gateway and through the pass-through, rotating;
//     throughput gateway ÷ direct (target 0.80, reported), CPU seconds per GiB of the gateway,
//     MinIO and aws-cli.
//   - awsmpu: the same for 1 GiB with multipart_chunksize 16MB and max_concurrent_requests 8
//     (an AWS_CONFIG_FILE of its own); no target.
//   - complete: the backend requests of one CompleteMultipartUpload of 64 parts, by kind,
//     counted by a pass-through (benchutil.Counter) between a gateway of its own and MinIO;
//     again above the backend's copy limit (backend.max_copy_size lowered). Counts, not
//     times: the same on any machine.
//
// S3SEAL_BENCH_MODE and S3SEAL_BENCH_PHASES as for BenchmarkFigures (the phases' first words:
// awscp, awsmpu, complete); S3SEAL_BENCH_OUT_DIR receives multipart.md. Run by scripts/bench.
func BenchmarkFiguresMultipart(b *testing.B) {
	if os.Getenv("S3SEAL_BENCH_MODE") == "" {
		b.Skip("run by scripts/bench (S3SEAL_BENCH_MODE=quick or full)")
	}
	if b.N > 1 {
		b.Skip("one iteration is the whole benchmark: run with -benchtime 1x")
	}
	cfg := figConfigFor(b)
	benchGatewayBin(b)
	awsBin, awsVersion := figAWS(b)
	s := newFigStack(b, cfg)
	var table benchutil.Table
	start := time.Now()
	only := os.Getenv("S3SEAL_BENCH_PHASES")
	phase := func(name string, fn func(*benchutil.Table)) {
		if only != "" && !slices.Contains(strings.Split(only, ","), strings.Fields(name)[0]) {
			return
		}
		t0 := time.Now()
		fn(&table)
		fmt.Fprintf(os.Stderr, "figures: %s done in %.1f s\n", name, time.Since(t0).Seconds())
	}
	defaults := filepath.Join(s.scratchDir, "aws-defaults.cfg")
	mpu := filepath.Join(s.scratchDir, "aws-16MB-8.cfg")
	writeAWSConfig(b, defaults, "[default]\n")
	writeAWSConfig(b, mpu, "[default]\ns3 =\n  multipart_chunksize = 16MB\n  max_concurrent_requests = 8\n")
	// 1 GiB through aws-cli takes 4-10 s direct and 10-30 s through the gateway here: quick
	// mode (CI) runs one round of direct and gateway, full mode three rounds with the
	// pass-through as well.
	mpuRounds, mpuPass := 1, false
	if cfg.mode == "full" {
		mpuRounds, mpuPass = 3, true
	}
	phase("awscp 256 MiB", func(t *benchutil.Table) {
		s.awsFigures(b, t, awsCase{bin: awsBin, config: defaults, size: 256 << 20, rounds: cfg.rounds, pass: true, target: 0.80,
			label: fmt.Sprintf("aws s3 cp of 256 MiB (%s defaults: 8 MiB parts, 10 concurrent)", awsVersion), short: "aws s3 cp of 256 MiB"})
	})
	phase("awsmpu 1 GiB", func(t *benchutil.Table) {
		s.awsFigures(b, t, awsCase{bin: awsBin, config: mpu, size: 1 << 30, rounds: mpuRounds, pass: mpuPass,
			label: "aws s3 cp of 1 GiB, 16 MiB parts, 8 in parallel (multipart_chunksize 16MB, max_concurrent_requests 8)", short: "aws s3 cp of 1 GiB in 16 MiB parts"})
	})
	phase("complete requests", func(t *benchutil.Table) {
		part := int64(16 << 20)
		if cfg.mode != "full" {
			part = 5 << 20 // the counts do not depend on the part size; S3's smallest part
		}
		s.completeRequests(b, t, 64, part)
	})

	load, _ := os.ReadFile("/proc/loadavg")
	head := fmt.Sprintf("mode %s, %s, load average %s, %.0f s",
		cfg.mode, time.Now().UTC().Format("2006-01-02 15:04 UTC"), strings.Join(strings.Fields(string(load))[:3], " "), time.Since(start).Seconds())
	md := table.Markdown()
	fmt.Printf("\n%s\n\n%s\n%d MET, %d MISSED, %d without target\n", head, md,
		table.Count(benchutil.Met), table.Count(benchutil.Missed), table.Count(benchutil.NoTarget))
	if dir := os.Getenv("S3SEAL_BENCH_OUT_DIR"); dir != "" && only == "" {
		if err := os.WriteFile(filepath.Join(dir, "multipart.md"), []byte(head+"\n\n"+md), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// writeAWSConfig writes an AWS_CONFIG_FILE for aws-cli.
func writeAWSConfig(b *testing.B, name, text string) {
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
}

// figAWS returns the aws-cli on PATH and its version ("aws-cli/1.45.11").
func figAWS(b *testing.B) (string, string) {
	bin := testenv.LookPath(b, "aws")
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		b.Fatalf("aws --version: %v %s", err, out)
	}
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	return bin, v
}

// awsCase is one aws-cli upload figure.
type awsCase struct {
	bin, config  string // aws-cli and its AWS_CONFIG_FILE
	size         int64
	rounds       int
	pass         bool    // the pass-through too (a bound)
	target       float64 // gateway ÷ direct throughput; 0: none
	label, short string  // the rows' names
}

// awsRun is one `aws s3 cp`: its wall time and the CPU seconds it took of aws-cli, the
// gateway and MinIO.
type awsRun struct{ wall, aws, gw, minio float64 }

// awsCp uploads file to key with `aws s3 cp` through tg and checks the object's size there.
func (s *figStack) awsCp(b *testing.B, c awsCase, tg *figTarget, file, key string) awsRun {
	env := []string{
		"AWS_ACCESS_KEY_ID=" + tg.key, "AWS_SECRET_ACCESS_KEY=" + tg.secret, "AWS_DEFAULT_REGION=" + tg.region,
		"AWS_CONFIG_FILE=" + c.config, "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
	}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PYENV_ROOT", "PYENV_VERSION"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, "--endpoint-url", tg.endpoint, "s3", "cp", "--no-progress", "--only-show-errors",
		file, "s3://"+s.bucket+"/"+key)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	g0, m0 := s.gate.cpu(b), s.direct.cpu(b)
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0).Seconds()
	g1, m1 := s.gate.cpu(b), s.direct.cpu(b)
	if err != nil {
		b.Fatalf("%s: aws s3 cp %s: %v\n%s", tg.name, key, err, out.Bytes())
	}
	if n, err := tg.headSize(s.bucket, key); err != nil || n != c.size {
		b.Fatalf("%s: HEAD %s after aws s3 cp: %d bytes of %d, %v", tg.name, key, n, c.size, err)
	}
	st := cmd.ProcessState
	return awsRun{wall: wall, aws: (st.UserTime() + st.SystemTime()).Seconds(), gw: g1 - g0, minio: m1 - m0}
}

// headSize returns the Content-Length of a HEAD of bucket/key.
func (t *figTarget) headSize(bucket, key string) (int64, error) {
	req, err := http.NewRequest(http.MethodHead, t.endpoint+"/"+bucket+"/"+key, nil)
	if err != nil {
		return 0, err
	}
	if err := t.sign(req, emptyHash); err != nil {
		return 0, err
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s HEAD %s: %d", t.name, key, resp.StatusCode)
	}
	return resp.ContentLength, nil
}

// awsFigures: c.rounds rounds of `aws s3 cp` of a c.size file straight to MinIO, through the
// gateway and (c.pass) through the pass-through, the order rotating each round; medians of the
// per-round throughput ratios and of each process's CPU seconds per GiB.
func (s *figStack) awsFigures(b *testing.B, t *benchutil.Table, c awsCase) {
	file := s.streamFile(b, fmt.Sprintf("aws-%d.bin", c.size), c.size)
	defer os.Remove(file)
	targets := []*figTarget{s.direct, s.gate}
	if c.pass {
		targets = append(targets, s.pass)
	}
	per := gib / float64(c.size)
	var ratio, passRatio, gwWall, dirWall, passWall, gwCPU, mDir, mGw, awsDir, awsGw []float64
	for r := 0; r < c.rounds; r++ {
		res := map[string]awsRun{}
		for i := range targets {
			tg := targets[(i+r)%len(targets)]
			key := fmt.Sprintf("aws/%d/%d/%s", c.size, r, tg.name)
			res[tg.name] = s.awsCp(b, c, tg, file, key)
			s.deleteKey(b, key)
		}
		dir, gw, pass := res["direct"], res["gateway"], res["pass-through"]
		ratio, dirWall, gwWall = append(ratio, dir.wall/gw.wall), append(dirWall, dir.wall), append(gwWall, gw.wall)
		if c.pass {
			passRatio, passWall = append(passRatio, dir.wall/pass.wall), append(passWall, pass.wall)
		}
		gwCPU = append(gwCPU, gw.gw*per)
		mDir, mGw = append(mDir, dir.minio*per), append(mGw, gw.minio*per)
		awsDir, awsGw = append(awsDir, dir.aws*per), append(awsGw, gw.aws*per)
		passText := ""
		if c.pass {
			passText = fmt.Sprintf(", pass-through %.2f s", pass.wall)
		}
		fmt.Fprintf(os.Stderr, "figures: %s round %d: direct %.2f s, gateway %.2f s%s | CPU gateway %.2f s, MinIO %.2f / %.2f s, aws-cli %.2f / %.2f s (direct / gateway)\n",
			c.short, r, dir.wall, gw.wall, passText, gw.gw, dir.minio, gw.minio, dir.aws, gw.aws)
	}
	med := benchutil.Median
	times := fmt.Sprintf(" (%.1f s vs %.1f s)", med(gwWall), med(dirWall))
	if c.rounds == 1 {
		times = fmt.Sprintf(" (%.1f s vs %.1f s, 1 round)", med(gwWall), med(dirWall))
	}
	var row benchutil.Figure
	if c.target > 0 {
		row = benchutil.AtLeast(c.label+", gateway ÷ direct throughput", "%.2f", med(ratio), c.target)
		row.Value += times
	} else {
		row = benchutil.Info(c.label+", gateway ÷ direct throughput", fmt.Sprintf("%.2f", med(ratio))+times)
	}
	t.Add(row)
	if c.pass {
		t.Add(benchutil.Bound(c.short+", pass-through ÷ direct", fmt.Sprintf("%.2f (%.1f s)", med(passRatio), med(passWall))))
	}
	t.Add(
		benchutil.Info("gateway CPU per GiB, "+c.short, fmt.Sprintf("%.2f s", med(gwCPU))),
		benchutil.Info("MinIO CPU per GiB, "+c.short+": direct / behind the gateway", fmt.Sprintf("%.2f / %.2f s", med(mDir), med(mGw))),
		benchutil.Info("aws-cli CPU per GiB, "+c.short+": direct / to the gateway", fmt.Sprintf("%.2f / %.2f s", med(awsDir), med(awsGw))),
	)
}

// recordKind names a backend request for the counts: its S3 operation, with " (upload
// records)" when it is about the gateway's reserved keys (FORMAT.md 3.5.3).
func recordKind(r *http.Request) string {
	op, _, key := benchutil.S3Request(r)
	if format.IsReserved(key) || format.IsReserved(r.URL.Query().Get("prefix")) {
		return op + " (upload records)"
	}
	return op
}

// kindsText renders counts per op ("3 (GetObject range 2, ListParts 1)"), ops per operation.
func kindsText(counts map[string]int, ops int) string {
	total := 0
	var parts []string
	for k, n := range counts {
		total += n
		parts = append(parts, fmt.Sprintf("%s %g", k, float64(n)/float64(ops)))
	}
	slices.Sort(parts)
	return fmt.Sprintf("%g (%s)", float64(total)/float64(ops), strings.Join(parts, ", "))
}

// countedUpload runs one multipart upload of parts × partSize through a fresh gateway (extra
// environment on top of the stack's) whose backend is a counting pass-through in front of
// MinIO, and returns the backend requests of the Create, of all the UploadParts and of the
// Complete, by kind.
func (s *figStack) countedUpload(b *testing.B, parts int, partSize int64, extra map[string]string) (create, upload, complete map[string]int) {
	target, err := url.Parse(s.m.Endpoint)
	if err != nil {
		b.Fatal(err)
	}
	ctr := benchutil.NewCounter(target, recordKind)
	srv := httptest.NewServer(ctr)
	defer srv.Close()
	env := map[string]string{}
	for k, v := range s.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	env["GATEWAY_BACKEND_ENDPOINT"] = srv.URL
	gw := testenv.StartGateway(b, env)
	defer func() {
		if err := gw.Stop(b); err != nil {
			b.Logf("gateway exit: %v", err)
		}
	}()
	c := gw.Client(b, figSDK)
	ctx := context.Background()
	key := fmt.Sprintf("counted/%d", time.Now().UnixNano())
	body := testenv.RandomBytes(b, int(partSize), "")

	c0 := ctr.Counts()
	mu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		b.Fatal(err)
	}
	create = ctr.CountsSince(c0)
	c1 := ctr.Counts()
	done := make([]types.CompletedPart, parts)
	var g errgroup.Group
	g.SetLimit(8)
	for i := range done {
		g.Go(func() error {
			num := int32(i + 1)
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &s.bucket, Key: &key, UploadId: mu.UploadId, PartNumber: &num, Body: bytes.NewReader(body)})
			if err == nil {
				done[i] = types.CompletedPart{ETag: out.ETag, PartNumber: &num}
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	upload = ctr.CountsSince(c1)
	c2 := ctr.Counts()
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: mu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		b.Fatal(err)
	}
	complete = ctr.CountsSince(c2)
	// Nothing may be left running after the answer: requests that came later would be counted
	// nowhere, so the run fails on them.
	time.Sleep(500 * time.Millisecond)
	if after := ctr.CountsSince(c2); kindsText(after, 1) != kindsText(complete, 1) {
		b.Fatalf("backend requests after the Complete was answered: %v, then %v", complete, after)
	}
	out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil || out.ContentLength == nil || *out.ContentLength != int64(parts)*partSize {
		b.Fatalf("HEAD %s after Complete: %v, %v", key, out, err)
	}
	s.deleteKey(b, key)
	return create, upload, complete
}

// completeRequests: the backend requests of a multipart upload of parts × partSize through
// the gateway, a row per kind for its CompleteMultipartUpload (CopyObject and UploadPartCopy
// always, 0 when none), then one row each for the Create, an UploadPart and a Complete above
// the backend's copy limit (backend.max_copy_size lowered below the object's size, standing in
// for S3's 5 GiB).
func (s *figStack) completeRequests(b *testing.B, t *benchutil.Table, parts int, partSize int64) {
	shape := fmt.Sprintf("%d parts of %s", parts, benchutil.SizeLabel(partSize))
	create, upload, complete := s.countedUpload(b, parts, partSize, nil)
	const copyLimit = 64 << 20
	_, _, above := s.countedUpload(b, parts, partSize, map[string]string{"GATEWAY_BACKEND_MAX_COPY_SIZE": strconv.Itoa(copyLimit)})
	kinds := map[string]int{"CopyObject": 0, "UploadPartCopy": 0}
	total := 0
	for k, n := range complete {
		kinds[k] = n
		total += n
	}
	var names []string
	for k := range kinds {
		names = append(names, k)
	}
	slices.Sort(names)
	name := "backend requests per CompleteMultipartUpload of " + shape
	t.Add(benchutil.Info(name+", all kinds", strconv.Itoa(total)))
	for _, k := range names {
		t.Add(benchutil.Info(name+": "+k, strconv.Itoa(kinds[k])))
	}
	t.Add(
		benchutil.Info(fmt.Sprintf("%s, above the copy limit (backend.max_copy_size %s)", name, benchutil.SizeLabel(copyLimit)), kindsText(above, 1)),
		benchutil.Info("backend requests per CreateMultipartUpload", kindsText(create, 1)),
		benchutil.Info("backend requests per UploadPart of "+benchutil.SizeLabel(partSize), kindsText(upload, parts)),
	)
}
