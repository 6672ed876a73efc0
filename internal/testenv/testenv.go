package testenv

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
)

const (
	markerSpacing = 4096 // distance between two markers embedded by RandomBytes
	maxMarker     = 1024 // longest marker RandomBytes accepts
)

// Require skips the test when ok is false, or fails it when CI=true: CI must never pass by
// skipping a test whose service was not started. what names the missing thing.
func Require(t testing.TB, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf("testenv: %s is not available (run the tests through scripts/test)", what)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true, so this is a failure, not a skip")
	}
	t.Skip(msg)
}

// requireEnv returns the value of the environment variable name, applying Require to it.
func requireEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	Require(t, "$"+name, v != "")
	return v
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: FreePort: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RandomBytes returns n random-looking bytes with marker embedded at every multiple of 4 KiB
// (offsets 0, 4096, 8192, ... where it fits), so a test can search the backend's stored bytes
// for the marker to prove no plaintext is at rest. The marker occurs exactly
// MarkerCount(n, marker) times: accidental occurrences in the random part and the bytes right
// next to each embedded marker are replaced by a byte the marker does not contain. An empty
// marker embeds nothing; markers are limited to 1 KiB. The random part comes from a fast
// generator seeded from crypto/rand, so every call returns different data.
func RandomBytes(t testing.TB, n int, marker string) []byte {
	t.Helper()
	if n < 0 {
		t.Fatalf("testenv: RandomBytes: negative size %d", n)
	}
	if len(marker) > maxMarker {
		t.Fatalf("testenv: RandomBytes: marker longer than %d bytes", maxMarker)
	}
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		t.Fatalf("testenv: RandomBytes: %v", err)
	}
	b := make([]byte, n)
	_, _ = mrand.NewChaCha8(seed).Read(b) // never fails
	if marker == "" {
		return b
	}
	m := []byte(marker)
	filler, ok := byteNotIn(m)
	if !ok {
		t.Fatal("testenv: RandomBytes: the marker contains every byte value")
	}
	for i := bytes.Index(b, m); i >= 0; {
		b[i] = filler // no occurrence can cover position i any more
		j := bytes.Index(b[i+1:], m)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	for off := 0; off+len(m) <= n; off += markerSpacing {
		copy(b[off:], m)
		// An extra occurrence overlapping this one would have to cover a neighbour byte.
		if off > 0 {
			b[off-1] = filler
		}
		if off+len(m) < n {
			b[off+len(m)] = filler
		}
	}
	return b
}

// byteNotIn returns a byte value that does not occur in m.
func byteNotIn(m []byte) (byte, bool) {
	var seen [256]bool
	for _, c := range m {
		seen[c] = true
	}
	for c := range 256 {
		if !seen[c] {
			return byte(c), true
		}
	}
	return 0, false
}

// MarkerCount is how many markers RandomBytes(t, n, marker) embeds.
func MarkerCount(n int, marker string) int {
	if marker == "" || len(marker) > n {
		return 0
	}
	return (n-len(marker))/markerSpacing + 1
}

// fileName turns a test name (with "/" for subtests) into a safe file name part.
func fileName(testName string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, testName)
	s = strings.Trim(s, "_.")
	if len(s) > 150 {
		s = s[:150]
	}
	if s == "" {
		s = "test"
	}
	return s
}

// tail returns at most the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tailFile is tail of a file's content, or a note why it cannot be read.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	if len(b) == 0 {
		return "(empty)"
	}
	return tail(b, n)
}
