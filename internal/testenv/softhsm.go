package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// softHSMModules are the places Debian's softhsm2 package (which scripts/test installs) puts
// the PKCS#11 library; S3SEAL_TEST_SOFTHSM_MODULE overrides them.
var softHSMModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// SoftHSMToken is a fresh SoftHSM2 token of one test.
type SoftHSMToken struct {
	Module string // path of libsofthsm2.so
	Label  string // token label
	PIN    string // user PIN
	SOPIN  string // security officer PIN
	Conf   string // the softhsm2.conf written for the test (SOFTHSM2_CONF points at it)
	Dir    string // the token directory (directories.tokendir)
}

// SoftHSM creates an initialised SoftHSM2 token for the test: a softhsm2.conf whose token
// directory is in t.TempDir(), SOFTHSM2_CONF set to it for the test (t.Setenv, so the test
// cannot be parallel), and `softhsm2-util --init-token --free`. It skips (fails under CI=true,
// see Require) when softhsm2-util or the library is missing.
//
// SoftHSM2 reads SOFTHSM2_CONF when the library is initialised: a process sees the token of a
// new test only after every PKCS#11 context of the previous test was closed.
func SoftHSM(t testing.TB) *SoftHSMToken {
	t.Helper()
	_, err := exec.LookPath("softhsm2-util")
	Require(t, "softhsm2-util (Debian package softhsm2)", err == nil)
	module := findSoftHSMModule()
	Require(t, "libsofthsm2.so (Debian package softhsm2)", module != "")

	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatalf("testenv: SoftHSM: %v", err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatalf("testenv: SoftHSM: %v", err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)

	tok := &SoftHSMToken{
		Module: module,
		Label:  "s3seal-test",
		PIN:    "1234-" + randomHex(t, 4),
		SOPIN:  "so-" + randomHex(t, 4),
		Conf:   conf,
		Dir:    tokens,
	}
	tok.Util(t, "--init-token", "--free", "--label", tok.Label, "--pin", tok.PIN, "--so-pin", tok.SOPIN)
	return tok
}

// Util runs softhsm2-util with args against the test's configuration and fails the test when
// it fails.
func (s *SoftHSMToken) Util(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "softhsm2-util", args...)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+s.Conf)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: softhsm2-util %s: %v\n%s", args[0], err, out)
	}
}

// DeleteToken removes the token (softhsm2-util --delete-token), as if the device went away.
func (s *SoftHSMToken) DeleteToken(t testing.TB) {
	t.Helper()
	s.Util(t, "--delete-token", "--token", s.Label)
}

func findSoftHSMModule() string {
	cands := softHSMModules
	if m := os.Getenv("S3SEAL_TEST_SOFTHSM_MODULE"); m != "" {
		cands = []string{m}
	}
	for _, p := range cands {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}
