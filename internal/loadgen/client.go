package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// minPart is S3's smallest part size (all parts but the last).
const minPart = 5 << 20

const maxErrorSamples = 50

// client is one simulated client: its keys, its model of them and a random source.
type client struct {
	s3     *s3.Client
	cfg    *Config
	bucket string
	prefix string
	m      *model
	rnd    *mrand.Rand
	total  int // sum of the mix's weights

	res *Result
	mu  *sync.Mutex
}

func newClient(c *s3.Client, cfg *Config, n int, res *Result, mu *sync.Mutex) *client {
	prefix := fmt.Sprintf("%sc%03d/", cfg.Prefix, n)
	keys := make([]string, cfg.KeysPerClient)
	for i := range keys {
		keys[i] = fmt.Sprintf("%sk%02d", prefix, i)
	}
	cl := &client{s3: c, cfg: cfg, bucket: cfg.Bucket, prefix: prefix, m: newModel(keys),
		rnd: mrand.New(mrand.NewPCG(cfg.Seed, uint64(n))), res: res, mu: mu}
	for _, w := range mix {
		cl.total += w.weight
	}
	return cl
}

// loop runs random operations of the mix until end.
func (c *client) loop(ctx context.Context, end time.Time) {
	for time.Now().Before(end) && ctx.Err() == nil {
		op := c.pick()
		key := c.m.keys[c.rnd.IntN(len(c.m.keys))]
		c.run(ctx, op, func(ctx context.Context) error { return c.do(ctx, op, key) })
	}
}

func (c *client) pick() string {
	n := c.rnd.IntN(c.total)
	for _, w := range mix {
		if n < w.weight {
			return w.op
		}
		n -= w.weight
	}
	return mix[0].op
}

// run times one operation and records its outcome.
func (c *client) run(ctx context.Context, op string, f func(context.Context) error) {
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.OpTimeout)
	start := time.Now()
	err := f(octx)
	d := time.Since(start)
	cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.res.Ops[op]
	if o == nil {
		o = &OpResult{}
		c.res.Ops[op] = o
	}
	o.Count++
	o.lat = append(o.lat, d)
	var corrupt *corruptError
	switch {
	case err == nil:
	case errors.As(err, &corrupt):
		c.res.Corrupt = append(c.res.Corrupt, corrupt.Error())
	default:
		o.Errors++
		c.res.ErrorCount++
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
			c.res.Status5xx++
		}
		if len(c.res.Errors) < maxErrorSamples {
			c.res.Errors = append(c.res.Errors, fmt.Sprintf("%s: %v", op, err))
		}
	}
}

// corruptError is an answer that is no content the key may hold.
type corruptError struct{ what string }

func (e *corruptError) Error() string { return e.what }

func corruptf(format string, args ...any) error {
	return &corruptError{fmt.Sprintf(format, args...)}
}

func (c *client) newVersion(size int) version {
	return version{seed: c.rnd.Uint64(), size: size}
}

// do runs one operation of the mix on key.
func (c *client) do(ctx context.Context, op, key string) error {
	switch op {
	case OpPut:
		v := c.newVersion(c.rnd.IntN(c.cfg.MaxObjectSize + 1))
		_, err := c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &c.bucket, Key: &key, Body: bytes.NewReader(v.bytes())})
		c.m.wrote(key, v, err)
		return err
	case OpGet:
		return c.get(ctx, key)
	case OpRange:
		return c.getRange(ctx, key)
	case OpHead:
		return c.head(ctx, key)
	case OpList:
		return c.list(ctx)
	case OpMultipart:
		return c.multipart(ctx, key)
	case OpDelete:
		_, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &c.bucket, Key: &key})
		c.m.wrote(key, absent, err)
		return err
	case OpCopy:
		return c.copy(ctx, key)
	}
	return fmt.Errorf("loadgen: unknown operation %q", op)
}

// notFound reports whether err is S3's answer for a missing key (404).
func notFound(err error) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == 404
}

// get reads key whole and checks it against the model.
func (c *client) get(ctx context.Context, key string) error {
	b, err := c.fetch(ctx, &s3.GetObjectInput{Bucket: &c.bucket, Key: &key})
	if notFound(err) {
		if !c.m.matches(key, nil) {
			return corruptf("GET %s: 404, but the key exists", key)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if !c.m.matches(key, b) {
		return corruptf("GET %s: %d bytes that are no content the key may hold", key, len(b))
	}
	return nil
}

// fetch runs a GetObject and reads its body (never nil on success, also when empty).
func (c *client) fetch(ctx context.Context, in *s3.GetObjectInput) ([]byte, error) {
	out, err := c.s3.GetObject(ctx, in)
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if b == nil {
		b = []byte{}
	}
	return b, err
}

// getRange reads a random range of key, when the model knows its content.
func (c *client) getRange(ctx context.Context, key string) error {
	v, ok := c.m.st[key].certain()
	if !ok || v.size < 2 {
		return c.get(ctx, key)
	}
	first := c.rnd.IntN(v.size)
	last := first + c.rnd.IntN(v.size-first)
	rng := fmt.Sprintf("bytes=%d-%d", first, last)
	b, err := c.fetch(ctx, &s3.GetObjectInput{Bucket: &c.bucket, Key: &key, Range: &rng})
	if err != nil {
		return err
	}
	if !bytes.Equal(b, v.bytes()[first:last+1]) {
		return corruptf("GET %s %s: %d bytes that differ from the content", key, rng, len(b))
	}
	return nil
}

// head checks key's size (or absence) against the model.
func (c *client) head(ctx context.Context, key string) error {
	out, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &c.bucket, Key: &key})
	v, certain := c.m.st[key].certain()
	if notFound(err) {
		if certain && v.exists() {
			return corruptf("HEAD %s: 404, but the key exists", key)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if certain && (!v.exists() || aws.ToInt64(out.ContentLength) != int64(v.size)) {
		return corruptf("HEAD %s: size %d, the model has %d", key, aws.ToInt64(out.ContentLength), v.size)
	}
	return nil
}

// list checks the client's prefix: the keys and sizes the model is certain of.
func (c *client) list(ctx context.Context) error {
	out, err := c.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &c.bucket, Prefix: &c.prefix})
	if err != nil {
		return err
	}
	listed := map[string]int64{}
	for _, o := range out.Contents {
		listed[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
	}
	for _, k := range c.m.keys {
		v, certain := c.m.st[k].certain()
		if !certain {
			continue
		}
		size, ok := listed[k]
		switch {
		case ok != v.exists():
			return corruptf("LIST %s: listed %v, the model has it existing %v", k, ok, v.exists())
		case ok && size != int64(v.size):
			return corruptf("LIST %s: size %d, the model has %d", k, size, v.size)
		}
	}
	if len(listed) > len(c.m.keys) {
		return corruptf("LIST %s: %d keys, the client has only %d", c.prefix, len(listed), len(c.m.keys))
	}
	return nil
}

// multipart writes key as two parts: 5 MiB and a random rest.
func (c *client) multipart(ctx context.Context, key string) error {
	v := c.newVersion(minPart + 1 + c.rnd.IntN(c.cfg.MaxObjectSize))
	err := c.uploadParts(ctx, key, v)
	c.m.wrote(key, v, err)
	return err
}

func (c *client) uploadParts(ctx context.Context, key string, v version) error {
	body := v.bytes()
	cr, err := c.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &c.bucket, Key: &key})
	if err != nil {
		return err
	}
	var parts []types.CompletedPart
	for i, p := range [][]byte{body[:minPart], body[minPart:]} {
		n := int32(i + 1)
		up, err := c.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: &c.bucket, Key: &key, UploadId: cr.UploadId,
			PartNumber: &n, Body: bytes.NewReader(p)})
		if err != nil {
			_, _ = c.s3.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &c.bucket, Key: &key, UploadId: cr.UploadId})
			return err
		}
		parts = append(parts, types.CompletedPart{ETag: up.ETag, PartNumber: &n})
	}
	_, err = c.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &c.bucket, Key: &key,
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return err
}

// copy copies another of the client's keys that exists onto key.
func (c *client) copy(ctx context.Context, key string) error {
	var sources []string
	for _, k := range c.m.keys {
		if v, ok := c.m.st[k].certain(); ok && v.exists() && k != key {
			sources = append(sources, k)
		}
	}
	if len(sources) == 0 {
		return c.get(ctx, key)
	}
	sort.Strings(sources)
	src := sources[c.rnd.IntN(len(sources))]
	v, _ := c.m.st[src].certain()
	_, err := c.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &c.bucket, Key: &key, CopySource: aws.String(c.bucket + "/" + src)})
	c.m.wrote(key, v, err)
	return err
}

// verifyAll checks every key of the client at the end: content hash, or absence.
func (c *client) verifyAll(ctx context.Context) {
	for _, k := range c.m.keys {
		c.run(ctx, OpVerify, func(ctx context.Context) error { return c.get(ctx, k) })
		c.mu.Lock()
		c.res.Verified++
		c.mu.Unlock()
	}
}
