package embedded

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestMultipart(t *testing.T) {
	s := startStore(t, shortDir(t))
	c := newClient(s, false)
	ctx := context.Background()
	mustBucket(t, c, "bkt")

	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String("bkt"), Key: aws.String("obj"), Metadata: map[string]string{"env": "e"}, ContentType: aws.String("a/b"),
	})
	if err != nil {
		t.Fatal(err)
	}
	partBodies := [][]byte{randBytes(70_000), randBytes(70_000), randBytes(1234)}
	var completed []types.CompletedPart
	var all []byte
	sums := md5.New()
	for i, pb := range partBodies {
		n := int32(i + 1)
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("bkt"), Key: aws.String("obj"), UploadId: cr.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(pb), ContentLength: aws.Int64(int64(len(pb)))})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.ETag) != `"`+md5hex(pb)+`"` {
			t.Errorf("part %d ETag %s", n, aws.ToString(out.ETag))
		}
		completed = append(completed, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag})
		all = append(all, pb...)
		s := md5.Sum(pb)
		sums.Write(s[:])
	}
	wantETag := fmt.Sprintf(`"%s-3"`, hex.EncodeToString(sums.Sum(nil)))

	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("bkt"), Key: aws.String("obj"), UploadId: cr.UploadId, MaxParts: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(lp.Parts) != 2 || !aws.ToBool(lp.IsTruncated) || aws.ToInt64(lp.Parts[1].Size) != 70_000 {
		t.Errorf("ListParts page: %d parts, truncated %v", len(lp.Parts), aws.ToBool(lp.IsTruncated))
	}
	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("bkt")})
	if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != aws.ToString(cr.UploadId) {
		t.Errorf("ListMultipartUploads: %v %+v", err, lu)
	}

	bad := []types.CompletedPart{completed[1], completed[0]}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("obj"),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: bad}})
	if errCode(err) != "InvalidPartOrder" {
		t.Errorf("parts out of order: %v", err)
	}
	wrong := []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: completed[1].ETag}}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("obj"),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: wrong}})
	if errCode(err) != "InvalidPart" {
		t.Errorf("wrong part ETag: %v", err)
	}

	co, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("obj"),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: completed}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(co.ETag) != wantETag {
		t.Errorf("Complete ETag %s, want %s", aws.ToString(co.ETag), wantETag)
	}
	got, out := get(t, c, "bkt", "obj", "")
	if !bytes.Equal(got, all) || aws.ToString(out.ETag) != wantETag || out.Metadata["env"] != "e" || len(out.Metadata) != 1 ||
		aws.ToString(out.ContentType) != "a/b" {
		t.Errorf("GET: %d bytes, ETag %s, meta %v, type %s", len(got), aws.ToString(out.ETag), out.Metadata, aws.ToString(out.ContentType))
	}
	lo, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bkt")})
	if err != nil || len(lo.Contents) != 1 || aws.ToString(lo.Contents[0].ETag) != wantETag || aws.ToInt64(lo.Contents[0].Size) != int64(len(all)) {
		t.Errorf("listing of the multipart object: %v %+v", err, lo.Contents)
	}
	if _, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("bkt"), Key: aws.String("obj"), UploadId: cr.UploadId}); errCode(err) != "NoSuchUpload" {
		t.Errorf("ListParts after Complete: %v", err)
	}

	t.Run("partNumber", func(t *testing.T) {
		var start int
		for i, pb := range partBodies {
			n := int32(i + 1)
			h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("obj"), PartNumber: aws.Int32(n)})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToInt64(h.ContentLength) != int64(len(pb)) || aws.ToInt32(h.PartsCount) != 3 || aws.ToString(h.ETag) != wantETag {
				t.Errorf("HEAD part %d: length %d, parts %d, ETag %s", n, aws.ToInt64(h.ContentLength), aws.ToInt32(h.PartsCount), aws.ToString(h.ETag))
			}
			g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("obj"), PartNumber: aws.Int32(n)})
			if err != nil {
				t.Fatal(err)
			}
			b := readAll(t, g)
			want := fmt.Sprintf("bytes %d-%d/%d", start, start+len(pb)-1, len(all))
			if !bytes.Equal(b, pb) || aws.ToString(g.ContentRange) != want || aws.ToInt32(g.PartsCount) != 3 {
				t.Errorf("GET part %d: %d bytes, range %s, parts %d", n, len(b), aws.ToString(g.ContentRange), aws.ToInt32(g.PartsCount))
			}
			start += len(pb)
		}
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("obj"), PartNumber: aws.Int32(4)})
		if errCode(err) != "InvalidPartNumber" {
			t.Errorf("part 4 of 3: %v", err)
		}

		single := randBytes(500)
		put(t, c, "bkt", "single", single, nil)
		g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("single"), PartNumber: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(t, g); !bytes.Equal(b, single) || g.PartsCount != nil {
			t.Errorf("part 1 of a single-part object: %d bytes, parts count %v", len(b), g.PartsCount)
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("single"), PartNumber: aws.Int32(2)}); err == nil {
			t.Error("part 2 of a single-part object answered")
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("missing"), PartNumber: aws.Int32(1)}); errCode(err) != "NotFound" {
			t.Errorf("partNumber of a missing key: %v", err)
		}
	})

	t.Run("copy of a multipart object is single-part", func(t *testing.T) {
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bkt"), Key: aws.String("copy"), CopySource: aws.String("bkt/obj")}); err != nil {
			t.Fatal(err)
		}
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("copy"), PartNumber: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(h.ETag) != `"`+md5hex(all)+`"` || h.PartsCount != nil || aws.ToInt64(h.ContentLength) != int64(len(all)) {
			t.Errorf("copy: ETag %s, parts %v, length %d", aws.ToString(h.ETag), h.PartsCount, aws.ToInt64(h.ContentLength))
		}
	})

	t.Run("abort", func(t *testing.T) {
		cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("aborted")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("bkt"), Key: aws.String("aborted"), UploadId: cr.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("p")), ContentLength: aws.Int64(1)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("aborted"), UploadId: cr.UploadId}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("bkt"), Key: aws.String("aborted"), UploadId: cr.UploadId}); errCode(err) != "NoSuchUpload" {
			t.Errorf("ListParts after Abort: %v", err)
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("aborted")}); errCode(err) != "NotFound" {
			t.Errorf("object after Abort: %v", err)
		}
		assertTmpEmpty(t, s)
	})

	t.Run("internal headers not accepted from clients", func(t *testing.T) {
		hdr := http.Header{"X-S3seal-Parts": {"1,1"}, "X-S3seal-Etag": {`"x-2"`}, "Content-Length": {"2"}}
		resp := rawDo(t, s, http.MethodPut, "/bkt/forged", hdr, bytes.NewReader([]byte("ab")))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("forged"), PartNumber: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		if h.PartsCount != nil || aws.ToString(h.ETag) != `"`+md5hex([]byte("ab"))+`"` {
			t.Errorf("forged layout honoured: parts %v, ETag %s", h.PartsCount, aws.ToString(h.ETag))
		}
	})
}

func readAll(t *testing.T, g *s3.GetObjectOutput) []byte {
	t.Helper()
	defer g.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(g.Body); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
