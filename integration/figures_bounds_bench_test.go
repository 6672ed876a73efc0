package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/benchutil"
	"github.com/s3seal/s3seal/internal/testenv"
)

// passClient is an SDK client for the pass-through proxy: MinIO's client (credentials, figSDK's
// checksum settings and pooled connections) with the proxy's endpoint, so that pass-through ÷
// direct compares the same requests with and without a plain proxy hop.
func (s *figStack) passClient(b *testing.B) *s3.Client {
	return s.m.Client(b, figSDK, func(o *s3.Options) { o.BaseEndpoint = aws.String(s.pass.endpoint) })
}

// backendKind names the kind of a backend request for the counts: "LIST" for a GET of a
// bucket, otherwise the method, with " range" for a ranged GET.
func backendKind(r *coreProxyReq) string {
	if r.Method == "GET" && !strings.Contains(strings.TrimPrefix(r.Path, "/"), "/") {
		return "LIST"
	}
	if r.Range != "" {
		return r.Method + " range"
	}
	return r.Method
}

// backendRequests counts the backend requests the gateway makes per operation: a gateway with
// fresh caches whose backend is a recording proxy in front of MinIO serves reqOps PUTs of
// 4 KiB, reqOps GETs of those objects (hot: just written by it), one listing of prefix (fresh:
// it has not seen those objects) and one more (warm). A count, not a time: the same on any
// machine.
func (s *figStack) backendRequests(b *testing.B, t *benchutil.Table, prefix string) {
	const reqOps = 50
	p := newCoreProxy(b, s.m.Endpoint)
	env := map[string]string{}
	for k, v := range s.env {
		env[k] = v
	}
	env["GATEWAY_BACKEND_ENDPOINT"] = p.URL
	gw := testenv.StartGateway(b, env)
	defer func() {
		if err := gw.Stop(b); err != nil {
			b.Logf("gateway exit: %v", err)
		}
	}()
	c := gw.Client(b, figSDK)
	ctx := context.Background()
	data := testenv.RandomBytes(b, 4<<10, "")
	count := func(what string, ops int, fn func(i int) error) string {
		before := len(p.all())
		for i := 0; i < ops; i++ {
			if err := fn(i); err != nil {
				b.Fatalf("%s: %v", what, err)
			}
		}
		kinds := map[string]int{}
		reqs := p.all()[before:]
		for _, r := range reqs {
			kinds[backendKind(r)]++
		}
		var parts []string
		for k, n := range kinds {
			parts = append(parts, fmt.Sprintf("%s %g", k, float64(n)/float64(ops)))
		}
		slices.Sort(parts)
		return fmt.Sprintf("%g (%s)", float64(len(reqs))/float64(ops), strings.Join(parts, ", "))
	}
	key := func(i int) *string { return aws.String(fmt.Sprintf("reqs/%d", i)) }
	put := count("PUT", reqOps, func(i int) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: key(i), Body: bytes.NewReader(data)})
		return err
	})
	get := count("GET", reqOps, func(i int) error {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: key(i)})
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, out.Body)
		out.Body.Close()
		return err
	})
	list := func(int) error {
		n := 0
		pg := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix})
		for pg.HasMorePages() {
			out, err := pg.NextPage(ctx)
			if err != nil {
				return err
			}
			n += len(out.Contents)
		}
		if n != s.cfg.listKeys {
			return fmt.Errorf("listed %d keys of %d", n, s.cfg.listKeys)
		}
		return nil
	}
	fresh := count("fresh listing", 1, list)
	warm := count("warm listing", 1, list)
	for i := 0; i < reqOps; i++ {
		s.deleteKey(b, *key(i))
	}
	t.Add(
		benchutil.Info("backend requests per 4 KiB PUT through the gateway", put),
		benchutil.Info("backend requests per 4 KiB GET of a hot object", get),
		benchutil.Info(fmt.Sprintf("backend requests per ListObjectsV2 of %d keys, fresh gateway", s.cfg.listKeys), fresh),
		benchutil.Info(fmt.Sprintf("backend requests per ListObjectsV2 of %d keys, warm gateway", s.cfg.listKeys), warm),
	)
}
