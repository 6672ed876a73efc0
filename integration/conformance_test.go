package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3seal/s3seal/internal/testenv"
)

// S3 conformance: versitygw's integration suite (`versitygw test`, built into the tool cache by
// scripts/test's ensure_versitygw), run against the shared MinIO directly and through a
// gateway in front of it (StartGatewayMinIO, the environment every integration test uses).
// scripts/test runs it as a step of its own with S3SEAL_TEST_CONFORMANCE=1; elsewhere it is
// skipped, since it takes minutes and says nothing the rest of the suite needs.
//
// Every test is its own process (`versitygw test ... NAME`) with a timeout, so a test that
// panics or hangs (full-flow panics part-way against MinIO) costs that test only. Results:
//
//   - testdata/conformance/versitygw-pass.txt: the tests that pass through the gateway. One of
//     them failing through the gateway fails this test.
//   - testdata/conformance/versitygw-lost.txt: "name: reason" for every test that passes
//     against MinIO directly but not through the gateway. A lost test missing there fails this
//     test, so the number passing through the gateway can only go up.
//
// Tests that pass through the gateway but are not on the baseline, and lost-list entries that
// now pass, are reported (update the files); they do not fail the run.

const (
	conformanceTimeout = 60 * time.Second // per test
	conformancePass    = "../testdata/conformance/versitygw-pass.txt"
	conformanceLost    = "../testdata/conformance/versitygw-lost.txt"
)

// conformanceWorkers is how many tests run at once per target, direct and through the gateway
// (both at the same time), each on a MinIO of its own; S3SEAL_CONFORMANCE_WORKERS overrides it.
func conformanceWorkers(t *testing.T) int {
	if s := os.Getenv("S3SEAL_CONFORMANCE_WORKERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("S3SEAL_CONFORMANCE_WORKERS=%q: want a positive number", s)
		}
		return n
	}
	return 2
}

// conformanceRetries is how many more times a test that would fail the run is run alone on
// both sides: the suite has timing-dependent tests that fail now and then (in CI a baseline
// test failed twice in a row once), while a real regression fails every time.
const conformanceRetries = 2

type confResult struct {
	pass bool
	why  string // first failure line, "timeout", "exit ..." when not passed
	dur  time.Duration
}

func TestConformanceVersitygw(t *testing.T) {
	if os.Getenv("S3SEAL_TEST_CONFORMANCE") != "1" {
		t.Skip("runs as its own step (scripts/test sets S3SEAL_TEST_CONFORMANCE=1)")
	}
	bin := os.Getenv("S3SEAL_TEST_VERSITYGW_BIN")
	testenv.Require(t, "$S3SEAL_TEST_VERSITYGW_BIN (versitygw, built by scripts/test)", bin != "")
	names := conformanceTests(t, bin)
	if only := os.Getenv("S3SEAL_CONFORMANCE_RUN"); only != "" { // for investigating a few tests
		re := regexp.MustCompile(only)
		names = slices.DeleteFunc(names, func(n string) bool { return !re.MatchString(n) })
	}
	t.Logf("%d versitygw %s tests", len(names), "v1.8.0")

	// The verdict is printed last, after the backends' log tails that the clean-ups print
	// for a failed test, so that the end of the output says what failed.
	var failures []string
	t.Cleanup(func() {
		for _, f := range failures {
			t.Error(f)
		}
	})

	outDir := os.Getenv("S3SEAL_CONFORMANCE_OUT") // per-test output, kept for investigation
	if outDir == "" {
		outDir = t.TempDir()
	}

	// The suite names its buckets test-bucket-1, -2, ... in every process, so two tests cannot
	// share a backend: each worker has a private MinIO of its own (the gateway's workers one
	// behind each gateway) and runs one test at a time, and buckets a test leaves behind are
	// force-deleted before the next.
	k := testenv.NewKMS(t)
	keyID := k.CreateKey(t)
	workers := conformanceWorkers(t)
	var directTargets, viaTargets []confTarget
	for range workers {
		m := testenv.NewPrivateMinIO(t)
		directTargets = append(directTargets, confTarget{m.Endpoint, m.AccessKey, m.SecretKey, m})
		m2 := testenv.NewPrivateMinIO(t)
		g := testenv.StartGateway(t, map[string]string{
			"GATEWAY_BACKEND_ENDPOINT":          m2.Endpoint,
			"GATEWAY_BACKEND_REGION":            m2.Region,
			"GATEWAY_BACKEND_ACCESS_KEY_ID":     m2.Data.AccessKey,
			"GATEWAY_BACKEND_SECRET_ACCESS_KEY": m2.Data.SecretKey,
			"GATEWAY_BACKEND_PATH_STYLE":        "true",
			"GATEWAY_KMS_ENDPOINT":              k.Endpoint,
			"GATEWAY_KMS_REGION":                k.Region,
			"GATEWAY_KMS_ACCESS_KEY_ID":         "test",
			"GATEWAY_KMS_SECRET_ACCESS_KEY":     "test",
			"GATEWAY_KMS_KEY_ID":                keyID,
		})
		viaTargets = append(viaTargets, confTarget{g.Endpoint, g.AccessKeyID, g.SecretAccessKey, m2})
	}

	start := time.Now()
	var direct, via map[string]confResult
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		direct = conformanceRun(t, bin, directTargets, names, filepath.Join(outDir, "direct"))
	}()
	go func() {
		defer wg.Done()
		via = conformanceRun(t, bin, viaTargets, names, filepath.Join(outDir, "gateway"))
	}()
	wg.Wait()
	elapsed := time.Since(start).Round(time.Second)

	baseline := conformanceReadList(t, conformancePass)
	lostList := conformanceReadLost(t, conformanceLost)

	// A test that would fail the run (on the baseline, or passing directly and not listed as
	// lost) but failed through the gateway is run once more, alone, on both sides: a flaky test
	// then does not block CI, while a real regression fails twice.
	var again []string
	for _, n := range names {
		_, listed := lostList[n]
		if !via[n].pass && (baseline[n] || (direct[n].pass && !listed)) {
			again = append(again, n)
		}
	}
	for round := 1; round <= conformanceRetries && len(again) > 0; round++ {
		t.Logf("running %d failed tests again (round %d of %d): %v", len(again), round, conformanceRetries, again)
		reVia := conformanceRun(t, bin, viaTargets[:1], again, filepath.Join(outDir, fmt.Sprintf("gateway-again-%d", round)))
		reDirect := conformanceRun(t, bin, directTargets[:1], again, filepath.Join(outDir, fmt.Sprintf("direct-again-%d", round)))
		var still []string
		for _, n := range again {
			if reVia[n].pass {
				via[n] = reVia[n]
			} else {
				still = append(still, n)
			}
			if reDirect[n].pass != direct[n].pass && !reDirect[n].pass {
				direct[n] = reDirect[n] // passing directly only once is not a loss
			}
		}
		again = still
	}

	var nDirect, nVia int
	var kept, lost, gained, unlistedLost, regressed, newPass, staleLost []string
	for _, n := range names {
		d, v := direct[n].pass, via[n].pass
		if d {
			nDirect++
		}
		if v {
			nVia++
		}
		switch {
		case d && v:
			kept = append(kept, n)
		case d && !v:
			lost = append(lost, n)
			if _, ok := lostList[n]; !ok {
				unlistedLost = append(unlistedLost, n)
			}
		case !d && v:
			gained = append(gained, n)
		}
		if baseline[n] && !v {
			regressed = append(regressed, n)
		}
		if v && !baseline[n] {
			newPass = append(newPass, n)
		}
		if _, ok := lostList[n]; ok && v {
			staleLost = append(staleLost, n)
		}
	}
	for n := range baseline {
		if _, ok := direct[n]; !ok && os.Getenv("S3SEAL_CONFORMANCE_RUN") == "" {
			regressed = append(regressed, n+" (no longer in the suite)")
		}
	}
	slices.Sort(regressed)

	var b strings.Builder
	fmt.Fprintf(&b, "versitygw v1.8.0 conformance, %d tests, %d at a time per target, %v\n", len(names), conformanceWorkers(t), elapsed)
	fmt.Fprintf(&b, "  passed against MinIO directly:   %d\n", nDirect)
	fmt.Fprintf(&b, "  passed through the gateway:      %d\n", nVia)
	fmt.Fprintf(&b, "  kept (pass both ways):           %d\n", len(kept))
	fmt.Fprintf(&b, "  lost (pass directly only):       %d\n", len(lost))
	fmt.Fprintf(&b, "  gained (pass through gateway only): %d\n", len(gained))
	list := func(title string, xs []string, res map[string]confResult) {
		if len(xs) == 0 {
			return
		}
		fmt.Fprintf(&b, "%s (%d):\n", title, len(xs))
		for _, x := range xs {
			if r, ok := res[x]; ok && !r.pass {
				fmt.Fprintf(&b, "    %s: %s\n", x, r.why)
			} else {
				fmt.Fprintf(&b, "    %s\n", x)
			}
		}
	}
	list("lost", lost, via)
	list("gained", gained, nil)
	list("passing through the gateway but not in "+conformancePass+" (add them)", newPass, nil)
	list("listed in "+conformanceLost+" but passing now (remove them)", staleLost, nil)
	t.Log("\n" + b.String())
	if p := os.Getenv("S3SEAL_CONFORMANCE_SUMMARY"); p != "" {
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}

	if len(regressed) > 0 {
		var lines []string
		for _, n := range regressed {
			lines = append(lines, fmt.Sprintf("    %s: %s", n, via[n].why))
		}
		failures = append(failures, fmt.Sprintf("%d tests on the baseline %s no longer pass through the gateway:\n%s", len(regressed), conformancePass, strings.Join(lines, "\n")))
	}
	if len(unlistedLost) > 0 {
		var lines []string
		for _, n := range unlistedLost {
			lines = append(lines, fmt.Sprintf("    %s: %s", n, via[n].why))
		}
		failures = append(failures, fmt.Sprintf("%d tests pass against MinIO but not through the gateway and are not listed with a reason in %s:\n%s", len(unlistedLost), conformanceLost, strings.Join(lines, "\n")))
	}
	if nDirect == 0 {
		failures = append(failures, "no test passed against MinIO directly: the suite did not run")
	}
	if len(failures) > 0 {
		t.Fail() // the messages follow from the clean-up above
	}
}

// conformanceTests lists the suite's single tests: the subcommands of `versitygw test` whose
// usage is "Runs NAME integration test" (the others are groups such as full-flow, or
// benchmarks).
func conformanceTests(t *testing.T, bin string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "test", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s test --help: %v\n%s", bin, err, out)
	}
	re := regexp.MustCompile(`^\s+(\S+)\s+Runs (\S+) integration test\s*$`)
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			name := strings.TrimSuffix(m[1], ",")
			if name == m[2] {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	if len(names) < 100 {
		t.Fatalf("found only %d tests in `versitygw test --help`; its format changed?\n%s", len(names), confTail(out, 40))
	}
	return names
}

func confTail(b []byte, lines int) string {
	s := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return strings.Join(s, "\n")
}

// confTarget is one endpoint the suite runs against and the MinIO behind it.
type confTarget struct {
	endpoint, ak, sk string
	backend          *testenv.MinIO
}

// conformanceRun runs every test, each target running one test at a time, writing each test's
// output to dir/NAME.log.
func conformanceRun(t *testing.T, bin string, targets []confTarget, names []string, dir string) map[string]confResult {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	res := make(map[string]confResult, len(names))
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for _, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := tg.backend.Client(t, s3.WithAPIOptions(smithyhttp.AddHeaderValue("X-Minio-Force-Delete", "true")))
			for n := range work {
				r := conformanceOne(bin, tg.endpoint, tg.ak, tg.sk, n, filepath.Join(dir, n+".log"))
				if left := conformanceCleanup(c); left != "" {
					// Object-locked buckets cannot be force-deleted: start the backend afresh.
					tg.backend.Stop(t)
					if err := os.RemoveAll(tg.backend.DataDir); err != nil {
						t.Error(err)
					}
					if err := os.MkdirAll(tg.backend.DataDir, 0o755); err != nil {
						t.Error(err)
					}
					tg.backend.Start(t)
					// The fresh backend has no users: give the gateway's back (it signs with it).
					if err := tg.backend.RestoreDataUser(); err != nil {
						t.Error(err)
					}
				}
				mu.Lock()
				res[n] = r
				mu.Unlock()
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	return res
}

// conformanceCleanup force-deletes (MinIO's X-Minio-Force-Delete) every bucket in the backend;
// it returns what it could not delete.
func conformanceCleanup(c *s3.Client) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		return "ListBuckets: " + err.Error()
	}
	var left []string
	for _, b := range out.Buckets {
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b.Name}); err != nil {
			left = append(left, fmt.Sprintf("bucket %s left behind: %v", aws.ToString(b.Name), err))
		}
	}
	return strings.Join(left, "; ")
}

var confFailLine = regexp.MustCompile(`(?m)^.*(FAIL|panic:|Error|error).*$`)

func conformanceOne(bin, endpoint, ak, sk, name, logPath string) confResult {
	ctx, cancel := context.WithTimeout(context.Background(), conformanceTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "test", "-a", ak, "-s", sk, "-e", endpoint, name)
	// A clean environment: the SDK's default config refuses the suite's own HTTP client when
	// AWS_CA_BUNDLE is set, and no AWS_PROFILE or similar of the machine may leak in.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "AWS_EC2_METADATA_DISABLED=true"}
	cmd.Dir = os.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := confResult{dur: time.Since(start)}
	_ = os.WriteFile(logPath, out, 0o644)
	switch {
	case ctx.Err() != nil:
		r.why = fmt.Sprintf("timeout after %v", conformanceTimeout)
	case err != nil:
		r.why = err.Error()
		if m := confFailLine.Find(out); m != nil {
			r.why = strings.TrimSpace(string(m))
		}
		if len(r.why) > 300 {
			r.why = r.why[:300] + "..."
		}
	default:
		r.pass = true
	}
	return r
}

func conformanceReadList(t *testing.T, path string) map[string]bool {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			set[line] = true
		}
	}
	return set
}

// conformanceReadLost reads "name: reason" lines; a line without a reason is an error.
func conformanceReadLost(t *testing.T, path string) map[string]string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(reason) == "" {
			t.Errorf("%s:%d: want \"test name: reason\", got %q", path, i+1, line)
			continue
		}
		m[strings.TrimSpace(name)] = strings.TrimSpace(reason)
	}
	return m
}
