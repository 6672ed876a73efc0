package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// TryTmpfs mounts a tmpfs of size bytes on a new directory, unmounted (lazily: a gateway may
// still be stopping) at the end of the test. Mounting needs root or CAP_SYS_ADMIN.
func TryTmpfs(t testing.TB, size int) (string, error) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tfs")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		_ = os.Remove(dir)
		return "", fmt.Errorf("%v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			return
		}
		_ = os.Remove(dir)
	})
	return dir, nil
}

// Tmpfs is TryTmpfs for a test that needs the small file system (to fill it up): where
// mounting is not permitted it skips, which under CI=true is a failure (Require).
func Tmpfs(t testing.TB, size int) string {
	t.Helper()
	dir, err := TryTmpfs(t, size)
	if err != nil {
		Require(t, fmt.Sprintf("permission to mount a tmpfs (root or CAP_SYS_ADMIN): %v", err), false)
	}
	return dir
}
