package embedded

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestObjectAndKeyBelowIt: the files-on-disk layout cannot hold "a" and "a/b" at once. Storing
// one of them while the other exists, by PUT, copy or multipart Complete, fails with 400
// InvalidArgument and leaves the existing object as it was (storing "a/b" used to fail inside
// s3afero and the clean-up then deleted the object "a"; the SDK's retry then stored "a/b", so
// "aws s3 cp x s3://demo/a/b" silently deleted s3://demo/a).
func TestObjectAndKeyBelowIt(t *testing.T) {
	s := startStore(t, shortDir(t))
	c := newClient(s, false)
	ctx := context.Background()
	mustBucket(t, c, "demo")
	put(t, c, "demo", "a", []byte("object a"), nil)
	put(t, c, "demo", "c/d", []byte("object c/d"), nil)
	put(t, c, "demo", "src", []byte("source"), nil)

	refused := func(what string, err error) {
		t.Helper()
		if code := errCode(err); code != "InvalidArgument" {
			t.Errorf("%s: error %v (code %q), want InvalidArgument", what, err, code)
		}
	}
	putErr := func(key string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("demo"), Key: aws.String(key),
			Body: bytes.NewReader([]byte("new")), ContentLength: aws.Int64(3)})
		return err
	}
	refused("PUT a/b", putErr("a/b"))
	refused("PUT a/b/c", putErr("a/b/c"))
	refused("PUT c", putErr("c"))
	_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("demo"), Key: aws.String("a/x"), CopySource: aws.String("demo/src")})
	refused("copy to a/x", err)
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("demo"), Key: aws.String("c"), CopySource: aws.String("demo/src")})
	refused("copy to c", err)

	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("demo"), Key: aws.String("a/mp")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("demo"), Key: aws.String("a/mp"), UploadId: mp.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("part")), ContentLength: aws.Int64(4)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("demo"), Key: aws.String("a/mp"), UploadId: mp.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}})
	refused("multipart Complete of a/mp", err)

	for key, want := range map[string]string{"a": "object a", "c/d": "object c/d"} {
		if got, _ := get(t, c, "demo", key, ""); string(got) != want {
			t.Errorf("%s holds %q after the refused writes, want %q", key, got, want)
		}
	}
	for _, key := range []string{"a/b", "a/b/c", "a/x", "a/mp", "c"} {
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("demo"), Key: aws.String(key)}); errCode(err) != "NotFound" {
			t.Errorf("HEAD %s after a refused write: %v, want NotFound", key, err)
		}
	}

	// Once "a" is gone, "a/b" can be stored (and the other way round for "c").
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("demo"), Key: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	put(t, c, "demo", "a/b", []byte("object a/b"), nil)
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("demo"), Key: aws.String("c/d")}); err != nil {
		t.Fatal(err)
	}
	put(t, c, "demo", "c", []byte("object c"), nil)
	for key, want := range map[string]string{"a/b": "object a/b", "c": "object c"} {
		if got, _ := get(t, c, "demo", key, ""); string(got) != want {
			t.Errorf("%s holds %q, want %q", key, got, want)
		}
	}
}
