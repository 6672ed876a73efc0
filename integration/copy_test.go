package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

func getAll(t *testing.T, c *s3.Client, bucket, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("GET %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GET %s/%s: %v", bucket, key, err)
	}
	return b, out
}

// TestCopyObject: CopyObject in the same bucket, to another bucket and with REPLACE metadata;
// a 3-part UploadPartCopy of a 20 MiB object; all read back byte-identical; a copy of a
// multipart object; and ciphertext copied directly in MinIO under another key does not read.
func TestCopyObject(t *testing.T) {
	gw, m, k, keyID := testenv.StartGatewayMinIO(t, nil)
	b1, b2 := m.NewBucket(t), m.NewBucket(t)
	c := gw.Client(t)
	ctx := context.Background()
	plain := testenv.RandomBytes(t, 20<<20, marker)
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b1, Key: aws.String("src.bin"), Body: bytes.NewReader(plain),
		ContentType: aws.String("application/x-test"), Metadata: map[string]string{"color": "blue"}})
	if err != nil {
		t.Fatal(err)
	}
	etag := fmt.Sprintf(`"%x"`, md5sum(plain))

	// Same bucket, metadata copied.
	cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b1, Key: aws.String("same.bin"), CopySource: aws.String(b1 + "/src.bin")})
	if err != nil {
		t.Fatalf("copy same bucket: %v", err)
	}
	if aws.ToString(cp.CopyObjectResult.ETag) != etag {
		t.Errorf("copy result ETag %s, want %s", aws.ToString(cp.CopyObjectResult.ETag), etag)
	}
	got, out := getAll(t, c, b1, "same.bin")
	if !bytes.Equal(got, plain) || out.Metadata["color"] != "blue" || aws.ToString(out.ContentType) != "application/x-test" || aws.ToString(out.ETag) != etag {
		t.Errorf("same-bucket copy: equal %v, meta %v, type %s, etag %s", bytes.Equal(got, plain), out.Metadata, aws.ToString(out.ContentType), aws.ToString(out.ETag))
	}

	// Other bucket, REPLACE metadata.
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b2, Key: aws.String("other.bin"), CopySource: aws.String(b1 + "/src.bin"),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"shape": "round"}, ContentType: aws.String("text/plain")})
	if err != nil {
		t.Fatalf("copy other bucket: %v", err)
	}
	got, out = getAll(t, c, b2, "other.bin")
	if !bytes.Equal(got, plain) || out.Metadata["shape"] != "round" || out.Metadata["color"] != "" || aws.ToString(out.ContentType) != "text/plain" {
		t.Errorf("REPLACE copy: equal %v, meta %v, type %s", bytes.Equal(got, plain), out.Metadata, aws.ToString(out.ContentType))
	}
	for k := range out.Metadata {
		if len(k) >= 6 && k[:6] == "s3seal" {
			t.Errorf("gateway metadata %q shown to the client", k)
		}
	}

	// Copy conditions are evaluated against the plaintext ETag.
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b1, Key: aws.String("cond.bin"), CopySource: aws.String(b1 + "/src.bin"),
		CopySourceIfMatch: aws.String(`"00000000000000000000000000000000"`)})
	if err == nil {
		t.Error("copy with a failing x-amz-copy-source-if-match succeeded")
	}

	// 3-part UploadPartCopy (7 MiB, 7 MiB, 6 MiB ranges).
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b2, Key: aws.String("parts.bin")})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	for i, r := range [][2]int{{0, 7 << 20}, {7 << 20, 14 << 20}, {14 << 20, 20 << 20}} {
		up, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &b2, Key: aws.String("parts.bin"), UploadId: cr.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), CopySource: aws.String(b1 + "/src.bin"),
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", r[0], r[1]-1))})
		if err != nil {
			t.Fatalf("UploadPartCopy %d: %v", i+1, err)
		}
		if want := fmt.Sprintf(`"%x"`, md5sum(plain[r[0]:r[1]])); aws.ToString(up.CopyPartResult.ETag) != want {
			t.Errorf("part %d ETag %s, want %s", i+1, aws.ToString(up.CopyPartResult.ETag), want)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.CopyPartResult.ETag})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b2, Key: aws.String("parts.bin"),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatalf("complete: %v", err)
	}
	if got, _ := getAll(t, c, b2, "parts.bin"); !bytes.Equal(got, plain) {
		t.Errorf("UploadPartCopy object differs (%d bytes)", len(got))
	}

	// CopyObject of the multipart object: the backend makes one part of many; still readable,
	// ranges too.
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b1, Key: aws.String("mpcopy.bin"), CopySource: aws.String(b2 + "/parts.bin")}); err != nil {
		t.Fatalf("copy multipart: %v", err)
	}
	c2 := secondGateway(t, gw, m, k, keyID).Client(t) // a fresh process: no cached layout
	for _, cl := range []*s3.Client{c, c2} {
		if got, _ := getAll(t, cl, b1, "mpcopy.bin"); !bytes.Equal(got, plain) {
			t.Errorf("copy of a multipart object differs")
		}
	}
	checkRanges(t, c2, b1, "mpcopy.bin", plain, []int64{7 << 20, 14 << 20}, 30)

	// Direct ciphertext copy under another key in MinIO (bypassing the gateway) must not read.
	direct := m.Client(t)
	if _, err := direct.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b1, Key: aws.String("moved.bin"), CopySource: aws.String(b1 + "/src.bin")}); err != nil {
		t.Fatal(err)
	}
	out2, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b1, Key: aws.String("moved.bin")})
	if err == nil {
		b, _ := io.ReadAll(out2.Body)
		out2.Body.Close()
		t.Fatalf("ciphertext moved in the backend read back through the gateway (%d bytes)", len(b))
	}
	if !strings.Contains(err.Error(), "InternalError") {
		t.Errorf("moved ciphertext: %v, want the gateway's authentication error", err)
	}
}
