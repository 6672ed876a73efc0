package integration

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

// parityScript runs the same S3 calls with boto3 against the endpoint in argv and prints what
// a client sees, as JSON: user metadata names, also after a re-sent part, with an empty value
// and after an overwrite without metadata (issue 12 item 1), a 304's headers (item 3), a PUT
// with If-None-Match on the current ETag (item 4), an unchanged copy onto itself (item 5) and
// SSE headers on GET/HEAD (item 8).
const parityScript = `
import boto3, botocore, json, sys
from botocore.config import Config
ep, ak, sk, bucket = sys.argv[1:5]
cfg = Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"})
def client():
    return boto3.client("s3", endpoint_url=ep, aws_access_key_id=ak, aws_secret_access_key=sk, region_name="us-east-1", config=cfg)
c = client()
def code(f):
    try:
        f()
        return "ok"
    except botocore.exceptions.ClientError as e:
        return "%d %s" % (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"].get("Code", ""))
def meta(key):
    return sorted(c.head_object(Bucket=bucket, Key=key)["Metadata"].items())
out = {}
c.put_object(Bucket=bucket, Key="meta", Body=b"x", Metadata={"Foo": "bar", "Mixed-Case": "v"})
out["put"] = meta("meta")
out["get"] = sorted(c.get_object(Bucket=bucket, Key="meta")["Metadata"].items())
c.copy_object(Bucket=bucket, Key="meta-copy", CopySource={"Bucket": bucket, "Key": "meta"})
out["copy"] = meta("meta-copy")
c.copy_object(Bucket=bucket, Key="meta-replace", CopySource={"Bucket": bucket, "Key": "meta"}, MetadataDirective="REPLACE", Metadata={"Other-Name": "1"})
out["replace"] = meta("meta-replace")
up = c.create_multipart_upload(Bucket=bucket, Key="meta-mp", Metadata={"Part-Meta": "p"})
c.upload_part(Bucket=bucket, Key="meta-mp", UploadId=up["UploadId"], PartNumber=1, Body=b"z" * 10)
p = c.upload_part(Bucket=bucket, Key="meta-mp", UploadId=up["UploadId"], PartNumber=1, Body=b"y" * 10)
c.complete_multipart_upload(Bucket=bucket, Key="meta-mp", UploadId=up["UploadId"], MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]})
out["multipart"] = meta("meta-mp")
c.put_object(Bucket=bucket, Key="meta-empty", Body=b"e", Metadata={"Empty": ""})
out["empty_value"] = meta("meta-empty")
c.put_object(Bucket=bucket, Key="meta-empty", Body=b"e")
out["overwritten_without"] = meta("meta-empty")

etag = c.head_object(Bucket=bucket, Key="meta")["ETag"]
try:
    c.get_object(Bucket=bucket, Key="meta", IfNoneMatch=etag)
    out["not_modified"] = "200"
except botocore.exceptions.ClientError as e:
    h = e.response["ResponseMetadata"]["HTTPHeaders"]
    out["not_modified"] = [e.response["ResponseMetadata"]["HTTPStatusCode"], h.get("etag") == etag, "last-modified" in h]

out["put_if_none_match_current"] = code(lambda: c.put_object(Bucket=bucket, Key="meta", Body=b"changed", IfNoneMatch=etag))
out["kept_after_412"] = c.get_object(Bucket=bucket, Key="meta")["Body"].read() == b"x"

out["self_copy"] = code(lambda: c.copy_object(Bucket=bucket, Key="meta", CopySource={"Bucket": bucket, "Key": "meta"}))
out["self_copy_replace"] = code(lambda: c.copy_object(Bucket=bucket, Key="meta", CopySource={"Bucket": bucket, "Key": "meta"}, MetadataDirective="REPLACE", Metadata={"New": "n"}))
out["self_copy_meta"] = meta("meta")

sse = client()
def add_sse(request, **kw):
    request.headers["x-amz-server-side-encryption"] = "AES256"
sse.meta.events.register("before-sign.s3.GetObject", add_sse)
sse.meta.events.register("before-sign.s3.HeadObject", add_sse)
def sse_call(f):
    try:
        f()
        return "ok"
    except botocore.exceptions.ClientError as e:
        return "%d" % e.response["ResponseMetadata"]["HTTPStatusCode"]
out["sse_get"] = sse_call(lambda: sse.get_object(Bucket=bucket, Key="meta"))
out["sse_head"] = sse_call(lambda: sse.head_object(Bucket=bucket, Key="meta"))
print(json.dumps(out))
`

// TestParityClientChecks (issue 12, items 1, 3, 4, 5 and 8; every check failed against the
// gateway before the fix and holds for MinIO): the same boto3 calls against the
// gateway and against MinIO directly give what S3 documents: user metadata names in lower case
// after PUT, GET, COPY and REPLACE copies and multipart uploads; a 304 with the ETag the client
// knows and Last-Modified; 412 and nothing stored for a PUT whose If-None-Match names the
// current ETag; 400 InvalidRequest for a copy of an object onto itself that changes nothing (and
// success with REPLACE); 400 for SSE headers on GET and HEAD.
func TestParityClientChecks(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, nil)
	run := func(endpoint, ak, sk string) map[string]any {
		t.Helper()
		bucket := m.NewBucket(t)
		out, err := gw.Python(t, parityScript, endpoint, ak, sk, bucket)
		if err != nil {
			t.Fatalf("boto3 against %s: %v", endpoint, err)
		}
		var res map[string]any
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("boto3 output %q: %v", out, err)
		}
		return res
	}
	got := run(gw.Endpoint, gw.AccessKeyID, gw.SecretAccessKey)
	direct := run(m.Endpoint, m.AccessKey, m.SecretKey)
	t.Logf("gateway: %v", got)
	t.Logf("MinIO:   %v", direct)

	pairs := func(kv ...string) []any {
		var out []any
		for i := 0; i < len(kv); i += 2 {
			out = append(out, []any{kv[i], kv[i+1]})
		}
		return out
	}
	want := map[string]any{
		"put":                       pairs("foo", "bar", "mixed-case", "v"),
		"get":                       pairs("foo", "bar", "mixed-case", "v"),
		"copy":                      pairs("foo", "bar", "mixed-case", "v"),
		"replace":                   pairs("other-name", "1"),
		"multipart":                 pairs("part-meta", "p"),
		"empty_value":               pairs("empty", ""),
		"overwritten_without":       []any{},
		"not_modified":              []any{float64(304), true, true},
		"put_if_none_match_current": "412 PreconditionFailed",
		"kept_after_412":            true,
		"self_copy":                 "400 InvalidRequest",
		"self_copy_replace":         "ok",
		"self_copy_meta":            pairs("new", "n"),
		"sse_get":                   "400",
		"sse_head":                  "400",
	}
	for name, w := range want {
		if !reflect.DeepEqual(got[name], w) {
			t.Errorf("gateway %s: %v, want %v (MinIO: %v)", name, got[name], w, direct[name])
		}
		// MinIO implements each of these as S3 does: the same expectation holds for it.
		if !reflect.DeepEqual(direct[name], w) {
			t.Errorf("MinIO %s: %v, want %v (the test's expectation, or MinIO, is off)", name, direct[name], w)
		}
	}
}
