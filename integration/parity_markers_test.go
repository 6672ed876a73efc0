package integration

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestParityDeleteMarkers (issue 12, item 2; failed before the fix): in a versioned and in a
// suspended bucket, HEAD and GET of a key whose current version is a delete marker answer 404
// with x-amz-delete-marker: true and the marker's x-amz-version-id, and GET/HEAD of the marker by
// version id answer 405 with the same headers, through the gateway as from MinIO directly.
func TestParityDeleteMarkers(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	ctx := context.Background()
	direct := m.Client(t)
	c := gw.Client(t)
	hc := coreHTTPClient()
	for _, status := range []types.BucketVersioningStatus{types.BucketVersioningStatusEnabled, types.BucketVersioningStatusSuspended} {
		t.Run(string(status), func(t *testing.T) {
			bucket := m.NewBucket(t)
			if _, err := direct.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &bucket,
				VersioningConfiguration: &types.VersioningConfiguration{Status: status}}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: bytes.NewReader([]byte("data"))}); err != nil {
				t.Fatal(err)
			}
			del, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("k")})
			if err != nil {
				t.Fatal(err)
			}
			// The marker as MinIO lists it (a suspended bucket's marker is the "null" version).
			vs, err := direct.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket})
			if err != nil || len(vs.DeleteMarkers) != 1 {
				t.Fatalf("delete markers in MinIO: %v, %+v", err, vs)
			}
			marker := aws.ToString(vs.DeleteMarkers[0].VersionId)
			t.Logf("DeleteObject answer: marker %v, version %q; MinIO's marker %q", aws.ToBool(del.DeleteMarker), aws.ToString(del.VersionId), marker)
			for _, side := range []struct {
				name, endpoint, ak, sk string
			}{{"gateway", gw.Endpoint, gw.AccessKeyID, gw.SecretAccessKey}, {"MinIO", m.Endpoint, m.AccessKey, m.SecretKey}} {
				url := side.endpoint + "/" + bucket + "/k"
				for _, q := range []struct {
					method, query string
					want          int
				}{
					{http.MethodHead, "", http.StatusNotFound},
					{http.MethodGet, "", http.StatusNotFound},
					{http.MethodHead, "?versionId=" + marker, http.StatusMethodNotAllowed},
					{http.MethodGet, "?versionId=" + marker, http.StatusMethodNotAllowed},
				} {
					r := coreDo(hc, coreRequest(t, q.method, url+q.query, nil, side.ak, side.sk))
					if r.Status != q.want || r.Header.Get("X-Amz-Delete-Marker") != "true" || r.Header.Get("X-Amz-Version-Id") != marker {
						t.Errorf("%s %s%s: status %d, x-amz-delete-marker %q, x-amz-version-id %q; want %d, true, %q",
							side.name, q.method, q.query, r.Status, r.Header.Get("X-Amz-Delete-Marker"), r.Header.Get("X-Amz-Version-Id"), q.want, marker)
					}
				}
			}
		})
	}
}

// TestParityObjectAttributesParts (issue 12, item 6): GetObjectAttributes of a multipart object
// lists its parts (PartsCount, plaintext part sizes, pagination by max-parts and
// part-number-marker) as MinIO does for the same parts stored directly.
func TestParityObjectAttributesParts(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	ctx := context.Background()
	sizes := []int{5 << 20, 5 << 20, 1234}
	var parts [][]byte
	for _, n := range sizes {
		parts = append(parts, testenv.RandomBytes(t, n, ""))
	}
	for _, side := range []struct {
		name string
		c    *s3.Client
	}{{"gateway", gw.Client(t)}, {"MinIO", m.Client(t)}} {
		bucket := m.NewBucket(t)
		up, err := side.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp")})
		if err != nil {
			t.Fatal(err)
		}
		var done []types.CompletedPart
		for i, p := range parts {
			out, err := side.c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("mp"), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p), ContentLength: aws.Int64(int64(len(p)))})
			if err != nil {
				t.Fatal(err)
			}
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
		}
		if _, err := side.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp"),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
			t.Fatal(err)
		}
		all, err := side.c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: &bucket, Key: aws.String("mp"),
			ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesObjectParts, types.ObjectAttributesObjectSize}})
		if err != nil || all.ObjectParts == nil {
			t.Fatalf("%s: GetObjectAttributes: %v, parts %v", side.name, err, all)
		}
		if got := aws.ToInt32(all.ObjectParts.TotalPartsCount); got != 3 || aws.ToInt64(all.ObjectSize) != int64(5<<20+5<<20+1234) {
			t.Errorf("%s: PartsCount %d, ObjectSize %d", side.name, got, aws.ToInt64(all.ObjectSize))
		}
		for i, p := range all.ObjectParts.Parts {
			if aws.ToInt32(p.PartNumber) != int32(i+1) || aws.ToInt64(p.Size) != int64(sizes[i]) {
				t.Errorf("%s: part %d: number %d size %d, want %d", side.name, i, aws.ToInt32(p.PartNumber), aws.ToInt64(p.Size), sizes[i])
			}
		}
		page, err := side.c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: &bucket, Key: aws.String("mp"),
			ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesObjectParts}, MaxParts: aws.Int32(1), PartNumberMarker: aws.String("1")})
		if err != nil || page.ObjectParts == nil || len(page.ObjectParts.Parts) != 1 || aws.ToInt32(page.ObjectParts.Parts[0].PartNumber) != 2 ||
			!aws.ToBool(page.ObjectParts.IsTruncated) || aws.ToString(page.ObjectParts.NextPartNumberMarker) != "2" {
			t.Errorf("%s: page after part 1: %v %+v", side.name, err, page.ObjectParts)
		}
	}
}
