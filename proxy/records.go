package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/s3err"
)

// Upload records (FORMAT.md 3.5.3): zero-byte objects under format.UploadRecordsPrefix whose
// names carry what S3 cannot give back about an open upload: the client's upload id (its
// suffix after the backend's id) and each part's plaintext MD5, sealed under the upload's
// object key. ListMultipartUploads and ListParts read them with prefix listings;
// CompleteMultipartUpload and AbortMultipartUpload delete them. Records are written after the
// backend answered, best effort: a record that could not be written only means that listing
// shows the backend's id or part ETag, as without records.

// maxRecordPages bounds the backend listing pages one lookup of records reads (1,000 keys a
// page: every part of an upload, with retried parts).
const maxRecordPages = 30

// writeRecord stores the zero-byte record named key (best effort: a failure is logged).
func (g *Gateway) writeRecord(q *request, key string) {
	h := http.Header{}
	g.backendSSE(h)
	t := target{q.bucket, key, nil}
	resp, err := g.backend.sendSmall(q.ctx(), http.MethodPut, t, h, nil)
	if err == nil {
		drain(resp)
		if resp.StatusCode/100 == 2 {
			return
		}
		err = fmt.Errorf("backend status %d", resp.StatusCode)
	}
	g.log.Warn("could not write an upload record", "request_id", q.id, "bucket", q.bucket, "key", q.key, "err", err)
}

// writeIDRecord stores the id record of the upload id u (none when it would be too long).
func (g *Gateway) writeIDRecord(q *request, u format.UploadID) {
	name, fits := format.IDRecordKey(u)
	if !fits {
		g.log.Info("upload id too long for an upload record: ListMultipartUploads shows the backend's id", "request_id", q.id, "bucket", q.bucket, "key", q.key)
		return
	}
	g.writeRecord(q, name)
}

// writePartRecord stores the record of part t.number, which the backend stored with
// backendETag (the part's, or its held copy's), sealing f. Unlike the other records it is
// needed (Complete builds the tail from it): a failure is the request's.
func (g *Gateway) writePartRecord(q *request, t uploadTarget, backendETag string, f format.PartFacts) error {
	name, fits, err := t.key.PartRecordKey(q.bucket, q.key, t.backendID, t.number, backendETag, f)
	if err != nil {
		return err
	}
	if !fits {
		return s3err.New("InternalError", "The backend's upload id or part ETag is too long for the gateway's part record.")
	}
	h := http.Header{}
	g.backendSSE(h)
	rt := target{q.bucket, name, nil}
	resp, err := g.backend.sendSmall(q.ctx(), http.MethodPut, rt, h, nil)
	if err := g.roundTripErr(q, rt, resp, err); err != nil {
		return err
	}
	drain(resp)
	return nil
}

// listRecordKeys lists the backend keys under prefix after startAfter, page by page, until
// stop (nil: never) reports true for a key or maxRecordPages pages were read.
func (g *Gateway) listRecordKeys(q *request, prefix, startAfter string, maxKeys int, stop func(string) bool) ([]string, error) {
	objs, err := g.listRecordObjects(q, prefix, startAfter, maxKeys, stop)
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	return keys, err
}

// listedObject is one object of a backend listing of records or held parts.
type listedObject struct {
	Key          string
	Size         int64
	ETag         string
	LastModified string
}

// listRecordObjects is listRecordKeys with each object's size, ETag and time.
func (g *Gateway) listRecordObjects(q *request, prefix, startAfter string, maxKeys int, stop func(string) bool) ([]listedObject, error) {
	var objs []listedObject
	token := ""
	for page := 0; page < maxRecordPages; page++ {
		v := url.Values{"list-type": {"2"}, "prefix": {prefix}, "max-keys": {strconv.Itoa(maxKeys)}}
		if token != "" {
			v.Set("continuation-token", token)
		} else if startAfter != "" {
			v.Set("start-after", startAfter)
		}
		doc, _, err := g.xmlRoundTrip(q, http.MethodGet, target{q.bucket, "", v}, nil, nil)
		if err != nil {
			return nil, err
		}
		var res struct {
			IsTruncated           bool
			NextContinuationToken string
			Contents              []listedObject
		}
		if err := xml.Unmarshal(doc, &res); err != nil {
			return nil, fmt.Errorf("backend listing of upload records: %w", err)
		}
		for _, c := range res.Contents {
			if stop != nil && stop(c.Key) {
				return objs, nil
			}
			objs = append(objs, c)
		}
		if !res.IsTruncated || res.NextContinuationToken == "" {
			break
		}
		token = res.NextContinuationToken
	}
	return objs, nil
}

// clientUploadID is the client's upload id of the backend upload backendID, from its id record;
// "" when there is none, or not exactly one that parses.
func (g *Gateway) clientUploadID(q *request, backendID string) string {
	keys, err := g.listRecordKeys(q, format.IDRecordsOf(backendID), "", 2, nil)
	if err != nil {
		g.log.Warn("could not read an upload record", "request_id", q.id, "bucket", q.bucket, "err", err)
		return ""
	}
	if len(keys) != 1 {
		return ""
	}
	r, err := format.ParseUploadRecord(backendID, keys[0])
	if err != nil || r.Part != 0 {
		g.obs.Tamper(q.op)
		return ""
	}
	return backendID + r.IDSuffix
}

// deleteRecords deletes every record (every version) of the backend upload backendID, best
// effort: a failure is logged and does not fail the client's request.
func (g *Gateway) deleteRecords(q *request, backendID string) {
	if err := g.deleteRecordsUnder(q, format.UploadRecordsOf(backendID)); err != nil {
		g.log.Warn("could not delete upload records", "request_id", q.id, "bucket", q.bucket, "key", q.key, "err", err)
	}
}

// deleteRecordsUnder deletes every key (every version) under prefix, a prefix of records.
func (g *Gateway) deleteRecordsUnder(q *request, prefix string) error {
	err := g.deleteRecordVersions(q, prefix)
	var e *s3err.Error
	if errors.As(err, &e) && e.Code == "NotImplemented" {
		// A backend without ListObjectVersions (the embedded store): no versions to delete.
		var keys []string
		if keys, err = g.listRecordKeys(q, prefix, "", 1000, nil); err == nil {
			vs := make([]recordVersion, len(keys))
			for i, k := range keys {
				vs[i].Key = k
			}
			for len(vs) > 0 && err == nil {
				n := min(len(vs), 1000)
				err, vs = g.deleteKeys(q, prefix, vs[:n]), vs[n:]
			}
		}
	}
	return err
}

// recordVersion is one listed version or delete marker of a record; VersionID is "" for a
// key from a listing without versions (deleted with a plain delete).
type recordVersion struct {
	Key       string
	VersionID string `xml:"VersionId"`
}

// deleteRecordVersions deletes every version and delete marker ListObjectVersions lists under
// prefix, each by its version id ("null" included), so that no version, and no delete marker
// a plain delete would add, is left in a versioning-enabled or suspended bucket.
func (g *Gateway) deleteRecordVersions(q *request, prefix string) error {
	keyMarker, versionMarker := "", ""
	for page := 0; page < maxRecordPages; page++ {
		v := url.Values{"versions": {""}, "prefix": {prefix}, "max-keys": {"1000"}}
		if keyMarker != "" {
			v.Set("key-marker", keyMarker)
			if versionMarker != "" {
				v.Set("version-id-marker", versionMarker)
			}
		}
		doc, _, err := g.xmlRoundTrip(q, http.MethodGet, target{q.bucket, "", v}, nil, nil)
		if err != nil {
			return err
		}
		var res struct {
			IsTruncated         bool
			NextKeyMarker       string
			NextVersionIDMarker string          `xml:"NextVersionIdMarker"`
			Versions            []recordVersion `xml:"Version"`
			DeleteMarkers       []recordVersion `xml:"DeleteMarker"`
		}
		if err := xml.Unmarshal(doc, &res); err != nil {
			return fmt.Errorf("backend listing of upload records: %w", err)
		}
		all := append(res.Versions, res.DeleteMarkers...)
		if err := g.deleteKeys(q, prefix, all); err != nil {
			return err
		}
		if !res.IsTruncated || res.NextKeyMarker == "" {
			return nil
		}
		keyMarker, versionMarker = res.NextKeyMarker, res.NextVersionIDMarker
	}
	return nil
}

// deleteKeys deletes the listed record versions with one DeleteObjects (at most 1,000).
// Only keys under prefix are deleted, whatever the backend listed.
func (g *Gateway) deleteKeys(q *request, prefix string, vs []recordVersion) error {
	var b bytes.Buffer
	b.WriteString("<Delete><Quiet>true</Quiet>")
	n := 0
	for _, v := range vs {
		if len(v.Key) < len(prefix) || v.Key[:len(prefix)] != prefix {
			continue
		}
		n++
		b.WriteString("<Object><Key>")
		b.Write(escapeXMLText(v.Key))
		b.WriteString("</Key>")
		// The listed version id, "null" too: without one, a suspended bucket would replace
		// its null version with a null delete marker, left under the reserved prefix.
		if v.VersionID != "" {
			b.WriteString("<VersionId>")
			b.Write(escapeXMLText(v.VersionID))
			b.WriteString("</VersionId>")
		}
		b.WriteString("</Object>")
	}
	if n == 0 {
		return nil
	}
	b.WriteString("</Delete>")
	h := http.Header{}
	h.Set("Content-Type", "application/xml")
	sum := md5.Sum(b.Bytes())
	h.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	doc, _, err := g.xmlRoundTrip(q, http.MethodPost, target{q.bucket, "", url.Values{"delete": {""}}}, h, b.Bytes())
	if err != nil {
		return err
	}
	if hits, err := findTexts(doc, "DeleteResult/Error/Code"); err != nil || len(hits) > 0 {
		return fmt.Errorf("backend DeleteObjects: %d keys not deleted", len(hits))
	}
	return nil
}

// listMultipartUploads forwards ListMultipartUploads and shows, for every upload with an id
// record, the upload id CreateMultipartUpload gave the client. An upload without one (started
// by an older gateway, or its record lost) keeps the backend's id, which UploadPart refuses
// (NoSuchUpload) but ListParts and AbortMultipartUpload accept.
func (g *Gateway) listMultipartUploads(q *request) error {
	v := backendQuery(q.r)
	clientMarker := v.Get("upload-id-marker")
	if clientMarker != "" {
		v.Set("upload-id-marker", backendUploadID(clientMarker))
	}
	doc, _, err := g.xmlRoundTrip(q, http.MethodGet, target{q.bucket, "", v}, nil, nil)
	if err != nil {
		return err
	}
	const (
		idPath     = "ListMultipartUploadsResult/Upload/UploadId"
		nextPath   = "ListMultipartUploadsResult/NextUploadIdMarker"
		markerPath = "ListMultipartUploadsResult/UploadIdMarker"
	)
	hits, err := findTexts(doc, idPath, nextPath, markerPath)
	if err != nil {
		return s3err.New("InternalError", "The backend's ListMultipartUploads answer is not valid XML.")
	}
	var ids []string
	seen := map[string]bool{}
	for _, h := range hits {
		if h.path != markerPath && h.text != "" && !seen[h.text] {
			seen[h.text] = true
			ids = append(ids, h.text)
		}
	}
	full := make([]string, len(ids))
	g.parallel(len(ids), func(i int) { full[i] = g.clientUploadID(q, ids[i]) })
	byBackend := map[string]string{}
	for i, id := range ids {
		if full[i] != "" {
			byBackend[id] = full[i]
		}
	}
	var spans []span
	for _, h := range hits {
		switch {
		case h.path == markerPath && clientMarker != "":
			spans = append(spans, replaceText(h, clientMarker))
		case h.path != markerPath && byBackend[h.text] != "":
			spans = append(spans, replaceText(h, byBackend[h.text]))
		}
	}
	writeXML(q, http.StatusOK, splice(doc, spans))
	return nil
}

// recordETags maps the part numbers of a backend ListParts answer to their backend ETags
// (quotes removed), from hits of Part/PartNumber and Part/ETag.
func recordETags(hits []textHit) map[int]string {
	nums := map[int]int{} // elem -> part number
	for _, h := range hits {
		if h.path == "ListPartsResult/Part/PartNumber" {
			if n, err := strconv.Atoi(h.text); err == nil && n >= 1 && n <= format.MaxPartNumber {
				nums[h.elem] = n
			}
		}
	}
	etags := map[int]string{}
	for _, h := range hits {
		if h.path != "ListPartsResult/Part/ETag" {
			continue
		}
		if n, ok := nums[h.elem]; ok {
			if e, ok := format.RecordETag(h.text); ok {
				etags[n] = e
			}
		}
	}
	return etags
}

// md5ETag is the ETag of a plaintext MD5.
func md5ETag(sum []byte) string { return `"` + hex.EncodeToString(sum) + `"` }
