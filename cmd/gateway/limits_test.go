package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/keys"
	"github.com/s3seal/s3seal/metrics"
)

func newTestLimits(next http.Handler, max int, read, write time.Duration) (*limits, *metrics.Metrics) {
	m := metrics.New(metrics.Options{NoProcessMetrics: true})
	return newLimits(next, max, read, write, m, slog.New(slog.DiscardHandler)), m
}

func TestLimitRefusesWithSlowDown(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	lim, _ := newTestLimits(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}), 1, 0, 0)
	srv := httptest.NewServer(lim)
	defer srv.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(srv.URL + "/held")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	resp, err := http.Get(srv.URL + "/b/k")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "<Code>SlowDown</Code>") ||
		resp.Header.Get("X-Amz-Request-Id") == "" {
		t.Errorf("over the limit: %d %s", resp.StatusCode, body)
	}
	close(release)
	<-done
	if !lim.wait(time.Second) {
		t.Error("handlers still counted as running")
	}
	resp, err = http.Get(srv.URL + "/again")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after the slot freed: %d", resp.StatusCode)
	}
}

// A client that stops sending its body is cut off after the body read timeout, while one that
// keeps sending (slowly, for longer than the timeout in total) is not.
func TestBodyReadTimeout(t *testing.T) {
	got := make(chan error, 2)
	lim, _ := newTestLimits(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		got <- err
	}), 10, 2*time.Second, time.Second)
	srv := httptest.NewServer(lim)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT /stall HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	select {
	case err := <-got:
		if err == nil {
			t.Error("a stalled body read without error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stalled body was not cut off")
	}

	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "PUT /trickle HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n")
	// 16 × 300 ms = 4.8 s in total, more than twice the timeout; each gap is far below it, so
	// a loaded machine (the race step runs beside other work) does not turn a gap into a stall.
	for range 16 {
		time.Sleep(300 * time.Millisecond)
		if _, err := c2.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-got; err != nil {
		t.Errorf("a trickled body was cut off: %v", err)
	}
}

// The write deadline a request leaves on a keep-alive connection must not fail the next
// request, even one whose response the server writes after the handler returned.
func TestWriteDeadlineRenewedPerRequest(t *testing.T) {
	lim, _ := newTestLimits(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/body":
			_, _ = w.Write([]byte("hello"))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		} // "/nothing": the server writes the 200 after the handler returned
	}), 10, time.Second, 200*time.Millisecond)
	srv := httptest.NewServer(lim)
	defer srv.Close()
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i, p := range []string{"/body", "/empty", "/nothing", "/body"} {
		if i > 0 {
			time.Sleep(500 * time.Millisecond) // past the previous request's deadline
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", p)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d (%s) on a reused connection: %v", i, p, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func TestKeyOutcome(t *testing.T) {
	cases := map[string]error{
		"success":            nil,
		"not_found":          fmt.Errorf("kms: %w", keys.ErrKeyNotFound),
		"disabled":           keys.ErrKeyDisabled,
		"access_denied":      keys.ErrAccessDenied,
		"invalid_ciphertext": keys.ErrInvalidCiphertext,
		"unavailable":        keys.ErrUnavailable,
		"timeout":            fmt.Errorf("%w: %w", keys.ErrUnavailable, context.DeadlineExceeded),
		"canceled":           context.Canceled,
		"closed":             keys.ErrClosed,
		"error":              errors.New("something else"),
	}
	for want, err := range cases {
		if got := keyOutcome(err); got != want {
			t.Errorf("keyOutcome(%v) = %q, want %q", err, got, want)
		}
	}
}
