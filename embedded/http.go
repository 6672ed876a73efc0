package embedded

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/johannesboyne/gofakes3"
)

// handler sits in front of gofakes3's HTTP handler and adds what gofakes3 lacks:
//   - GET/HEAD with partNumber (gofakes3 ignores the parameter and returns the whole object):
//     turned into a Range request from the part sizes kept at CompleteMultipartUpload, with
//     x-amz-mp-parts-count, as S3 answers;
//   - the multipart ETag ("<hex>-N") on GET/HEAD of multipart objects;
//   - UploadPartCopy (partcopy.go; gofakes3 would store the empty request body as the part);
//   - CopyObject learns which metadata names the request itself carried;
//   - object tagging (tagging.go), which gofakes3 lacks: without this, PUT ?tagging would
//     store the tag XML as the object and DELETE ?tagging delete it;
//   - other sub-resources S3 has and gofakes3 does not (acl, policy, lifecycle, ...) are
//     refused with NotImplemented, for the same reason;
//   - the 507 status of XMinioStorageFull (gofakes3 answers 500 for codes it does not know)
//     and If-Match on GET and HEAD (see etagWriter).
type handler struct {
	next http.Handler
	be   *backend
}

const hdrPartsCount = "X-Amz-Mp-Parts-Count"

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k := range r.Header {
		if strings.HasPrefix(k, "X-Amz-S3seal-Internal-") || strings.HasPrefix(k, "X-S3seal-") {
			delete(r.Header, k)
		}
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	_, isUpload := q["uploadId"]
	copySource := r.Header.Get("X-Amz-Copy-Source")
	ew := &etagWriter{ResponseWriter: w, req: r}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && key != "" && !isUpload {
		ew.ifMatch = r.Header.Get("If-Match")
		ew.current = func() string { return h.be.currentETag(bucket, key) }
	}

	switch {
	case q.Has("tagging") && key != "":
		h.tagging(w, r, bucket, key)
		return
	case unsupportedSub(q):
		writeError(w, r, http.StatusNotImplemented, "NotImplemented", "This sub-resource is not supported by the embedded store")
		return
	case r.Method == http.MethodPut && isUpload && copySource != "":
		h.uploadPartCopy(w, r, bucket, key, q)
		return
	case r.Method == http.MethodPut && copySource != "" && key != "":
		var names []string
		for k := range r.Header {
			if strings.HasPrefix(k, userMetaPrefix) || isStandardMeta(k) {
				names = append(names, k)
			}
		}
		r.Header.Set(hdrCopyKeys, strings.Join(names, ","))
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && q.Has("partNumber") && !isUpload && key != "":
		if !h.partNumber(ew, r, bucket, key, q) {
			return
		}
	}
	h.next.ServeHTTP(ew, r)
	if !ew.started { // a HEAD, or an empty body: the status is decided here
		ew.WriteHeader(http.StatusOK)
	}
	ew.release()
}

// partNumber rewrites a GET/HEAD ?partNumber=N into a Range request. It returns false when it
// has answered the request itself.
func (h *handler) partNumber(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) bool {
	n, err := strconv.Atoi(q["partNumber"][0])
	if err != nil || n < 1 || n > 10000 {
		writeError(w, r, http.StatusBadRequest, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
		return false
	}
	if r.Header.Get("Range") != "" {
		writeError(w, r, http.StatusBadRequest, "InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
		return false
	}
	delete(q, "partNumber")
	r.URL.RawQuery = q.Encode()
	sizes, multipart, err := h.be.partLayout(bucket, key)
	if err != nil {
		return true // gofakes3 answers NoSuchBucket/NoSuchKey itself
	}
	if n > len(sizes) {
		writeError(w, r, http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber", "The requested partnumber is not satisfiable")
		return false
	}
	var start int64
	for _, s := range sizes[:n-1] {
		start += s
	}
	if multipart {
		w.Header().Set(hdrPartsCount, strconv.Itoa(len(sizes)))
	}
	if size := sizes[n-1]; size > 0 {
		r.Header.Set("Range", "bytes="+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+size-1, 10))
	}
	return true
}

type errorBody struct {
	XMLName  xml.Name `xml:"Error"`
	Code     string
	Message  string
	Resource string
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(errorBody{Code: code, Message: msg, Resource: r.URL.Path})
}

// unsupportedSub reports a sub-resource of S3's that gofakes3 would not recognise and serve
// as a plain object or bucket request instead.
func unsupportedSub(q url.Values) bool {
	for k := range q {
		if unsupportedSubs[k] {
			return true
		}
	}
	return false
}

var unsupportedSubs = map[string]bool{
	"accelerate": true, "acl": true, "analytics": true, "attributes": true, "cors": true,
	"encryption": true, "intelligent-tiering": true, "inventory": true, "legal-hold": true,
	"lifecycle": true, "logging": true, "metrics": true, "notification": true, "object-lock": true,
	"ownershipControls": true, "policy": true, "policyStatus": true, "publicAccessBlock": true,
	"replication": true, "requestPayment": true, "restore": true, "retention": true, "select": true,
	"tagging": true, "torrent": true, "website": true,
}

// etagWriter replaces the ETag of a multipart object by the multipart ETag the backend left
// in the metaETag header, and removes internal headers, before the headers go out. It also
//   - holds a 500 back until its body shows the code: gofakes3 answers 500 for every code it
//     does not know, such as XMinioStorageFull (sent as 507) and InvalidTag (400), see
//     errorStatus;
//   - applies If-Match on GET and HEAD, which gofakes3 ignores: the ETag compared is the one of
//     the object gofakes3 has opened, so a reader that asks for one version (as the gateway
//     does when it reads an object in several requests) never gets bytes of another.
type etagWriter struct {
	http.ResponseWriter
	req     *http.Request
	ifMatch string // of a GET or HEAD of an object
	// current is the ETag the object has now, for a 416: S3 evaluates If-Match before the
	// range, and gofakes3 answers the range first (without the object's ETag).
	current func() string

	done    bool         // headers fixed
	started bool         // status decided
	held    bool         // a 500 not yet written
	refused bool         // answered 412; the body gofakes3 writes is dropped
	body    bytes.Buffer // what was written after a held 500
}

func (w *etagWriter) fix() {
	if w.done {
		return
	}
	w.done = true
	hdr := w.Header()
	if etag := hdr.Get(metaETag); etag != "" {
		hdr.Set("ETag", etag)
	}
	hdr.Del(metaETag)
}

func (w *etagWriter) WriteHeader(code int) {
	w.fix()
	if w.started {
		return
	}
	w.started = true
	switch {
	case code == http.StatusInternalServerError:
		w.held = true
	case code/100 == 2 && w.ifMatch != "" && !etagMatches(w.ifMatch, w.Header().Get("ETag")),
		code == http.StatusRequestedRangeNotSatisfiable && w.ifMatch != "" && w.current != nil && !etagMatches(w.ifMatch, w.current()):
		w.refused = true
		for _, k := range []string{"Content-Length", "Content-Range", "Content-Type", "Accept-Ranges", "Last-Modified", "ETag"} {
			w.Header().Del(k)
		}
		writeError(w.ResponseWriter, w.req, http.StatusPreconditionFailed, "PreconditionFailed",
			"At least one of the pre-conditions you specified did not hold")
	default:
		w.ResponseWriter.WriteHeader(code)
	}
}

// etagMatches reports whether an If-Match value (a list of ETags, or "*") names etag.
func etagMatches(cond, etag string) bool {
	for c := range strings.SplitSeq(cond, ",") {
		c = strings.TrimSpace(c)
		if c == "*" || (etag != "" && strings.Trim(c, `"`) == strings.Trim(etag, `"`)) {
			return true
		}
	}
	return false
}

func (w *etagWriter) Write(p []byte) (int, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.refused:
		return len(p), nil
	case w.held:
		if w.body.Len()+len(p) <= 64<<10 {
			return w.body.Write(p)
		}
		w.release()
	}
	return w.ResponseWriter.Write(p)
}

// release writes a held 500 (or 507) and what was written after it.
func (w *etagWriter) release() {
	if !w.held {
		return
	}
	w.held = false
	code := http.StatusInternalServerError
	var e errorBody
	if xml.Unmarshal(w.body.Bytes(), &e) == nil && e.Code != "" {
		code = errorStatus(gofakes3.ErrorCode(e.Code))
	}
	w.ResponseWriter.WriteHeader(code)
	_, _ = w.ResponseWriter.Write(w.body.Bytes())
	w.body.Reset()
}

// ReadFrom keeps the server's sendfile path for object bodies.
func (w *etagWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.refused:
		return 0, nil
	case w.held:
		return io.Copy(writerOnly{w}, r)
	}
	return io.Copy(w.ResponseWriter, r)
}

type writerOnly struct{ io.Writer }

func (w *etagWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
