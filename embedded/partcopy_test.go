package embedded

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestUploadPartCopy covers UploadPartCopy: whole and ranged copies, the range and version
// checks, the copy-source conditions, missing sources, and a Complete of copied parts, made as
// the gateway makes it (a multipart object copied onto itself part by part, If-Match on its
// multipart ETag).
func TestUploadPartCopy(t *testing.T) {
	s := startStore(t, shortDir(t))
	c := newClient(s, false)
	ctx := context.Background()
	mustBucket(t, c, "bkt")
	src := randBytes(200_000)
	srcKey := "dir/a b+c"
	srcETag := aws.ToString(put(t, c, "bkt", srcKey, src, nil).ETag)
	cs := "bkt/" + (&url.URL{Path: srcKey}).EscapedPath()

	newUpload := func(key string) *string {
		t.Helper()
		cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return cr.UploadId
	}
	upc := func(key string, id *string, n int32, source, rng, ifMatch, ifNoneMatch string) (*s3.UploadPartCopyOutput, error) {
		in := &s3.UploadPartCopyInput{Bucket: aws.String("bkt"), Key: aws.String(key), UploadId: id, PartNumber: aws.Int32(n), CopySource: aws.String(source)}
		if rng != "" {
			in.CopySourceRange = aws.String(rng)
		}
		if ifMatch != "" {
			in.CopySourceIfMatch = aws.String(ifMatch)
		}
		if ifNoneMatch != "" {
			in.CopySourceIfNoneMatch = aws.String(ifNoneMatch)
		}
		return c.UploadPartCopy(ctx, in)
	}
	id := newUpload("dst")

	whole, err := upc("dst", id, 1, cs, "", srcETag, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := whole.CopyPartResult; aws.ToString(r.ETag) != `"`+md5hex(src)+`"` || r.LastModified == nil || r.LastModified.IsZero() {
		t.Errorf("whole copy: ETag %s, LastModified %v", aws.ToString(r.ETag), r.LastModified)
	}
	ranged, err := upc("dst", id, 2, cs+"?versionId=null", "bytes=100-69999", "", `"nomatch"`)
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(ranged.CopyPartResult.ETag); got != `"`+md5hex(src[100:70000])+`"` {
		t.Errorf("ranged copy: ETag %s", got)
	}
	last, err := upc("dst", id, 3, cs, "bytes=199999-199999", "", "")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, source, rng, ifMatch, ifNoneMatch, code string }{
		{"range past the end", cs, "bytes=0-200000", "", "", "InvalidArgument"},
		{"range starting past the end", cs, "bytes=200000-200001", "", "", "InvalidArgument"},
		{"range backwards", cs, "bytes=5-4", "", "", "InvalidArgument"},
		{"open range", cs, "bytes=0-", "", "", "InvalidArgument"},
		{"suffix range", cs, "bytes=-5", "", "", "InvalidArgument"},
		{"not bytes", cs, "items=0-4", "", "", "InvalidArgument"},
		{"If-Match failing", cs, "", `"0123"`, "", "PreconditionFailed"},
		{"If-None-Match holding", cs, "", "", srcETag, "PreconditionFailed"},
		{"missing key", "bkt/nope", "", "", "", "NoSuchKey"},
		{"missing bucket", "nobkt/x", "", "", "", "NoSuchBucket"},
		{"a version id", cs + "?versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", "", "", "", "InvalidArgument"},
		{"no key", "bkt", "", "", "", "InvalidArgument"},
	} {
		if _, err := upc("dst", id, 9, tc.source, tc.rng, tc.ifMatch, tc.ifNoneMatch); errCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if _, err := upc("dst", aws.String("nosuchupload"), 1, cs, "", "", ""); errCode(err) != "NoSuchUpload" {
		t.Errorf("unknown upload: %v", err)
	}
	if _, err := upc("dst", id, 0, cs, "", "", ""); errCode(err) != "InvalidArgument" {
		t.Errorf("part number 0: %v", err)
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("bkt"), Key: aws.String("dst"), UploadId: id})
	if err != nil || len(lp.Parts) != 3 {
		t.Fatalf("ListParts: %v, %d parts (refused copies must leave none)", err, len(lp.Parts))
	}

	parts := []types.CompletedPart{
		{PartNumber: aws.Int32(1), ETag: whole.CopyPartResult.ETag},
		{PartNumber: aws.Int32(2), ETag: ranged.CopyPartResult.ETag},
		{PartNumber: aws.Int32(3), ETag: last.CopyPartResult.ETag},
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("dst"),
		UploadId: id, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte(nil), src...), src[100:70000]...), src[199999:]...)
	if got, _ := get(t, c, "bkt", "dst", ""); !bytes.Equal(got, want) {
		t.Errorf("completed copy: %d bytes, want %d identical", len(got), len(want))
	}

	t.Run("multipart object onto itself", func(t *testing.T) {
		// dst is the multipart object above (sizes 200000, 69900, 1); copy it onto itself part
		// by part with If-Match on its multipart ETag, as the gateway writes a manifest.
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dst")})
		if err != nil {
			t.Fatal(err)
		}
		mpETag := aws.ToString(h.ETag)
		id := newUpload("dst")
		var parts []types.CompletedPart
		sums := md5.New()
		var off int64
		for i, size := range []int64{200_000, 69_900, 1} {
			out, err := upc("dst", id, int32(i+1), "/bkt/dst", fmt.Sprintf("bytes=%d-%d", off, off+size-1), mpETag, "")
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.CopyPartResult.ETag})
			sum := md5.Sum(want[off : off+size])
			sums.Write(sum[:])
			off += size
		}
		co, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("dst"),
			UploadId: id, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		if err != nil {
			t.Fatal(err)
		}
		if wantETag := fmt.Sprintf(`"%s-3"`, hex.EncodeToString(sums.Sum(nil))); aws.ToString(co.ETag) != wantETag {
			t.Errorf("Complete ETag %s, want %s", aws.ToString(co.ETag), wantETag)
		}
		if got, _ := get(t, c, "bkt", "dst", ""); !bytes.Equal(got, want) {
			t.Errorf("copied onto itself: %d bytes, want %d identical", len(got), len(want))
		}
		g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dst"), PartNumber: aws.Int32(2)})
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(t, g); !bytes.Equal(b, src[100:70000]) {
			t.Errorf("part 2 of the copy: %d bytes", len(b))
		}
		assertTmpEmpty(t, s)
	})
}
