package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestScaleMultipartAcrossGateways (issue 16, acceptance 1): a multipart upload created and
// completed through HAProxy whose three parts are each uploaded straight to a different
// gateway reads back whole, and across the part boundaries, through HAProxy and through each
// gateway.
func TestScaleMultipartAcrossGateways(t *testing.T) {
	c := newScaleCluster(t, 3, "")
	bucket := c.m.NewBucket(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	key := "mp/across-gateways"
	sizes := []int{5 << 20, 5 << 20, 1<<20 + 7}
	var parts [][]byte
	var whole []byte
	for _, n := range sizes {
		p := testenv.RandomBytes(t, n, marker)
		parts = append(parts, p)
		whole = append(whole, p...)
	}
	front := c.front.Client(t)
	up, err := front.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("CreateMultipartUpload through HAProxy: %v", err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		num := int32(i + 1)
		out, err := c.gws[i].Client(t).UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key,
			UploadId: up.UploadId, PartNumber: &num, Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatalf("UploadPart %d straight to %s: %v", num, c.gws[i].Endpoint, err)
		}
		done = append(done, types.CompletedPart{PartNumber: &num, ETag: out.ETag})
	}
	if _, err := front.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("CompleteMultipartUpload through HAProxy: %v", err)
	}
	want := sha256.Sum256(whole)
	boundary := int64(sizes[0])
	readers := map[string]*testenv.Gateway{"haproxy": c.front}
	for i, g := range c.gws {
		readers[c.names[i]] = g
	}
	for name, g := range readers {
		cl := g.Client(t)
		// Read the whole object three times through HAProxy (round robin: every gateway).
		reps := 1
		if name == "haproxy" {
			reps = 3
		}
		for range reps {
			got := scaleGet(ctx, t, cl, bucket, key, "")
			if sha256.Sum256(got) != want {
				t.Errorf("GET through %s: %d bytes, not the %d uploaded", name, len(got), len(whole))
			}
		}
		rng := fmt.Sprintf("bytes=%d-%d", boundary-100, 2*boundary+99) // spans both part boundaries
		got := scaleGet(ctx, t, cl, bucket, key, rng)
		if !bytes.Equal(got, whole[boundary-100:2*boundary+100]) {
			t.Errorf("GET %s through %s: %d bytes, not the uploaded range", rng, name, len(got))
		}
	}
	// Straight from MinIO: what is stored is not the plaintext.
	raw := scaleGet(ctx, t, c.m.Client(t), bucket, key, "")
	if bytes.Contains(raw, []byte(marker)) {
		t.Error("the backend holds plaintext of the multipart object")
	}
}

// scaleGet reads bucket/key (with a Range when rng is not "") and fails the test on error.
func scaleGet(ctx context.Context, t *testing.T, cl *s3.Client, bucket, key, rng string) []byte {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: &bucket, Key: &key}
	if rng != "" {
		in.Range = &rng
	}
	out, err := cl.GetObject(ctx, in)
	if err != nil {
		t.Fatalf("GET %s (range %q): %v", key, rng, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GET %s (range %q): reading: %v", key, rng, err)
	}
	return b
}

// TestScaleSync500 (issue 16, acceptance 1): aws s3 sync of 500 small files up and down
// through HAProxy gives back the same files, and every gateway served part of it.
func TestScaleSync500(t *testing.T) {
	c := newScaleCluster(t, 3, "")
	bucket := c.m.NewBucket(t)
	const files = 500
	src, dst := t.TempDir(), t.TempDir()
	want := map[string][]byte{}
	for i := range files {
		rel := filepath.Join(fmt.Sprintf("d%d", i%7), fmt.Sprintf("f%03d.bin", i))
		data := testenv.RandomBytes(t, mrand.IntN(8192), "")
		want[filepath.ToSlash(rel)] = data
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, rel), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := c.sessions(t)
	start := time.Now()
	if _, err := c.front.AWS(t, "s3", "sync", "--only-show-errors", src, "s3://"+bucket+"/tree"); err != nil {
		t.Fatalf("sync up: %v", err)
	}
	upTime := time.Since(start)
	start = time.Now()
	if _, err := c.front.AWS(t, "s3", "sync", "--only-show-errors", "s3://"+bucket+"/tree", dst); err != nil {
		t.Fatalf("sync down: %v", err)
	}
	t.Logf("aws s3 sync of %d files through HAProxy: up %v, down %v", files, upTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	after := c.sessions(t)
	for i := range after {
		d := after[i] - before[i]
		t.Logf("%s served %d requests", c.names[i], d)
		// Round robin: about a third of at least 2 × 500 requests each; a tenth is a loose floor.
		if d < 2*files/30 {
			t.Errorf("%s served only %d requests of the sync", c.names[i], d)
		}
	}
	got := 0
	err := filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got++
		if w, ok := want[filepath.ToSlash(rel)]; !ok {
			t.Errorf("sync down brought %s, which was never uploaded", rel)
		} else if !bytes.Equal(b, w) {
			t.Errorf("%s: %d bytes back, not the %d uploaded", rel, len(b), len(w))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != files {
		t.Errorf("sync down brought %d files, want %d", got, files)
	}
}

// scaleLoadClient is one of the load's clients: it owns the keys under its prefix and knows
// what each holds (the SHA-256 of its last PUT), so every GET and LIST can be checked.
type scaleLoadClient struct {
	prefix string
	keys   []string
	state  map[string][32]byte // present keys
	ops    map[string]int
	errs   []string
}

const (
	scaleLoadClients = 32
	scaleLoadKeys    = 16 // per client
)

// run does random PUT/GET/LIST/DELETE on the client's keys until stop is closed.
func (lc *scaleLoadClient) run(ctx context.Context, t *testing.T, cl *s3.Client, bucket string, stop <-chan struct{}, bodyRetries *atomic.Int64) {
	fail := func(format string, args ...any) {
		lc.errs = append(lc.errs, fmt.Sprintf(format, args...))
	}
	seed := sha256.Sum256([]byte(lc.prefix + time.Now().String()))
	cha := mrand.NewChaCha8(seed)
	rnd := mrand.New(cha)
	for {
		select {
		case <-stop:
			return
		default:
		}
		if len(lc.errs) > 5 {
			return
		}
		key := lc.keys[rnd.IntN(len(lc.keys))]
		sum, present := lc.state[key]
		r := rnd.IntN(100)
		switch {
		case !present || r < 25: // PUT (new or overwrite)
			data := make([]byte, rnd.IntN(64<<10))
			_, _ = cha.Read(data)
			if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
				fail("PUT %s: %v", key, err)
				continue
			}
			lc.state[key] = sha256.Sum256(data)
			lc.ops["PUT"]++
		case r < 65: // GET
			// The SDK retries a request until the response head arrives; a body cut by a
			// dying gateway after that shows up as a read error, retried here (counted).
			var got []byte
			var err error
			for attempt := 0; attempt < 3; attempt++ {
				var out *s3.GetObjectOutput
				if out, err = cl.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key}); err != nil {
					break
				}
				got, err = io.ReadAll(out.Body)
				out.Body.Close()
				if err == nil {
					break
				}
				bodyRetries.Add(1)
			}
			if err != nil {
				fail("GET %s: %v", key, err)
				continue
			}
			if sha256.Sum256(got) != sum {
				fail("GET %s: %d bytes that are not the last PUT", key, len(got))
			}
			lc.ops["GET"]++
		case r < 85: // DELETE
			if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
				fail("DELETE %s: %v", key, err)
				continue
			}
			delete(lc.state, key)
			lc.ops["DELETE"]++
		default: // LIST
			got, err := scaleList(ctx, cl, bucket, lc.prefix)
			if err != nil {
				fail("LIST %s: %v", lc.prefix, err)
				continue
			}
			if want := lc.present(); !slices.Equal(got, want) {
				fail("LIST %s: %v, want %v", lc.prefix, got, want)
			}
			lc.ops["LIST"]++
		}
	}
}

func (lc *scaleLoadClient) present() []string {
	var keys []string
	for k := range lc.state {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// scaleList lists every key under prefix, sorted.
func scaleList(ctx context.Context, cl *s3.Client, bucket, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Timeline of TestScaleLoadKill (it runs scaleLoadTime in all, about 55 s with set-up and the
// final check; the 60 s of load would take the three scale tests over their budget).
const (
	scaleLoadTime    = 40 * time.Second
	scaleKillAt      = 10 * time.Second
	scaleRestartAt   = 20 * time.Second
	scaleDownLimit   = 5 * time.Second  // HAProxy must mark the killed gateway DOWN by then
	scaleRejoinLimit = 10 * time.Second // and the restarted one UP again
)

// TestScaleLoadKill (issue 16, acceptances 1 and 2): 32 clients with SDK retries do mixed
// PUT/GET/LIST/DELETE through HAProxy and three gateways for 40 s, checking every GET by
// content hash and every LIST against the keys they wrote. At 10 s one gateway is killed with
// SIGKILL: no client operation fails, HAProxy marks it DOWN (its /readyz check fails) and sends
// it nothing while it is down. At 20 s it is restarted on the same ports: HAProxy marks it UP
// and it serves its share of the rest of the load (HAProxy's count and its own metrics). At
// the end every object is read back through HAProxy and compared by hash, and the bucket holds
// exactly the keys the clients think exist.
func TestScaleLoadKill(t *testing.T) {
	c := newScaleCluster(t, 3, "")
	bucket := c.m.NewBucket(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var attempts, bodyRetries atomic.Int64
	clients := make([]*scaleLoadClient, scaleLoadClients)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		lc := &scaleLoadClient{prefix: fmt.Sprintf("load/c%02d/", i), state: map[string][32]byte{}, ops: map[string]int{}}
		for k := range scaleLoadKeys {
			lc.keys = append(lc.keys, fmt.Sprintf("%sk%02d", lc.prefix, k))
		}
		clients[i] = lc
		cl := scaleRetryClient(t, c.front, &attempts)
		wg.Add(1)
		go func() {
			defer wg.Done()
			lc.run(ctx, t, cl, bucket, stop, &bodyRetries)
		}()
	}
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()

	const victim = 1
	name := c.names[victim]
	time.Sleep(time.Until(start.Add(scaleKillAt)))
	c.gws[victim].Kill(t)
	t.Logf("%v: %s killed with SIGKILL", time.Since(start).Round(time.Millisecond), name)
	d := c.lb.WaitStatus(t, name, "DOWN", scaleDownLimit)
	st := c.lb.Stats(t)[name]
	t.Logf("HAProxy marked %s DOWN %v after the kill (last check %s)", name, d.Round(time.Millisecond), st.CheckStatus)
	atDown := st.Sessions

	time.Sleep(time.Until(start.Add(scaleRestartAt)))
	if got := c.lb.Stats(t)[name].Sessions; got != atDown {
		t.Errorf("HAProxy sent %d requests to %s while it was DOWN", got-atDown, name)
	}
	c.restart(t, victim)
	d = c.lb.WaitStatus(t, name, "UP", scaleRejoinLimit)
	st = c.lb.Stats(t)[name]
	t.Logf("%s restarted on the same ports; HAProxy marked it UP %v later (last check %s)", name, d.Round(time.Millisecond), st.CheckStatus)
	if st.CheckStatus != "L7OK" {
		t.Errorf("the check that brought %s back is %q, want L7OK (/readyz answered 200)", name, st.CheckStatus)
	}
	atUp := c.sessions(t)

	time.Sleep(time.Until(start.Add(scaleLoadTime)))
	stopLoad()
	loadTime := time.Since(start)
	end := c.sessions(t)

	var total int64
	for i := range end {
		total += end[i] - atUp[i]
	}
	share := end[victim] - atUp[victim]
	t.Logf("after the rejoin HAProxy sent %d of %d requests to %s", share, total, name)
	// Round robin gives it a third; a sixth is the floor.
	if total == 0 || share*6 < total {
		t.Errorf("the rejoined %s served %d of %d requests after it came back", name, share, total)
	}
	served := opsSum(opsScrape(t, c.ops[victim]), "s3seal_requests_total", nil)
	if served < float64(share)/2 {
		t.Errorf("the restarted gateway's own metrics count %v requests, HAProxy sent it %d", served, share)
	}

	ops := map[string]int{}
	nops := 0
	for _, lc := range clients {
		for _, e := range lc.errs {
			t.Errorf("%s", e)
		}
		for k, v := range lc.ops {
			ops[k] += v
			nops += v
		}
	}
	t.Logf("%d clients, %v: %d operations %v (%.0f/s), %d HTTP attempts (%d SDK retries, LIST pages included), %d GET bodies re-read after a cut",
		scaleLoadClients, loadTime.Round(time.Millisecond), nops, ops, float64(nops)/loadTime.Seconds(), attempts.Load(), attempts.Load()-int64(nops), bodyRetries.Load())
	for _, op := range []string{"PUT", "GET", "LIST", "DELETE"} {
		if ops[op] == 0 {
			t.Errorf("the load made no %s", op)
		}
	}

	// Final check through HAProxy: exactly the keys the clients think exist, each with the
	// content of its last PUT.
	check := c.front.Client(t)
	all, err := scaleList(ctx, check, bucket, "load/")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, lc := range clients {
		want = append(want, lc.present()...)
	}
	sort.Strings(want)
	if !slices.Equal(all, want) {
		t.Errorf("the bucket holds %d keys, the clients wrote %d that exist: %v vs %v", len(all), len(want), all, want)
	}
	corrupt := 0
	for _, lc := range clients {
		for key, sum := range lc.state {
			out, err := check.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				t.Errorf("final GET %s: %v", key, err)
				corrupt++
				continue
			}
			b, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil || sha256.Sum256(b) != sum {
				t.Errorf("final GET %s: %d bytes (%v), not the last PUT", key, len(b), err)
				corrupt++
			}
		}
	}
	t.Logf("final check: %d objects read back through HAProxy, %d corrupt or missing", len(want), corrupt)
}

// TestScaleKMSCalls (issue 16, acceptance 3): 1,000 PUTs through HAProxy and three gateways
// make at most three times the GenerateDataKey calls of 1,000 PUTs through HAProxy and one
// gateway (each gateway has its own data-key cache), counted at the KMS emulator; each of the
// three gateways took PUTs, so each made at least one call.
func TestScaleKMSCalls(t *testing.T) {
	k := testenv.NewKMS(t)
	kp := newCoreProxy(t, k.Endpoint)
	count := func(n int) (generate, decrypt int) {
		c := newScaleCluster(t, n, kp.URL)
		bucket := c.m.NewBucket(t)
		hc := coreHTTPClient()
		g0, d0 := kp.countTarget("GenerateDataKey"), kp.countTarget("Decrypt")
		put := func(i int) {
			body := testenv.RandomBytes(t, 200+i%50, "")
			req := signedRequest(t, http.MethodPut, fmt.Sprintf("%s/%s/kms/%04d", c.lb.Endpoint, bucket, i), body, "", c.front.AccessKeyID, c.front.SecretAccessKey)
			if r := coreDo(hc, req); r.Status != http.StatusOK || r.ReadErr != nil {
				t.Errorf("PUT %d: %v", i, r)
			}
		}
		// The first 2n PUTs one at a time, so that each gateway's first PUT has filled its
		// cache before more arrive (concurrent first misses may each call KMS: 1..2 calls per
		// cold gateway, TestCoreKMSCallsCached); round robin gives each gateway two of them.
		warm := 2 * n
		for i := range warm {
			put(i)
		}
		var wg sync.WaitGroup
		next := make(chan int)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					put(i)
				}
			}()
		}
		for i := warm; i < coreKMSObjects; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		generate, decrypt = kp.countTarget("GenerateDataKey")-g0, kp.countTarget("Decrypt")-d0
		for i, ops := range c.ops {
			puts := opsSum(opsScrape(t, ops), "s3seal_requests_total", opsLabels("op", "PutObject", "status", "200"))
			kmsCalls := opsSum(opsScrape(t, ops), "s3seal_kms_requests_total", opsLabels("operation", "GenerateDataKey"))
			t.Logf("%d gateways: %s served %v PUTs with %v GenerateDataKey calls", n, c.names[i], puts, kmsCalls)
			if puts == 0 {
				t.Errorf("%d gateways: %s served no PUT: HAProxy did not spread the load", n, c.names[i])
			}
		}
		t.Logf("%d PUTs through HAProxy and %d gateways: %d GenerateDataKey, %d Decrypt at the KMS emulator", coreKMSObjects, n, generate, decrypt)
		return generate, decrypt
	}
	one, oneDec := count(1)
	three, threeDec := count(3)
	if one < 1 {
		t.Fatalf("one gateway made %d GenerateDataKey calls: the counting proxy is not in the path", one)
	}
	if three < 3 {
		t.Errorf("three gateways made %d GenerateDataKey calls: each must have made at least one", three)
	}
	if three > 3*one {
		t.Errorf("three gateways made %d GenerateDataKey calls per %d PUTs, more than 3 × %d of one gateway", three, coreKMSObjects, one)
	}
	if oneDec != 0 || threeDec != 0 {
		t.Errorf("PUTs made Decrypt calls: %d (one gateway), %d (three)", oneDec, threeDec)
	}
}
