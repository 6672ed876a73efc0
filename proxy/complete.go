package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/s3err"
)

// CompleteMultipartUpload (FORMAT.md 3.6). S3 lets nothing of an open upload be read and
// nothing be written with its Complete, so the gateway builds the part manifest from the
// parts' records (sealed under the object key: number, plaintext size, salt, MD5), checks the
// client's list against them, and uploads the manifest as the tail: the backend upload's last
// part, after the client's parts (with the client's last part when that one was held aside).
// The backend Complete then makes the object in one step; nothing is copied or read back, and
// an object whose Complete did not happen has no tail, so readers refuse it.

// completeMultipart completes an upload.
func (g *Gateway) completeMultipart(q *request) error {
	defer q.ssec.zero()
	return g.complete(q)
}

func (g *Gateway) complete(q *request) error {
	u, key, err := g.openUploadToWrite(q)
	if err != nil {
		return err
	}
	defer key.Zero()
	backendID := u.Backend
	body, err := g.readSmallBody(q)
	if err != nil {
		return err
	}
	parts, err := parseCompleteParts(body)
	if err != nil {
		return err
	}
	if err := completeChecksumType(q.r.Header, u.Checksum); err != nil {
		return err
	}
	if err := finalChecksum(q.r.Header, objectChecksum{}); err != nil {
		return err // its form only: the value is checked once computed
	}
	stored, err := g.listBackendParts(q, backendID)
	if err != nil {
		return err
	}
	copies, err := g.uploadParts(q, backendID, key, stored, parts[0].PartNumber, parts[len(parts)-1].PartNumber)
	if err != nil {
		return err
	}
	plan, err := planComplete(parts, copies)
	if err != nil {
		return err
	}
	sum, err := planChecksum(u.Checksum, parts, plan)
	if err != nil {
		return err
	}
	if err := finalChecksum(q.r.Header, sum); err != nil {
		return err
	}
	tail, etagMD5, err := key.SealTailChecksum(plan.manifest, format.ObjectChecksum{Kind: sum.kind, Value: sum.value})
	if err != nil {
		return err
	}
	tailETag, err := g.uploadTail(q, backendID, key, plan, tail)
	if err != nil {
		return err
	}
	h := outboundHeaders(q.r.Header)
	h.Set("Content-Type", "application/xml")
	if err := g.translateConditions(q, h); err != nil {
		return err
	}
	t := target{q.bucket, q.key, url.Values{"uploadId": {backendID}}}
	doc, resp, err := g.xmlRoundTrip(q, http.MethodPost, t, h, plan.backendRequest(tailETag))
	if isNoSuchUpload(err) {
		// A Complete retried after the backend completed the upload (the gateway, or its
		// answer, was lost on the way back): the object the key holds says whether it did.
		return g.completedBefore(q, key, parts, err)
	}
	if err != nil {
		return err
	}
	// The backend upload is gone: so are its records and held parts.
	g.deleteRecords(q, backendID)
	hits, err := findTexts(doc, "CompleteMultipartUploadResult/ETag")
	if err != nil {
		return s3err.New("InternalError", "The backend's CompleteMultipartUpload answer is not valid XML.")
	}
	f := objectFacts{encrypted: true, plainSize: plan.layout.PlainSize(), layout: plan.layout, checksum: sum}
	for _, hit := range hits {
		f.etag = hit.text
	}
	if etagMD5 != nil {
		f.etag = multipartETag(etagMD5, len(plan.manifest))
	}
	// The facts are not cached: they come from the records, not from the object the backend
	// made, which the first read checks in full (tail and every part boundary) before any
	// byte, as FORMAT.md 3.6.5 asks.
	g.objects.lru.Remove(factsCacheKey(q.bucket, q.key))
	return g.answerComplete(q, f, resp.Header.Get("X-Amz-Version-Id"))
}

// completeResult is CompleteMultipartUpload's answer, built from what the gateway knows (the
// backend's would describe ciphertext).
type completeResult struct {
	Location string `xml:"Location"`
	Bucket   string `xml:"Bucket"`
	Key      string `xml:"Key"`
	ETag     string `xml:"ETag"`
	partChecksums
	ChecksumType string `xml:"ChecksumType,omitempty"`
}

// answerComplete answers a Complete that made (or, retried, had made) the object f describes:
// the client's Location, the client-visible ETag, the object's checksum, and the backend's
// version id ("" for none).
func (g *Gateway) answerComplete(q *request, f objectFacts, versionID string) error {
	res := completeResult{Location: g.clientURL(q), Bucket: q.bucket, Key: q.key, ETag: f.etag}
	if c := f.checksum; c.ok() {
		res.partChecksums = res.set(c.kind.Algorithm, c.String())
		res.ChecksumType = c.kind.Type()
	}
	doc, e := encodeDocument("CompleteMultipartUploadResult", res)
	if e != nil {
		return e
	}
	if versionID != "" {
		q.w.Header().Set("X-Amz-Version-Id", versionID)
	}
	writeXML(q, http.StatusOK, append([]byte(xml.Header), doc...))
	return nil
}

// planChecksum checks the checksums the client's parts carry against the parts' records, for
// an upload of kind k, and computes the object's checksum (uploadChecksum).
func planChecksum(k format.ChecksumKind, parts []completePart, p completePlan) (objectChecksum, error) {
	for i, cp := range parts {
		if err := checkCompletedPart(k, cp.PartNumber, cp.partChecksums, p.parts[i].facts.Checksum); err != nil {
			return objectChecksum{}, err
		}
	}
	return uploadChecksum(k, p.parts)
}

// parseCompleteParts reads a CompleteMultipartUpload request body strictly (decodeStrict: one
// root of that name, nothing after it, no element S3 does not define there). A part's
// checksums are checked against its record (planChecksum); the backend's request is rebuilt
// without them (completePlan.backendRequest).
func parseCompleteParts(body []byte) ([]completePart, error) {
	var req struct {
		XMLName xml.Name       `xml:"CompleteMultipartUpload"`
		Parts   []completePart `xml:"Part"`
	}
	if e := decodeStrict(body, &req); e != nil {
		return nil, e
	}
	if len(req.Parts) == 0 || len(req.Parts) > format.MaxPartNumber {
		return nil, s3err.New("MalformedXML", "")
	}
	parts := req.Parts
	for i, p := range parts {
		if p.PartNumber < 1 || p.PartNumber > format.MaxPartNumber || (i > 0 && p.PartNumber <= parts[i-1].PartNumber) {
			return nil, s3err.New("InvalidPartOrder", "")
		}
	}
	return parts, nil
}

// completePlan is a checked CompleteMultipartUpload: the copy of each part the client named,
// the manifest built from their records, and the layout of the object it makes.
type completePlan struct {
	parts    []storedPart
	manifest []format.ManifestPart
	layout   format.Layout
}

// planComplete resolves the client's parts to stored copies (pickPart: a recorded copy whose
// ETag is the client's) and checks S3's part rules in plaintext terms, before anything is
// written. The client names each part by its number and ETag: with plaintext ETags a copy is
// identified by its sealed MD5, so the backend cannot substitute an earlier upload of the same
// part number; with encryption.etag backend by the backend's ETag (docs/SECURITY.md).
func planComplete(parts []completePart, copies map[int][]storedPart) (completePlan, error) {
	var p completePlan
	for i, cp := range parts {
		c, ok := pickPart(copies[cp.PartNumber], cp.ETag)
		if !ok {
			return completePlan{}, invalidPart() // not uploaded, no record, or another ETag
		}
		if i < len(parts)-1 && c.facts.PlainSize < minPartSize {
			return completePlan{}, s3err.Newf("EntityTooSmall", "Part %d is %d bytes; every part but the last must be at least 5 MiB.", cp.PartNumber, c.facts.PlainSize)
		}
		p.parts = append(p.parts, c)
		p.manifest = append(p.manifest, format.ManifestPart{Number: c.number, PlainSize: c.facts.PlainSize, Salt: c.facts.Salt, MD5: c.facts.MD5})
	}
	numbers := make([]int, len(p.parts))
	sizes := make([]int64, len(p.parts))
	for i, c := range p.parts {
		numbers[i], sizes[i] = c.number, format.PartEncryptedSize(c.facts.PlainSize)
	}
	l, err := format.NewLayout(numbers, sizes)
	if err != nil {
		return completePlan{}, err
	}
	for i := range l {
		l[i].ID = p.parts[i].facts.Salt
	}
	p.layout = l
	return p, nil
}

// last is the client's last part.
func (p completePlan) last() storedPart { return p.parts[len(p.parts)-1] }

// tailNumber is the backend part number of the tail: the last part's own when that part is
// held (its bytes go first in the tail's part), else the next one (below 10,000: part 10,000
// is always held).
func (p completePlan) tailNumber() int {
	if l := p.last(); l.held != "" {
		return l.number
	}
	return p.last().number + 1
}

// backendRequest is the backend's CompleteMultipartUpload body: the client's backend parts
// and the tail.
func (p completePlan) backendRequest(tailETag string) []byte {
	var b bytes.Buffer
	b.WriteString("<CompleteMultipartUpload>")
	for _, c := range p.parts {
		if c.held == "" {
			fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", c.number, escapeXMLText(`"`+c.etag+`"`))
		}
	}
	fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", p.tailNumber(), escapeXMLText(tailETag))
	b.WriteString("</CompleteMultipartUpload>")
	return b.Bytes()
}

// uploadTail uploads the tail as the backend upload's part p.tailNumber(): the tail alone, or
// after the held last part, read back and checked on the way (every segment and the trailer
// under the part's key, its header the one its record describes) so that a held copy the
// backend altered fails this Complete rather than every read of the object. It returns the
// backend's ETag of the part.
func (g *Gateway) uploadTail(q *request, backendID string, key *format.ObjectKey, p completePlan, tail []byte) (string, error) {
	var body io.Reader = bytes.NewReader(tail)
	length := int64(len(tail))
	var check *heldCheck
	if last := p.last(); last.held != "" {
		held, err := g.readHeld(q, last)
		if err != nil {
			return "", err
		}
		defer held.Close()
		check = newHeldCheck(key, p.manifest[len(p.manifest)-1], held)
		body = io.MultiReader(check, body)
		length += last.size
	}
	t := target{q.bucket, q.key, url.Values{"partNumber": {strconv.Itoa(p.tailNumber())}, "uploadId": {backendID}}}
	resp, err := g.backend.sendObject(q.ctx(), http.MethodPut, t, http.Header{}, countingReader{body, &q.storedOut}, length)
	if err := g.roundTripErr(q, t, resp, err); err != nil {
		if check != nil {
			_ = check.wait()
		}
		return "", err
	}
	drain(resp)
	if check != nil {
		// The backend took every byte: the check has seen them all.
		if err := check.wait(); err != nil {
			g.obs.Tamper(q.op)
			return "", fmt.Errorf("%w: the held last part: %v", format.ErrAuth, err)
		}
	}
	etag := resp.Header.Get("Etag")
	if etag == "" {
		return "", s3err.New("InternalError", "The backend's UploadPart answer has no ETag.")
	}
	return etag, nil
}

// readHeld opens the held copy c (exactly the one listed: If-Match on its ETag).
func (g *Gateway) readHeld(q *request, c storedPart) (io.ReadCloser, error) {
	t := target{q.bucket, c.held, nil}
	h := http.Header{}
	h.Set("If-Match", `"`+c.etag+`"`)
	resp, err := g.backend.send(q.ctx(), http.MethodGet, t, h, nil, 0, "")
	if err := g.roundTripErr(q, t, resp, err); err != nil {
		return nil, err
	}
	if resp.ContentLength != c.size {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: held part of %d bytes, listed with %d", format.ErrAuth, resp.ContentLength, c.size)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, c.size), resp.Body}, nil
}

// invalidPart is S3's InvalidPart, with S3's message (clients match it).
func invalidPart() *s3err.Error { return s3err.New("InvalidPart", "") }

// sameETag compares two ETags, quotes and case aside.
func sameETag(a, b string) bool {
	return strings.EqualFold(strings.Trim(a, `" `), strings.Trim(b, `" `))
}

// isNoSuchUpload reports the backend's NoSuchUpload.
func isNoSuchUpload(err error) bool {
	var e *s3err.Error
	return errors.As(err, &e) && e.Code == "NoSuchUpload"
}

// completedBefore answers a Complete the backend no longer knows the upload of (backendErr):
// when the key holds this upload's object -- the envelope the upload id carries, byte for
// byte, a tail and parts that check as every read checks them, and the parts the client names
// now (their numbers, and with plaintext ETags their MD5s through the multipart ETag) -- an
// earlier Complete of it succeeded and this one is answered as S3 answers it, 200 with the
// object's ETag. Anything else is backendErr.
func (g *Gateway) completedBefore(q *request, key *format.ObjectKey, parts []completePart, backendErr error) error {
	u, err := format.ParseUploadID(q.r.URL.Query().Get("uploadId"))
	if err != nil {
		return backendErr
	}
	cur, err := g.headCurrent(q)
	if err != nil || cur.env == nil || cur.env.Encode() != u.Envelope.Encode() {
		return backendErr
	}
	f, err := g.checkMultipart(q, cur, key)
	if err != nil {
		g.log.Warn("Complete: the object of this upload does not check", "request_id", q.id, "bucket", q.bucket, "key", q.key, "err", err)
		return backendErr
	}
	if len(f.layout) != len(parts) {
		return backendErr
	}
	for i, p := range parts {
		if f.layout[i].Number != p.PartNumber {
			return backendErr
		}
	}
	if g.cfg.ETag == ETagPlaintext && !sameETag(f.etag, clientMultipartETag(parts)) {
		return backendErr
	}
	g.deleteRecords(q, u.Backend)
	v := cur.header.Get("X-Amz-Version-Id")
	if v == "null" {
		v = ""
	}
	return g.answerComplete(q, f, v)
}

// clientMultipartETag is S3's multipart ETag of the client's part ETags ("" if one is not an
// MD5).
func clientMultipartETag(parts []completePart) string {
	h := md5.New()
	for _, p := range parts {
		b, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil || len(b) != md5.Size {
			return ""
		}
		h.Write(b)
	}
	return multipartETag(h.Sum(nil), len(parts))
}

// isPreconditionFailed reports a backend 412 (the gateway's own If-Match conditions: the
// client's conditions apply to the backend Complete only).
func isPreconditionFailed(err error) bool {
	var e *s3err.Error
	return errors.As(err, &e) && e.Code == "PreconditionFailed"
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

// headCurrent reads the headers of the object the key holds now.
func (g *Gateway) headCurrent(q *request) (*storedObject, error) {
	t := target{q.bucket, q.key, nil}
	resp, err := g.backend.sendSmall(q.ctx(), http.MethodHead, t, nil, nil)
	if err := g.roundTripErr(q, t, resp, err); err != nil {
		return nil, err
	}
	resp.Body.Close()
	return parseStored(resp)
}
