package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/s3seal/s3seal/internal/testenv"
)

// benchGatewayBin lets a benchmark run another gateway build (S3SEAL_BENCH_GATEWAY_BIN, e.g.
// the one before a change, for A/B rounds) instead of the one scripts/test built.
func benchGatewayBin(b *testing.B) {
	if bin := os.Getenv("S3SEAL_BENCH_GATEWAY_BIN"); bin != "" {
		b.Setenv("S3SEAL_TEST_GATEWAY_BIN", bin)
	}
}

// BenchmarkProfileSmall (issue 14) takes CPU and allocation profiles of the gateway while 8
// SDK clients PUT and then GET 4 KiB objects, and then while one client PUTs 128 MiB objects
// (UNSIGNED-PAYLOAD), from the gateway's /debug/pprof (on its metrics
// listener, GATEWAY_DEBUG_PPROF=1), and prints the top of each. It runs only when
// S3SEAL_BENCH_PROFILE_DIR names the directory for the profiles: scripts/bench --profile.
func BenchmarkProfileSmall(b *testing.B) {
	dir := os.Getenv("S3SEAL_BENCH_PROFILE_DIR")
	if dir == "" {
		b.Skip("run by scripts/bench --profile (S3SEAL_BENCH_PROFILE_DIR)")
	}
	if b.N > 1 {
		b.Skip("one iteration is the whole benchmark: run with -benchtime 1x")
	}
	const seconds = 10
	benchGatewayBin(b)
	m := testenv.NewMinIO(b)
	k := testenv.NewKMS(b)
	ops := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	gw := testenv.StartGateway(b, coreGatewayEnv(m, m.Endpoint, k.Endpoint, k.CreateKey(b),
		map[string]string{"GATEWAY_METRICS_LISTEN": ops, "GATEWAY_DEBUG_PPROF": "1"}))
	bucket := m.NewBucket(b)
	c := gw.Client(b, pooledSDK)
	data := testenv.RandomBytes(b, 4<<10, "")
	fetch := func(path, file string) error {
		resp, err := http.Get("http://" + ops + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("%s: %d %s", path, resp.StatusCode, msg)
		}
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(f, resp.Body)
		return err
	}
	tg := &figTarget{name: "gateway", endpoint: gw.Endpoint, key: gw.AccessKeyID, secret: gw.SecretAccessKey, region: gw.Region, http: http.DefaultClient}
	for _, op := range []string{"put", "get", "stream-put", "stream-get"} {
		var g errgroup.Group
		cpu, allocs := filepath.Join(dir, "cpu-"+op+".pprof"), filepath.Join(dir, "allocs-"+op+".pprof")
		g.Go(func() error { return fetch(fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds), cpu) })
		g.Go(func() error { return fetch(fmt.Sprintf("/debug/pprof/allocs?seconds=%d", seconds), allocs) })
		var n float64
		if op == "stream-put" || op == "stream-get" {
			n = streamLoad(b, tg, bucket, op, seconds*time.Second+500*time.Millisecond)
		} else {
			n = smallLoad(b, c, bucket, op, data, seconds*time.Second+500*time.Millisecond)
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		fmt.Printf("\n==== %s: %.1f (4 KiB put/get: ops/s at %d clients; stream-put/get: MB/s of one client's 128 MiB PUTs or GETs); profiles %s, %s\n", op, n, smallClients, cpu, allocs)
		for _, args := range [][]string{{"-top", "-nodecount=30", cpu}, {"-top", "-cum", "-nodecount=40", cpu}, {"-top", "-sample_index=alloc_space", "-nodecount=25", allocs}} {
			out, err := exec.Command("go", append([]string{"tool", "pprof"}, append(args[:len(args)-1], testenv.GatewayBin(b), args[len(args)-1])...)...).CombinedOutput()
			if err != nil {
				b.Fatalf("go tool pprof %v: %v\n%s", args, err, out)
			}
			fmt.Printf("\n-- go tool pprof %v\n%s", args[:len(args)-1], out)
		}
	}
}

// smallLoad runs 4 KiB PUTs or GETs ("put", "get") from smallClients SDK clients for d and
// returns ops/s.
func smallLoad(b *testing.B, c *s3.Client, bucket, op string, data []byte, d time.Duration) float64 {
	ctx := context.Background()
	n, _ := smallRun(b, d, func(w, i int) error {
		key := fmt.Sprintf("prof/%d/%d", w, i%200)
		if op == "put" {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)})
			return err
		}
		key = fmt.Sprintf("prof/%d/%d", w, i%20) // 20 per client are surely written
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, out.Body)
		out.Body.Close()
		return err
	})
	return n
}

// streamLoad PUTs ("stream-put") or GETs ("stream-get", of the object stream-put wrote) 128
// MiB objects from one client for at least d and returns MB/s.
func streamLoad(b *testing.B, tg *figTarget, bucket, op string, d time.Duration) float64 {
	const size = 128 << 20
	buf := figBody(b)
	var moved int64
	start := time.Now()
	for time.Since(start) < d {
		var err error
		if op == "stream-put" {
			_, err = tg.put(bucket, "prof/stream", &cycleReader{buf: buf, left: size}, size)
		} else {
			var n int64
			if _, n, err = tg.get(bucket, "prof/stream", "", io.Discard); err == nil && n != size {
				err = fmt.Errorf("GET prof/stream: %d bytes of %d", n, size)
			}
		}
		if err != nil {
			b.Fatal(err)
		}
		moved += size
	}
	return float64(moved) / time.Since(start).Seconds() / 1e6
}
