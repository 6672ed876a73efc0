package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procState returns the state letter of a process from /proc ("R", "S", "Z", ...), or "" when
// there is no such process.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name is in parentheses and may contain spaces; the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 > len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// procAlive reports whether pid runs (a zombie counts as gone).
func procAlive(pid int) bool {
	st := procState(pid)
	return st != "" && st != "Z" && st != "X"
}

// procRuns reports whether pid is alive and executes the binary exe.
func procRuns(pid int, exe string) bool {
	if !procAlive(pid) {
		return false
	}
	got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	return samePath(strings.TrimSuffix(got, " (deleted)"), exe)
}

func samePath(a, b string) bool {
	ra, errA := filepath.EvalSymlinks(a)
	rb, errB := filepath.EvalSymlinks(b)
	if errA != nil || errB != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return ra == rb
}

// waitGone polls until pid is gone or d has passed; it reports whether it is gone.
func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for procAlive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// terminate sends SIGTERM to pid, waits up to grace, then sends SIGKILL. It reports whether the
// SIGKILL was needed.
func terminate(pid int, grace time.Duration) (killed bool, err error) {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return false, nil
		}
		return false, fmt.Errorf("SIGTERM to pid %d: %w", pid, err)
	}
	if waitGone(pid, grace) {
		return false, nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return true, fmt.Errorf("SIGKILL to pid %d: %w", pid, err)
	}
	if !waitGone(pid, 10*time.Second) {
		return true, fmt.Errorf("pid %d still alive after SIGKILL", pid)
	}
	return true, nil
}

// readPID reads a decimal PID (first field) from a file.
func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s is empty", path)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: bad pid %q", path, f[0])
	}
	return pid, nil
}

// writeFileAtomic replaces path with data via a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// trackPID records "<pid> <exe>" in $S3SEAL_TEST_PID_DIR (when set), so scripts/test can stop a
// process that a crashed or timed-out test binary left behind. The returned func removes it.
func trackPID(pid int, exe string) (untrack func()) {
	dir := os.Getenv("S3SEAL_TEST_PID_DIR")
	if dir == "" {
		return func() {}
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.pid", filepath.Base(exe), pid))
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d %s\n", pid, exe)), 0o644); err != nil {
		return func() {}
	}
	return func() { _ = os.Remove(path) }
}

// portOpen reports whether something accepts TCP connections on addr.
func portOpen(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// shellQuote quotes args for bash, the inverse of what `bash -c "exec $cmd"` parses.
func shellQuote(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
