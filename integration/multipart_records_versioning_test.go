package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/testenv"
)

// TestMultipartRecordsVersioning (issue 22, item 4; failed before the fix in the suspended
// case): in an unversioned, a versioning-enabled and a suspended bucket, one
// multipart upload completed and one aborted through the gateway leave nothing under the
// reserved prefix on MinIO (no record version, no delete marker), and once the client deleted
// every version and marker the gateway lists, DeleteBucket through the gateway succeeds with a
// third upload still open (its records deleted first, by version).
func TestMultipartRecordsVersioning(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	ctx := context.Background()
	direct := m.Client(t)
	c := gw.Client(t)
	states := []struct {
		name   string
		status []types.BucketVersioningStatus // applied in order
	}{
		{"unversioned", nil},
		{"enabled", []types.BucketVersioningStatus{types.BucketVersioningStatusEnabled}},
		{"suspended", []types.BucketVersioningStatus{types.BucketVersioningStatusEnabled, types.BucketVersioningStatusSuspended}},
	}
	for _, st := range states {
		t.Run(st.name, func(t *testing.T) {
			bucket := recordsTestBucket(t, direct, st.name)
			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
				t.Fatalf("CreateBucket through the gateway: %v", err)
			}
			for _, s := range st.status {
				if _, err := direct.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &bucket,
					VersioningConfiguration: &types.VersioningConfiguration{Status: s}}); err != nil {
					t.Fatal(err)
				}
			}
			key := aws.String("obj")
			for _, complete := range []bool{true, false} {
				up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: key})
				if err != nil {
					t.Fatal(err)
				}
				part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: key, UploadId: up.UploadId,
					PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("one small part"))})
				if err != nil {
					t.Fatal(err)
				}
				if n := reservedEntries(t, direct, bucket); n == 0 {
					t.Fatal("no upload record on MinIO while the upload is open: the test checks nothing")
				}
				if complete {
					_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: key,
						UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{
							Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}})
				} else {
					_, err = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: key, UploadId: up.UploadId})
				}
				if err != nil {
					t.Fatal(err)
				}
				if n := reservedEntries(t, direct, bucket); n != 0 {
					t.Errorf("complete=%v: MinIO holds %d versions or delete markers under the reserved prefix", complete, n)
				}
			}
			// A third upload stays open: DeleteBucket deletes its records (every version).
			open, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: key, UploadId: open.UploadId,
				PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("left open"))}); err != nil {
				t.Fatal(err)
			}
			// The client removes everything it can see, through the gateway.
			vs, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket})
			if err != nil {
				t.Fatal(err)
			}
			var ids []types.ObjectIdentifier
			for _, v := range vs.Versions {
				ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
			}
			for _, d := range vs.DeleteMarkers {
				ids = append(ids, types.ObjectIdentifier{Key: d.Key, VersionId: d.VersionId})
			}
			if len(ids) == 0 || aws.ToBool(vs.IsTruncated) {
				t.Fatalf("gateway lists %d versions (truncated %v), want the completed object", len(ids), aws.ToBool(vs.IsTruncated))
			}
			out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket,
				Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Errors) > 0 {
				t.Fatalf("DeleteObjects through the gateway: %s", aws.ToString(out.Errors[0].Code))
			}
			if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); err != nil {
				t.Fatalf("DeleteBucket through the gateway: %v (MinIO holds %d entries under the reserved prefix)",
					err, reservedEntries(t, direct, bucket))
			}
		})
	}
}

// reservedEntries counts the versions and delete markers MinIO lists under the reserved prefix
// of bucket (root key, one page: the test writes a handful).
func reservedEntries(t *testing.T, direct *s3.Client, bucket string) int {
	t.Helper()
	vs, err := direct.ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: &bucket,
		Prefix: aws.String(format.ReservedPrefix)})
	if err != nil {
		t.Fatalf("ListObjectVersions on MinIO: %v", err)
	}
	return len(vs.Versions) + len(vs.DeleteMarkers)
}

// recordsTestBucket names a fresh bucket for the test, which creates and (when it passes)
// deletes it; the clean-up empties and deletes what a failed test left, with MinIO's root key.
func recordsTestBucket(t *testing.T, direct *s3.Client, state string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	bucket := "t-mprecver-" + state + "-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.Background()
		vs, err := direct.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket})
		var api smithy.APIError
		if errors.As(err, &api) && api.ErrorCode() == "NoSuchBucket" {
			return // deleted by the test
		}
		if err != nil {
			t.Errorf("clean-up of %s: %v", bucket, err)
			return
		}
		ups, err := direct.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
		if err == nil {
			for _, u := range ups.Uploads {
				_, _ = direct.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: u.Key, UploadId: u.UploadId})
			}
		}
		for _, v := range vs.Versions {
			_, _ = direct.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: v.Key, VersionId: v.VersionId})
		}
		for _, d := range vs.DeleteMarkers {
			_, _ = direct.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: d.Key, VersionId: d.VersionId})
		}
		if _, err := direct.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); err != nil && !strings.Contains(err.Error(), "NoSuchBucket") {
			t.Errorf("clean-up of %s: %v", bucket, err)
		}
	})
	return bucket
}
