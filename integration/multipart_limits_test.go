package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestMultipartPartNumberLimits: S3's part-number and part-size rules at their edges, through
// the gateway to MinIO with the Go SDK: the highest part number (10,000) as the last part after
// part 1, as the only part, and right after 9,999; part numbers 0 and 10,001 refused; a small
// part that is not the last refused at Complete (and the upload still usable); a single empty
// part; and GET ?partNumber on an object whose part numbers have a gap (1 and 10,000).
//
// These are the cases format 3 (issue 22) treats apart: a part under 5 MiB or numbered 10,000
// is held, not uploaded as a backend part, and the part manifest goes into the last backend
// part (number 10,000 itself when the last client part is 10,000). Every object is read back
// byte-exact, whole and in ranges across its part boundaries, with S3's multipart ETag.
func TestMultipartPartNumberLimits(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	c := gw.Client(t)
	ctx := context.Background()
	const mib = 1 << 20

	// Parts 1 (5 MiB) and 10,000 (1 KiB): the object of subtests 1 and 7.
	gapPlain := [][]byte{testenv.RandomBytes(t, 5*mib, marker), testenv.RandomBytes(t, 1024, marker)}
	gapKey := "gap-1-10000"
	gapDone := false

	t.Run("1_parts_1_and_10000", func(t *testing.T) {
		u := newLimitUpload(t, c, bucket, gapKey)
		e1 := u.put(t, 1, gapPlain[0])
		e2 := u.put(t, 10000, gapPlain[1])
		lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: &gapKey, UploadId: &u.id})
		if err != nil {
			t.Fatalf("ListParts: %v", err)
		}
		var got []string
		for _, p := range lp.Parts {
			got = append(got, fmt.Sprintf("%d:%d:%s", aws.ToInt32(p.PartNumber), aws.ToInt64(p.Size), aws.ToString(p.ETag)))
		}
		want := []string{fmt.Sprintf("1:%d:%s", 5*mib, e1), "10000:1024:" + e2}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ListParts before Complete: %v, want (number:plaintext size:UploadPart's ETag) %v", got, want)
		}
		u.complete(t, 1, 10000)
		gapDone = true
		checkLimitObject(t, c, bucket, gapKey, gapPlain)
	})

	t.Run("2_only_part_10000", func(t *testing.T) {
		plain := [][]byte{testenv.RandomBytes(t, 5*mib+1, marker)}
		u := newLimitUpload(t, c, bucket, "only-10000")
		u.put(t, 10000, plain[0])
		u.complete(t, 10000)
		checkLimitObject(t, c, bucket, "only-10000", plain)
	})

	t.Run("3_parts_9999_and_10000", func(t *testing.T) {
		plain := [][]byte{testenv.RandomBytes(t, 5*mib, marker), testenv.RandomBytes(t, 5*mib, marker)}
		u := newLimitUpload(t, c, bucket, "last-two")
		u.put(t, 9999, plain[0])
		u.put(t, 10000, plain[1])
		u.complete(t, 9999, 10000)
		checkLimitObject(t, c, bucket, "last-two", plain)
	})

	t.Run("4_part_numbers_0_and_10001", func(t *testing.T) {
		u := newLimitUpload(t, c, bucket, "bad-numbers")
		for _, n := range []int32{10001, 0} {
			_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("bad-numbers"), UploadId: &u.id,
				PartNumber: aws.Int32(n), Body: bytes.NewReader([]byte("x")), ContentLength: aws.Int64(1)})
			if code, status := apiCode(err), limitStatus(err); code != "InvalidArgument" || status != 400 {
				t.Errorf("UploadPart number %d: %v (code %q, status %d), want InvalidArgument 400", n, err, code, status)
			}
		}
		lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: aws.String("bad-numbers"), UploadId: &u.id})
		if err != nil || len(lp.Parts) != 0 {
			t.Errorf("ListParts after the refused parts: %v, %d parts, want none", err, len(lp.Parts))
		}
		u.abort(t)
	})

	t.Run("5_small_part_not_last", func(t *testing.T) {
		plain := [][]byte{testenv.RandomBytes(t, 1*mib, marker), testenv.RandomBytes(t, 5*mib, marker)}
		u := newLimitUpload(t, c, bucket, "small-first")
		u.put(t, 1, plain[0])
		u.put(t, 2, plain[1])
		err := u.tryComplete(1, 2)
		if code, status := apiCode(err), limitStatus(err); code != "EntityTooSmall" || status != 400 {
			t.Fatalf("Complete with a 1 MiB part before a 5 MiB one: %v (code %q, status %d), want EntityTooSmall 400", err, code, status)
		}
		// As on S3, the refused Complete leaves the upload as it was: both parts listed, and
		// a Complete of the small part alone (now the last) makes the object.
		lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: aws.String("small-first"), UploadId: &u.id})
		if err != nil || len(lp.Parts) != 2 {
			t.Fatalf("ListParts after EntityTooSmall: %v, %d parts, want the 2 parts", err, len(lp.Parts))
		}
		u.complete(t, 1)
		checkLimitObject(t, c, bucket, "small-first", plain[:1])
	})

	t.Run("6_one_empty_part", func(t *testing.T) {
		u := newLimitUpload(t, c, bucket, "empty")
		if e := u.put(t, 1, nil); e != `"d41d8cd98f00b204e9800998ecf8427e"` {
			t.Errorf("UploadPart of 0 bytes: ETag %s, want the MD5 of nothing", e)
		}
		u.complete(t, 1)
		checkLimitObject(t, c, bucket, "empty", [][]byte{{}})
	})

	// S3: partNumber N of a multipart object is the N-th part of the completed list (the parts
	// are renumbered 1..K), with x-amz-mp-parts-count K and the object's ETag; N above K is
	// InvalidPartNumber (416). So on the object of parts 1 and 10,000, partNumber=2 is the
	// 1 KiB part and partNumber=10000 is not satisfiable.
	t.Run("7_get_part_number", func(t *testing.T) {
		if !gapDone {
			t.Fatal("the object of parts 1 and 10000 (subtest 1) was not completed")
		}
		total := int64(len(gapPlain[0]) + len(gapPlain[1]))
		etag := limitETag(gapPlain)
		off := int64(0)
		for i, want := range gapPlain {
			pn := int32(i + 1)
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &gapKey, PartNumber: aws.Int32(pn)})
			if err != nil {
				t.Errorf("GET partNumber=%d: %v", pn, err)
				continue
			}
			got, err := io.ReadAll(out.Body)
			out.Body.Close()
			wantRange := fmt.Sprintf("bytes %d-%d/%d", off, off+int64(len(want))-1, total)
			if err != nil || !bytes.Equal(got, want) || aws.ToInt32(out.PartsCount) != 2 || aws.ToString(out.ContentRange) != wantRange ||
				aws.ToString(out.ETag) != etag {
				t.Errorf("GET partNumber=%d: %d bytes (err %v, equal %v), parts count %d, Content-Range %q, ETag %s; want the %d bytes of part %d of the list, count 2, %q, %s",
					pn, len(got), err, bytes.Equal(got, want), aws.ToInt32(out.PartsCount), aws.ToString(out.ContentRange), aws.ToString(out.ETag),
					len(want), pn, wantRange, etag)
			}
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &gapKey, PartNumber: aws.Int32(pn)})
			if err != nil || aws.ToInt64(head.ContentLength) != int64(len(want)) || aws.ToInt32(head.PartsCount) != 2 {
				t.Errorf("HEAD partNumber=%d: %v, Content-Length %d, parts count %d; want %d, 2", pn, err,
					aws.ToInt64(head.ContentLength), aws.ToInt32(head.PartsCount), len(want))
			}
			off += int64(len(want))
		}
		for _, pn := range []int32{3, 10000} {
			_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &gapKey, PartNumber: aws.Int32(pn)})
			if code, status := apiCode(err), limitStatus(err); code != "InvalidPartNumber" || status != 416 {
				t.Errorf("GET partNumber=%d of a 2-part object: %v (code %q, status %d), want InvalidPartNumber 416", pn, err, code, status)
			}
		}
	})
}

// limitUpload is one multipart upload of TestMultipartPartNumberLimits.
type limitUpload struct {
	c           *s3.Client
	bucket, key string
	id          string
	etags       map[int32]string
}

func newLimitUpload(t *testing.T, c *s3.Client, bucket, key string) *limitUpload {
	t.Helper()
	cr, err := c.CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("CreateMultipartUpload %s: %v", key, err)
	}
	return &limitUpload{c: c, bucket: bucket, key: key, id: aws.ToString(cr.UploadId), etags: map[int32]string{}}
}

// put uploads part n and returns its ETag, which must be the plaintext MD5.
func (u *limitUpload) put(t *testing.T, n int32, data []byte) string {
	t.Helper()
	out, err := u.c.UploadPart(context.Background(), &s3.UploadPartInput{Bucket: &u.bucket, Key: &u.key, UploadId: &u.id,
		PartNumber: aws.Int32(n), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
	if err != nil {
		t.Fatalf("UploadPart %d (%d bytes) of %s: %v", n, len(data), u.key, err)
	}
	e := aws.ToString(out.ETag)
	if want := fmt.Sprintf(`"%x"`, md5sum(data)); e != want {
		t.Errorf("UploadPart %d of %s: ETag %s, want the plaintext MD5 %s", n, u.key, e, want)
	}
	u.etags[n] = e
	return e
}

func (u *limitUpload) tryComplete(numbers ...int32) error {
	var parts []types.CompletedPart
	for _, n := range numbers {
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: aws.String(u.etags[n])})
	}
	_, err := u.c.CompleteMultipartUpload(context.Background(), &s3.CompleteMultipartUploadInput{Bucket: &u.bucket, Key: &u.key,
		UploadId: &u.id, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return err
}

func (u *limitUpload) complete(t *testing.T, numbers ...int32) {
	t.Helper()
	if err := u.tryComplete(numbers...); err != nil {
		t.Fatalf("Complete of %s with parts %v: %v", u.key, numbers, err)
	}
}

func (u *limitUpload) abort(t *testing.T) {
	t.Helper()
	if _, err := u.c.AbortMultipartUpload(context.Background(), &s3.AbortMultipartUploadInput{Bucket: &u.bucket, Key: &u.key, UploadId: &u.id}); err != nil {
		t.Errorf("Abort of %s: %v", u.key, err)
	}
}

// limitETag is S3's ETag of a multipart object of these parts: the MD5 of the parts' MD5s, "-K".
func limitETag(parts [][]byte) string {
	var sums []byte
	for _, p := range parts {
		s := md5.Sum(p)
		sums = append(sums, s[:]...)
	}
	all := md5.Sum(sums)
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(all[:]), len(parts))
}

// checkLimitObject reads the multipart object of these parts back: HEAD (size, ETag), a whole
// GET, and ranged GETs across every part boundary (a few bytes either side, from the start of
// a part to the end of the next, the last 100 bytes), plus random ranges biased to the
// boundaries (checkRanges).
func checkLimitObject(t *testing.T, c *s3.Client, bucket, key string, parts [][]byte) {
	t.Helper()
	ctx := context.Background()
	plain := bytes.Join(parts, nil)
	n := int64(len(plain))
	etag := limitETag(parts)
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil || aws.ToInt64(head.ContentLength) != n || aws.ToString(head.ETag) != etag {
		t.Errorf("HEAD %s: %v, Content-Length %d, ETag %s; want %d, %s", key, err, aws.ToInt64(head.ContentLength), aws.ToString(head.ETag), n, etag)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, plain) || aws.ToInt64(out.ContentLength) != n {
		t.Errorf("GET %s: %d bytes (err %v, Content-Length %d), equal %v; want the %d bytes of the parts", key, len(got), err,
			aws.ToInt64(out.ContentLength), bytes.Equal(got, plain), n)
	}
	if n == 0 {
		return
	}
	type rq struct{ a, b int64 }
	var rs []rq
	var bounds []int64
	off := int64(0)
	for i, p := range parts[:len(parts)-1] {
		off += int64(len(p))
		bounds = append(bounds, off)
		rs = append(rs, rq{off - 1, off}, rq{off - 70_000, off + 70_000}, rq{off - int64(len(p)), off + int64(len(parts[i+1])) - 1})
	}
	rs = append(rs, rq{max(0, n-100), n - 1})
	for _, r := range rs {
		a, b := max(0, r.a), min(n-1, r.b)
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String(fmt.Sprintf("bytes=%d-%d", a, b))})
		if err != nil {
			t.Errorf("GET %s bytes=%d-%d: %v", key, a, b, err)
			continue
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, plain[a:b+1]) {
			t.Errorf("GET %s bytes=%d-%d: %d bytes (err %v), equal %v", key, a, b, len(got), err, bytes.Equal(got, plain[a:b+1]))
		}
	}
	if len(bounds) > 0 {
		checkRanges(t, c, bucket, key, plain, bounds, 20)
	}
}

// limitStatus is the HTTP status of a failed SDK call (0 when there was no response).
func limitStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
