package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/benchutil"
	"github.com/s3seal/s3seal/internal/testenv"
)

const smallClients = 8

func pooledSDK(o *s3.Options) {
	o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.MaxIdleConnsPerHost = 64 })
}

// figSDK is the setup of every SDK client of the figures, whichever side it talks to (MinIO
// directly, the gateway, the pass-through proxy): pooled connections and the SDK's default
// checksum behaviour, what config.LoadDefaultConfig gives applications ("when supported": a
// CRC32 checksum on every PUT and UploadPart, checksum mode on GET). Over plain HTTP the SDK
// sends the checksum as a header, which needs a seekable body: every figure body is a
// bytes.Reader. testenv's MinIO client alone is "when required" and its gateway client "when
// supported"; figSDK makes the sides of a paired figure identical.
func figSDK(o *s3.Options) {
	pooledSDK(o)
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
	o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported
}

// deleteKey deletes bucket/key through the gateway (which forwards it to MinIO).
func (s *figStack) deleteKey(b *testing.B, key string) {
	req, err := http.NewRequest(http.MethodDelete, s.gate.endpoint+"/"+s.bucket+"/"+key, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.gate.sign(req, emptyHash); err != nil {
		b.Fatal(err)
	}
	resp, err := s.gate.http.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b.Fatalf("DELETE %s: %d", key, resp.StatusCode)
	}
}

// smallRun runs op from smallClients goroutines for d and returns ops/s and every latency.
func smallRun(b *testing.B, d time.Duration, op func(worker, i int) error) (float64, []time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	start := time.Now()
	deadline := start.Add(d)
	var g errgroup.Group
	for w := 0; w < smallClients; w++ {
		g.Go(func() error {
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := op(w, i); err != nil {
					return err
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return float64(len(lat)) / time.Since(start).Seconds(), lat
}

// smallFigures: 4 KiB objects, 8 concurrent SDK clients, PUT then GET of the objects just put
// (hot), direct, through the gateway and through the pass-through proxy, the order rotating
// each round; ops/s ratio, added p99 (the pass-through's as bounds), and the gateway's KMS
// calls per 1,000 PUTs and GETs.
func (s *figStack) smallFigures(b *testing.B, t *benchutil.Table) {
	data := testenv.RandomBytes(b, 4<<10, "")
	clients := map[string]*s3.Client{"direct": s.m.Client(b, figSDK), "gateway": s.gw.Client(b, figSDK), "pass": s.passClient(b)}
	ctx := context.Background()
	type result struct {
		putOps, getOps float64
		putLat, getLat []time.Duration
	}
	var putR, getR, putP99, getP99, passPutR, passGetR, passPutP99, passGetP99 []float64
	var puts, gets, gen, dec float64
	var boundTime time.Duration // spent on the pass-through (bounds)
	kms := func(op string) float64 {
		return gatewayCounter(b, s.ops, "s3seal_kms_requests_total", map[string]string{"operation": op})
	}
	for r := 0; r < s.cfg.rounds; r++ {
		res := map[string]result{}
		all := []string{"direct", "gateway", "pass"}
		for i := range all {
			name := all[(i+r)%len(all)]
			t0 := time.Now()
			c := clients[name]
			key := func(w, i int) string { return fmt.Sprintf("small/%s/%d/%d/%d", name, r, w, i%200) }
			written := make([]int, smallClients)
			g0, d0 := kms("GenerateDataKey"), kms("Decrypt")
			var x result
			x.putOps, x.putLat = smallRun(b, s.cfg.smallFor, func(w, i int) error {
				k := key(w, i)
				_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &k, Body: bytes.NewReader(data)})
				written[w] = max(written[w], min(i+1, 200))
				return err
			})
			g1 := kms("GenerateDataKey")
			x.getOps, x.getLat = smallRun(b, s.cfg.smallFor, func(w, i int) error {
				if written[w] == 0 {
					return fmt.Errorf("client %d put nothing in %v", w, s.cfg.smallFor)
				}
				k := key(w, i%written[w])
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &k})
				if err != nil {
					return err
				}
				n, err := io.Copy(io.Discard, out.Body)
				out.Body.Close()
				if err == nil && n != int64(len(data)) {
					err = fmt.Errorf("GET %s: %d bytes", k, n)
				}
				return err
			})
			if name == "gateway" {
				gen += g1 - g0
				dec += kms("Decrypt") - d0
				puts += float64(len(x.putLat))
				gets += float64(len(x.getLat))
			}
			res[name] = x
			if name == "pass" {
				boundTime += time.Since(t0)
			}
		}
		dir, gw, pass := res["direct"], res["gateway"], res["pass"]
		putR, getR = append(putR, gw.putOps/dir.putOps), append(getR, gw.getOps/dir.getOps)
		passPutR, passGetR = append(passPutR, pass.putOps/dir.putOps), append(passGetR, pass.getOps/dir.getOps)
		ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
		p99 := func(l []time.Duration) float64 { return ms(benchutil.Percentile(l, 99)) }
		putP99 = append(putP99, p99(gw.putLat)-p99(dir.putLat))
		getP99 = append(getP99, p99(gw.getLat)-p99(dir.getLat))
		passPutP99 = append(passPutP99, p99(pass.putLat)-p99(dir.putLat))
		passGetP99 = append(passGetP99, p99(pass.getLat)-p99(dir.getLat))
		fmt.Fprintf(os.Stderr, "figures: 4 KiB round %d: PUT %.0f / %.0f / %.0f ops/s, GET %.0f / %.0f / %.0f ops/s; p99 PUT %.1f / %.1f / %.1f ms, GET %.1f / %.1f / %.1f ms (gateway / direct / pass-through)\n",
			r, gw.putOps, dir.putOps, pass.putOps, gw.getOps, dir.getOps, pass.getOps,
			p99(gw.putLat), p99(dir.putLat), p99(pass.putLat), p99(gw.getLat), p99(dir.getLat), p99(pass.getLat))
	}
	fmt.Fprintf(os.Stderr, "figures: 4 KiB pass-through rounds (bounds) took %.1f s\n", boundTime.Seconds())
	med := benchutil.Median
	t.Add(
		benchutil.AtLeast("4 KiB PUT ops/s at 8 SDK clients, gateway ÷ direct", "%.2f", med(putR), 0.80),
		benchutil.AtLeast("4 KiB GET ops/s at 8 SDK clients, gateway ÷ direct", "%.2f", med(getR), 0.80),
		benchutil.AtMost("4 KiB PUT added p99 latency", "%+.1f ms", med(putP99), 2),
		benchutil.AtMost("4 KiB GET added p99 latency", "%+.1f ms", med(getP99), 2),
		benchutil.Bound("4 KiB PUT ops/s at 8 SDK clients, pass-through ÷ direct", fmt.Sprintf("%.2f", med(passPutR))),
		benchutil.Bound("4 KiB GET ops/s at 8 SDK clients, pass-through ÷ direct", fmt.Sprintf("%.2f", med(passGetR))),
		benchutil.Bound("4 KiB PUT p99 latency added by the pass-through", fmt.Sprintf("%+.1f ms", med(passPutP99))),
		benchutil.Bound("4 KiB GET p99 latency added by the pass-through", fmt.Sprintf("%+.1f ms", med(passGetP99))),
		benchutil.AtMost(fmt.Sprintf("KMS GenerateDataKey calls per 1,000 PUTs (%.0f calls, %.0f PUTs)", gen, puts), "%.2f", gen/puts*1000, 1),
		benchutil.AtMost(fmt.Sprintf("KMS Decrypt calls per 1,000 GETs of hot objects (%.0f calls, %.0f GETs)", dec, gets), "%.2f", dec/gets*1000, 1),
	)
}

// listFigures: ListObjectsV2 of listKeys keys (written through the gateway), direct, through a
// freshly started gateway (first listing), through it again (warm) and through the
// pass-through proxy (a bound); then the backend requests each operation costs.
func (s *figStack) listFigures(b *testing.B, t *benchutil.Table) {
	ctx := context.Background()
	prefix := "list/"
	data := testenv.RandomBytes(b, 1000, "")
	gwc := s.gw.Client(b, figSDK)
	var g errgroup.Group
	g.SetLimit(smallClients)
	for i := 0; i < s.cfg.listKeys; i++ {
		g.Go(func() error {
			k := fmt.Sprintf("%s%05d", prefix, i)
			_, err := gwc.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &k, Body: bytes.NewReader(data)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	// wantSize is the size every listed object must have (the plaintext size through the
	// gateway), 0 for no check (MinIO lists the stored, larger size).
	list := func(c *s3.Client, wantSize int64) time.Duration {
		start := time.Now()
		n := 0
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				b.Fatal(err)
			}
			n += len(out.Contents)
			for _, o := range out.Contents {
				if wantSize != 0 && *o.Size != wantSize {
					b.Fatalf("listed %s with size %d", *o.Key, *o.Size)
				}
			}
		}
		if n != s.cfg.listKeys {
			b.Fatalf("listed %d keys of %d", n, s.cfg.listKeys)
		}
		return time.Since(start)
	}
	direct, pass := s.m.Client(b, figSDK), s.passClient(b)
	list(direct, 0) // MinIO's own first listing is not what is compared
	var freshR, warmR, passR []float64
	var boundTime time.Duration // spent listing through the pass-through (bounds)
	for r := 0; r < s.cfg.rounds; r++ {
		gw, _ := s.startGateway(b)
		c := gw.Client(b, figSDK)
		var d, p []float64
		for i := 0; i < 3; i++ {
			d = append(d, list(direct, 0).Seconds())
			p = append(p, list(pass, 0).Seconds())
			boundTime += time.Duration(p[i] * float64(time.Second))
		}
		fresh := list(c, int64(len(data))).Seconds()
		var warm []float64
		for i := 0; i < 3; i++ {
			warm = append(warm, list(c, int64(len(data))).Seconds())
		}
		if err := gw.Stop(b); err != nil {
			b.Logf("gateway exit: %v", err)
		}
		dm := benchutil.Median(d)
		freshR, warmR = append(freshR, fresh/dm), append(warmR, benchutil.Median(warm)/dm)
		passR = append(passR, benchutil.Median(p)/dm)
		fmt.Fprintf(os.Stderr, "figures: list round %d: direct %.1f ms, fresh gateway %.1f ms, warm %.1f ms, pass-through %.1f ms\n",
			r, dm*1e3, fresh*1e3, benchutil.Median(warm)*1e3, benchutil.Median(p)*1e3)
	}
	t.Add(
		benchutil.AtMost(fmt.Sprintf("ListObjectsV2 of %d keys, fresh gateway ÷ direct", s.cfg.listKeys), "%.2f×", benchutil.Median(freshR), 2),
		benchutil.AtMost(fmt.Sprintf("ListObjectsV2 of %d keys, warm gateway ÷ direct", s.cfg.listKeys), "%.2f×", benchutil.Median(warmR), 1.2),
		benchutil.Bound(fmt.Sprintf("ListObjectsV2 of %d keys, pass-through ÷ direct", s.cfg.listKeys), fmt.Sprintf("%.2f×", benchutil.Median(passR))),
	)
	t0 := time.Now()
	s.backendRequests(b, t, prefix)
	fmt.Fprintf(os.Stderr, "figures: pass-through listings (bounds) took %.1f s, backend request counts %.1f s\n", boundTime.Seconds(), time.Since(t0).Seconds())
}

// rangeFigure: the backend bytes the gateway reads for a 1 MiB range (unaligned, in the middle)
// of a rangeObject-size object, from its ciphertext_received_bytes counter; the bytes are checked.
func (s *figStack) rangeFigure(b *testing.B, t *benchutil.Table) {
	buf := figBody(b)
	n := s.cfg.rangeObject
	key := "range/object"
	if _, err := s.gate.put(s.bucket, key, &cycleReader{buf: buf, left: n}, n); err != nil {
		b.Fatal(err)
	}
	off := n/2 + 12345
	const want = 1 << 20
	before := gatewayCounter(b, s.ops, "s3seal_ciphertext_received_bytes_total", nil)
	var got bytes.Buffer
	if _, _, err := s.gate.get(s.bucket, key, fmt.Sprintf("bytes=%d-%d", off, off+want-1), &got); err != nil {
		b.Fatal(err)
	}
	read := gatewayCounter(b, s.ops, "s3seal_ciphertext_received_bytes_total", nil) - before
	exp := make([]byte, want)
	_, _ = io.ReadFull(&cycleReader{buf: buf, off: off, left: want}, exp)
	if !bytes.Equal(got.Bytes(), exp) {
		b.Fatalf("range of %d bytes at %d: wrong bytes (%d returned)", want, off, got.Len())
	}
	s.deleteKey(b, key)
	limit := float64(want + 2*(format.SegmentSize+16))
	t.Add(benchutil.AtMost(fmt.Sprintf("backend bytes read for a 1 MiB range of a %s object", benchutil.SizeLabel(n)), "%.0f B", read, limit))
}

// rssFigures: a fresh gateway's peak RSS while one rssStream-size object goes up and down, and
// then while concN uploads of concSize run at once.
func (s *figStack) rssFigures(b *testing.B, t *benchutil.Table) {
	buf := figBody(b)
	gw, _ := s.startGateway(b)
	pid := gw.Cmd.Process.Pid
	tg := &figTarget{name: "gateway-rss", endpoint: gw.Endpoint, key: gw.AccessKeyID, secret: gw.SecretAccessKey, region: gw.Region, http: s.gate.http}
	peak := func() float64 {
		v, err := benchutil.PeakRSS(pid)
		if err != nil {
			b.Fatal(err)
		}
		return float64(v) / (1 << 20)
	}
	reset := func() {
		if err := benchutil.ResetPeakRSS(pid); err != nil {
			b.Fatalf("resetting the gateway's peak RSS: %v", err)
		}
	}
	reset()
	n := s.cfg.rssStream
	s.putLarge(b, tg, gw.Client(b, figSDK), "rss/stream", &cycleReader{buf: buf, left: n}, n)
	if _, got, err := tg.get(s.bucket, "rss/stream", "", io.Discard); err != nil || got != n {
		b.Fatalf("GET rss/stream: %d bytes, %v", got, err)
	}
	stream := peak()
	s.deleteKey(b, "rss/stream")
	reset()
	var g errgroup.Group
	for i := 0; i < s.cfg.concN; i++ {
		g.Go(func() error {
			_, err := tg.put(s.bucket, fmt.Sprintf("rss/conc/%d", i), &cycleReader{buf: buf, off: int64(i), left: s.cfg.concSize}, s.cfg.concSize)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	conc := peak()
	for i := 0; i < s.cfg.concN; i++ {
		s.deleteKey(b, fmt.Sprintf("rss/conc/%d", i))
	}
	t.Add(
		benchutil.AtMost(fmt.Sprintf("gateway peak RSS streaming %s up (above 5 GiB: in 1 GiB parts) and down", benchutil.SizeLabel(n)), "%.1f MiB", stream, 64),
		benchutil.AtMost(fmt.Sprintf("gateway peak RSS, %d concurrent %s uploads", s.cfg.concN, benchutil.SizeLabel(s.cfg.concSize)), "%.1f MiB", conc, 256),
	)
}

// putLarge streams n bytes of body to key: one PUT up to 5 GiB (S3's and the gateway's limit
// for one), above that a multipart upload of 1 GiB parts sent one after the other, each
// streamed with UNSIGNED-PAYLOAD (c, the SDK, only creates and completes the upload).
func (s *figStack) putLarge(b *testing.B, tg *figTarget, c *s3.Client, key string, body io.Reader, n int64) {
	if n <= 5<<30 {
		if _, err := tg.put(s.bucket, key, body, n); err != nil {
			b.Fatal(err)
		}
		return
	}
	ctx := context.Background()
	mu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		b.Fatal(err)
	}
	var parts []types.CompletedPart
	for off, num := int64(0), int32(1); off < n; off, num = off+1<<30, num+1 {
		size := min(1<<30, n-off)
		etag, err := tg.putPart(s.bucket, key, *mu.UploadId, num, io.LimitReader(body, size), size)
		if err != nil {
			b.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{ETag: &etag, PartNumber: &num})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: mu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		b.Fatal(err)
	}
}

// multipartFigure: a multipart upload of mpSize in mpPart parts, 8 parts in flight, with the
// SDK, direct and through the gateway (alternating); time ratio.
func (s *figStack) multipartFigure(b *testing.B, t *benchutil.Table) {
	part := testenv.RandomBytes(b, int(s.cfg.mpPart), "")
	ctx := context.Background()
	upload := func(c *s3.Client, key string) time.Duration {
		start := time.Now()
		mu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &key})
		if err != nil {
			b.Fatal(err)
		}
		parts := make([]types.CompletedPart, s.cfg.mpSize/s.cfg.mpPart)
		var g errgroup.Group
		g.SetLimit(8)
		for i := range parts {
			g.Go(func() error {
				num := int32(i + 1)
				out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &s.bucket, Key: &key, UploadId: mu.UploadId, PartNumber: &num, Body: bytes.NewReader(part)})
				if err == nil {
					parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: &num}
				}
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: mu.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	clients := []*s3.Client{s.m.Client(b, figSDK), s.gw.Client(b, figSDK)}
	var ratio, gwS, dirS []float64
	for r := 0; r < min(s.cfg.rounds, 2); r++ {
		var d [2]time.Duration
		for i := range clients {
			j := (i + r) % 2
			d[j] = upload(clients[j], fmt.Sprintf("mp/%d/%d", r, j))
			s.deleteKey(b, fmt.Sprintf("mp/%d/%d", r, j))
		}
		ratio, dirS, gwS = append(ratio, d[0].Seconds()/d[1].Seconds()), append(dirS, d[0].Seconds()), append(gwS, d[1].Seconds())
	}
	t.Add(benchutil.Info(fmt.Sprintf("multipart upload of %s, %s parts, 8 in parallel: gateway ÷ direct throughput", benchutil.SizeLabel(s.cfg.mpSize), benchutil.SizeLabel(s.cfg.mpPart)),
		fmt.Sprintf("%.2f (%.1f s vs %.1f s)", benchutil.Median(ratio), benchutil.Median(gwS), benchutil.Median(dirS))))
}
