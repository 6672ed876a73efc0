package embedded

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
	bolt "go.etcd.io/bbolt"
)

// UploadPartCopy (PUT ?partNumber&uploadId with x-amz-copy-source), which gofakes3 lacks: it
// would store the empty request body as the part. The gateway needs it to write the part
// manifest of an object above its copy limit (proxy/complete.go, copyPartsOntoItself). The
// source byte range is streamed from the source's body file into a new part file, its MD5
// computed on the way, as UploadPart stores a body.

const copyRangeForm = "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"

type copyPartResult struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	Xmlns        string   `xml:"xmlns,attr"`
	ETag         string
	LastModified gofakes3.ContentTime
}

// partCopyErr is an error answered before anything was stored.
type partCopyErr struct {
	status        int
	code, message string
}

func (e *partCopyErr) Error() string { return e.code + ": " + e.message }

func invalidArg(msg string) *partCopyErr {
	return &partCopyErr{http.StatusBadRequest, "InvalidArgument", msg}
}

// uploadPartCopy answers an UploadPartCopy request.
func (h *handler) uploadPartCopy(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) {
	n, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || n < 1 || n > gofakes3.MaxUploadPartNumber {
		writeError(w, r, http.StatusBadRequest, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
		return
	}
	srcBucket, srcKey, perr := parseCopySource(r.Header.Get("X-Amz-Copy-Source"))
	if perr != nil {
		writeError(w, r, perr.status, perr.code, perr.message)
		return
	}
	p, err := h.be.copyPart(bucket, key, gofakes3.UploadID(q.Get("uploadId")), n, srcBucket, srcKey, r.Header)
	if err != nil {
		if e, ok := err.(*partCopyErr); ok {
			writeError(w, r, e.status, e.code, e.message)
		} else {
			writeS3Error(w, r, err)
		}
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(copyPartResult{
		Xmlns: "http://s3.amazonaws.com/doc/2006-03-01/", ETag: partETag(p), LastModified: gofakes3.NewContentTime(p.Modified),
	})
}

// parseCopySource reads x-amz-copy-source: "[/]bucket/key[?versionId=id]", the key URL-encoded
// (or the whole value, "/" as %2F). The store has no versions: a versionId other than "null"
// names none, and is refused as S3 refuses a version id it does not know.
func parseCopySource(v string) (bucket, key string, _ *partCopyErr) {
	path, query, _ := strings.Cut(v, "?")
	if query != "" {
		vals, err := url.ParseQuery(query)
		if err != nil {
			return "", "", invalidArg("Invalid copy source")
		}
		if ids, ok := vals["versionId"]; ok && (len(ids) != 1 || ids[0] != "null") {
			return "", "", invalidArg("Invalid version id specified")
		}
	}
	dec, err := url.PathUnescape(strings.TrimPrefix(path, "/"))
	if err != nil {
		return "", "", invalidArg("Invalid copy source encoding")
	}
	bucket, key, ok := strings.Cut(strings.TrimPrefix(dec, "/"), "/")
	if !ok || bucket == "" || key == "" {
		return "", "", invalidArg("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	return bucket, key, nil
}

// parseCopyRange reads x-amz-copy-source-range ("bytes=first-last") against a source of size
// bytes and returns the offset and length to copy; an absent range is the whole source.
func parseCopyRange(v string, size int64) (int64, int64, *partCopyErr) {
	if v == "" {
		return 0, size, nil
	}
	spec, ok := strings.CutPrefix(v, "bytes=")
	first, last, ok2 := strings.Cut(spec, "-")
	a, err1 := strconv.ParseInt(first, 10, 64)
	b, err2 := strconv.ParseInt(last, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil || a < 0 || b < a || strings.HasPrefix(last, "+") || strings.HasPrefix(first, "+") {
		return 0, 0, invalidArg(copyRangeForm)
	}
	if b >= size {
		return 0, 0, invalidArg("Range specified is not valid for source object of size: " + strconv.FormatInt(size, 10))
	}
	return a, b - a + 1, nil
}

// copySourceHolds applies the x-amz-copy-source-if-* conditions to the source rec as S3 does:
// If-Match decides over If-Unmodified-Since, If-None-Match over If-Modified-Since.
func copySourceHolds(h http.Header, rec *objectRec) bool {
	etag := rec.etag()
	mod := rec.Modified.Truncate(time.Second)
	if m := h.Get("X-Amz-Copy-Source-If-Match"); m != "" {
		if !etagMatches(m, etag) {
			return false
		}
	} else if t, err := http.ParseTime(h.Get("X-Amz-Copy-Source-If-Unmodified-Since")); err == nil && mod.After(t) {
		return false
	}
	if m := h.Get("X-Amz-Copy-Source-If-None-Match"); m != "" {
		if etagMatches(m, etag) {
			return false
		}
	} else if t, err := http.ParseTime(h.Get("X-Amz-Copy-Source-If-Modified-Since")); err == nil && !mod.After(t) {
		return false
	}
	return true
}

// copyPart stores a byte range of srcBucket/srcKey as part n of the upload and returns the
// part. The source body is opened under the files' read lock, so the range copied is of the
// version whose record the conditions were checked against.
func (b *backend) copyPart(bucket, key string, id gofakes3.UploadID, n int, srcBucket, srcKey string, h http.Header) (partRec, error) {
	if _, err := b.viewUpload(bucket, key, id); err != nil {
		return partRec{}, err
	}
	if checkKey(srcKey) != nil {
		return partRec{}, gofakes3.KeyNotFound(srcKey)
	}
	var src objectRec
	f, err := b.files.open(func() (string, error) {
		err := b.db.View(func(tx *bolt.Tx) error { return lookup(tx, srcBucket, srcKey, &src) })
		return src.Body, err
	})
	if err != nil {
		return partRec{}, err
	}
	defer f.Close()
	if !copySourceHolds(h, &src) {
		return partRec{}, &partCopyErr{http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"}
	}
	off, length, perr := parseCopyRange(h.Get("X-Amz-Copy-Source-Range"), src.Size)
	if perr != nil {
		return partRec{}, perr
	}
	body, sum, err := b.files.write(io.NewSectionReader(f, off, length), length)
	if err != nil {
		return partRec{}, err
	}
	p := partRec{Body: body, Size: length, MD5: sum, Modified: b.now()}
	if err := b.storePart(bucket, key, id, n, p); err != nil {
		return partRec{}, err
	}
	return p, nil
}
