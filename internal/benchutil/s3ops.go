package benchutil

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// S3Request names the S3 operation of a path-style request (as a backend sees it) and returns
// it with the bucket and key: "GetObject range" for a GET with a Range header, "ListParts",
// "UploadPartCopy", "CopyObject", "ListObjectVersions", ... An operation this does not know is
// the method with the request's query parameter names ("GET bucket ?acl").
func S3Request(r *http.Request) (op, bucket, key string) {
	bucket, key, _ = strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	has := func(name string) bool { _, ok := q[name]; return ok }
	copySource := r.Header.Get("X-Amz-Copy-Source") != ""
	other := func(where string) string {
		names := slices.Sorted(maps.Keys(q))
		if len(names) == 0 {
			return r.Method + " " + where
		}
		return r.Method + " " + where + " ?" + strings.Join(names, "&")
	}
	switch {
	case bucket == "":
		if r.Method == http.MethodGet {
			return "ListBuckets", "", ""
		}
		return other("service"), "", ""
	case key == "":
		switch r.Method {
		case http.MethodGet:
			switch {
			case has("list-type"):
				return "ListObjectsV2", bucket, ""
			case has("versions"):
				return "ListObjectVersions", bucket, ""
			case has("uploads"):
				return "ListMultipartUploads", bucket, ""
			case onlyListParams(q):
				return "ListObjects", bucket, ""
			}
		case http.MethodHead:
			if len(q) == 0 {
				return "HeadBucket", bucket, ""
			}
		case http.MethodPost:
			if has("delete") {
				return "DeleteObjects", bucket, ""
			}
		}
		return other("bucket"), bucket, ""
	}
	switch r.Method {
	case http.MethodGet:
		switch {
		case has("uploadId"):
			return "ListParts", bucket, key
		case len(q) == 0 || onlyGetParams(q):
			if r.Header.Get("Range") != "" || has("partNumber") {
				return "GetObject range", bucket, key
			}
			return "GetObject", bucket, key
		}
	case http.MethodHead:
		if len(q) == 0 || onlyGetParams(q) {
			return "HeadObject", bucket, key
		}
	case http.MethodPut:
		switch {
		case has("partNumber") && has("uploadId") && copySource:
			return "UploadPartCopy", bucket, key
		case has("partNumber") && has("uploadId"):
			return "UploadPart", bucket, key
		case len(q) == 0 && copySource:
			return "CopyObject", bucket, key
		case len(q) == 0:
			return "PutObject", bucket, key
		}
	case http.MethodPost:
		switch {
		case has("uploads"):
			return "CreateMultipartUpload", bucket, key
		case has("uploadId"):
			return "CompleteMultipartUpload", bucket, key
		}
	case http.MethodDelete:
		switch {
		case has("uploadId"):
			return "AbortMultipartUpload", bucket, key
		case len(q) == 0 || (len(q) == 1 && has("versionId")):
			return "DeleteObject", bucket, key
		}
	}
	return other("object"), bucket, key
}

// onlyListParams: a bucket GET with ListObjects' (version 1) parameters only.
func onlyListParams(q url.Values) bool {
	for k := range q {
		switch k {
		case "prefix", "delimiter", "marker", "max-keys", "encoding-type":
		default:
			return false
		}
	}
	return true
}

// onlyGetParams: an object GET or HEAD whose parameters select a version or part, or set
// response headers.
func onlyGetParams(q url.Values) bool {
	for k := range q {
		if k != "versionId" && k != "partNumber" && !strings.HasPrefix(k, "response-") {
			return false
		}
	}
	return true
}

// Counter is PassThrough with a count of the requests that went through it, by a name given to
// each (S3Request's operation unless NewCounter is given a function). Counts are taken when a
// request arrives, before it is forwarded.
type Counter struct {
	next http.Handler
	name func(*http.Request) string
	mu   sync.Mutex
	n    map[string]int
}

// NewCounter returns a counting pass-through to target; name names each request's kind (nil:
// the operation S3Request gives).
func NewCounter(target *url.URL, name func(*http.Request) string) *Counter {
	if name == nil {
		name = func(r *http.Request) string { op, _, _ := S3Request(r); return op }
	}
	return &Counter{next: PassThrough(target), name: name, n: map[string]int{}}
}

func (c *Counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k := c.name(r)
	c.mu.Lock()
	c.n[k]++
	c.mu.Unlock()
	c.next.ServeHTTP(w, r)
}

// Counts returns a copy of the counts so far.
func (c *Counter) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// CountsSince returns the counts added since before (an earlier Counts), without kinds that
// did not grow.
func (c *Counter) CountsSince(before map[string]int) map[string]int {
	d := map[string]int{}
	for k, v := range c.Counts() {
		if v > before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}
