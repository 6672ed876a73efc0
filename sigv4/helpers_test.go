package sigv4

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	exampleAKID   = "AKIAIOSFODNN7EXAMPLE"
	exampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// secrets is a SecretStore backed by a map.
type secrets map[string]string

func (s secrets) Secret(id string) (string, bool) { v, ok := s[id]; return v, ok }

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

var exampleTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func exampleVerifier(now time.Time) *Verifier {
	return NewVerifier(Config{
		Region:      "us-east-1",
		Secrets:     secrets{exampleAKID: exampleSecret},
		Now:         fixedClock(now),
		SigV2:       true,
		BaseDomains: []string{"s3.amazonaws.com"},
	})
}

// golden is one parsed testdata/golden file.
type golden map[string]string

var sectionRE = regexp.MustCompile(`^-- (.+) --$`)

func readGolden(t testing.TB, name string) golden {
	t.Helper()
	raw, err := os.ReadFile("testdata/golden/" + name)
	if err != nil {
		t.Fatal(err)
	}
	g := golden{}
	cur := ""
	var lines []string
	flush := func() {
		if cur != "" {
			g[cur] = strings.TrimRight(strings.Join(lines, "\n"), "\n")
		}
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if m := sectionRE.FindStringSubmatch(line); m != nil {
			flush()
			cur, lines = m[1], nil
			continue
		}
		lines = append(lines, line)
	}
	flush()
	return g
}

// request parses the request section (plus body) the way net/http's server
// does: Host moves to r.Host, headers are canonicalized.
func (g golden) request(t testing.TB, body []byte) *http.Request {
	t.Helper()
	head := strings.ReplaceAll(g["request"], "\n", "\r\n") + "\r\n\r\n"
	r, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(head), bytes.NewReader(body))))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// asError asserts err is a *Error with the code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("error code = %s (%s), want %s", e.Code, e.Message, code)
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
