package main

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/metrics"
)

// usageCase is one subcommand whose -h output is checked.
type usageCase struct {
	name   string                     // as the operator types it
	flags  func(toolIO) *flag.FlagSet // the command's own flag set
	pkcs11 bool                       // the help must name the PKCS#11 token
}

// usageCases are every subcommand of the gateway binary.
func usageCases() []usageCase {
	keysCase := func(verb string) usageCase {
		return usageCase{name: "keys " + verb, flags: func(tio toolIO) *flag.FlagSet { fs, _ := keysFlags(verb, tio); return fs }}
	}
	return []usageCase{
		{name: "presign", flags: func(tio toolIO) *flag.FlagSet { fs, _ := presignFlags(tio); return fs }},
		{name: "rewrap", flags: func(tio toolIO) *flag.FlagSet { fs, _ := rewrapFlags(tio); return fs }, pkcs11: true},
		{name: "migrate", flags: func(tio toolIO) *flag.FlagSet { fs, _ := migrateFlags(tio); return fs }},
		{name: "decrypt", flags: func(tio toolIO) *flag.FlagSet { fs, _ := decryptFlags(tio); return fs }, pkcs11: true},
		keysCase("create"), keysCase("list"), keysCase("rotate"), keysCase("retire"),
	}
}

// flagLine is a flag's first line in flag.PrintDefaults output: "  -name [value name]", or
// "  -x\tusage" for a one-letter bool flag.
var flagLine = regexp.MustCompile(`(?m)^  -(\S+)(?: ([^\t\n]*))?(?:\t.*)?$`)

// TestSubcommandHelp runs each subcommand's -h: it names exactly that command's flags (those of
// its flag set, none of another command's), no value name has a space in it (the quirk of a
// back-quoted phrase in a usage string), and the descriptions of decrypt and rewrap name the PKCS#11 token.
func TestSubcommandHelp(t *testing.T) {
	quiet := toolIO{getenv: envOf(nil), stdout: io.Discard, stderr: io.Discard}
	all := map[string][]string{} // command -> its flag names
	for _, c := range usageCases() {
		c.flags(quiet).VisitAll(func(f *flag.Flag) { all[c.name] = append(all[c.name], f.Name) })
		if len(all[c.name]) == 0 {
			t.Fatalf("%s: no flags defined", c.name)
		}
	}
	for _, c := range usageCases() {
		var out, errb bytes.Buffer
		code, ok := runTool(append(strings.Fields(c.name), "-h"), envOf(map[string]string{"HOME": t.TempDir()}), &out, &errb)
		help := errb.String()
		if !ok || code != exitOK {
			t.Errorf("%s -h: ok %v, exit %d", c.name, ok, code)
		}
		if !strings.HasPrefix(help, "Usage: gateway "+c.name+" ") {
			t.Errorf("%s -h does not start with its own usage line:\n%s", c.name, help)
		}
		var printed []string
		for _, m := range flagLine.FindAllStringSubmatch(help, -1) {
			printed = append(printed, m[1])
			if strings.Contains(m[2], " ") {
				t.Errorf("%s -h: flag -%s has the value name %q", c.name, m[1], m[2])
			}
		}
		own := all[c.name]
		for _, name := range own {
			if !slices.Contains(printed, name) {
				t.Errorf("%s -h does not show its flag -%s", c.name, name)
			}
		}
		for other, names := range all {
			for _, name := range names {
				if other != c.name && !slices.Contains(own, name) && slices.Contains(printed, name) {
					t.Errorf("%s -h shows -%s, a flag of %s only", c.name, name, other)
				}
			}
		}
		c.flags(quiet).VisitAll(func(f *flag.Flag) {
			if name, _ := flag.UnquoteUsage(f); strings.Contains(name, " ") {
				t.Errorf("%s: flag -%s has the value name %q", c.name, f.Name, name)
			}
		})
		description, _, _ := strings.Cut(help, "\n  -") // the text before the flags
		if c.pkcs11 && !strings.Contains(description, "PKCS#11") {
			t.Errorf("%s -h does not name the PKCS#11 token among the key providers:\n%s", c.name, description)
		}
	}
}

// TestKeysHelp runs "gateway keys -h" (no verb): it is a request for help, not a usage error,
// and it names every verb, each of which has its own -h (TestSubcommandHelp).
func TestKeysHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		var out, errb bytes.Buffer
		code, ok := runTool([]string{"keys", arg}, envOf(map[string]string{"HOME": t.TempDir()}), &out, &errb)
		if !ok || code != exitOK || !strings.HasPrefix(errb.String(), "Usage: gateway keys ") {
			t.Errorf("keys %s: ok %v, exit %d:\n%s", arg, ok, code, errb.String())
		}
		for verb := range keysVerbs {
			if !strings.Contains(errb.String(), "  "+verb) {
				t.Errorf("keys %s does not name the verb %s", arg, verb)
			}
		}
	}
	var out, errb bytes.Buffer
	if code, _ := runTool([]string{"keys"}, envOf(nil), &out, &errb); code != exitUsage {
		t.Errorf("keys without a verb: exit %d, want %d", code, exitUsage)
	}
}

// TestDocsReadinessPath: readiness is GET /readyz on the operations listener (metrics.listen),
// as the handler the gateway serves there answers it; no operator document may send anyone to
// /ready, and KEYS.md (the token set-up's last step) names /readyz and metrics.listen.
func TestDocsReadinessPath(t *testing.T) {
	m := metrics.New(metrics.Options{NoProcessMetrics: true})
	ops := opsHandler(metrics.Handler(m, m.NewHealth(metrics.HealthOptions{})))
	for path, want := range map[string]int{"/readyz": http.StatusOK, "/ready": http.StatusNotFound} {
		rec := httptest.NewRecorder()
		ops.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Fatalf("GET %s on the operations listener: %d, want %d", path, rec.Code, want)
		}
	}
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs found: %v", err)
	}
	stale := regexp.MustCompile(`/ready\b`) // /readyz does not match
	for _, name := range docs {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if stale.MatchString(line) {
				t.Errorf("%s:%d names /ready, which the gateway does not serve (readiness is /readyz on metrics.listen): %s", filepath.Base(name), i+1, line)
			}
		}
		if filepath.Base(name) == "KEYS.md" && (!strings.Contains(string(b), "/readyz") || !strings.Contains(string(b), "metrics.listen")) {
			t.Errorf("KEYS.md does not say that readiness is /readyz on metrics.listen")
		}
	}
}
