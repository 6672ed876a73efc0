package integration

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestExpectContinueEmptyBody: a zero-length PUT with Expect: 100-continue (what aws-cli sends
// for an empty file) gets 100 Continue before its final response. botocore otherwise keeps the
// final response's status line for the next request on the same connection and misparses that
// response (seen as a 60 s stall and a retry during aws s3 sync).
func TestExpectContinueEmptyBody(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := m.NewBucket(t)
	req := signedRequest(t, http.MethodPut, gw.Endpoint+"/"+bucket+"/empty", nil, "", gw.AccessKeyID, gw.SecretAccessKey)
	req.Header.Set("Expect", "100-continue")
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.Endpoint, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	first, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "HTTP/1.1 100 ") {
		t.Fatalf("first status line %q (%v), want 100 Continue", first, err)
	}
	for { // the interim response's header block
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("final response: %v %v, want 200", resp, err)
	}
}

// TestOversizedHeaders: a request whose headers exceed server.max_header_bytes gets S3's XML
// error (400 RequestHeaderSectionTooLarge), not a bare HTTP error, and nothing is stored.
func TestOversizedHeaders(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, map[string]string{"GATEWAY_MAX_HEADER_BYTES": "16384"})
	bucket := m.NewBucket(t)
	req := signedRequest(t, http.MethodPut, gw.Endpoint+"/"+bucket+"/big-headers", []byte("x"), "", gw.AccessKeyID, gw.SecretAccessKey)
	req.Header.Set("X-Amz-Meta-Padding", strings.Repeat("p", 20_000))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || s3ErrorCode(b) != "RequestHeaderSectionTooLarge" {
		t.Errorf("oversized headers: %d %q, want 400 RequestHeaderSectionTooLarge", resp.StatusCode, b)
	}
	if _, err := m.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("big-headers")}); err == nil {
		t.Error("the object was stored")
	}
}
