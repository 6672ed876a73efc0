//go:build !race

package keys

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestBuildWithoutCgo keeps the static build working: the gateway builds with CGO_ENABLED=0
// (the container image), and this package's tests pass there, where OpenPKCS11 gives
// ErrPKCS11NeedsCgo. About 15 s with a warm build cache, more with a cold one; not in -short,
// and not in the -race build (the race step of scripts/test would only repeat it).
func TestBuildWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway: not in -short")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		t.Fatalf("go command: %v", err)
	}
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("CGO_ENABLED=0 go %v: %v\n%s", args, err, out)
		}
		return out
	}
	run("build", "-o", filepath.Join(t.TempDir(), "gateway"), "./cmd/gateway")
	out := run("test", "-count=1", "-v", "-run", "^TestPKCS11WithoutCgo$", "./keys/")
	if !bytes.Contains(out, []byte("--- PASS: TestPKCS11WithoutCgo")) {
		t.Fatalf("TestPKCS11WithoutCgo did not run without cgo:\n%s", out)
	}
}
