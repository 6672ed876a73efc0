package integration

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/loadgen"
	"github.com/s3seal/s3seal/internal/testenv"
)

// Bounds on the gateway's own figures after the slow and flapping backend, against a sample
// taken before (both with no client or backend connection open): goroutines back within
// faultGoroutineSlack, resident memory at most 2 × before + faultRSSSlack.
const (
	faultGoroutineSlack = 10
	faultRSSSlack       = 64 << 20
)

// TestFaultBackendSlowAndFlapping (issue 13): the backend answers 5 s late (a delaying TCP
// proxy), with the gateway's backend timeout at 2 s (backend.timeout); then it flaps (every
// connection refused and reset, up and down again every few hundred ms) under a mixed load.
//
//   - slow: a PUT fails with an S3 error, never hangs, and its body reached the backend once (a
//     consumed body is not replayed); afterwards the key holds the old or the new object, whole;
//     a GET fails with an S3 error too and is sent at most twice (GET is idempotent); with a
//     500 ms delay, well under the timeout, both succeed.
//   - flapping: 8 load-generator clients run the mix for 12 s; no answer is wrong content (the
//     generator's model allows either outcome of a failed write), every object verifies once
//     the backend is steady, and the backend received no more PutObject or UploadPart bodies
//     than the clients sent.
//   - afterwards the gateway's goroutines and RSS (its /metrics) return to the baseline.
func TestFaultBackendSlowAndFlapping(t *testing.T) {
	cfg := opsConfigFile(t, "backend:\n  timeout: 2s\n")
	r := newFaultRig(t, nil, "-config", cfg)
	old := testenv.RandomBytes(t, 256<<10, "")
	for _, k := range []string{"slow/put", "slow/get"} {
		if err := faultPut(r.c, r.bucket, k, old); err != nil {
			t.Fatal(err)
		}
		faultMustRead(t, r.c, r.bucket, k, old, "before the faults")
	}
	// The samples are taken with no connection open: the client's closed by the client, the
	// gateway's idle backend connections (2 goroutines each in Go's transport, kept up to 90 s)
	// reset at the proxy.
	r.tr.CloseIdleConnections()
	r.fp.ResetAll()
	time.Sleep(500 * time.Millisecond)
	base := settleSample(t, r.ops, loadgen.Sample{}, 1<<30)
	t.Logf("baseline: %v", base)

	t.Run("slow", func(t *testing.T) {
		r.fp.SetDelay(5 * time.Second)
		newer := testenv.RandomBytes(t, 256<<10, "")
		start := time.Now()
		err := faultPut(r.c, r.bucket, "slow/put", newer)
		took := time.Since(start)
		code, status := faultS3Code(err)
		if err == nil || status/100 != 5 || code == "" {
			t.Errorf("PUT with the backend 5 s late and a 2 s timeout: %v, want an S3 5xx error", err)
		}
		t.Logf("PUT, backend 5 s late: %s %d after %v", code, status, took.Round(time.Millisecond))
		start = time.Now()
		_, err = faultGet(r.c, r.bucket, "slow/get")
		code, status = faultS3Code(err)
		if err == nil || status/100 != 5 || code == "" {
			t.Errorf("GET with the backend 5 s late and a 2 s timeout: %v, want an S3 5xx error", err)
		}
		t.Logf("GET, backend 5 s late: %s %d after %v", code, status, time.Since(start).Round(time.Millisecond))

		// Several at once, so that abandoned backend connections pile up if they leak.
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					_ = faultPut(r.c, r.bucket, "slow/many", newer)
				} else {
					_, _ = faultGet(r.c, r.bucket, "slow/get")
				}
			}()
		}
		wg.Wait()

		r.fp.SetDelay(500 * time.Millisecond) // a margin of 1.5 s for a busy machine
		start = time.Now()
		if err := faultPut(r.c, r.bucket, "slow/late", newer); err != nil {
			t.Errorf("PUT with the backend 500 ms late (timeout 2 s): %v after %v", err, time.Since(start))
		}
		faultMustRead(t, r.c, r.bucket, "slow/late", newer, "backend 500 ms late")
		r.fp.SetDelay(0)

		puts, _ := faultBackendPuts(r.h, isPath(testenv.ObjectPath(r.bucket, "slow/put")))
		if puts != 2 {
			t.Errorf("the backend received %d PutObject bodies for slow/put, want 2 (the first version and the timed-out one, once)", puts)
		}
		if many, _ := faultBackendPuts(r.h, isPath(testenv.ObjectPath(r.bucket, "slow/many"))); many > 4 {
			t.Errorf("the backend received %d PutObject bodies for slow/many from 4 client PUTs", many)
		}
		gets := 0
		for _, q := range r.h.Requests() {
			if q.Method == http.MethodGet && q.Path == testenv.ObjectPath(r.bucket, "slow/get") && q.Header.Get("Range") == "" {
				gets++
			}
		}
		// 1 before the faults, 1 timed-out GET and 4 concurrent ones, each sent at most twice.
		if gets > 1+2*5 {
			t.Errorf("the backend received %d whole GETs of slow/get for 6 client GETs", gets)
		}
		got, err := faultGet(r.c, r.bucket, "slow/put")
		if err != nil || (!bytes.Equal(got, old) && !bytes.Equal(got, newer)) {
			t.Errorf("after the timed-out PUT, slow/put reads %d bytes (%v): neither the old nor the new object", len(got), err)
		}
	})

	t.Run("flapping", func(t *testing.T) {
		const run = 12 * time.Second
		stop := make(chan struct{})
		flapped := make(chan int)
		go func() { // down 300 ms, up 500 ms, until 2 s before the end of the run
			n := 0
			defer func() { r.fp.Up(); flapped <- n }()
			end := time.After(run - 2*time.Second)
			for {
				r.fp.Down()
				n++
				select {
				case <-end:
					return
				case <-stop:
					return
				case <-time.After(300 * time.Millisecond):
				}
				r.fp.Up()
				select {
				case <-end:
					return
				case <-time.After(500 * time.Millisecond):
				}
			}
		}()
		putsBefore, partsBefore := faultBackendPuts(r.h, inBucket(r.bucket))
		res, err := loadgen.Run(context.Background(), loadgen.Config{Endpoint: r.gw.Endpoint, Region: r.gw.Region,
			AccessKeyID: r.gw.AccessKeyID, SecretAccessKey: r.gw.SecretAccessKey, Bucket: r.bucket, Prefix: "flap/",
			Clients: 8, Duration: run, KeysPerClient: 4, MaxObjectSize: 128 << 10, OpTimeout: 30 * time.Second})
		close(stop)
		n := <-flapped
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("flapping backend (%d outages): %d errors, e.g. %q\n%s", n, res.ErrorCount, faultFirst(res.Errors, 5), res.Table())
		if len(res.Corrupt) != 0 {
			t.Errorf("%d wrong answers with a flapping backend: %q", len(res.Corrupt), res.Corrupt)
		}
		if v := res.Ops[loadgen.OpVerify]; v == nil || v.Count != 8*4 || v.Errors != 0 {
			t.Errorf("final check with the backend steady: %+v, want 32 keys, no error", v)
		}
		if res.ErrorCount == 0 {
			t.Error("no operation failed: the backend did not flap")
		}
		puts, parts := faultBackendPuts(r.h, inBucket(r.bucket))
		puts, parts = puts-putsBefore, parts-partsBefore
		sentPuts, sentParts := res.Ops[loadgen.OpPut].Count, 0
		if mp := res.Ops[loadgen.OpMultipart]; mp != nil {
			sentParts = 2 * mp.Count
		}
		t.Logf("backend received %d PutObject and %d UploadPart bodies; clients sent %d and at most %d", puts, parts, sentPuts, sentParts)
		if puts > sentPuts || parts > sentParts {
			t.Errorf("the backend received more bodies than the clients sent: a consumed body was replayed")
		}
	})

	r.tr.CloseIdleConnections()
	r.fp.ResetAll()
	end := settleSample(t, r.ops, base, faultGoroutineSlack)
	t.Logf("after the faults (idle): %v; baseline %v", end, base)
	if end.Goroutines > base.Goroutines+faultGoroutineSlack {
		t.Errorf("goroutines %d after the faults, %d before (bound +%d)", end.Goroutines, base.Goroutines, faultGoroutineSlack)
	}
	if end.RSS > 2*base.RSS+faultRSSSlack {
		t.Errorf("RSS %d MiB after the faults, %d MiB before", end.RSS>>20, base.RSS>>20)
	}
}

func faultFirst(s []string, n int) []string { return s[:min(n, len(s))] }

// inBucket matches the paths of a bucket's objects (for faultBackendPuts).
func inBucket(bucket string) func(string) bool {
	return func(p string) bool { return strings.HasPrefix(p, "/"+bucket+"/") }
}
