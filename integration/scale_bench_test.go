package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// BenchmarkScaleOut (issue 16, acceptance 4): the same load (16 concurrent clients, each
// iteration one PUT and one GET of a new key) straight to MinIO and through HAProxy in front of
// one, two and three gateways (one MinIO, one KMS key), for 4 KiB and 1 MiB objects. It reports
// ops/s (PUTs and GETs) and MB/s (object bytes up and down). Everything shares the machine's
// cores: see docs/BENCHMARKS.md for what the figures mean.
//
//	scripts/test -run '^$' -bench BenchmarkScaleOut -benchtime 3s ./integration/
func BenchmarkScaleOut(b *testing.B) {
	c := newScaleCluster(b, 3, "")
	bucket := c.m.NewBucket(b)
	lbs := []*testenv.HAProxy{testenv.StartHAProxy(b, c.srv[:1]), testenv.StartHAProxy(b, c.srv[:2]), c.lb}
	type target struct {
		name   string
		client *s3.Client
	}
	pooled := func(o *s3.Options) {
		o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConnsPerHost = 64
		})
	}
	targets := []target{{"direct-minio", c.m.Client(b, pooled)}}
	for i, lb := range lbs {
		targets = append(targets, target{fmt.Sprintf("haproxy-%dgw", i+1), lb.Gateway(c.gws[0]).Client(b, pooled)})
	}
	var seq atomic.Int64
	for _, size := range []int{4 << 10, 1 << 20} {
		data := testenv.RandomBytes(b, size, "")
		for _, tg := range targets {
			b.Run(fmt.Sprintf("%s/%dKiB", tg.name, size>>10), func(b *testing.B) {
				ctx := context.Background()
				b.SetBytes(int64(2 * size))
				b.SetParallelism(8) // 8 × GOMAXPROCS clients: 16 on 2 cores
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						key := fmt.Sprintf("bench/%s/%d", tg.name, seq.Add(1))
						if _, err := tg.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
							b.Error(err)
							return
						}
						out, err := tg.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
						if err != nil {
							b.Error(err)
							return
						}
						n, err := io.Copy(io.Discard, out.Body)
						out.Body.Close()
						if err != nil || n != int64(size) {
							b.Errorf("GET %s: %d bytes, %v", key, n, err)
							return
						}
					}
				})
				b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}
