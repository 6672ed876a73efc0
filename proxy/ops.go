package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/s3seal/s3seal/s3err"
)

// Operations and their parameters. A backend request's query string is built from the
// parameters S3 defines for its operation (opParams), never copied from the client's URL:
// after authentication, serve replaces the client's query by the parameters of its operation
// (operationQuery), and the backend client refuses to send any request whose bucket, key or
// query is outside these tables (checkBackendRequest), whoever built it.
//
// The tables follow the S3 API reference (URI request parameters of each operation). The
// sub-resource that selects an operation ("uploads", "tagging", ...) is a parameter of it too.

// responseParams are GetObject's and HeadObject's response header overrides.
var responseParams = []string{
	"response-cache-control", "response-content-disposition", "response-content-encoding",
	"response-content-language", "response-content-type", "response-expires",
}

// opParams are the query parameters each operation may carry besides its sub-resource.
var opParams = map[string][]string{
	"ListBuckets":             {"max-buckets", "continuation-token", "prefix", "bucket-region"},
	"ListObjects":             {"delimiter", "encoding-type", "marker", "max-keys", "prefix"},
	"ListObjectsV2":           {"list-type", "continuation-token", "delimiter", "encoding-type", "fetch-owner", "max-keys", "prefix", "start-after"},
	"ListObjectVersions":      {"delimiter", "encoding-type", "key-marker", "max-keys", "prefix", "version-id-marker"},
	"ListMultipartUploads":    {"delimiter", "encoding-type", "key-marker", "max-uploads", "prefix", "upload-id-marker"},
	"HeadBucket":              nil,
	"CreateBucket":            nil,
	"DeleteBucket":            nil,
	"DeleteObjects":           nil,
	"GetObject":               append([]string{"versionId", "partNumber"}, responseParams...),
	"HeadObject":              append([]string{"versionId", "partNumber"}, responseParams...),
	"GetObjectAttributes":     {"versionId"},
	"PutObject":               nil,
	"CopyObject":              nil,
	"DeleteObject":            {"versionId"},
	"CreateMultipartUpload":   nil,
	"UploadPart":              {"partNumber"},
	"UploadPartCopy":          {"partNumber"},
	"ListParts":               {"max-parts", "part-number-marker"},
	"CompleteMultipartUpload": nil,
	"AbortMultipartUpload":    nil,
	"RestoreObject":           {"versionId"},
}

// objectSubParams and bucketSubParams are the parameters of forwarded sub-resource operations
// besides the sub-resource: an object's version; a bucket configuration's id (and the
// continuation token of its List* form).
var (
	objectSubParams = []string{"versionId"}
	bucketSubParams = map[string][]string{
		"analytics": {"id", "continuation-token"}, "inventory": {"id", "continuation-token"},
		"metrics": {"id", "continuation-token"}, "intelligent-tiering": {"id", "continuation-token"},
	}
)

// ignoredParams are parameters clients add that S3 ignores: dropped, never forwarded.
var ignoredParams = map[string]bool{"x-id": true, "X-Amz-User-Agent": true}

// opRef names an operation for the tables: its name, the sub-resource that selects it ("" for
// none) and whether it is an object sub-resource (for subParamsOf: "tagging" of a bucket has
// no versionId).
type opRef struct {
	name      string
	sub       string
	objectSub bool
}

// params returns the query parameters op may carry, its sub-resource included.
func (op opRef) params() map[string]bool {
	m := map[string]bool{}
	if op.sub != "" {
		m[op.sub] = true
	}
	list, ok := opParams[op.name]
	switch {
	case ok || op.sub == "":
	case op.objectSub:
		list = objectSubParams
	default:
		list = bucketSubParams[op.sub]
	}
	for _, p := range list {
		m[p] = true
	}
	return m
}

// unknownParams returns the client's query parameters that op does not define, presign and
// ignored parameters aside, sorted.
func unknownParams(op opRef, v url.Values) []string {
	allowed := op.params()
	var out []string
	for k := range v {
		if !allowed[k] && !authParams[k] && !ignoredParams[k] {
			out = append(out, k)
		}
	}
	sortStrings(out)
	return out
}

// operationQuery returns the client's query reduced to op's parameters: what the gateway
// forwards of it. Presign, ignored and unknown parameters are gone.
func operationQuery(op opRef, v url.Values) url.Values {
	allowed := op.params()
	out := url.Values{}
	for k, vs := range v {
		if allowed[k] {
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
}

// dropsUnknownParams reports the operations that ignore parameters S3 does not define for
// them, as S3 does: reads of one object. Every other operation refuses them
// (NotImplemented), since an unknown parameter may select a sub-resource the gateway does not
// know, and running another operation than the client asked (a PutObject instead of a
// configuration change, a listing instead of a bucket read) would be worse than refusing.
func dropsUnknownParams(op string) bool {
	return op == "GetObject" || op == "HeadObject"
}

// backendOperation names the S3 operation of a backend request, found as classify finds a
// client's: method, bucket or object, sub-resource. ok is false for a request that is no S3
// operation the gateway sends.
func backendOperation(method string, t target) (opRef, bool) {
	sub, e := subresourceOf(t.query)
	if e != nil {
		return opRef{}, false
	}
	if t.bucket == "" {
		return opRef{name: "ListBuckets"}, method == http.MethodGet && sub == ""
	}
	row, ok := operationRow(method, t.key != "", sub)
	if !ok {
		return opRef{}, false
	}
	if row.name == "ListObjects" && t.query.Get("list-type") == "2" {
		row.name = "ListObjectsV2"
	}
	return row, true
}

// operationRow names the operation of method on a bucket or an object with sub-resource sub
// ("" for none), as far as the method, scope and sub-resource decide it (PutObject and
// CopyObject, UploadPart and UploadPartCopy, ListObjects and ListObjectsV2 share a row).
func operationRow(method string, object bool, sub string) (opRef, bool) {
	table := bucketSubresources
	if object {
		table = objectSubresources
	}
	if op, ok := table[sub][method]; ok {
		return opRef{name: op.op, sub: sub, objectSub: object}, true
	}
	name, ok := plainOps[opKey{method, object, sub}]
	return opRef{name: name, sub: sub, objectSub: object}, ok
}

// opKey and plainOps name the operations that are not forwarded sub-resources (operationRow).
type opKey struct {
	method string
	object bool
	sub    string
}

var plainOps = map[opKey]string{
	{get, false, ""}:                    "ListObjects",
	{get, false, "versions"}:            "ListObjectVersions",
	{get, false, "uploads"}:             "ListMultipartUploads",
	{http.MethodHead, false, ""}:        "HeadBucket",
	{put, false, ""}:                    "CreateBucket",
	{del, false, ""}:                    "DeleteBucket",
	{http.MethodPost, false, "delete"}:  "DeleteObjects",
	{get, true, ""}:                     "GetObject",
	{http.MethodHead, true, ""}:         "HeadObject",
	{get, true, "attributes"}:           "GetObjectAttributes",
	{put, true, ""}:                     "PutObject",
	{del, true, ""}:                     "DeleteObject",
	{http.MethodPost, true, "uploads"}:  "CreateMultipartUpload",
	{put, true, "uploadId"}:             "UploadPart",
	{get, true, "uploadId"}:             "ListParts",
	{http.MethodPost, true, "uploadId"}: "CompleteMultipartUpload",
	{del, true, "uploadId"}:             "AbortMultipartUpload",
	{http.MethodPost, true, "restore"}:  "RestoreObject",
}

// errBackendRequest is a backend request the gateway refuses to sign: a bug, never a client's
// doing (client requests are checked before they reach a handler).
type errBackendRequest struct{ why string }

func (e errBackendRequest) Error() string { return "refusing to sign a backend request: " + e.why }

// checkBackendRequest is the last check before the gateway's key signs a request: the bucket
// is a valid, unreserved bucket name (or none, for ListBuckets), the key a valid S3 key, the
// request one S3 operation and its query keys that operation's parameters, and a copy source
// names a valid bucket.
func (b *backend) checkBackendRequest(method string, t target, h http.Header) error {
	if t.bucket != "" {
		if e := b.names.check(t.bucket); e != nil {
			return errBackendRequest{fmt.Sprintf("bucket name %q", t.bucket)}
		}
	} else if t.key != "" {
		return errBackendRequest{"a key without a bucket"}
	}
	if e := checkKey(t.key); e != nil {
		return errBackendRequest{"object key: " + e.Code}
	}
	op, ok := backendOperation(method, t)
	if !ok {
		return errBackendRequest{fmt.Sprintf("%s %q is no S3 operation the gateway sends", method, encodeQuery(t.query))}
	}
	allowed := op.params()
	for k := range t.query {
		if !allowed[k] {
			return errBackendRequest{fmt.Sprintf("parameter %q is not one of %s's", k, op.name)}
		}
	}
	if cs := h.Get("X-Amz-Copy-Source"); cs != "" {
		bucket, _, _, e := copySource(cs)
		if e != nil || b.names.check(bucket) != nil {
			return errBackendRequest{"copy source"}
		}
	}
	return nil
}

// queryRefusal is the NotImplemented answer to a request with parameters its operation does
// not define.
func queryRefusal(op string, unknown []string) *s3err.Error {
	return s3err.Newf("NotImplemented", "%s with the parameter(s) %s is not supported by this encrypting gateway.", op, strings.Join(unknown, ", "))
}
