package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestZeroConfigGoRun: on a fresh checkout, `go run ./cmd/gateway` with no flags and no
// configuration starts an embedded gateway, prints export lines and an aws-cli line, and those
// exact lines work. The data dir holds the key file and credentials (0600) and only ciphertext.
func TestZeroConfigGoRun(t *testing.T) {
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"GOPATH", "GOMODCACHE", "GOCACHE", "GOFLAGS", "GOPROXY", "TMPDIR", "PYENV_ROOT", "PYENV_VERSION", "AWS_CA_BUNDLE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if os.Getenv("GOCACHE") == "" { // keep the build cache although HOME changes
		out, _ := exec.Command("go", "env", "GOCACHE", "GOMODCACHE").Output()
		if f := strings.Fields(string(out)); len(f) == 2 {
			env = append(env, "GOCACHE="+f[0], "GOMODCACHE="+f[1])
		}
	}
	// The default port is 8080; only when it is taken on this machine move it (by environment,
	// still no flags and no config file).
	if l, err := net.Listen("tcp", "127.0.0.1:8080"); err == nil {
		l.Close()
	} else {
		env = append(env, fmt.Sprintf("GATEWAY_LISTEN=127.0.0.1:%d", testenv.FreePort(t)))
	}

	cmd := exec.Command("go", "run", "./cmd/gateway")
	cmd.Dir = ".."
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})

	var lines []string
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var got []string
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "export ") || strings.HasPrefix(line, "aws --endpoint-url") {
				got = append(got, line)
			}
			if strings.HasPrefix(line, "aws --endpoint-url") {
				found <- got
			}
		}
	}()
	select {
	case lines = <-found:
	case <-time.After(3 * time.Minute):
		t.Fatalf("gateway printed no aws-cli line; stderr:\n%s", stderr.String())
	}
	if len(lines) < 3 {
		t.Fatalf("expected export lines and an aws line, got %q", lines)
	}
	awsLine := lines[len(lines)-1]
	endpoint := strings.Fields(awsLine)[2]

	data := testenv.RandomBytes(t, 200_000, marker)
	dir := t.TempDir()
	src := writeFile(t, dir, "in.bin", data)
	script := strings.Join(lines, "\n") + "\n" +
		"set -e\n" +
		"aws --endpoint-url " + endpoint + " s3 mb s3://demo\n" +
		"aws --endpoint-url " + endpoint + " s3 cp " + src + " s3://demo/in.bin\n" +
		awsLine + " s3://demo/\n" +
		"aws --endpoint-url " + endpoint + " s3 cp s3://demo/in.bin " + filepath.Join(dir, "out.bin") + "\n"
	sh := exec.Command("bash", "-c", script)
	sh.Env = append(os.Environ(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	sh.Stdin = nil
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("pasted lines failed: %v\n%s\ngateway stderr:\n%s", err, out, stderr.String())
	}
	if !strings.Contains(string(out), "200000 in.bin") {
		t.Errorf("ls output does not show the plaintext size:\n%s", out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded copy differs (err %v)", err)
	}

	dataDir := filepath.Join(home, ".local", "share", "s3seal")
	for _, name := range []string{"keys.yaml", "credentials.yaml"} {
		st, err := os.Stat(filepath.Join(dataDir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	// Everything the embedded store wrote is ciphertext.
	stored := 0
	err = filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil // sockets and the like
		}
		if bytes.Contains(b, []byte(marker)) {
			t.Errorf("plaintext marker found in %s", p)
		}
		if at := sharedRun(data, b); at >= 0 {
			t.Errorf("a 16-byte run of the plaintext is in %s at %d", p, at)
		}
		stored += len(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stored < len(data) {
		t.Errorf("data dir holds %d bytes, less than the %d-byte object", stored, len(data))
	}
}
