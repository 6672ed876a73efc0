package sigv4

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func sdkClient(srv *httptest.Server, calc aws.RequestChecksumCalculation) *s3.Client {
	return s3.New(s3.Options{
		Region:                     "us-east-1",
		BaseEndpoint:               aws.String(srv.URL),
		UsePathStyle:               true,
		HTTPClient:                 srv.Client(),
		Credentials:                credentials.NewStaticCredentialsProvider(testAKID, testSecret, ""),
		RequestChecksumCalculation: calc,
		RetryMaxAttempts:           1,
	})
}

// onlyReader hides Seek so the SDK must stream the body.
type onlyReader struct{ io.Reader }

// TestClientGoSDK drives aws-sdk-go-v2's service/s3 over TLS (aws-chunked
// bodies with trailing checksums) and plain HTTP, and its presigner.
func TestClientGoSDK(t *testing.T) {
	s, plain, tls, _ := servers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := testPayload(1<<20 + 12345)
	algs := []types.ChecksumAlgorithm{"", types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c,
		types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256}

	for _, srv := range []*httptest.Server{tls, plain} {
		c := sdkClient(srv, aws.RequestChecksumCalculationWhenSupported)
		for _, alg := range algs {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("go/ü b+c/" + string(alg)),
				Body: bytes.NewReader(data), ChecksumAlgorithm: alg})
			if err != nil {
				t.Fatalf("%s PutObject %s: %v", srv.URL, alg, err)
			}
			g := s.expectOne(t, srv.URL+" PutObject "+string(alg), data)
			want := string(alg)
			if want == "" {
				want = "CRC32" // the SDK's default when checksums are "when supported"
			}
			if g.alg != want {
				t.Fatalf("checksum %q verified, want %q", g.alg, want)
			}
		}
	}

	// An unseekable body over TLS: streamed as aws-chunked with a trailer.
	c := sdkClient(tls, aws.RequestChecksumCalculationWhenSupported)
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("stream"),
		Body: onlyReader{bytes.NewReader(data)}, ContentLength: aws.Int64(int64(len(data))), ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme})
	if err != nil {
		t.Fatal(err)
	}
	if g := s.expectOne(t, "PutObject unseekable", data); g.auth.Payload != PayloadStreamingUnsignedTrailer || g.alg != "CRC64NVME" {
		t.Fatalf("payload %v checksum %q", g.auth.Payload, g.alg)
	}

	// UploadPart goes through the same path.
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("bkt"), Key: aws.String("mp"), UploadId: aws.String("u/1+2"),
		PartNumber: aws.Int32(3), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	s.expectOne(t, "UploadPart", data)

	// Presigned GET and PUT used with net/http.
	pc := s3.NewPresignClient(sdkClient(tls, aws.RequestChecksumCalculationWhenRequired))
	get, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("a b/c+d.txt"),
		ResponseContentDisposition: aws.String("attachment; filename=\"x y.txt\"")}, s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	fetch(t, tls.Client(), get.URL)
	if g := s.expectOne(t, "presigned GET", nil); g.auth.Method != PresignedV4 {
		t.Fatalf("method %v", g.auth.Method)
	}
	put, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("up load")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(put.Method, put.URL, bytes.NewReader(data))
	for k, v := range put.SignedHeader {
		if k != "Host" {
			req.Header[k] = v
		}
	}
	resp, err := tls.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %d", resp.StatusCode)
	}
	s.expectOne(t, "presigned PUT", data)
}
