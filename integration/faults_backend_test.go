package integration

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestFaultBackendResetMidTransfer (issue 13): the TCP connection between gateway and backend
// is reset in the middle of a PutObject body, of an UploadPart body and of a GET. The client
// gets an error, never a success; MinIO holds no partial object (checked directly); the
// previous version of the key reads back intact through the gateway (same SHA-256); the
// gateway sent each cut body to the backend once (counted at the backend: it does not replay
// a consumed body); the same requests succeed once the connection is healthy.
func TestFaultBackendResetMidTransfer(t *testing.T) {
	r := newFaultRig(t, nil)
	const key = "reset/obj"
	path := testenv.ObjectPath(r.bucket, key)
	v1 := testenv.RandomBytes(t, 3<<20, marker)
	if err := faultPut(r.c, r.bucket, key, v1); err != nil {
		t.Fatal(err)
	}

	t.Run("PutObject", func(t *testing.T) {
		r.fp.CutUp(1 << 20)
		err := faultPut(r.c, r.bucket, key, testenv.RandomBytes(t, 3<<20, marker))
		if err == nil {
			t.Fatal("a PUT whose backend connection was reset after 1 MiB succeeded")
		}
		code, status := faultS3Code(err)
		t.Logf("PUT cut after 1 MiB to the backend: %s %d (%v)", code, status, err)
		faultMustRead(t, r.c, r.bucket, key, v1, "after the cut PUT")
		faultStored(t, r.m, r.bucket, "reset/", map[string]int{key: len(v1)})
		if puts, _ := faultBackendPuts(r.h, isPath(path)); puts != 2 {
			t.Errorf("the backend received %d PutObject bodies for %s, want 2 (v1 and the cut one, not replayed)", puts, key)
		}
	})

	t.Run("UploadPart", func(t *testing.T) {
		ctx := context.Background()
		cr, err := r.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &r.bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		// Part 2 is over 5 MiB, so it goes to the backend as an UploadPart (a smaller last part
		// would be held aside as an object until Complete, FORMAT.md 3.6).
		p1, p2 := testenv.RandomBytes(t, 5<<20, marker), testenv.RandomBytes(t, 6<<20, marker)
		upload := func(n int32, body []byte) (*s3.UploadPartOutput, error) {
			return r.c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &r.bucket, Key: aws.String(key), UploadId: cr.UploadId,
				PartNumber: aws.Int32(n), Body: bytes.NewReader(body)})
		}
		u1, err := upload(1, p1)
		if err != nil {
			t.Fatal(err)
		}
		r.fp.CutUp(1 << 20)
		if _, err := upload(2, p2); err == nil {
			t.Fatal("an UploadPart whose backend connection was reset after 1 MiB succeeded")
		} else {
			code, status := faultS3Code(err)
			t.Logf("UploadPart cut after 1 MiB to the backend: %s %d", code, status)
		}
		// The Hostile proxy records an UploadPart once its whole body has arrived: the cut part
		// 2 is not recorded, and a replay by the gateway would be.
		if _, parts := faultBackendPuts(r.h, isPath(path)); parts != 1 {
			t.Errorf("the backend received %d whole UploadPart bodies, want 1 (part 1; the cut part 2 not replayed)", parts)
		}
		lp, err := r.m.Client(t).ListParts(ctx, &s3.ListPartsInput{Bucket: &r.bucket, Key: aws.String(key), UploadId: backendUploadID(t, r, key)})
		if err != nil {
			t.Fatal(err)
		}
		if len(lp.Parts) != 1 || aws.ToInt32(lp.Parts[0].PartNumber) != 1 {
			t.Errorf("MinIO lists %d parts after the cut part 2, want only part 1", len(lp.Parts))
		}
		faultMustRead(t, r.c, r.bucket, key, v1, "with the upload open after the cut part")
		faultStored(t, r.m, r.bucket, "reset/", map[string]int{key: len(v1)})

		// The client's retry of part 2 (the gateway's is none) completes the object.
		u2, err := upload(2, p2)
		if err != nil {
			t.Fatalf("UploadPart 2 again on a healthy connection: %v", err)
		}
		if _, parts := faultBackendPuts(r.h, isPath(path)); parts != 2 {
			t.Errorf("after the client's retry the backend has %d whole UploadPart bodies, want 2", parts)
		}
		if _, err := r.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &r.bucket, Key: aws.String(key),
			UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
				{ETag: u1.ETag, PartNumber: aws.Int32(1)}, {ETag: u2.ETag, PartNumber: aws.Int32(2)}}}}); err != nil {
			t.Fatal(err)
		}
		faultMustRead(t, r.c, r.bucket, key, append(append([]byte(nil), p1...), p2...), "after completing")
		v1 = append(append([]byte(nil), p1...), p2...)
	})

	t.Run("GetObject", func(t *testing.T) {
		r.fp.CutDown(2 << 20)
		got, err := faultGet(r.c, r.bucket, key)
		if err == nil {
			t.Fatalf("a GET whose backend connection was reset after 2 MiB returned %d bytes without error (whole and right: %v)",
				len(got), bytes.Equal(got, v1))
		}
		t.Logf("GET cut after 2 MiB from the backend: %d bytes, %v", len(got), err)
		faultMustRead(t, r.c, r.bucket, key, v1, "after the cut GET")
	})
}

// backendUploadID is the backend's id of the one multipart upload open for key (the gateway's
// upload id is another string: it carries the upload's envelope).
func backendUploadID(t *testing.T, r *faultRig, key string) *string {
	t.Helper()
	out, err := r.m.Client(t).ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &r.bucket, Prefix: aws.String(key)})
	if err != nil || len(out.Uploads) != 1 {
		t.Fatalf("MinIO lists %d open uploads for %s (%v), want 1", len(out.Uploads), key, err)
	}
	return out.Uploads[0].UploadId
}

// TestFaultBackendKilled (issue 13): MinIO (the test's own) is killed with SIGKILL while an
// upload streams through the gateway, and again while a download does. The client gets an
// error or an aborted connection, never a success; after MinIO is started again on the same
// port and data, the gateway (not restarted) serves the previous version of the key intact
// and MinIO holds no partial object.
func TestFaultBackendKilled(t *testing.T) {
	m := testenv.NewPrivateMinIO(t)
	k := testenv.NewKMS(t)
	env, _ := opsGatewayEnv(t, m, k.Endpoint, k.CreateKey(t))
	gw := testenv.StartGateway(t, env)
	c, _ := faultClient(t, gw)
	bucket := m.NewBucket(t)
	const key = "killed/obj"
	v1 := testenv.RandomBytes(t, 2<<20, "")
	if err := faultPut(c, bucket, key, v1); err != nil {
		t.Fatal(err)
	}

	t.Run("upload", func(t *testing.T) {
		var sent atomic.Int64
		done := make(chan error, 1)
		go func() { done <- opsUpload(t, gw, bucket, key, 7, 64<<20, 50*time.Millisecond, &sent) }()
		for sent.Load() < 8<<20 {
			select {
			case err := <-done:
				t.Fatalf("the upload ended before MinIO was killed: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
		m.Kill(t)
		err := <-done
		if err == nil {
			t.Fatalf("an upload during which MinIO was killed succeeded (%d bytes sent)", sent.Load())
		}
		t.Logf("upload with MinIO killed after %d MiB: %v", sent.Load()>>20, err)
		m.Start(t)
		faultMustRead(t, c, bucket, key, v1, "MinIO restarted after the killed upload")
		faultStored(t, m, bucket, "killed/", map[string]int{key: len(v1)})
	})

	t.Run("download", func(t *testing.T) {
		big := testenv.RandomBytes(t, 64<<20, "")
		if err := faultPut(c, bucket, key, big); err != nil {
			t.Fatal(err)
		}
		req := coreRequest(t, http.MethodGet, gw.Endpoint+"/"+bucket+"/"+key, nil, gw.AccessKeyID, gw.SecretAccessKey)
		resp, err := coreHTTPClient().Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: %v %v", resp, err)
		}
		defer resp.Body.Close()
		head := make([]byte, 1<<20)
		if _, err := io.ReadFull(resp.Body, head); err != nil {
			t.Fatal(err)
		}
		m.Kill(t)
		rest, err := io.ReadAll(resp.Body)
		got := append(head, rest...)
		if err == nil {
			t.Fatalf("a download during which MinIO was killed ended without error: %d of %d bytes (right: %v)", len(got), len(big), bytes.Equal(got, big))
		}
		if !bytes.Equal(got, big[:len(got)]) {
			t.Errorf("the cut download's %d bytes are not a prefix of the object", len(got))
		}
		t.Logf("download with MinIO killed after 1 MiB read: %d of %d MiB, then %v", len(got)>>20, len(big)>>20, err)
		m.Start(t)
		faultMustRead(t, c, bucket, key, big, "MinIO restarted after the killed download")
	})
}
