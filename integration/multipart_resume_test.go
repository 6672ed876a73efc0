package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/testenv"
)

// Resuming an upload (issue 12, item 7): a client takes an upload id from ListMultipartUploads
// and uploads more parts, lists them, completes or aborts; ListParts shows the ETags UploadPart
// returned. The gateway keeps both in upload records under the reserved prefix (U+10FFFF),
// with the parts it holds aside until Complete (under 5 MiB, or part 10,000: FORMAT.md 3.6.2),
// which clients never see.

const reservedPrefix = format.ReservedPrefix

// listedUploads pages through ListMultipartUploads of prefix (max-uploads 1, so the markers
// are used) and returns key -> upload ids. MinIO lists only the uploads of the key a prefix
// names exactly.
func listedUploads(t *testing.T, c *s3.Client, bucket, prefix string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	in := &s3.ListMultipartUploadsInput{Bucket: &bucket, Prefix: &prefix, MaxUploads: aws.Int32(1)}
	for range 20 {
		page, err := c.ListMultipartUploads(context.Background(), in)
		if err != nil {
			t.Fatalf("ListMultipartUploads: %v", err)
		}
		for _, u := range page.Uploads {
			out[aws.ToString(u.Key)] = append(out[aws.ToString(u.Key)], aws.ToString(u.UploadId))
		}
		if !aws.ToBool(page.IsTruncated) {
			return out
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
	t.Fatal("ListMultipartUploads did not end after 20 pages")
	return nil
}

func uploadPartETag(t *testing.T, c *s3.Client, bucket, key, id string, n int32, data []byte) string {
	t.Helper()
	out, err := c.UploadPart(context.Background(), &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: &id,
		PartNumber: aws.Int32(n), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
	if err != nil {
		t.Fatalf("UploadPart %d of %s: %v", n, key, err)
	}
	return aws.ToString(out.ETag)
}

// listedPartETags is ListParts (all pages, max-parts 1): part number -> ETag.
func listedPartETags(t *testing.T, c *s3.Client, bucket, key, id string) map[int32]string {
	t.Helper()
	out := map[int32]string{}
	in := &s3.ListPartsInput{Bucket: &bucket, Key: &key, UploadId: &id, MaxParts: aws.Int32(1)}
	for range 20 {
		page, err := c.ListParts(context.Background(), in)
		if err != nil {
			t.Fatalf("ListParts of %s: %v", key, err)
		}
		for _, p := range page.Parts {
			out[aws.ToInt32(p.PartNumber)] = aws.ToString(p.ETag)
		}
		if !aws.ToBool(page.IsTruncated) {
			return out
		}
		in.PartNumberMarker = page.NextPartNumberMarker
	}
	t.Fatal("ListParts did not end after 20 pages")
	return nil
}

// reservedKeys lists MinIO's keys under the reserved prefix, directly.
func reservedKeys(t *testing.T, mc *s3.Client, bucket string) []string {
	t.Helper()
	out, err := mc.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(reservedPrefix)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// reservedKinds counts the reserved keys by kind: "id" (an upload's id record), "part" (a part
// record), "held" (a held part) of FORMAT.md 3.6.2, "other" for anything else. Keys are
// <reserved prefix>s3seal/uploads/<backend id>/<kind>/....
func reservedKinds(keys []string) map[string]int {
	out := map[string]int{}
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, reservedPrefix+"s3seal/uploads/")
		_, rest, ok2 := strings.Cut(rest, "/")
		kind, _, ok3 := strings.Cut(rest, "/")
		switch {
		case ok && ok2 && ok3 && (kind == "id" || kind == "part" || kind == "held"):
			out[kind]++
		default:
			out["other"]++
		}
	}
	return out
}

// TestMultipartResumeListedUploadID: through the gateway, ListMultipartUploads shows the ids
// CreateMultipartUpload returned (paged with max-uploads 1); a listed id takes a third part,
// lists the parts with the ETags UploadPart returned (as MinIO itself does on a plain bucket,
// checked in the same test), completes (the object reads back) and aborts; the records are
// gone from MinIO afterwards.
func TestMultipartResumeListedUploadID(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	c, mc := gw.Client(t), m.Client(t)
	ctx := context.Background()
	bucket, plain := m.NewBucket(t), m.NewBucket(t)

	// MinIO directly: its listings show the ids and ETags it gave.
	mcr, err := mc.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &plain, Key: aws.String("r/x")})
	if err != nil {
		t.Fatal(err)
	}
	me := uploadPartETag(t, mc, plain, "r/x", aws.ToString(mcr.UploadId), 1, []byte("minio part"))
	if got := listedUploads(t, mc, plain, "r/x"); len(got["r/x"]) != 1 || got["r/x"][0] != aws.ToString(mcr.UploadId) {
		t.Fatalf("MinIO lists %q, created %s", got, aws.ToString(mcr.UploadId))
	}
	if got := listedPartETags(t, mc, plain, "r/x", aws.ToString(mcr.UploadId)); got[1] != me {
		t.Fatalf("MinIO's ListParts ETag %s, its UploadPart gave %s", got[1], me)
	}

	// Two uploads of one key (MinIO lists uploads by exact key), so that listing pages by one
	// upload use NextUploadIdMarker: one is completed, the other aborted.
	const key = "resume/obj.bin"
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{testenv.RandomBytes(t, 5<<20, marker), testenv.RandomBytes(t, 5<<20, marker), testenv.RandomBytes(t, 1234, marker)}
	etags := map[int32]string{}
	for i := range 2 {
		etags[int32(i+1)] = uploadPartETag(t, c, bucket, key, aws.ToString(cr.UploadId), int32(i+1), parts[i])
	}
	uploadPartETag(t, c, bucket, key, aws.ToString(ca.UploadId), 1, []byte("to be aborted"))

	listed := listedUploads(t, c, bucket, key)[key]
	var id, abortID string
	for _, l := range listed {
		switch l {
		case aws.ToString(cr.UploadId):
			id = l
		case aws.ToString(ca.UploadId):
			abortID = l
		}
	}
	if len(listed) != 2 || id == "" || abortID == "" {
		t.Fatalf("the gateway lists %q; CreateMultipartUpload gave %s and %s", listed, aws.ToString(cr.UploadId), aws.ToString(ca.UploadId))
	}
	etags[3] = uploadPartETag(t, c, bucket, key, id, 3, parts[2])
	got := listedPartETags(t, c, bucket, key, id)
	for n, e := range etags {
		if want := fmt.Sprintf(`"%x"`, md5sum(parts[n-1])); e != want || got[n] != e {
			t.Errorf("part %d: ListParts ETag %s, UploadPart gave %s (plaintext MD5 %s)", n, got[n], e, want)
		}
	}
	if len(got) != 3 {
		t.Errorf("ListParts shows %d parts, want 3", len(got))
	}
	// Records: 2 ids, 4 part records; held: the 1,234-byte part 3 of one upload and the small
	// part 1 of the other (parts under 5 MiB are held aside until Complete).
	if recs := reservedKeys(t, mc, bucket); fmt.Sprint(reservedKinds(recs)) != fmt.Sprint(map[string]int{"id": 2, "part": 4, "held": 2}) {
		t.Errorf("MinIO holds %v under the reserved prefix, want 2 ids, 4 part records, 2 held parts: %q", reservedKinds(recs), recs)
	}

	checkReservedHidden(t, c, bucket)

	var cparts []types.CompletedPart
	for n := int32(1); n <= 3; n++ {
		cparts = append(cparts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: aws.String(got[n])})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String(key), UploadId: &id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cparts}}); err != nil {
		t.Fatalf("Complete with the listed id: %v", err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: aws.String(key), UploadId: &abortID}); err != nil {
		t.Fatalf("Abort with the listed id: %v", err)
	}
	o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(o.Body)
	o.Body.Close()
	if !bytes.Equal(body, bytes.Join(parts, nil)) {
		t.Fatalf("GET after Complete: %d bytes, not the parts' plaintext", len(body))
	}
	if recs := reservedKeys(t, mc, bucket); len(recs) != 0 {
		t.Fatalf("upload records left in MinIO after Complete and Abort: %q", recs)
	}
	if got := listedUploads(t, c, bucket, key); len(got) != 0 {
		t.Fatalf("uploads left: %q", got)
	}
}

// checkReservedHidden: while upload records exist in MinIO, no gateway listing shows the
// reserved prefix (ListObjectsV2 with and without delimiter, paged by 1; ListObjects v1 paged
// by 1; ListObjectVersions), and a client cannot PUT, GET or copy a key under it.
func checkReservedHidden(t *testing.T, c *s3.Client, bucket string) {
	t.Helper()
	ctx := context.Background()
	for _, k := range []string{"a.txt", "z/b.txt"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
	}
	want := "a.txt,z/b.txt"
	for _, delim := range []string{"", "/"} {
		var names []string
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket, MaxKeys: aws.Int32(1), Delimiter: optionalString(delim)})
		for pages := 0; p.HasMorePages(); pages++ {
			page, err := p.NextPage(ctx)
			if err != nil || pages > 30 {
				t.Fatalf("ListObjectsV2 delimiter %q: %v after %d pages", delim, err, pages)
			}
			if int(aws.ToInt32(page.KeyCount)) != len(page.Contents)+len(page.CommonPrefixes) {
				t.Errorf("KeyCount %d for %d keys and %d prefixes", aws.ToInt32(page.KeyCount), len(page.Contents), len(page.CommonPrefixes))
			}
			// As on S3 (versitygw's ListObjectsV2_mp_masking_truncation): open uploads leave
			// every page but the last full.
			if aws.ToBool(page.IsTruncated) && len(page.Contents)+len(page.CommonPrefixes) != 1 {
				t.Errorf("ListObjectsV2 delimiter %q: a truncated page of %d entries, max-keys 1", delim, len(page.Contents)+len(page.CommonPrefixes))
			}
			for _, o := range page.Contents {
				names = append(names, aws.ToString(o.Key))
			}
			for _, cp := range page.CommonPrefixes {
				names = append(names, aws.ToString(cp.Prefix))
			}
		}
		w := want
		if delim == "/" {
			w = "a.txt,z/"
		}
		if strings.Join(names, ",") != w {
			t.Errorf("ListObjectsV2 delimiter %q, max-keys 1: %q, want %s", delim, names, w)
		}
	}
	var names []string
	in := &s3.ListObjectsInput{Bucket: &bucket, MaxKeys: aws.Int32(1)}
	for pages := 0; ; pages++ {
		page, err := c.ListObjects(ctx, in)
		if err != nil || pages > 30 {
			t.Fatalf("ListObjects: %v after %d pages", err, pages)
		}
		for _, o := range page.Contents {
			names = append(names, aws.ToString(o.Key))
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		if len(page.Contents) != 1 {
			t.Errorf("ListObjects: a truncated page of %d keys, max-keys 1", len(page.Contents))
		}
		switch {
		case aws.ToString(page.NextMarker) != "":
			in.Marker = page.NextMarker
		case len(page.Contents) > 0:
			in.Marker = page.Contents[len(page.Contents)-1].Key
		default:
			t.Fatal("a truncated ListObjects page with neither keys nor NextMarker")
		}
	}
	if strings.Join(names, ",") != want {
		t.Errorf("ListObjects max-keys 1: %q, want %s", names, want)
	}
	vs, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs.Versions {
		if strings.HasPrefix(aws.ToString(v.Key), reservedPrefix) {
			t.Errorf("ListObjectVersions shows %s", aws.ToString(v.Key))
		}
	}
	if len(vs.Versions) != 2 {
		t.Errorf("ListObjectVersions shows %d versions, want 2", len(vs.Versions))
	}
	denied := func(what string, err error) {
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
			t.Errorf("%s under the reserved prefix: %v, want AccessDenied", what, err)
		}
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(reservedPrefix + "x"), Body: strings.NewReader("x")})
	denied("PUT", err)
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(reservedPrefix + "s3seal/uploads/x")})
	denied("GET", err)
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("copy"), CopySource: aws.String(bucket + "/" + reservedPrefix + "x")})
	denied("CopyObject from a key", err)
	for _, k := range []string{"a.txt", "z/b.txt"} {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// TestMultipartOpenUploadDeleteBucket: open uploads do not keep a bucket from being deleted
// through the gateway (as on S3 and MinIO), although their records and held parts are objects
// in MinIO; a bucket that still holds an object is refused BucketNotEmpty and keeps them all.
// One upload has a small part (held aside) and a 5 MiB one (a backend part), the other a held
// part 10,000.
func TestMultipartOpenUploadDeleteBucket(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	c, mc := gw.Client(t), m.Client(t)
	ctx := context.Background()
	bucket := newBucketName(t, "open-upload")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteBucket(t, m, bucket) }) // if the test fails before its DeleteBucket
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("open")})
	if err != nil {
		t.Fatal(err)
	}
	uploadPartETag(t, c, bucket, "open", aws.ToString(cr.UploadId), 1, []byte("part"))
	uploadPartETag(t, c, bucket, "open", aws.ToString(cr.UploadId), 2, testenv.RandomBytes(t, 5<<20, ""))
	cr2, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("open2")})
	if err != nil {
		t.Fatal(err)
	}
	uploadPartETag(t, c, bucket, "open2", aws.ToString(cr2.UploadId), 10_000, testenv.RandomBytes(t, 5<<20, ""))
	want := fmt.Sprint(map[string]int{"id": 2, "part": 3, "held": 2})
	if recs := reservedKeys(t, mc, bucket); fmt.Sprint(reservedKinds(recs)) != want {
		t.Fatalf("records and held parts of two open uploads: %v, want 2 ids, 3 part records, 2 held parts: %q", reservedKinds(recs), recs)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("obj"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	var ae smithy.APIError
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); !errors.As(err, &ae) || ae.ErrorCode() != "BucketNotEmpty" {
		t.Fatalf("DeleteBucket of a bucket holding an object: %v, want BucketNotEmpty", err)
	}
	if recs := reservedKeys(t, mc, bucket); fmt.Sprint(reservedKinds(recs)) != want {
		t.Fatalf("records and held parts after a refused DeleteBucket: %v, want %s: %q", reservedKinds(recs), want, recs)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("obj")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("DeleteBucket with only open uploads (records and held parts): %v", err)
	}
	if _, err := mc.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket}); err == nil {
		t.Fatal("MinIO still has the bucket")
	}
}
