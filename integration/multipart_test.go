package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// checkRanges reads count random ranges (biased to part boundaries) of key through the
// gateway and compares them with plain.
func checkRanges(t *testing.T, c *s3.Client, bucket, key string, plain []byte, boundaries []int64, count int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(len(plain)), 7))
	n := int64(len(plain))
	type rq struct{ a, b int64 }
	var rs []rq
	for i := 0; i < count; i++ {
		var a int64
		if len(boundaries) > 0 && i%2 == 0 {
			a = boundaries[rng.IntN(len(boundaries))] + rng.Int64N(129) - 64
		} else {
			a = rng.Int64N(n)
		}
		a = max(0, min(a, n-1))
		b := min(n-1, a+rng.Int64N(3<<20))
		if i%5 == 0 {
			b = min(n-1, a+rng.Int64N(70_000))
		}
		rs = append(rs, rq{a, b})
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	fails := 0
	for _, r := range rs {
		wg.Add(1)
		sem <- struct{}{}
		go func(r rq) {
			defer wg.Done()
			defer func() { <-sem }()
			out, err := c.GetObject(context.Background(), &s3.GetObjectInput{
				Bucket: &bucket, Key: &key, Range: aws.String(fmt.Sprintf("bytes=%d-%d", r.a, r.b))})
			var got []byte
			if err == nil {
				got, err = io.ReadAll(out.Body)
				out.Body.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil || !bytes.Equal(got, plain[r.a:r.b+1]) {
				fails++
				if fails <= 5 {
					t.Errorf("range %d-%d of %s: err %v, %d bytes, equal %v", r.a, r.b, key, err, len(got), bytes.Equal(got, plain[r.a:r.b+1]))
				}
			}
		}(r)
	}
	wg.Wait()
	if fails > 0 {
		t.Errorf("%d of %d ranges wrong", fails, count)
	}
}

// TestMultipartAWSCLI: aws-cli s3 cp of 50 MiB (8 MiB parts, uploaded in parallel) round-trips,
// lists with its plaintext size, and 500 random ranges across part boundaries match.
func TestMultipartAWSCLI(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	plain := testenv.RandomBytes(t, 50<<20, marker)
	dir := t.TempDir()
	src := writeFile(t, dir, "big.bin", plain)
	if out, err := gw.AWS(t, "s3", "cp", src, "s3://"+bucket+"/big.bin"); err != nil {
		t.Fatalf("cp up: %v %s", err, out)
	}
	stored, _ := storedBytes(t, m.Client(t), bucket, "big.bin")
	if bytes.Contains(stored, []byte(marker)) || sharedRun(plain, stored) >= 0 {
		t.Fatal("plaintext found in the stored multipart object")
	}
	// Format 3 (FORMAT.md 3.6): envelope version 3, no manifest metadata, and the stored object
	// is the seven parts (six of 8 MiB, the 2 MiB last one held aside until Complete) followed
	// by exactly one tail, which ends in its length and the magic "s3seal/3".
	head, err := m.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("big.bin")})
	if err != nil {
		t.Fatal(err)
	}
	if env, err := base64.StdEncoding.DecodeString(head.Metadata[coreMetaEnv]); err != nil || len(env) == 0 || env[0] != 3 {
		t.Fatalf("stored object's envelope is not of version 3: %v %v", err, head.Metadata)
	}
	if v, ok := head.Metadata["s3seal-parts"]; ok {
		t.Fatalf("stored object carries format-2 manifest metadata: %q", v)
	}
	partsSize := 6*(coreStoredSize(8<<20)+48) + coreStoredSize(2<<20) + 48
	tl := format3TailLen(stored)
	if tl < 0 || int64(len(stored)) != partsSize+int64(tl) || aws.ToInt64(head.ContentLength) != int64(len(stored)) {
		t.Fatalf("stored object: %d bytes, tail %d bytes (footer %x), want the parts' %d bytes and one tail",
			len(stored), tl, stored[max(0, len(stored)-12):], partsSize)
	}
	// The ETag clients see is S3's multipart ETag of the plaintext: MD5 of the parts' MD5s, "-7".
	var sums []byte
	for off := 0; off < len(plain); off += 8 << 20 {
		s := md5.Sum(plain[off:min(len(plain), off+8<<20)])
		sums = append(sums, s[:]...)
	}
	all := md5.Sum(sums)
	want := `"` + hex.EncodeToString(all[:]) + `-7"`
	gh, err := gw.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("big.bin")})
	if err != nil || aws.ToString(gh.ETag) != want {
		t.Fatalf("gateway ETag %v, want S3's multipart ETag %s (%v)", aws.ToString(gh.ETag), want, err)
	}
	dst := filepath.Join(dir, "down.bin")
	if out, err := gw.AWS(t, "s3", "cp", "s3://"+bucket+"/big.bin", dst); err != nil {
		t.Fatalf("cp down: %v %s", err, out)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, plain) {
		t.Fatal("downloaded 50 MiB object differs")
	}
	ls, err := gw.AWS(t, "s3", "ls", "s3://"+bucket+"/")
	if err != nil || !strings.Contains(ls, strconv.Itoa(50<<20)+" big.bin") {
		t.Errorf("ls: %v %q", err, ls)
	}
	var bounds []int64
	for i := int64(1); i < 7; i++ {
		bounds = append(bounds, i*8<<20)
	}
	checkRanges(t, gw.Client(t), bucket, "big.bin", plain, bounds, 500)

	// GET and HEAD with partNumber answer the plaintext part.
	c := gw.Client(t)
	for _, pn := range []int32{1, 4, 7} {
		out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("big.bin"), PartNumber: aws.Int32(pn)})
		if err != nil {
			t.Fatalf("GET partNumber=%d: %v", pn, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		lo := int(pn-1) * 8 << 20
		hi := min(len(plain), lo+8<<20)
		if !bytes.Equal(got, plain[lo:hi]) || aws.ToInt32(out.PartsCount) != 7 {
			t.Errorf("GET partNumber=%d: %d bytes, equal %v, parts count %d", pn, len(got), bytes.Equal(got, plain[lo:hi]), aws.ToInt32(out.PartsCount))
		}
	}
}

const boto3UnalignedScript = `
import boto3, os, sys, json
from boto3.s3.transfer import TransferConfig
c = boto3.client("s3", endpoint_url=os.environ["S3SEAL_ENDPOINT"])
part = 5 * 1024 * 1024 + 1
cfg = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4)
bucket, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
c.upload_file(src, bucket, "unaligned.bin", Config=cfg)
c.download_file(bucket, "unaligned.bin", dst, Config=cfg)
h = c.head_object(Bucket=bucket, Key="unaligned.bin")
l = c.list_objects_v2(Bucket=bucket)["Contents"]
print(json.dumps({"head": h["ContentLength"], "etag": h["ETag"], "list": [[o["Key"], o["Size"], o["ETag"]] for o in l]}))
`

// TestMultipartBoto3Unaligned: boto3 upload_file/download_file with 5 MiB + 1 B parts.
func TestMultipartBoto3Unaligned(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	size := 3*(5<<20+1) + 12345
	plain := testenv.RandomBytes(t, size, marker)
	dir := t.TempDir()
	src := writeFile(t, dir, "in.bin", plain)
	dst := filepath.Join(dir, "out.bin")
	out, err := gw.Python(t, boto3UnalignedScript, bucket, src, dst)
	if err != nil {
		t.Fatalf("boto3: %v", err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, plain) {
		t.Fatal("boto3 download differs")
	}
	want := fmt.Sprintf(`"head": %d`, size)
	if !strings.Contains(out, want) || !strings.Contains(out, fmt.Sprintf(`"unaligned.bin", %d, "\"`, size)) || !strings.Contains(out, `-4\""`) {
		t.Errorf("report %s: want plaintext size %d in head and list and a -4 ETag", out, size)
	}
	var bounds []int64
	for i := int64(1); i < 4; i++ {
		bounds = append(bounds, i*(5<<20+1))
	}
	checkRanges(t, gw.Client(t), bucket, "unaligned.bin", plain, bounds, 100)
}

// TestMultipartRetriedPartAndTwoGateways: a part uploaded twice with different bytes (the last
// one wins) and an upload whose parts go through two gateway processes both read back right.
func TestMultipartRetriedPartAndTwoGateways(t *testing.T) {
	gw1, m, k, keyID := testenv.StartGatewayMinIO(t, nil)
	gw2 := secondGateway(t, gw1, m, k, keyID)
	bucket := m.NewBucket(t)
	c1, c2 := gw1.Client(t), gw2.Client(t)
	ctx := context.Background()
	key := aws.String("two.bin")

	cr, err := c1.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	p1 := testenv.RandomBytes(t, 5<<20, marker)
	p2first := testenv.RandomBytes(t, 3<<20, marker)
	p2 := testenv.RandomBytes(t, 2<<20+777, marker)
	put := func(c *s3.Client, n int32, data []byte) string {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: key, UploadId: cr.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", n, err)
		}
		if want := fmt.Sprintf(`"%x"`, md5sum(data)); aws.ToString(out.ETag) != want {
			t.Errorf("UploadPart %d ETag %s, want the plaintext MD5 %s", n, aws.ToString(out.ETag), want)
		}
		return aws.ToString(out.ETag)
	}
	// Part 2 first, through gateway 2, then retried with other bytes through gateway 1; part 1
	// through gateway 2.
	put(c2, 2, p2first)
	e2 := put(c1, 2, p2)
	e1 := put(c2, 1, p1)
	lp, err := c1.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: key, UploadId: cr.UploadId})
	if err != nil || len(lp.Parts) != 2 || aws.ToString(lp.UploadId) != aws.ToString(cr.UploadId) ||
		aws.ToInt64(lp.Parts[0].Size) != int64(len(p1)) || aws.ToInt64(lp.Parts[1].Size) != int64(len(p2)) {
		t.Errorf("ListParts: %v; want the client's upload id and plaintext sizes %d, %d; got %+v", err, len(p1), len(p2), lp)
	}
	_, err = c2.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: key, UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: &e1}, {PartNumber: aws.Int32(2), ETag: &e2}}}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	want := append(append([]byte(nil), p1...), p2...)
	for i, c := range []*s3.Client{c1, c2} {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: key})
		if err != nil {
			t.Fatalf("gateway %d GET: %v", i+1, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, want) || aws.ToInt64(out.ContentLength) != int64(len(want)) {
			t.Errorf("gateway %d: %d bytes (Content-Length %d), equal %v", i+1, len(got), aws.ToInt64(out.ContentLength), bytes.Equal(got, want))
		}
	}
	checkRanges(t, c2, bucket, *key, want, []int64{5 << 20}, 50)
}

// format3TailLen is the length of the format-3 tail (FORMAT.md 3.6.3: sealed manifest ‖
// be32(its length) ‖ "s3seal/3") that ends stored, from its footer; -1 when stored does not end
// in "s3seal/3" or the length is more than stored holds. A sealed manifest is at least its
// 12-byte nonce, the 16-byte GCM tag and the smallest body.
func format3TailLen(stored []byte) int {
	if len(stored) < 12 || string(stored[len(stored)-8:]) != "s3seal/3" {
		return -1
	}
	n := int64(binary.BigEndian.Uint32(stored[len(stored)-12:]))
	if n < 12+16 || n+12 > int64(len(stored)) {
		return -1
	}
	return int(n) + 12
}
