package proxy

import (
	"net/http"
	"net/url"

	"github.com/s3seal/s3seal/s3err"
)

// handler is what serves one S3 operation.
type handler struct {
	fn    func(q *request) error
	write bool // refused for read-only credentials
	admin bool // changes a bucket's configuration or access control: admin credentials only
	// reread: a read of one object in several backend requests, each conditional on the ETag
	// the first one saw. When the object is replaced in between, the backend answers 412, and
	// a client that set no condition of its own gets the read run again on the new object.
	reread bool
}

// subOp is one sub-resource operation the gateway forwards unchanged.
type subOp struct {
	op           string
	write, admin bool
}

func subRead(op string) subOp  { return subOp{op: op} }
func subWrite(op string) subOp { return subOp{op: op, write: true} }
func subAdmin(op string) subOp { return subOp{op: op, write: true, admin: true} }

const (
	get, put, del = http.MethodGet, http.MethodPut, http.MethodDelete
)

// bucketSubresources and objectSubresources are the allowlist of sub-resources the gateway
// forwards unchanged, by sub-resource query parameter and method; any other sub-resource
// request is refused with NotImplemented. Reads of a configuration are open to every
// credential allowed on the bucket (aws-cli, rclone and s3cmd read location, versioning and
// ACLs routinely, and a configuration tells nothing about object contents). Changes to a
// bucket's configuration or access control need an admin credential: whoever may change the
// policy, ACLs, lifecycle, versioning, object lock, replication, logging, inventory,
// notification, encryption, CORS or website configuration can grant other accounts access,
// expire or copy every object, or drop old versions. Tags and per-object retention and legal
// holds are object data management and need write access only.
var bucketSubresources = map[string]map[string]subOp{
	"accelerate":          {get: subRead("GetBucketAccelerateConfiguration"), put: subAdmin("PutBucketAccelerateConfiguration")},
	"acl":                 {get: subRead("GetBucketAcl"), put: subAdmin("PutBucketAcl")},
	"analytics":           {get: subRead("GetBucketAnalyticsConfiguration"), put: subAdmin("PutBucketAnalyticsConfiguration"), del: subAdmin("DeleteBucketAnalyticsConfiguration")},
	"cors":                {get: subRead("GetBucketCors"), put: subAdmin("PutBucketCors"), del: subAdmin("DeleteBucketCors")},
	"encryption":          {get: subRead("GetBucketEncryption"), put: subAdmin("PutBucketEncryption"), del: subAdmin("DeleteBucketEncryption")},
	"intelligent-tiering": {get: subRead("GetBucketIntelligentTieringConfiguration"), put: subAdmin("PutBucketIntelligentTieringConfiguration"), del: subAdmin("DeleteBucketIntelligentTieringConfiguration")},
	"inventory":           {get: subRead("GetBucketInventoryConfiguration"), put: subAdmin("PutBucketInventoryConfiguration"), del: subAdmin("DeleteBucketInventoryConfiguration")},
	"lifecycle":           {get: subRead("GetBucketLifecycleConfiguration"), put: subAdmin("PutBucketLifecycleConfiguration"), del: subAdmin("DeleteBucketLifecycle")},
	"location":            {get: subRead("GetBucketLocation")},
	"logging":             {get: subRead("GetBucketLogging"), put: subAdmin("PutBucketLogging")},
	"metrics":             {get: subRead("GetBucketMetricsConfiguration"), put: subAdmin("PutBucketMetricsConfiguration"), del: subAdmin("DeleteBucketMetricsConfiguration")},
	"notification":        {get: subRead("GetBucketNotificationConfiguration"), put: subAdmin("PutBucketNotificationConfiguration")},
	"object-lock":         {get: subRead("GetObjectLockConfiguration"), put: subAdmin("PutObjectLockConfiguration")},
	"ownershipControls":   {get: subRead("GetBucketOwnershipControls"), put: subAdmin("PutBucketOwnershipControls"), del: subAdmin("DeleteBucketOwnershipControls")},
	"policy":              {get: subRead("GetBucketPolicy"), put: subAdmin("PutBucketPolicy"), del: subAdmin("DeleteBucketPolicy")},
	"policyStatus":        {get: subRead("GetBucketPolicyStatus")},
	"publicAccessBlock":   {get: subRead("GetPublicAccessBlock"), put: subAdmin("PutPublicAccessBlock"), del: subAdmin("DeletePublicAccessBlock")},
	"replication":         {get: subRead("GetBucketReplication"), put: subAdmin("PutBucketReplication"), del: subAdmin("DeleteBucketReplication")},
	"requestPayment":      {get: subRead("GetBucketRequestPayment"), put: subAdmin("PutBucketRequestPayment")},
	"tagging":             {get: subRead("GetBucketTagging"), put: subWrite("PutBucketTagging"), del: subWrite("DeleteBucketTagging")},
	"versioning":          {get: subRead("GetBucketVersioning"), put: subAdmin("PutBucketVersioning")},
	"website":             {get: subRead("GetBucketWebsite"), put: subAdmin("PutBucketWebsite"), del: subAdmin("DeleteBucketWebsite")},
}

var objectSubresources = map[string]map[string]subOp{
	"acl":        {get: subRead("GetObjectAcl"), put: subAdmin("PutObjectAcl")},
	"legal-hold": {get: subRead("GetObjectLegalHold"), put: subWrite("PutObjectLegalHold")},
	"retention":  {get: subRead("GetObjectRetention"), put: subWrite("PutObjectRetention")},
	"tagging":    {get: subRead("GetObjectTagging"), put: subWrite("PutObjectTagging"), del: subWrite("DeleteObjectTagging")},
}

// handledSubresources are sub-resources with a handler of their own (or a refusal) in
// classify; "events" is MinIO's ListenBucketNotification.
var handledSubresources = map[string]bool{
	"uploads": true, "versions": true, "delete": true, "uploadId": true, "attributes": true,
	"torrent": true, "select": true, "select-type": true, "restore": true, "events": true,
	"defaultObjectAcl": true, "storageClass": true,
}

// isSubresource reports whether name is a sub-resource: a query parameter that selects the
// operation.
func isSubresource(name string) bool {
	_, b := bucketSubresources[name]
	_, o := objectSubresources[name]
	return b || o || handledSubresources[name]
}

// subresourceOf returns the one sub-resource v names ("" for none); several are refused,
// since the backend might pick another one than the gateway.
func subresourceOf(v url.Values) (string, *s3err.Error) {
	name := ""
	for k := range v {
		if !isSubresource(k) {
			continue
		}
		if name != "" {
			return "", s3err.New("NotImplemented", "A request with more than one sub-resource is not supported by this encrypting gateway.")
		}
		name = k
	}
	return name, nil
}

// forwardSub returns the handler of a forwarded sub-resource operation from table, or a
// NotImplemented refusal when the sub-resource, its method or one of the parameters is not on
// the allowlist.
func (g *Gateway) forwardSub(q *request, table map[string]map[string]subOp, sub string, v url.Values) handler {
	op, ok := table[sub][q.r.Method]
	if ok && len(unknownParams(opRef{name: op.op, sub: sub, objectSub: q.key != ""}, v)) > 0 {
		ok = false
	}
	if !ok {
		q.op = "Unknown"
		return handler{fn: g.notImplemented("This sub-resource request")}
	}
	q.op = op.op
	return handler{fn: g.forward, write: op.write, admin: op.admin}
}

// notImplemented refuses an operation that the gateway cannot perform without letting
// plaintext reach the backend (or without breaking its format).
func (g *Gateway) notImplemented(what string) func(q *request) error {
	return func(*request) error {
		return s3err.Newf("NotImplemented", "%s is not supported by this encrypting gateway.", what)
	}
}

// readParamsError checks the parameters of a GET or HEAD of an object that S3 checks before it
// looks for the object (a malformed partNumber, or partNumber with Range, is 400 even for a key
// that does not exist).
func readParamsError(r *http.Request) *s3err.Error {
	v := r.URL.Query()
	if !has(v, "partNumber") {
		return nil
	}
	if _, e := partNumber(v); e != nil {
		return e
	}
	if r.Header.Get("Range") != "" {
		return s3err.New("InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
	}
	return nil
}

// rereadable marks h as a read that may run again (handler.reread).
func rereadable(h handler) handler {
	h.reread = true
	return h
}

// refuse is a handler that answers e.
func refuse(e *s3err.Error) func(*request) error {
	return func(*request) error { return e }
}

// has reports whether the query has parameter name (with or without a value).
func has(v url.Values, name string) bool {
	_, ok := v[name]
	return ok
}

// classify names the S3 operation of q (q.op) and returns its handler. The client's query is
// reduced to the parameters S3 defines for the operation (q.query, opParams); a parameter it
// does not define is dropped where S3 ignores it (dropsUnknownParams) and refused elsewhere.
func (g *Gateway) classify(q *request) handler {
	h := g.classifyOp(q)
	v := q.r.URL.Query()
	// The parameters are those of the operation the request is, found as for a backend
	// request; a request that is none (HEAD of a sub-resource, say) keeps none of them.
	op, known := backendOperation(q.r.Method, target{q.bucket, q.key, v})
	if !known {
		op = opRef{name: q.op}
	}
	if unknown := unknownParams(op, v); len(unknown) > 0 && !dropsUnknownParams(q.op) {
		h.fn = refuse(queryRefusal(q.op, unknown))
		return h
	}
	q.query = operationQuery(op, v)
	return h
}

// classifyOp names the S3 operation of q (q.op) and returns its handler.
func (g *Gateway) classifyOp(q *request) handler {
	r := q.r
	v := r.URL.Query()
	read := func(op string, fn func(*request) error) handler { q.op = op; return handler{fn: fn} }
	write := func(op string, fn func(*request) error) handler { q.op = op; return handler{fn: fn, write: true} }
	forward := g.forward
	unknown := func() handler {
		return read("Unknown", func(*request) error { return s3err.New("MethodNotAllowed", "") })
	}

	if q.bucket == "" {
		if r.Method == http.MethodGet {
			return read("ListBuckets", g.listBuckets)
		}
		if r.Method == http.MethodPost && r.URL.Path == "/WriteGetObjectResponse" {
			return write("WriteGetObjectResponse", g.notImplemented("WriteGetObjectResponse"))
		}
		return unknown()
	}
	sub, e := subresourceOf(v)
	if e != nil {
		return read("Unknown", func(*request) error { return e })
	}

	if q.key == "" {
		switch r.Method {
		case http.MethodGet:
			switch {
			case sub == "versions":
				return read("ListObjectVersions", g.listObjects)
			case sub == "uploads":
				return read("ListMultipartUploads", g.listMultipartUploads)
			case sub != "":
				return g.forwardSub(q, bucketSubresources, sub, v)
			case v.Get("list-type") == "2":
				return read("ListObjectsV2", g.listObjects)
			}
			return read("ListObjects", g.listObjects) // other parameters: refused by classify
		case http.MethodHead:
			return read("HeadBucket", forward)
		case http.MethodPut:
			if sub == "" && onlyAuthParams(v) {
				return write("CreateBucket", forward)
			}
			return g.forwardSub(q, bucketSubresources, sub, v)
		case http.MethodDelete:
			if sub == "" && onlyAuthParams(v) {
				return write("DeleteBucket", g.deleteBucket)
			}
			return g.forwardSub(q, bucketSubresources, sub, v)
		case http.MethodPost:
			if sub == "delete" {
				return write("DeleteObjects", g.deleteObjects)
			}
			return write("PostObject", g.notImplemented("Browser-based POST upload"))
		}
		return unknown()
	}

	switch r.Method {
	case http.MethodGet:
		switch sub {
		case "":
			if e := readParamsError(r); e != nil {
				return read("GetObject", refuse(e))
			}
			return rereadable(read("GetObject", g.getObject))
		case "uploadId":
			return read("ListParts", g.listParts)
		case "attributes":
			return read("GetObjectAttributes", g.getObjectAttributes)
		case "torrent":
			return read("GetObjectTorrent", g.notImplemented("GetObjectTorrent"))
		}
		return g.forwardSub(q, objectSubresources, sub, v)
	case http.MethodHead:
		if e := readParamsError(r); e != nil {
			return read("HeadObject", refuse(e))
		}
		return rereadable(read("HeadObject", g.headObject))
	case http.MethodPut:
		switch {
		case r.Header.Get("X-Amz-Copy-Source") != "" && sub == "uploadId":
			return write("UploadPartCopy", g.uploadPartCopy)
		case r.Header.Get("X-Amz-Copy-Source") != "" && sub == "":
			return write("CopyObject", g.copyObject)
		case sub == "uploadId":
			return write("UploadPart", g.uploadPart)
		case sub == "" && r.Header.Get("X-Amz-Write-Offset-Bytes") != "":
			// An append (S3 Express One Zone): forwarding the encrypted body as an append would
			// break the format, and dropping the header would overwrite the object.
			return write("PutObject", g.notImplemented("Appending to an object (x-amz-write-offset-bytes)"))
		case sub == "" && onlyAuthParams(v):
			return write("PutObject", g.putObject)
		case sub == "":
			return write("PutObject", g.notImplemented("This PUT sub-resource"))
		}
		return g.forwardSub(q, objectSubresources, sub, v)
	case http.MethodDelete:
		switch sub {
		case "uploadId":
			return write("AbortMultipartUpload", g.abortMultipart)
		case "":
			return write("DeleteObject", forward)
		}
		return g.forwardSub(q, objectSubresources, sub, v)
	case http.MethodPost:
		switch sub {
		case "uploads":
			return write("CreateMultipartUpload", g.createMultipart)
		case "uploadId":
			return write("CompleteMultipartUpload", g.completeMultipart)
		case "select", "select-type":
			return read("SelectObjectContent", g.notImplemented("SelectObjectContent"))
		case "restore":
			return write("RestoreObject", g.restoreObject)
		}
		return write("PostObject", g.notImplemented("This POST operation"))
	}
	return unknown()
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
