package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/s3path"
	"github.com/s3seal/s3seal/s3err"
)

// CompleteMultipartUpload (FORMAT.md 3.5.2). S3 lets nothing be read before Complete and
// nothing be written with it, so the gateway completes the backend upload, then reads every
// part boundary of the completed object (K+1 small reads), checks each part against the ETag
// the client sent for it, and seals a part manifest into the object's metadata with a
// server-side copy onto itself (one CopyObject; above the backend's copy limit, an upload of
// UploadPartCopy parts). Readers refuse a format-2 object without a manifest that matches
// its parts, so an object whose completion failed half-way is never served.

// completeMultipart completes an upload.
func (g *Gateway) completeMultipart(q *request) error {
	defer q.ssec.zero()
	return g.complete(q)
}

func (g *Gateway) complete(q *request) error {
	backendID, key, err := g.openUploadToWrite(q)
	if err != nil {
		return err
	}
	defer key.Zero()
	body, err := g.readSmallBody(q)
	if err != nil {
		return err
	}
	parts, err := parseCompleteParts(body)
	if err != nil {
		return err
	}
	stored, err := g.listBackendParts(q, backendID)
	if err != nil {
		return err
	}
	xmlReq, sizes, err := g.backendCompleteRequest(parts, stored)
	if err != nil {
		return err
	}
	h := outboundHeaders(q.r.Header)
	h.Set("Content-Type", "application/xml")
	if err := g.translateConditions(q, h); err != nil {
		return err
	}
	t := target{q.bucket, q.key, url.Values{"uploadId": {backendID}}}
	doc, resp, err := g.xmlRoundTrip(q, http.MethodPost, t, h, xmlReq)
	if err != nil {
		return err
	}
	// The backend upload is gone, whatever the checks below find: so are its records.
	g.deleteRecords(q, backendID)
	hits, err := findTexts(doc, "CompleteMultipartUploadResult/Location", "CompleteMultipartUploadResult/ETag")
	if err != nil {
		return s3err.New("InternalError", "The backend's CompleteMultipartUpload answer is not valid XML.")
	}
	o := &storedObject{header: http.Header{}, versionID: resp.Header.Get("X-Amz-Version-Id")}
	for _, hit := range hits {
		if hit.path == "CompleteMultipartUploadResult/ETag" {
			o.backendETag = hit.text
		}
	}
	for _, s := range sizes {
		o.storedSize += s
	}
	final, f, err := g.sealParts(q, o, key, parts, sizes)
	switch {
	case errors.Is(err, errSuperseded):
		// Another write of the key landed after this Complete (unversioned bucket): on S3 this
		// Complete succeeded and was overwritten. The object is not ours to check or discard.
		g.log.Info("multipart object overwritten before its manifest was written", "request_id", q.id, "bucket", q.bucket, "key", q.key)
		final, f = o, objectFacts{etag: supersededETag(parts, o.backendETag, g.cfg.ETag == ETagPlaintext)}
	case err != nil:
		return err
	default:
		g.cacheWritten(q, writtenVersion{backendETag: final.backendETag, storedSize: final.storedSize, versionID: final.versionID, meta: final.written}, f)
	}
	var spans []span
	for _, hit := range hits {
		switch hit.path {
		case "CompleteMultipartUploadResult/Location":
			spans = append(spans, replaceText(hit, g.clientURL(q)))
		case "CompleteMultipartUploadResult/ETag":
			spans = append(spans, replaceText(hit, f.etag))
		}
	}
	if final.versionID != "" {
		q.w.Header().Set("X-Amz-Version-Id", final.versionID)
	}
	writeXML(q, http.StatusOK, splice(doc, spans))
	return nil
}

// parseCompleteParts reads a CompleteMultipartUpload request body strictly (decodeStrict: one
// root of that name, nothing after it, no element S3 does not define there). A part's
// checksums are accepted and not used: the gateway verified each part's checksum at
// UploadPart, and the backend's request is rebuilt (backendCompleteRequest).
func parseCompleteParts(body []byte) ([]completePart, error) {
	var req struct {
		XMLName xml.Name `xml:"CompleteMultipartUpload"`
		Parts   []struct {
			completePart
			ChecksumCRC32, ChecksumCRC32C, ChecksumCRC64NVME, ChecksumSHA1, ChecksumSHA256 string
		} `xml:"Part"`
	}
	if e := decodeStrict(body, &req); e != nil {
		return nil, e
	}
	if len(req.Parts) == 0 || len(req.Parts) > format.MaxPartNumber {
		return nil, s3err.New("MalformedXML", "")
	}
	parts := make([]completePart, len(req.Parts))
	for i, p := range req.Parts {
		parts[i] = p.completePart
		if p.PartNumber < 1 || p.PartNumber > format.MaxPartNumber || (i > 0 && p.PartNumber <= parts[i-1].PartNumber) {
			return nil, s3err.New("InvalidPartOrder", "")
		}
	}
	return parts, nil
}

// backendCompleteRequest maps the client's parts to the backend's (by number, with the
// backend's ETags) and checks S3's part rules in plaintext terms. It returns the backend's
// request body and the parts' stored sizes.
func (g *Gateway) backendCompleteRequest(parts []completePart, stored map[int]backendPart) ([]byte, []int64, error) {
	var b bytes.Buffer
	b.WriteString("<CompleteMultipartUpload>")
	sizes := make([]int64, len(parts))
	for i, p := range parts {
		bp, ok := stored[p.PartNumber]
		if !ok {
			return nil, nil, invalidPart() // not uploaded
		}
		plain, err := format.PartDecryptedSize(bp.size)
		if err != nil {
			return nil, nil, err
		}
		if i < len(parts)-1 && plain < minPartSize {
			return nil, nil, s3err.Newf("EntityTooSmall", "Part %d is %d bytes; every part but the last must be at least 5 MiB.", p.PartNumber, plain)
		}
		if g.cfg.ETag == ETagBackend && !sameETag(p.ETag, bp.etag) {
			return nil, nil, invalidPart()
		}
		sizes[i] = bp.size
		fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", p.PartNumber, escapeXMLText(bp.etag))
	}
	b.WriteString("</CompleteMultipartUpload>")
	return b.Bytes(), sizes, nil
}

// invalidPart is S3's InvalidPart, with S3's message (clients match it).
func invalidPart() *s3err.Error { return s3err.New("InvalidPart", "") }

// sameETag compares two ETags, quotes and case aside.
func sameETag(a, b string) bool {
	return strings.EqualFold(strings.Trim(a, `" `), strings.Trim(b, `" `))
}

// sealParts checks the just-completed object o part by part against the client's list, and
// writes its part manifest. A failed check is always the client's error (InvalidPart, or the
// authentication error), and the completed version is deleted; the only 200 without a
// manifest is a Complete whose object the gateway verified was replaced by another writer
// (errSuperseded, supersededBy). It returns the final object and its facts.
func (g *Gateway) sealParts(q *request, o *storedObject, key *format.ObjectKey, parts []completePart, sizes []int64) (*storedObject, objectFacts, error) {
	cl, err := g.checkLayout(q, o, key, sizes)
	if err == nil {
		err = checkParts(cl, parts, g.cfg.ETag == ETagPlaintext)
	}
	if err != nil {
		return nil, objectFacts{}, g.refuseParts(q, o, err)
	}
	var etagMD5 []byte
	if g.cfg.ETag == ETagPlaintext {
		h := md5.New()
		for _, m := range cl.md5s {
			h.Write(m)
		}
		etagMD5 = h.Sum(nil)
	}
	manifest, err := key.SealManifest(cl.layout, etagMD5)
	if err != nil {
		return nil, objectFacts{}, err
	}
	final, err := g.writeManifest(q, o, cl.layout, manifest)
	if isPreconditionFailed(err) {
		if g.supersededBy(q, o) {
			return nil, objectFacts{}, errSuperseded
		}
		return nil, objectFacts{}, s3err.New("InternalError", "The backend refused to add the part manifest to the completed object.")
	}
	if err != nil {
		return nil, objectFacts{}, err
	}
	f := objectFacts{encrypted: true, plainSize: cl.layout.PlainSize(), etag: final.backendETag, layout: cl.layout}
	if etagMD5 != nil {
		f.etag = multipartETag(etagMD5, len(cl.layout))
	}
	return final, f, nil
}

// errSuperseded: the object a Complete made was replaced by another write before the gateway
// had checked it and added its manifest. Every backend request of those steps is conditional
// on the completed object's ETag (or names its version), so the replacement shows as 412; a
// 412 is taken for this only once supersededBy has verified the replacing object.
var errSuperseded = errors.New("the completed object was overwritten")

// isPreconditionFailed reports a backend 412 (the gateway's own If-Match conditions: the
// client's conditions apply to the backend Complete only).
func isPreconditionFailed(err error) bool {
	var e *s3err.Error
	return errors.As(err, &e) && e.Code == "PreconditionFailed"
}

// supersededETag is the ETag answered for a Complete whose object was overwritten: S3's
// multipart ETag of the client's part ETags (which the gateway could no longer compare with
// the parts), or the backend's ETag when ETags are the backend's.
func supersededETag(parts []completePart, backendETag string, plaintext bool) string {
	if !plaintext {
		return backendETag
	}
	h := md5.New()
	for _, p := range parts {
		b, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil || len(b) != md5.Size {
			return backendETag
		}
		h.Write(b)
	}
	return multipartETag(h.Sum(nil), len(parts))
}

// refuseParts answers a failed part check (err). A 412 from the check's own reads (each
// conditional on o's ETag) says the key no longer holds o; the backend can answer 412
// whenever it likes, so that is believed only when supersededBy verifies another object in
// o's place (then errSuperseded: o is gone and what replaced it is not the gateway's to
// delete). Any other failure, or a 412 not verified, deletes o (discardVersion checks the key
// still holds it) and is InvalidPart or the authentication error, whatever the backend
// answers to the delete.
func (g *Gateway) refuseParts(q *request, o *storedObject, err error) error {
	if isPreconditionFailed(err) {
		if g.supersededBy(q, o) {
			return errSuperseded
		}
		err = invalidPart()
	}
	g.discardVersion(q, o)
	return err
}

// checkParts compares the completed object's parts with the client's list: the same number
// of parts with the client's part numbers, in its order, and with plaintext ETags each part's
// sealed plaintext MD5 with the client's ETag for it.
//
// The part numbers are what binds the parts to the client's list in every ETag mode: a part
// number is in the part header's PartInfo, which feeds the part key (FORMAT.md 3.5), and
// checkLayout opened every part's trailer under the key its header implies, so each header
// (number, plaintext size, salt) was made by a holder of the upload's object key for this
// upload. A backend that lists part 3 as part 2, or completes other parts than it was asked
// for, shows a number the client did not name. The client names no sizes; the sizes are the
// authenticated headers'. With encryption.etag backend the client's ETags are the backend's
// ciphertext ETags, which say nothing the gateway can check without reading every byte: there
// a part is identified by its number only, so the backend can still complete an earlier upload
// of the same part number of the same upload (a retried part, data the client sent as that
// part), as it can roll back a whole object (docs/SECURITY.md); plaintext ETags catch that too.
func checkParts(cl checkedLayout, parts []completePart, plaintext bool) error {
	if len(cl.layout) != len(parts) {
		return invalidPart()
	}
	for i, p := range parts {
		if cl.layout[i].Number != p.PartNumber {
			return invalidPart()
		}
		if plaintext && (cl.md5s[i] == nil || !sameETag(p.ETag, hex.EncodeToString(cl.md5s[i]))) {
			return invalidPart()
		}
	}
	return nil
}

// discardVersion deletes the object version o (best effort: a failure is logged; the object
// has no manifest and is refused by readers anyway). In an unversioned bucket it first checks
// that the key still holds o: another writer may have replaced it since the Complete, and that
// object is not the gateway's to delete.
func (g *Gateway) discardVersion(q *request, o *storedObject) {
	if o.versionID == "" {
		if _, err := g.headVersion(q, o); isPreconditionFailed(err) {
			return
		}
	}
	resp, err := g.backend.sendSmall(q.ctx(), http.MethodDelete, target{q.bucket, q.key, o.query(q)}, nil, nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return
		}
		err = fmt.Errorf("backend status %d", resp.StatusCode)
	}
	g.log.Warn("could not delete a refused multipart object", "request_id", q.id, "bucket", q.bucket, "key", q.key, "err", err)
}

// manifestCopyHeaders are the headers of a copy of o onto itself that keeps everything the
// object has (metadata, content headers, storage class, object lock) and adds the manifest.
func (g *Gateway) manifestCopyHeaders(o *storedObject, manifest string) http.Header {
	h := http.Header{}
	for name, vs := range o.header {
		cn := http.CanonicalHeaderKey(name)
		if strings.HasPrefix(cn, "X-Amz-Meta-") || isContentHeader(cn) {
			h[cn] = append([]string(nil), vs...)
		}
	}
	for _, name := range []string{"X-Amz-Storage-Class", "X-Amz-Object-Lock-Mode", "X-Amz-Object-Lock-Retain-Until-Date", "X-Amz-Object-Lock-Legal-Hold"} {
		if v := o.header.Get(name); v != "" {
			h.Set(name, v)
		}
	}
	g.backendSSE(h)
	h.Set(format.MetaManifest, manifest)
	return h
}

// copySourceOf is the x-amz-copy-source value naming exactly the version o.
func copySourceOf(q *request, o *storedObject) string {
	cs := "/" + q.bucket + "/" + s3path.Escape(q.key)
	if o.versionID != "" {
		cs += "?versionId=" + url.QueryEscape(o.versionID)
	}
	return cs
}

// writeManifest copies the completed object o onto itself with the manifest added and returns
// the copy. In a versioned bucket the version without the manifest is deleted afterwards.
func (g *Gateway) writeManifest(q *request, o *storedObject, l format.Layout, manifest string) (*storedObject, error) {
	head, err := g.headVersion(q, o)
	if err != nil {
		return nil, err
	}
	h := g.manifestCopyHeaders(head, manifest)
	var final *storedObject
	if o.storedSize <= g.copyLimit() {
		final, err = g.copyOntoItself(q, o, h)
	} else {
		final, err = g.copyPartsOntoItself(q, o, l, h)
	}
	if err != nil {
		return nil, err
	}
	if o.versionID != "" && final.versionID != o.versionID {
		g.discardVersion(q, o)
	}
	final.storedSize, final.written = o.storedSize, h
	return final, nil
}

// sameObject checks that a backend answer about o (asked with If-Match) is about o: a backend
// that ignores If-Match answers for whatever the key holds now. A different ETag is answered
// as S3 answers a failed If-Match.
func sameObject(o *storedObject, resp *http.Response) error {
	if e := resp.Header.Get("ETag"); o.backendETag != "" && e != "" && !sameETag(e, o.backendETag) {
		return s3err.New("PreconditionFailed", "")
	}
	return nil
}

// headVersion reads the headers of exactly the version o.
func (g *Gateway) headVersion(q *request, o *storedObject) (*storedObject, error) {
	t := target{q.bucket, q.key, o.query(q)}
	h := http.Header{}
	h.Set("If-Match", o.backendETag)
	resp, err := g.backend.sendSmall(q.ctx(), http.MethodHead, t, h, nil)
	if err := g.roundTripErr(q, t, resp, err); err != nil {
		return nil, err
	}
	resp.Body.Close()
	if err := sameObject(o, resp); err != nil {
		return nil, err
	}
	return &storedObject{header: resp.Header}, nil
}

// copyLimit is the largest object the backend copies with one CopyObject.
func (g *Gateway) copyLimit() int64 {
	if g.cfg.BackendMaxCopySize > 0 {
		return g.cfg.BackendMaxCopySize
	}
	return maxCopySize
}

// copyOntoItself is one CopyObject of o onto itself with the headers h.
func (g *Gateway) copyOntoItself(q *request, o *storedObject, h http.Header) (*storedObject, error) {
	h.Set("X-Amz-Copy-Source", copySourceOf(q, o))
	h.Set("X-Amz-Copy-Source-If-Match", o.backendETag)
	h.Set("X-Amz-Metadata-Directive", "REPLACE")
	doc, resp, err := g.xmlRoundTrip(q, http.MethodPut, target{q.bucket, q.key, nil}, h, nil)
	if err != nil {
		return nil, err
	}
	etags, err := findTexts(doc, "CopyObjectResult/ETag")
	if err != nil || len(etags) != 1 {
		return nil, s3err.New("InternalError", "The backend's CopyObject answer has no ETag.")
	}
	return &storedObject{backendETag: etags[0].text, versionID: resp.Header.Get("X-Amz-Version-Id")}, nil
}

// copyPartsOntoItself rebuilds o onto itself as a new upload whose parts are UploadPartCopy
// ranges of o's own parts (same numbers and boundaries), created with the headers h.
func (g *Gateway) copyPartsOntoItself(q *request, o *storedObject, l format.Layout, h http.Header) (*storedObject, error) {
	doc, _, err := g.xmlRoundTrip(q, http.MethodPost, target{q.bucket, q.key, url.Values{"uploads": {""}}}, h, nil)
	if err != nil {
		return nil, err
	}
	ids, err := findTexts(doc, "InitiateMultipartUploadResult/UploadId")
	if err != nil || len(ids) != 1 {
		return nil, s3err.New("InternalError", "The backend's CreateMultipartUpload answer has no upload id.")
	}
	id := ids[0].text
	abort := func() {
		if resp, err := g.backend.sendSmall(q.ctx(), http.MethodDelete, target{q.bucket, q.key, url.Values{"uploadId": {id}}}, nil, nil); err == nil {
			resp.Body.Close()
		}
	}
	var b bytes.Buffer
	b.WriteString("<CompleteMultipartUpload>")
	for _, p := range l {
		ph := http.Header{}
		ph.Set("X-Amz-Copy-Source", copySourceOf(q, o))
		ph.Set("X-Amz-Copy-Source-If-Match", o.backendETag)
		ph.Set("X-Amz-Copy-Source-Range", fmt.Sprintf("bytes=%d-%d", p.StoredOffset, p.StoredOffset+p.StoredSize-1))
		v := url.Values{"partNumber": {strconv.Itoa(p.Number)}, "uploadId": {id}}
		pdoc, _, err := g.xmlRoundTrip(q, http.MethodPut, target{q.bucket, q.key, v}, ph, nil)
		if err != nil {
			abort()
			return nil, err
		}
		etags, err := findTexts(pdoc, "CopyPartResult/ETag")
		if err != nil || len(etags) != 1 {
			abort()
			return nil, s3err.New("InternalError", "The backend's UploadPartCopy answer has no ETag.")
		}
		fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", p.Number, escapeXMLText(etags[0].text))
	}
	b.WriteString("</CompleteMultipartUpload>")
	ch := http.Header{}
	ch.Set("Content-Type", "application/xml")
	cdoc, resp, err := g.xmlRoundTrip(q, http.MethodPost, target{q.bucket, q.key, url.Values{"uploadId": {id}}}, ch, b.Bytes())
	if err != nil {
		abort()
		return nil, err
	}
	etags, err := findTexts(cdoc, "CompleteMultipartUploadResult/ETag")
	if err != nil || len(etags) != 1 {
		return nil, s3err.New("InternalError", "The backend's CompleteMultipartUpload answer has no ETag.")
	}
	return &storedObject{backendETag: etags[0].text, versionID: resp.Header.Get("X-Amz-Version-Id")}, nil
}
