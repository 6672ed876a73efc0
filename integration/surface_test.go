package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestBatchDeleteTaggingVersions: DeleteObjects of 1,000 keys, a tagging round trip, and a
// versioned bucket with three versions of one key, each read back by versionId, listed by
// ListObjectVersions with plaintext sizes.
func TestBatchDeleteTaggingVersions(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	c := gw.Client(t)
	ctx := context.Background()

	// 1,000 small objects, then one DeleteObjects.
	bucket := m.NewBucket(t)
	var ids []types.ObjectIdentifier
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := 0; i < 1000; i++ {
		key := fmt.Sprintf("batch/%04d", i)
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(key)})
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(key)}); err != nil {
				t.Errorf("put %s: %v", key, err)
			}
		}()
	}
	wg.Wait()
	del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &types.Delete{Objects: ids}})
	if err != nil || len(del.Deleted) != 1000 || len(del.Errors) != 0 {
		t.Fatalf("DeleteObjects: %v, %d deleted, %d errors", err, len(del.Deleted), len(del.Errors))
	}
	left, err := m.Client(t).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil || len(left.Contents) != 0 {
		t.Errorf("after DeleteObjects MinIO holds %d objects (%v)", len(left.Contents), err)
	}

	// Tagging round trip (forwarded untouched).
	key := aws.String("tagged")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: key, Body: strings.NewReader("x"), Tagging: aws.String("a=1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: &bucket, Key: key,
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("team"), Value: aws.String("blue")}}}}); err != nil {
		t.Fatalf("PutObjectTagging: %v", err)
	}
	tags, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &bucket, Key: key})
	if err != nil || len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Value) != "blue" {
		t.Errorf("GetObjectTagging: %v %+v", err, tags)
	}

	// Versioned bucket: three versions of one key.
	vb := m.NewBucket(t)
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &vb,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatalf("PutBucketVersioning: %v", err)
	}
	var versions []string
	var bodies [][]byte
	for i, n := range []int{10, 100_000, 1234} {
		b := testenv.RandomBytes(t, n, marker)
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &vb, Key: aws.String("v.bin"), Body: bytes.NewReader(b)})
		if err != nil || aws.ToString(out.VersionId) == "" {
			t.Fatalf("put version %d: %v, version id %q", i, err, aws.ToString(out.VersionId))
		}
		versions = append(versions, aws.ToString(out.VersionId))
		bodies = append(bodies, b)
	}
	for i, v := range versions {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &vb, Key: aws.String("v.bin"), VersionId: aws.String(v)})
		if err != nil {
			t.Fatalf("GET version %d: %v", i, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, bodies[i]) || aws.ToString(out.VersionId) != v {
			t.Errorf("version %d: %d bytes, equal %v, version %s", i, len(got), bytes.Equal(got, bodies[i]), aws.ToString(out.VersionId))
		}
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &vb, Key: aws.String("v.bin"), VersionId: aws.String(v)})
		if err != nil || aws.ToInt64(h.ContentLength) != int64(len(bodies[i])) {
			t.Errorf("HEAD version %d: %v, %d bytes", i, err, aws.ToInt64(h.ContentLength))
		}
	}
	lv, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &vb})
	if err != nil || len(lv.Versions) != 3 {
		t.Fatalf("ListObjectVersions: %v, %d versions", err, len(lv.Versions))
	}
	for _, v := range lv.Versions {
		for i, id := range versions {
			if aws.ToString(v.VersionId) == id {
				want := fmt.Sprintf(`"%x"`, md5sum(bodies[i]))
				if aws.ToInt64(v.Size) != int64(len(bodies[i])) || aws.ToString(v.ETag) != want {
					t.Errorf("listed version %d: size %d etag %s, want %d %s", i, aws.ToInt64(v.Size), aws.ToString(v.ETag), len(bodies[i]), want)
				}
			}
		}
	}
	attrs, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: &vb, Key: aws.String("v.bin"),
		ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesObjectSize, types.ObjectAttributesEtag}})
	if err != nil || aws.ToInt64(attrs.ObjectSize) != int64(len(bodies[2])) || aws.ToString(attrs.ETag) != fmt.Sprintf("%x", md5sum(bodies[2])) {
		t.Errorf("GetObjectAttributes: %v %+v", err, attrs)
	}
}

// TestRefusedOperations: operations that would let plaintext reach the backend are refused
// with NotImplemented and never forwarded.
func TestRefusedOperations(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	cases := []struct {
		name, method, path string
		body               []byte
	}{
		{"POST policy upload", http.MethodPost, "/" + bucket, []byte("--x\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--x--\r\n")},
		{"SelectObjectContent", http.MethodPost, "/" + bucket + "/k?select&select-type=2", []byte("<SelectObjectContentRequest/>")},
		{"WriteGetObjectResponse", http.MethodPost, "/WriteGetObjectResponse", []byte("data")},
	}
	for _, tc := range cases {
		req := signedRequest(t, tc.method, gw.Endpoint+tc.path, tc.body, "", gw.AccessKeyID, gw.SecretAccessKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 501 || s3ErrorCode(b) != "NotImplemented" {
			t.Errorf("%s: %d %s, want 501 NotImplemented", tc.name, resp.StatusCode, s3ErrorCode(b))
		}
	}
	objs, err := m.Client(t).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil || len(objs.Contents) != 0 {
		t.Errorf("refused operations stored %d objects (%v)", len(objs.Contents), err)
	}
}

// TestETagBackendMode: with encryption.etag=backend every response uses the backend's ETag,
// consistently: PUT, HEAD, GET and listings agree.
func TestETagBackendMode(t *testing.T) {
	gw, m, k, keyID := testenv.StartGatewayMinIO(t, map[string]string{"GATEWAY_ETAG": "backend"})
	bucket := m.NewBucket(t)
	c := gw.Client(t)
	ctx := context.Background()
	body := testenv.RandomBytes(t, 100_000, marker)
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := m.Client(t).HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	want := aws.ToString(direct.ETag)
	if want == fmt.Sprintf(`"%x"`, md5sum(body)) {
		t.Fatal("the backend ETag equals the plaintext MD5")
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil || len(list.Contents) != 1 {
		t.Fatal(err)
	}
	got := []string{aws.ToString(put.ETag), aws.ToString(head.ETag), aws.ToString(list.Contents[0].ETag)}
	for i, e := range got {
		if e != want {
			t.Errorf("response %d ETag %s, want the backend's %s", i, e, want)
		}
	}
	if aws.ToInt64(head.ContentLength) != 100_000 || aws.ToInt64(list.Contents[0].Size) != 100_000 {
		t.Errorf("sizes %d / %d, want 100000", aws.ToInt64(head.ContentLength), aws.ToInt64(list.Contents[0].Size))
	}

	// A multipart object, which the backend holds as one part after its manifest copy, lists
	// with its plaintext size too (a fresh gateway: nothing cached).
	parts := [][]byte{testenv.RandomBytes(t, 5<<20, marker), testenv.RandomBytes(t, 3333, marker)}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("mp"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p), ContentLength: aws.Int64(int64(len(p)))})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	fresh := testenv.StartGateway(t, coreGatewayEnv(m, m.Endpoint, k.Endpoint, keyID, map[string]string{
		"GATEWAY_ETAG": "backend", "GATEWAY_ACCESS_KEY_ID": gw.AccessKeyID, "GATEWAY_SECRET_ACCESS_KEY": gw.SecretAccessKey}))
	list, err = fresh.Client(t).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("mp")})
	if err != nil || len(list.Contents) != 1 || aws.ToInt64(list.Contents[0].Size) != 5<<20+3333 {
		t.Errorf("multipart object listed: %v %+v, want size %d", err, list, 5<<20+3333)
	}
}
