package embedded

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// sendTruncated writes a request that declares contentLength bytes but sends only len(body),
// half-closes the connection and returns the store's answer.
func sendTruncated(t *testing.T, s *Store, method, target string, contentLength int, body []byte) *http.Response {
	t.Helper()
	conn, err := net.Dial("unix", s.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nX-Amz-Content-Sha256: UNSIGNED-PAYLOAD\r\n\r\n",
		method, target, endpointHost, contentLength)
	conn.Write(body)
	if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a truncated %s: %v", method, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestTruncatedPutLeavesNothing(t *testing.T) {
	s := startStore(t, shortDir(t))
	c := newClient(s, false)
	ctx := context.Background()
	mustBucket(t, c, "bkt")

	resp := sendTruncated(t, s, http.MethodPut, "/bkt/new", 1000, randBytes(500))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("truncated PUT answered %d", resp.StatusCode)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("new")}); errCode(err) != "NotFound" {
		t.Errorf("object after truncated PUT: %v", err)
	}
	if n := bodyFiles(t, s); n != 0 {
		t.Errorf("%d body files after a truncated PUT into an empty store", n)
	}

	old := randBytes(4000)
	put(t, c, "bkt", "old", old, map[string]string{"v": "1"})
	sendTruncated(t, s, http.MethodPut, "/bkt/old", 8000, randBytes(7999))
	got, out := get(t, c, "bkt", "old", "")
	if !bytes.Equal(got, old) || out.Metadata["v"] != "1" {
		t.Errorf("existing object damaged by a truncated PUT: %d bytes, %v", len(got), out.Metadata)
	}
	assertTmpEmpty(t, s)
}

// errAfter is a body that fails after n bytes, as a client or gateway aborting mid-stream.
type errAfter struct{ n int }

func (e *errAfter) Read(p []byte) (int, error) {
	if e.n == 0 {
		return 0, errors.New("client gave up")
	}
	k := min(len(p), e.n)
	e.n -= k
	return k, nil
}

func TestAbortedPutThroughHTTPClient(t *testing.T) {
	s := startStore(t, shortDir(t))
	c := newClient(s, false)
	mustBucket(t, c, "bkt")
	old := randBytes(1 << 20)
	put(t, c, "bkt", "k", old, nil)

	req, _ := http.NewRequest(http.MethodPut, s.Endpoint()+"/bkt/k", &errAfter{n: 300_000})
	req.ContentLength = 1 << 20
	if _, err := (&http.Client{Transport: s.Transport()}).Do(req); err == nil {
		t.Fatal("aborted body reported success")
	}
	assertTmpEmpty(t, s) // the server has given up on the spool
	if got, _ := get(t, c, "bkt", "k", ""); !bytes.Equal(got, old) {
		t.Errorf("object changed by an aborted PUT (%d bytes)", len(got))
	}
}

// bodyFiles counts the files in <dir>/bodies.
func bodyFiles(t *testing.T, s *Store) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.dir, "bodies"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func assertTmpEmpty(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var files []string
		filepath.WalkDir(filepath.Join(s.dir, "tmp"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
		if len(files) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool files left behind: %v", files)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTruncatedUploadPart(t *testing.T) {
	s := startStore(t, shortDir(t))
	c := newClient(s, false)
	ctx := context.Background()
	mustBucket(t, c, "bkt")
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(cr.UploadId)
	good := randBytes(3000)
	up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("bkt"), Key: aws.String("mp"), UploadId: cr.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(good), ContentLength: aws.Int64(3000)})
	if err != nil {
		t.Fatal(err)
	}

	target := "/bkt/mp?partNumber=%d&uploadId=" + id
	if resp := sendTruncated(t, s, http.MethodPut, fmt.Sprintf(target, 1), 3000, randBytes(2999)); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("truncated retry of part 1 answered %d", resp.StatusCode)
	}
	if resp := sendTruncated(t, s, http.MethodPut, fmt.Sprintf(target, 2), 3000, randBytes(10)); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("truncated part 2 answered %d", resp.StatusCode)
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("bkt"), Key: aws.String("mp"), UploadId: cr.UploadId})
	if err != nil {
		t.Fatal(err)
	}
	if len(lp.Parts) != 1 || aws.ToInt32(lp.Parts[0].PartNumber) != 1 || aws.ToInt64(lp.Parts[0].Size) != 3000 ||
		aws.ToString(lp.Parts[0].ETag) != aws.ToString(up.ETag) {
		t.Fatalf("parts after truncated uploads: %+v", lp.Parts)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("mp"),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: up.ETag}}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, c, "bkt", "mp", ""); !bytes.Equal(got, good) {
		t.Errorf("completed object is not the good part (%d bytes)", len(got))
	}
}
