package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/internal/testenv"
)

// opsSlowBound is the documented bound (docs/DEPLOY.md, "Memory") on the gateway's peak resident
// memory while it holds 500 slow clients: 150 sending headers, 200 trickling upload bodies and
// 150 not reading downloads.
const opsSlowBound = 128 << 20

// opsRawRequest opens a connection to the gateway and writes the head of a signed request; the
// body (contentLength bytes) is left to the caller.
func opsRawRequest(t *testing.T, gw *testenv.Gateway, method, path string, contentLength int64, payloadHash string) net.Conn {
	t.Helper()
	host := strings.TrimPrefix(gw.Endpoint, "http://")
	req, err := http.NewRequest(method, gw.Endpoint+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = contentLength
	opsSign(t, req, gw, payloadHash)
	c, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, host)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if contentLength > 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", contentLength)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatalf("writing request head: %v", err)
	}
	return c
}

// opsProcStatus returns a field of /proc/<pid>/status in bytes (VmRSS, VmHWM).
func opsProcStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == field+":" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// opsWaitGauge polls a gauge on <ops>/metrics until it reaches want (or more).
func opsWaitGauge(t *testing.T, ops, name string, want float64, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := opsSum(opsScrape(t, ops), name, nil)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v after %v, want %v", name, got, limit, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// opsNormalClient does one PUT and GET of 1 MiB and returns how long that took.
func opsNormalClient(t *testing.T, gw *testenv.Gateway, bucket, key string) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := gw.Client(t)
	data := testenv.RandomBytes(t, 1<<20, "")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("normal client PUT: %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("normal client GET: %v", err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("normal client GET: %d bytes, %v", len(got), err)
	}
	return time.Since(start)
}

// TestOpsSlowClients: 500 concurrent slow clients (slow headers, trickled uploads, downloads
// nobody reads) keep the gateway's peak memory under the documented bound, and a normal client
// is served meanwhile.
func TestOpsSlowClients(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	env, ops := opsGatewayEnv(t, m, k.Endpoint, k.CreateKey(t))
	gw := testenv.StartGateway(t, env)
	pid := gw.Cmd.Process.Pid
	bucket := m.NewBucket(t)
	const bigSize = 8 << 20
	big := testenv.RandomBytes(t, bigSize, "")
	if _, err := gw.Client(t).PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: ptr("big"), Body: bytes.NewReader(big)}); err != nil {
		t.Fatal(err)
	}
	warm := opsNormalClient(t, gw, bucket, "warm")
	base := opsProcStatus(t, pid, "VmRSS")
	t.Logf("before the slow clients: RSS %d MiB, a normal PUT+GET of 1 MiB takes %v", base>>20, warm)

	const slowHeaders, slowUploads, slowDownloads = 150, 200, 150
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	keep := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	tick := func(c net.Conn, every time.Duration, chunk []byte, limit int) {
		defer wg.Done()
		tk := time.NewTicker(every)
		defer tk.Stop()
		for i := 0; i < limit; i++ {
			select {
			case <-stop:
				return
			case <-tk.C:
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}
	}
	host := strings.TrimPrefix(gw.Endpoint, "http://")
	for range slowHeaders {
		c, err := net.DialTimeout("tcp", host, 10*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		keep(c)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+host+"\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go tick(c, time.Second, []byte("a"), 1000)
	}
	for i := range slowUploads {
		c := opsRawRequest(t, gw, http.MethodPut, fmt.Sprintf("/%s/slow-up-%d", bucket, i), 4<<20, "UNSIGNED-PAYLOAD")
		keep(c)
		wg.Add(1)
		go tick(c, 500*time.Millisecond, bytes.Repeat([]byte{'u'}, 1024), 4096)
	}
	for range slowDownloads {
		c := opsRawRequest(t, gw, http.MethodGet, "/"+bucket+"/big", 0, opsEmptySHA256)
		keep(c) // never read
	}
	t.Cleanup(func() {
		close(stop)
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	// Uploads and downloads are in the handler (headers parsed, backend request open).
	opsWaitGauge(t, ops, "s3seal_requests_in_flight", slowUploads+slowDownloads, 60*time.Second)
	time.Sleep(2 * time.Second) // let the downloads fill every buffer they can
	d := opsNormalClient(t, gw, bucket, "normal")
	t.Logf("with %d slow clients: a normal PUT+GET of 1 MiB takes %v", slowHeaders+slowUploads+slowDownloads, d)
	if d > 30*time.Second {
		t.Errorf("the normal client took %v", d)
	}
	rss, peak := opsProcStatus(t, pid, "VmRSS"), opsProcStatus(t, pid, "VmHWM")
	t.Logf("gateway memory with the slow clients: RSS %d MiB, peak %d MiB (bound %d MiB)", rss>>20, peak>>20, opsSlowBound>>20)
	if peak > opsSlowBound {
		t.Errorf("peak RSS %d MiB exceeds the documented bound %d MiB", peak>>20, opsSlowBound>>20)
	}
	fams := opsScrape(t, ops)
	if v := opsSum(fams, "s3seal_requests_rejected_total", nil); v != 0 {
		t.Errorf("%v requests refused below the concurrency limit", v)
	}
}

// TestOpsConcurrencyLimit: beyond max_concurrent_requests the gateway answers at once with an S3
// 503 SlowDown (counted in s3seal_requests_rejected_total), and serves again when slots free up.
// Connections still sending their headers do not hold a slot.
func TestOpsConcurrencyLimit(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	env, ops := opsGatewayEnv(t, m, k.Endpoint, k.CreateKey(t))
	const limit = 4
	env["GATEWAY_MAX_CONCURRENT_REQUESTS"] = strconv.Itoa(limit)
	gw := testenv.StartGateway(t, env)
	bucket := m.NewBucket(t)
	host := strings.TrimPrefix(gw.Endpoint, "http://")
	for range 10 { // slow headers: no slot
		c, err := net.DialTimeout("tcp", host, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+host+"\r\n")
	}
	ctx := context.Background()
	if _, err := gw.Client(t).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket}); err != nil {
		t.Fatalf("with only slow-header connections: %v", err)
	}
	var held []net.Conn
	for i := range limit {
		c := opsRawRequest(t, gw, http.MethodPut, fmt.Sprintf("/%s/held-%d", bucket, i), 1<<20, "UNSIGNED-PAYLOAD")
		held = append(held, c)
	}
	opsWaitGauge(t, ops, "s3seal_requests_in_flight", limit, 30*time.Second)
	start := time.Now()
	_, err := gw.Client(t).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "SlowDown" {
		t.Fatalf("request beyond the limit: %v, want SlowDown", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("SlowDown took %v: it must be immediate", d)
	}
	if v := opsSum(opsScrape(t, ops), "s3seal_requests_rejected_total", opsLabels("reason", "concurrency_limit")); v != 1 {
		t.Errorf("s3seal_requests_rejected_total = %v, want 1", v)
	}
	for _, c := range held {
		c.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for opsSum(opsScrape(t, ops), "s3seal_requests_in_flight", nil) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("aborted uploads still in flight after 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := gw.Client(t).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket}); err != nil {
		t.Fatalf("after the slots freed up: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
