package proxy

import (
	"net/http"
	"net/url"

	"github.com/s3seal/s3seal/s3err"
)

// handler is what serves one S3 operation.
type handler struct {
	fn    func(q *request)
	write bool // refused for read-only credentials
}

// notImplemented refuses an operation that the gateway cannot perform without letting
// plaintext reach the backend (or without breaking its format).
func (g *Gateway) notImplemented(what string) func(q *request) {
	return func(q *request) {
		g.fail(q, s3err.Newf("NotImplemented", "%s is not supported by this encrypting gateway.", what))
	}
}

// has reports whether the query has parameter name (with or without a value).
func has(v url.Values, name string) bool {
	_, ok := v[name]
	return ok
}

// classify names the S3 operation of q (q.op) and returns its handler.
func (g *Gateway) classify(q *request) handler {
	r := q.r
	v := r.URL.Query()
	read := func(op string, fn func(*request)) handler { q.op = op; return handler{fn: fn} }
	write := func(op string, fn func(*request)) handler { q.op = op; return handler{fn: fn, write: true} }
	forward := g.forward

	if q.bucket == "" {
		if r.Method == http.MethodGet {
			return read("ListBuckets", g.listBuckets)
		}
		if r.Method == http.MethodPost && r.URL.Path == "/WriteGetObjectResponse" {
			return write("WriteGetObjectResponse", g.notImplemented("WriteGetObjectResponse"))
		}
		return read("Unknown", func(q *request) { g.fail(q, s3err.New("MethodNotAllowed", "")) })
	}

	if q.key == "" {
		switch r.Method {
		case http.MethodGet:
			switch {
			case v.Get("list-type") == "2" && len(v) >= 1 && onlyListParams(v):
				return read("ListObjectsV2", g.listObjects)
			case has(v, "versions"):
				return read("ListObjectVersions", g.listObjects)
			case has(v, "uploads"):
				return read("ListMultipartUploads", forward)
			case onlyListParams(v):
				return read("ListObjects", g.listObjects)
			}
			return read("GetBucketSubresource", forward)
		case http.MethodHead:
			return read("HeadBucket", forward)
		case http.MethodPut:
			if len(v) == 0 {
				return write("CreateBucket", forward)
			}
			return write("PutBucketSubresource", forward)
		case http.MethodDelete:
			if len(v) == 0 {
				return write("DeleteBucket", forward)
			}
			return write("DeleteBucketSubresource", forward)
		case http.MethodPost:
			if has(v, "delete") {
				return write("DeleteObjects", forward)
			}
			return write("PostObject", g.notImplemented("Browser-based POST upload"))
		}
		return read("Unknown", func(q *request) { g.fail(q, s3err.New("MethodNotAllowed", "")) })
	}

	switch r.Method {
	case http.MethodGet:
		switch {
		case has(v, "uploadId"):
			return read("ListParts", g.listParts)
		case has(v, "attributes"):
			return read("GetObjectAttributes", g.getObjectAttributes)
		case has(v, "torrent"):
			return read("GetObjectTorrent", g.notImplemented("GetObjectTorrent"))
		case has(v, "tagging"), has(v, "acl"), has(v, "retention"), has(v, "legal-hold"):
			return read("GetObjectSubresource", forward)
		}
		return read("GetObject", g.getObject)
	case http.MethodHead:
		return read("HeadObject", g.headObject)
	case http.MethodPut:
		switch {
		case r.Header.Get("X-Amz-Copy-Source") != "" && has(v, "uploadId"):
			return write("UploadPartCopy", g.uploadPartCopy)
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return write("CopyObject", g.copyObject)
		case has(v, "uploadId"):
			return write("UploadPart", g.uploadPart)
		case has(v, "tagging"), has(v, "acl"), has(v, "retention"), has(v, "legal-hold"):
			return write("PutObjectSubresource", forward)
		case len(v) == 0 || onlyAuthParams(v):
			return write("PutObject", g.putObject)
		}
		return write("PutObject", g.notImplemented("This PUT sub-resource"))
	case http.MethodDelete:
		switch {
		case has(v, "uploadId"):
			return write("AbortMultipartUpload", g.abortMultipart)
		case has(v, "tagging"):
			return write("DeleteObjectTagging", forward)
		}
		return write("DeleteObject", forward)
	case http.MethodPost:
		switch {
		case has(v, "uploads"):
			return write("CreateMultipartUpload", g.createMultipart)
		case has(v, "uploadId"):
			return write("CompleteMultipartUpload", g.completeMultipart)
		case has(v, "select"):
			return read("SelectObjectContent", g.notImplemented("SelectObjectContent"))
		case has(v, "restore"):
			return write("RestoreObject", forward)
		}
		return write("PostObject", g.notImplemented("This POST operation"))
	}
	return read("Unknown", func(q *request) { g.fail(q, s3err.New("MethodNotAllowed", "")) })
}

// authParams are query parameters of presigned requests (V4 and V2).
var authParams = map[string]bool{
	"X-Amz-Algorithm": true, "X-Amz-Credential": true, "X-Amz-Date": true, "X-Amz-Expires": true,
	"X-Amz-SignedHeaders": true, "X-Amz-Signature": true, "X-Amz-Security-Token": true,
	"X-Amz-Content-Sha256": true, "AWSAccessKeyId": true, "Expires": true, "Signature": true,
	"x-id": true, "X-Amz-User-Agent": true,
}

func onlyAuthParams(v url.Values) bool {
	for k := range v {
		if !authParams[k] {
			return false
		}
	}
	return true
}

// listParams are the parameters of ListObjects v1 and v2.
var listParams = map[string]bool{
	"list-type": true, "prefix": true, "delimiter": true, "marker": true, "max-keys": true,
	"encoding-type": true, "continuation-token": true, "fetch-owner": true, "start-after": true,
	"allow-unordered": true,
}

func onlyListParams(v url.Values) bool {
	for k := range v {
		if !listParams[k] && !authParams[k] {
			return false
		}
	}
	return true
}
