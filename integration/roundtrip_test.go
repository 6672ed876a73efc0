package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/testenv"
)

// checkAtRest reads an object directly from MinIO and checks that the gateway stored
// ciphertext: larger than the plaintext, with an envelope, without the marker and without any
// 16-byte run of the plaintext.
func checkAtRest(t *testing.T, m *testenv.MinIO, bucket, key string, plain []byte) {
	t.Helper()
	stored, meta := storedBytes(t, m.Client(t), bucket, key)
	if len(stored) <= len(plain) {
		t.Errorf("%s: stored %d bytes for %d bytes of plaintext", key, len(stored), len(plain))
	}
	// A single-part object that seals a checksum names its algorithm in s3seal-ck, and its
	// trailer is longer by the checksum (FORMAT.md 3.3).
	ck, err := format.ParseChecksumMeta(meta["s3seal-ck"])
	if err != nil {
		t.Errorf("%s: %v", key, err)
	}
	if want := format.EncryptedSizeOf(int64(len(plain)), ck); int64(len(stored)) != want {
		t.Errorf("%s: stored %d bytes, the format says %d (checksum %q)", key, len(stored), want, meta["s3seal-ck"])
	}
	if meta["s3seal-env"] == "" {
		t.Errorf("%s: no envelope in the stored metadata %v", key, meta)
	}
	if bytes.Contains(stored, []byte(marker)) {
		t.Errorf("%s: the plaintext marker is in the stored bytes", key)
	}
	if at := sharedRun(plain, stored); at >= 0 {
		t.Errorf("%s: stored bytes contain a 16-byte run of the plaintext at offset %d", key, at)
	}
	// Over plain HTTP the gateway sends object bodies with a CRC32C trailer (backend.payload
	// auto), so MinIO checked and recorded the checksum of the ciphertext it stored.
	head, err := m.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: &bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatalf("%s: direct HEAD: %v", key, err)
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.Checksum(stored, crc32.MakeTable(crc32.Castagnoli)))
	if got := aws.ToString(head.ChecksumCRC32C); got != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("%s: MinIO's CRC32C of the stored bytes is %q, want %q", key, got, base64.StdEncoding.EncodeToString(sum[:]))
	}
}

// TestAWSCLIRoundTrip: aws-cli s3 mb/cp/ls/rm through the gateway, every size byte-identical,
// listings and HEAD in plaintext sizes, nothing plaintext at rest.
func TestAWSCLIRoundTrip(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := newBucketName(t, "cli")
	t.Cleanup(func() { deleteBucket(t, m, bucket) })
	if out, err := gw.AWS(t, "s3", "mb", "s3://"+bucket); err != nil {
		t.Fatalf("mb: %v %s", err, out)
	}

	dir := t.TempDir()
	plains := map[string][]byte{}
	for _, n := range roundTripSizes {
		key := fmt.Sprintf("dir/obj-%d.bin", n)
		plains[key] = testenv.RandomBytes(t, n, marker)
		src := writeFile(t, dir, fmt.Sprintf("up-%d", n), plains[key])
		if out, err := gw.AWS(t, "s3", "cp", src, "s3://"+bucket+"/"+key); err != nil {
			t.Fatalf("cp up %d: %v %s", n, err, out)
		}
	}

	ls, err := gw.AWS(t, "s3", "ls", "s3://"+bucket+"/dir/")
	if err != nil {
		t.Fatalf("ls: %v", err)
	}
	listed := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(ls), "\n") {
		f := strings.Fields(line) // date time size name
		if len(f) != 4 {
			t.Fatalf("unexpected ls line %q", line)
		}
		n, _ := strconv.ParseInt(f[2], 10, 64)
		listed["dir/"+f[3]] = n
	}
	for key, plain := range plains {
		if got, ok := listed[key]; !ok || got != int64(len(plain)) {
			t.Errorf("ls shows %s as %d bytes (present %v), want %d", key, got, ok, len(plain))
		}
		out, err := gw.AWS(t, "s3api", "head-object", "--bucket", bucket, "--key", key)
		if err != nil {
			t.Fatalf("head-object %s: %v", key, err)
		}
		var head struct{ ContentLength int64 }
		if err := json.Unmarshal([]byte(out), &head); err != nil || head.ContentLength != int64(len(plain)) {
			t.Errorf("head-object %s: ContentLength %d (%v), want %d", key, head.ContentLength, err, len(plain))
		}
		dst := filepath.Join(dir, "down-"+filepath.Base(key))
		if out, err := gw.AWS(t, "s3", "cp", "s3://"+bucket+"/"+key, dst); err != nil {
			t.Fatalf("cp down %s: %v %s", key, err, out)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Errorf("%s: downloaded %d bytes differ from the %d uploaded", key, len(got), len(plain))
		}
		checkAtRest(t, m, bucket, key, plain)
	}

	for key := range plains {
		if out, err := gw.AWS(t, "s3", "rm", "s3://"+bucket+"/"+key); err != nil {
			t.Fatalf("rm %s: %v %s", key, err, out)
		}
	}
	objs, err := m.Client(t).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.Contents) != 0 {
		t.Errorf("after s3 rm, MinIO still holds %d objects", len(objs.Contents))
	}
}

// boto3Script puts, heads, lists, gets and deletes objects of the given sizes with boto3's
// default settings and prints a JSON report; the plaintext comes from files named on argv.
const boto3Script = `
import boto3, json, os, sys, hashlib
c = boto3.client("s3", endpoint_url=os.environ["S3SEAL_ENDPOINT"])
bucket = sys.argv[1]
report = {"put": {}, "head": {}, "list": {}, "get": {}}
c.create_bucket(Bucket=bucket)
for path in sys.argv[2:]:
    key = "b3/" + os.path.basename(path)
    data = open(path, "rb").read()
    r = c.put_object(Bucket=bucket, Key=key, Body=data)
    report["put"][key] = r["ETag"]
    h = c.head_object(Bucket=bucket, Key=key)
    report["head"][key] = [h["ContentLength"], h["ETag"]]
    g = c.get_object(Bucket=bucket, Key=key)
    body = g["Body"].read()
    report["get"][key] = [len(body), hashlib.sha256(body).hexdigest(), g["ContentLength"]]
for o in c.list_objects_v2(Bucket=bucket, Prefix="b3/")["Contents"]:
    report["list"][o["Key"]] = [o["Size"], o["ETag"]]
json.dump(report, sys.stdout)
`

const boto3DeleteScript = `
import boto3, os, sys
c = boto3.client("s3", endpoint_url=os.environ["S3SEAL_ENDPOINT"])
for key in sys.argv[2:]:
    c.delete_object(Bucket=sys.argv[1], Key=key)
print(c.list_objects_v2(Bucket=sys.argv[1]).get("KeyCount", 0))
`

// TestBoto3RoundTrip: boto3 put/get/head/list/delete with default settings.
func TestBoto3RoundTrip(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	bucket := newBucketName(t, "b3")
	t.Cleanup(func() { deleteBucket(t, m, bucket) })
	dir := t.TempDir()
	args := []string{bucket}
	plains := map[string][]byte{}
	for _, n := range roundTripSizes {
		name := fmt.Sprintf("obj-%d", n)
		plains["b3/"+name] = testenv.RandomBytes(t, n, marker)
		args = append(args, writeFile(t, dir, name, plains["b3/"+name]))
	}
	out, err := gw.Python(t, boto3Script, args...)
	if err != nil {
		t.Fatalf("boto3: %v", err)
	}
	var rep struct {
		Put  map[string]string
		Head map[string][2]any
		List map[string][2]any
		Get  map[string][3]any
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	for key, plain := range plains {
		etag := fmt.Sprintf(`"%x"`, md5sum(plain))
		if rep.Put[key] != etag {
			t.Errorf("%s: put ETag %s, want the plaintext MD5 %s", key, rep.Put[key], etag)
		}
		if int64(rep.Head[key][0].(float64)) != int64(len(plain)) || rep.Head[key][1] != etag {
			t.Errorf("%s: head %v, want [%d %s]", key, rep.Head[key], len(plain), etag)
		}
		if int64(rep.List[key][0].(float64)) != int64(len(plain)) || rep.List[key][1] != etag {
			t.Errorf("%s: list %v, want [%d %s]", key, rep.List[key], len(plain), etag)
		}
		g := rep.Get[key]
		if int64(g[0].(float64)) != int64(len(plain)) || g[1] != fmt.Sprintf("%x", sha256sum(plain)) || int64(g[2].(float64)) != int64(len(plain)) {
			t.Errorf("%s: get %v does not match the plaintext", key, g)
		}
		checkAtRest(t, m, bucket, key, plain)
	}
	del := []string{bucket}
	for key := range plains {
		del = append(del, key)
	}
	out, err = gw.Python(t, boto3DeleteScript, del...)
	if err != nil || strings.TrimSpace(out) != "0" {
		t.Errorf("delete: %v, %q objects left", err, out)
	}
}
