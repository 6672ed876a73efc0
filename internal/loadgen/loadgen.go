// Package loadgen is s3seal's load generator: N clients doing a mix of PUT, GET, ranged GET,
// HEAD, ListObjectsV2, multipart upload, DeleteObject and CopyObject against an S3 endpoint (the
// gateway) for a fixed time, every answer checked against an in-memory model of what each key
// holds, and every object verified by content hash at the end.
//
// Each client owns its keys (prefix Config.Prefix+"cNNN/"), so its model is exact: a key holds the last
// content written to it, or, after a write that failed, either the old or the new content.
// Contents are generated from a seed and a size, so the model keeps no object bytes. The
// result counts operations, errors (by HTTP status; any 5xx is unexpected), corrupt reads (an
// answer that is no content the key may hold) and latencies; Scrape reads a gateway's
// go_goroutines and process_resident_memory_bytes from its /metrics.
//
// Used by the load test (integration/load_test.go); bounded: a fixed number of clients, each
// with one request at a time, objects of at most MaxObjectSize (multipart: 5 MiB + that).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Config is one load run.
type Config struct {
	Endpoint        string // http://127.0.0.1:PORT
	Region          string // default us-east-1
	AccessKeyID     string
	SecretAccessKey string
	Bucket          string // must exist
	// Prefix of every key (client n's keys are Prefix+"cNNN/kMM"); the keys under it must not
	// exist when the run starts.
	Prefix string

	Clients       int           // concurrent clients; default 16
	Duration      time.Duration // how long operations are started; default 10s
	KeysPerClient int           // default 8
	MaxObjectSize int           // bytes of a single PUT at most; default 256 KiB
	Seed          uint64        // of the operation mix and contents; 0 = random
	// OpTimeout bounds one operation; default 2 minutes.
	OpTimeout time.Duration
}

func (c *Config) defaults() {
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Clients <= 0 {
		c.Clients = 16
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.KeysPerClient <= 0 {
		c.KeysPerClient = 8
	}
	if c.MaxObjectSize <= 0 {
		c.MaxObjectSize = 256 << 10
	}
	if c.Seed == 0 {
		c.Seed = mrand.Uint64() | 1
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 2 * time.Minute
	}
}

// The operations of the mix and their weights.
const (
	OpPut       = "PutObject"
	OpGet       = "GetObject"
	OpRange     = "GetObject(range)"
	OpHead      = "HeadObject"
	OpList      = "ListObjectsV2"
	OpMultipart = "MultipartUpload"
	OpDelete    = "DeleteObject"
	OpCopy      = "CopyObject"
	OpVerify    = "verify"
)

var mix = []struct {
	op     string
	weight int
}{
	{OpPut, 24}, {OpGet, 24}, {OpRange, 14}, {OpHead, 8}, {OpList, 8},
	{OpMultipart, 2}, {OpDelete, 8}, {OpCopy, 12},
}

// Result is what a run measured.
type Result struct {
	Elapsed time.Duration        // from the first operation of the mix to its last answer
	Ops     map[string]*OpResult // by operation name, including OpVerify (the final check)
	// Corrupt describes every answer that was no content its key may hold (must be empty).
	Corrupt []string
	// Errors are samples (at most 50) of failed operations; ErrorCount counts them all, and
	// Status5xx those answered with a 5xx status.
	Errors     []string
	ErrorCount int
	Status5xx  int
	Verified   int // keys checked at the end
}

// OpResult is one operation's count, errors and latencies (of successful and failed calls).
type OpResult struct {
	Count, Errors int
	lat           []time.Duration
}

// Quantile returns the q-quantile (0..1) of the latencies, 0 when there are none.
func (o *OpResult) Quantile(q float64) time.Duration {
	if len(o.lat) == 0 {
		return 0
	}
	i := int(q * float64(len(o.lat)-1))
	return o.lat[i]
}

// Total sums the operations of the mix (not OpVerify): count and sorted latencies.
func (r *Result) Total() *OpResult {
	t := &OpResult{}
	for name, o := range r.Ops {
		if name == OpVerify {
			continue
		}
		t.Count += o.Count
		t.Errors += o.Errors
		t.lat = append(t.lat, o.lat...)
	}
	sort.Slice(t.lat, func(i, j int) bool { return t.lat[i] < t.lat[j] })
	return t
}

// OpsPerSecond is the rate of the mix's operations over Elapsed.
func (r *Result) OpsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Total().Count) / r.Elapsed.Seconds()
}

// Table formats the result as a text table: one line an operation, then the total.
func (r *Result) Table() string {
	names := make([]string, 0, len(r.Ops))
	for n := range r.Ops {
		names = append(names, n)
	}
	sort.Strings(names)
	s := fmt.Sprintf("%-18s %8s %7s %10s %10s\n", "operation", "count", "errors", "p50", "p99")
	line := func(name string, o *OpResult) {
		s += fmt.Sprintf("%-18s %8d %7d %10v %10v\n", name, o.Count, o.Errors,
			o.Quantile(0.50).Round(time.Microsecond*100), o.Quantile(0.99).Round(time.Microsecond*100))
	}
	for _, n := range names {
		line(n, r.Ops[n])
	}
	line("total (mix)", r.Total())
	s += fmt.Sprintf("%.1f ops/s over %v; %d keys verified at the end; %d corrupt; %d errors (%d 5xx)\n",
		r.OpsPerSecond(), r.Elapsed.Round(time.Millisecond), r.Verified, len(r.Corrupt), r.ErrorCount, r.Status5xx)
	return s
}

// Run runs the load described by cfg and then verifies every key. It returns an error only
// when the run could not be made (bad configuration); failures of operations are in Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("loadgen: Endpoint and Bucket are required")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = cfg.Clients * 2
	tr.MaxIdleConnsPerHost = cfg.Clients * 2
	tr.DisableCompression = true
	defer tr.CloseIdleConnections() // the run leaves no connections behind
	hc := &http.Client{Transport: tr}
	s3c := s3.New(s3.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String(cfg.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Retryer:      aws.NopRetryer{}, // every failure counts as it is
		HTTPClient:   hc,
	})
	res := &Result{Ops: map[string]*OpResult{}}
	var mu sync.Mutex // guards res
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(cfg.Duration)
	for i := range cfg.Clients {
		c := newClient(s3c, &cfg, i, res, &mu)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.loop(ctx, end)
			done := time.Since(start)
			mu.Lock()
			res.Elapsed = max(res.Elapsed, done)
			mu.Unlock()
			c.verifyAll(ctx)
		}()
	}
	wg.Wait()
	for _, o := range res.Ops {
		sort.Slice(o.lat, func(i, j int) bool { return o.lat[i] < o.lat[j] })
	}
	return res, nil
}
