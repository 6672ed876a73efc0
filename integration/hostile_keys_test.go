package integration

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

// hostileSSECScript exercises every SSE-C operation with boto3: PutObject, upload_file
// (multipart; s3transfer sends the key on CompleteMultipartUpload too), ranged GET, HEAD,
// CopyObject and UploadPartCopy from SSE-C sources, download_file (ranged GETs).
const hostileSSECScript = `
import boto3, base64, os, sys, json
from boto3.s3.transfer import TransferConfig
c = boto3.client("s3", endpoint_url=os.environ["S3SEAL_ENDPOINT"])
bucket, src, dst, kb64 = sys.argv[1:5]
key = base64.b64decode(kb64)
sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
srcsse = {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": key}
mib = 1024 * 1024
cfg = TransferConfig(multipart_threshold=5 * mib, multipart_chunksize=5 * mib, max_concurrency=2)
data = open(src, "rb").read()
c.put_object(Bucket=bucket, Key="single", Body=data[:100000], **sse)
c.upload_file(src, bucket, "multi", ExtraArgs=sse, Config=cfg)
rng = c.get_object(Bucket=bucket, Key="multi", Range="bytes=1000-1999", **sse)["Body"].read()
head = c.head_object(Bucket=bucket, Key="multi", **sse)
c.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "single"}, **sse, **srcsse)
u = c.create_multipart_upload(Bucket=bucket, Key="partcopy", **sse)
p = c.upload_part_copy(Bucket=bucket, Key="partcopy", UploadId=u["UploadId"], PartNumber=1,
    CopySource={"Bucket": bucket, "Key": "multi"}, CopySourceRange="bytes=0-%d" % (5 * mib - 1), **sse, **srcsse)
c.complete_multipart_upload(Bucket=bucket, Key="partcopy", UploadId=u["UploadId"],
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p["CopyPartResult"]["ETag"]}]}, **sse)
c.download_file(bucket, "multi", dst, ExtraArgs=sse, Config=cfg)
copy = c.get_object(Bucket=bucket, Key="copy", **sse)["Body"].read()
partcopy = c.get_object(Bucket=bucket, Key="partcopy", **sse)["Body"].read()
print(json.dumps({"range": rng == data[1000:2000], "head": head["ContentLength"],
    "copy": copy == data[:100000], "partcopy": partcopy == data[:5 * mib]}))
`

// hostileKeyLeaks reports every recorded backend request that carries SSE-C material: a
// header name containing "customer", or a header or query value containing one of secrets.
func hostileKeyLeaks(reqs []testenv.BackendRequest, secrets ...string) []string {
	var leaks []string
	for _, r := range reqs {
		for name, vs := range r.Header {
			if strings.Contains(strings.ToLower(name), "customer") {
				leaks = append(leaks, r.Method+" "+r.Path+": header "+name)
			}
			for _, v := range vs {
				for _, s := range secrets {
					if strings.Contains(v, s) {
						leaks = append(leaks, r.Method+" "+r.Path+": the value of "+name)
					}
				}
			}
		}
		for name, vs := range r.Query {
			if strings.Contains(strings.ToLower(name), "customer") {
				leaks = append(leaks, r.Method+" "+r.Path+": query parameter "+name)
			}
			for _, v := range vs {
				for _, s := range secrets {
					if strings.Contains(v, s) {
						leaks = append(leaks, r.Method+" "+r.Path+": the value of query parameter "+name)
					}
				}
			}
		}
	}
	return leaks
}

// TestHostileSSECKeysNeverReachBackend (issue 10 item 1): across SSE-C PutObject, boto3's
// multipart upload_file (key sent on Complete), ranged GET, HEAD, CopyObject and
// UploadPartCopy with SSE-C sources, download_file, and aws-cli's `s3 cp --sse-c` of a
// multipart-sized file both ways, the backend never receives a customer key header, nor the
// key or its MD5 in any header or query value, and everything reads back.
func TestHostileSSECKeysNeverReachBackend(t *testing.T) {
	gw, hostile, m := testenv.StartGatewayHostile(t, map[string]string{"GATEWAY_SSEC_ALLOW_HTTP": "true"})
	bucket := m.NewBucket(t)
	raw, keyB64, md5B64 := ssecKey(t)
	dir := t.TempDir()
	plain := testenv.RandomBytes(t, 11<<20+777, marker)
	src := writeFile(t, dir, "in.bin", plain)
	dst := filepath.Join(dir, "out.bin")

	out, err := gw.Python(t, hostileSSECScript, bucket, src, dst, keyB64)
	if err != nil {
		t.Fatalf("boto3: %v", err)
	}
	var rep struct {
		Range, Copy, Partcopy bool
		Head                  int
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &rep); err != nil {
		t.Fatalf("boto3 report %q: %v", out, err)
	}
	if !rep.Range || !rep.Copy || !rep.Partcopy || rep.Head != len(plain) {
		t.Errorf("boto3 SSE-C round trips: %+v, want all true and head %d", rep, len(plain))
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("boto3 download_file of the SSE-C multipart object differs (%v)", err)
	}

	keyFile := writeFile(t, dir, "sse-c.key", []byte(raw))
	cliOut := filepath.Join(dir, "cli-out.bin")
	sse := []string{"--sse-c", "AES256", "--sse-c-key", "fileb://" + keyFile}
	if _, err := gw.AWS(t, append([]string{"s3", "cp", src, "s3://" + bucket + "/cli.bin"}, sse...)...); err != nil {
		t.Fatalf("aws s3 cp --sse-c (upload, multipart): %v", err)
	}
	if _, err := gw.AWS(t, append([]string{"s3", "cp", "s3://" + bucket + "/cli.bin", cliOut}, sse...)...); err != nil {
		t.Fatalf("aws s3 cp --sse-c (download): %v", err)
	}
	if got, err := os.ReadFile(cliOut); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("aws-cli SSE-C download differs (%v)", err)
	}

	reqs := hostile.Requests()
	completes := 0
	for _, r := range reqs {
		if r.Method == http.MethodPost && r.Query.Has("uploadId") {
			completes++
		}
	}
	if completes < 3 { // upload_file, the UploadPartCopy upload, aws s3 cp
		t.Errorf("the backend saw %d CompleteMultipartUpload requests, want at least 3 (did the operations go through the proxy?)", completes)
	}
	for _, leak := range hostileKeyLeaks(reqs, keyB64, md5B64) {
		t.Errorf("SSE-C material reached the backend: %s", leak)
	}
	t.Logf("%d backend requests checked", len(reqs))
}
