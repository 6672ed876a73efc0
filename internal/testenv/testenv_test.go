package testenv

import (
	"bytes"
	"compress/flate"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// fakeTB records Fatal/Skip/Error calls instead of acting on the real test, so the harness's
// own failure paths can be tested. Fatal and Skip end the calling goroutine like the real ones.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	fatal    bool
	skipped  bool
	failed   bool
	msgs     []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) record(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, msg)
}

func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.record(fmt.Sprintf(format, args...))
	f.FailNow()
}
func (f *fakeTB) FailNow() {
	f.mu.Lock()
	f.fatal, f.failed = true, true
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Skip(args ...any) { f.Skipf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) Skipf(format string, args ...any) {
	f.record(fmt.Sprintf(format, args...))
	f.SkipNow()
}
func (f *fakeTB) SkipNow() {
	f.mu.Lock()
	f.skipped = true
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.record(fmt.Sprintf(format, args...))
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
}
func (f *fakeTB) Fail() {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
}
func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}
func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}
func (f *fakeTB) text() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.msgs, "\n")
}

// runFake runs fn with a fakeTB in its own goroutine (so Fatal/Skip can end it), then runs
// the cleanups fn registered, last first.
func runFake(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	t.Helper()
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	return f
}

func TestRequire(t *testing.T) {
	cases := []struct {
		ci            string
		ok            bool
		fatal, skip   bool
		wantInMessage string
	}{
		{ci: "true", ok: false, fatal: true, wantInMessage: "CI=true"},
		{ci: "", ok: false, skip: true, wantInMessage: "scripts/test"},
		{ci: "false", ok: false, skip: true, wantInMessage: "scripts/test"},
		{ci: "1", ok: false, skip: true, wantInMessage: "scripts/test"}, // only "true" means CI
		{ci: "true", ok: true},
		{ci: "", ok: true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("CI=%q,ok=%v", c.ci, c.ok), func(t *testing.T) {
			t.Setenv("CI", c.ci)
			reached := false
			f := runFake(t, func(tb testing.TB) {
				Require(tb, "the widget", c.ok)
				reached = true
			})
			if f.fatal != c.fatal || f.skipped != c.skip {
				t.Fatalf("fatal=%v skipped=%v, want fatal=%v skipped=%v", f.fatal, f.skipped, c.fatal, c.skip)
			}
			if reached != (c.ok) {
				t.Errorf("code after Require reached=%v, want %v", reached, c.ok)
			}
			if msg := f.text(); !strings.Contains(msg, c.wantInMessage) || (!c.ok && !strings.Contains(msg, "the widget")) {
				t.Errorf("message %q should name the widget and contain %q", msg, c.wantInMessage)
			}
		})
	}
}

func TestFreePort(t *testing.T) {
	seen := map[int]bool{}
	for range 5 {
		p := FreePort(t)
		if p <= 0 || p > 65535 {
			t.Fatalf("port %d out of range", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
	}
	if len(seen) < 2 {
		t.Errorf("five calls returned the same port %v", seen)
	}
}

func TestRandomBytes(t *testing.T) {
	for _, c := range []struct {
		n      int
		marker string
	}{
		{0, "PLAINTEXT"}, {5, "PLAINTEXT"}, {9, "PLAINTEXT"}, {4096, "PLAINTEXT"},
		{4105, "PLAINTEXT"}, {1 << 20, "S3SEAL-MARKER-1234"}, {100000, "A"}, {100000, "AA"},
		{70000, "abab"}, {12345, ""},
		{10 << 20, "AA"}, // ~10 random neighbours equal to "A": extra occurrences unless handled
	} {
		t.Run(fmt.Sprintf("%d/%q", c.n, c.marker), func(t *testing.T) {
			b := RandomBytes(t, c.n, c.marker)
			if len(b) != c.n {
				t.Fatalf("len %d, want %d", len(b), c.n)
			}
			want := 0
			if c.marker != "" {
				for off := 0; off+len(c.marker) <= c.n; off += 4096 {
					want++
					if !bytes.HasPrefix(b[off:], []byte(c.marker)) {
						t.Fatalf("no marker at offset %d", off)
					}
				}
				if got := countOverlapping(b, []byte(c.marker)); got != want {
					t.Errorf("marker occurs %d times, want %d", got, want)
				}
			}
			if got := MarkerCount(c.n, c.marker); got != want {
				t.Errorf("MarkerCount = %d, want %d", got, want)
			}
		})
	}
	t.Run("random", func(t *testing.T) {
		a, b := RandomBytes(t, 1<<16, ""), RandomBytes(t, 1<<16, "")
		if bytes.Equal(a, b) {
			t.Fatal("two calls returned the same bytes")
		}
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, flate.BestCompression)
		w.Write(a)
		w.Close()
		if z.Len() < len(a)*99/100 {
			t.Errorf("64 KiB compressed to %d bytes: not random-looking", z.Len())
		}
	})
	t.Run("bad", func(t *testing.T) {
		if f := runFake(t, func(tb testing.TB) { RandomBytes(tb, -1, "") }); !f.fatal {
			t.Error("negative size accepted")
		}
		if f := runFake(t, func(tb testing.TB) { RandomBytes(tb, 10, strings.Repeat("x", 1025)) }); !f.fatal {
			t.Error("overlong marker accepted")
		}
	})
}

// countOverlapping counts occurrences of m in b, overlapping ones included.
func countOverlapping(b, m []byte) int {
	n := 0
	for i := 0; i+len(m) <= len(b); i++ {
		if bytes.Equal(b[i:i+len(m)], m) {
			n++
		}
	}
	return n
}

func TestFileName(t *testing.T) {
	for in, want := range map[string]string{
		"TestX":                  "TestX",
		"TestX/sub_case":         "TestX_sub_case",
		"TestX/a b/../c":         "TestX_a_b_.._c",
		"TestX/#01":              "TestX__01",
		"/":                      "test",
		strings.Repeat("a", 200): strings.Repeat("a", 150),
	} {
		if got := fileName(in); got != want {
			t.Errorf("fileName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBucketName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	for _, name := range []string{"TestX", "TestX/Sub_Case#01", strings.Repeat("Long", 40), "___"} {
		got := bucketName(namedTB{t, name})
		if !valid.MatchString(got) || strings.Contains(got, "--") {
			t.Errorf("bucketName for %q = %q: not a valid bucket name", name, got)
		}
		if again := bucketName(namedTB{t, name}); again == got {
			t.Errorf("bucketName for %q twice gave %q", name, got)
		}
	}
	if got := bucketName(namedTB{t, "TestX/Sub"}); !strings.HasPrefix(got, "t-testx-sub-") {
		t.Errorf("bucketName does not carry the test name: %q", got)
	}
}

type namedTB struct {
	testing.TB
	name string
}

func (n namedTB) Name() string { return n.name }

func TestShellQuote(t *testing.T) {
	args := []string{"plain", "with space", "it's", `"dq"`, "$HOME", "back\\slash", "", "new\nline", "*"}
	out, err := exec.Command("bash", "-c", `printf '%s\0' `+shellQuote(args...)).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if strings.Join(got, "|") != strings.Join(args, "|") || len(got) != len(args) {
		t.Errorf("bash parsed %q, want %q", got, args)
	}
}
