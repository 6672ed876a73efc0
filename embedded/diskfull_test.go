package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// memDir is a data dir on a tmpfs where fsync costs nothing, for tests that make many writes
// and are not about durability; without permission to mount, an ordinary temp dir.
func memDir(t *testing.T) string {
	t.Helper()
	dir, err := testenv.TryTmpfs(t, 256<<20)
	if err != nil {
		t.Logf("no tmpfs (%v): using a disk dir, this test will be slower", err)
		return shortDir(t)
	}
	return filepath.Join(dir, "data")
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// TestDiskFull: on a full file system a PUT, an overwrite and an UploadPart fail with 507
// XMinioStorageFull; nothing partial becomes visible, the previous version stays whole, no
// body file is left behind, and after space is freed the store works again, also after a
// restart. Filling the disk with small objects until it refuses exercises the database's
// own writes failing too.
func TestDiskFull(t *testing.T) {
	dir := filepath.Join(testenv.Tmpfs(t, 8<<20), "data")
	s, err := Start(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(s, false)
	ctx := context.Background()
	mustBucket(t, c, "full")
	keep := randBytes(1 << 20)
	put(t, c, "full", "keep", keep, map[string]string{"v": "1"})

	full := func(what string, err error) {
		t.Helper()
		if errCode(err) != "XMinioStorageFull" || httpStatus(err) != 507 {
			t.Errorf("%s on a full disk: %v (status %d), want 507 XMinioStorageFull", what, err, httpStatus(err))
		}
	}
	putErr := func(key string, n int) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("full"), Key: aws.String(key),
			Body: bytes.NewReader(randBytes(n)), ContentLength: aws.Int64(int64(n))})
		return err
	}
	full("PUT of 9 MiB", putErr("big", 9<<20))
	full("overwrite with 9 MiB", putErr("keep", 9<<20))
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("full"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("full"), Key: aws.String("mp"), UploadId: cr.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(randBytes(9 << 20)), ContentLength: aws.Int64(9 << 20)})
	full("UploadPart of 9 MiB", err)
	if lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("full"), Key: aws.String("mp"), UploadId: cr.UploadId}); err != nil || len(lp.Parts) != 0 {
		t.Errorf("parts after a refused UploadPart: %v %+v", err, lp)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("full"), Key: aws.String("big")}); errCode(err) != "NotFound" {
		t.Errorf("HEAD of the refused object: %v", err)
	}
	if got, out := get(t, c, "full", "keep", ""); !bytes.Equal(got, keep) || out.Metadata["v"] != "1" {
		t.Errorf("previous version after the refused overwrite: %d bytes, %v", len(got), out.Metadata)
	}
	if n := bodyFiles(t, s); n != 1 {
		t.Errorf("%d body files, want only the kept object's", n)
	}
	assertTmpEmpty(t, s)

	// Fill up with small objects until the store refuses one.
	stored := map[string][]byte{}
	var last error
	for i := range 200 {
		key := fmt.Sprintf("fill/%03d", i)
		body := randBytes(200 << 10)
		_, last = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("full"), Key: aws.String(key),
			Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))})
		if last != nil {
			break
		}
		stored[key] = body
	}
	t.Logf("%d objects of 200 KiB fitted before the store refused one", len(stored))
	full(fmt.Sprintf("PUT after %d small objects", len(stored)), last)
	if len(stored) == 0 {
		t.Fatal("not one small object fitted")
	}
	check := func(c *s3.Client) {
		t.Helper()
		keys, _ := listAll(t, c, "full", "fill/", "")
		if len(keys) != len(stored) {
			t.Errorf("%d fill objects listed, %d stored", len(keys), len(stored))
		}
		for k, v := range stored {
			if got, _ := get(t, c, "full", k, ""); !bytes.Equal(got, v) {
				t.Errorf("%s damaged (%d bytes)", k, len(got))
			}
		}
		if got, _ := get(t, c, "full", "keep", ""); !bytes.Equal(got, keep) {
			t.Error("keep damaged")
		}
	}
	check(c)

	// Free space: the store works again, and everything is there after a restart.
	for k := range stored {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("full"), Key: aws.String(k)}); err != nil {
			t.Fatalf("delete on a full disk: %v", err)
		}
		delete(stored, k)
		if len(stored) < 10 {
			break
		}
	}
	after := randBytes(2 << 20)
	put(t, c, "full", "after", after, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := startStore(t, dir)
	c2 := newClient(s2, false)
	check(c2)
	if got, _ := get(t, c2, "full", "after", ""); !bytes.Equal(got, after) {
		t.Error("object stored after freeing space is damaged")
	}
}
