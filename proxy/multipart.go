package proxy

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/s3err"
)

// Multipart uploads (FORMAT.md 3.4). CreateMultipartUpload seals the object's envelope into the
// upload's metadata and hands the client an upload id that carries the upload's public key, so
// that any gateway process can encrypt any part, in any order, without state or a KMS call.

// minPartSize is S3's minimum size of every part but the last, applied to plaintext sizes.
const minPartSize = 5 << 20

// maxXMLBody bounds the XML documents of multipart requests and responses.
const maxXMLBody = 4 << 20

// xmlRoundTrip sends a request with a small body (nil for none) and returns the backend's XML
// answer (body read and closed). A failed round trip, a non-2xx answer and an error document
// sent with 200 (S3 does that for CompleteMultipartUpload and CopyObject) are errors, S3 errors
// where the backend gave one.
func (g *Gateway) xmlRoundTrip(q *request, method string, t target, h http.Header, body []byte) ([]byte, *http.Response, error) {
	resp, err := g.backend.sendSmall(q.ctx(), method, t, h, body)
	if err := g.roundTripErr(q, t, resp, err); err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	doc, err := io.ReadAll(io.LimitReader(resp.Body, maxXMLBody))
	if err != nil {
		return nil, nil, err
	}
	if e := s3err.Parse(doc, http.StatusInternalServerError); e != nil {
		e.Status = s3err.StatusOf(e.Code)
		return nil, nil, e
	}
	return doc, resp, nil
}

// writeXML sends an XML document.
func writeXML(q *request, status int, doc []byte) {
	h := q.w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(doc)))
	q.w.WriteHeader(status)
	_, _ = q.w.Write(doc)
}

// clientUploadID decodes an upload id given by a client: the gateway's form (with the upload
// public key), or a bare backend id as ListMultipartUploads shows it (upub nil: good enough to
// list parts or abort, not to upload).
func clientUploadID(id string) (backendID string, upub []byte) {
	if b, pub, err := format.DecodeUploadID(id); err == nil {
		return b, pub
	}
	return id, nil
}

// createMultipart starts an upload whose object key is sealed in the upload's metadata.
func (g *Gateway) createMultipart(q *request) {
	r := q.r
	choice, ok := g.newObjectChoice(q)
	if !ok {
		return
	}
	defer choice.ssec.zero()
	if _, err := g.readSmallBody(q); err != nil {
		g.failErr(q, err)
		return
	}
	s, err := g.seal(q, choice, format.KindMultipart, nil, 0)
	if err != nil {
		g.failErr(q, err)
		return
	}
	defer s.key.Zero()
	upub, err := s.key.UploadPublicKey()
	if err != nil {
		g.failErr(q, err)
		return
	}
	h := outboundHeaders(r.Header)
	g.storedHeaders(h, s)
	t := target{q.bucket, q.key, url.Values{"uploads": {""}}}
	doc, _, err := g.xmlRoundTrip(q, http.MethodPost, t, h, nil)
	if err != nil {
		g.failBackend(q, err)
		return
	}
	hits, err := findTexts(doc, "InitiateMultipartUploadResult/UploadId")
	if err != nil || len(hits) != 1 {
		g.fail(q, s3err.New("InternalError", "The backend's CreateMultipartUpload answer has no upload id."))
		return
	}
	g.keyUse(q, "write", s.keyID, s.wrapped)
	out := splice(doc, []span{replaceText(hits[0], format.EncodeUploadID(hits[0].text, upub))})
	setSSEHeaders(q.w.Header(), s.env, s.meta, choice.ssec)
	writeXML(q, http.StatusOK, out)
}

// partNumber parses the partNumber parameter (1..10000).
func partNumber(v url.Values) (int, *s3err.Error) {
	n, err := strconv.Atoi(v.Get("partNumber"))
	if err != nil || n < 1 || n > format.MaxPartNumber {
		return 0, s3err.New("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
	}
	return n, nil
}

// partRequest reads what UploadPart and UploadPartCopy address: the upload (its backend id and
// public key), the part number, and the SSE-C key if one is given (S3 wants an SSE-C upload's
// key on every part; the parts themselves are encrypted to the upload's public key, so the
// gateway only checks that a key, if given, is well formed). On failure it has answered.
func (g *Gateway) partRequest(q *request) (backendID string, upub []byte, n int, ck *customerKey, ok bool) {
	v := q.r.URL.Query()
	backendID, upub = clientUploadID(v.Get("uploadId"))
	if upub == nil {
		g.fail(q, s3err.New("NoSuchUpload", "The upload id was not issued by this gateway (or is truncated)."))
		return "", nil, 0, nil, false
	}
	n, e := partNumber(v)
	if e == nil {
		ck, e = g.requestCustomerKey(q, ssecHeaders)
	}
	if e != nil {
		g.fail(q, e)
		return "", nil, 0, nil, false
	}
	return backendID, upub, n, ck, true
}

// uploadPart encrypts one part to the upload's public key and stores it.
func (g *Gateway) uploadPart(q *request) {
	r := q.r
	backendID, upub, n, ck, ok := g.partRequest(q)
	if !ok {
		return
	}
	defer ck.zero()
	size := q.auth.DecodedLength
	if size < 0 {
		g.fail(q, s3err.New("MissingContentLength", ""))
		return
	}
	if size > maxPutSize {
		g.fail(q, s3err.New("EntityTooLarge", ""))
		return
	}
	payload := q.auth.Body(r.Body, r.Header)
	defer payload.Close()
	etag, ok := g.storePart(q, backendID, upub, n, payload, size)
	if !ok {
		return
	}
	w := q.w.Header()
	w.Set("Etag", etag)
	if ck != nil {
		w.Set("X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256")
		w.Set("X-Amz-Server-Side-Encryption-Customer-Key-Md5", ck.md5b64)
	}
	if alg, val := payload.Checksum(); alg != "" {
		w.Set(checksumHeader(alg), val)
	}
	w.Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusOK)
}

// storePart encrypts size plaintext bytes from src as part n of an upload and returns the
// part's client-visible ETag (the plaintext MD5). On failure it has answered the client and
// returns false.
func (g *Gateway) storePart(q *request, backendID string, upub []byte, n int, src io.Reader, size int64) (string, bool) {
	enc, err := format.NewPartEncryptReader(src, upub, n, size, format.EncryptOptions{ComputeMD5: g.cfg.ETag == ETagPlaintext})
	if err != nil {
		g.failErr(q, err)
		return "", false
	}
	v := url.Values{"partNumber": {strconv.Itoa(n)}, "uploadId": {backendID}}
	t := target{q.bucket, q.key, v}
	resp, err := g.backend.sendObject(q.ctx(), http.MethodPut, t, http.Header{}, countingReader{enc, &q.storedOut}, enc.Size())
	if err := g.roundTripErr(q, t, resp, err); err != nil {
		g.failBackend(q, err)
		return "", false
	}
	defer resp.Body.Close()
	q.plainIn = size
	if sum := enc.MD5(); sum != nil {
		return `"` + hex.EncodeToString(sum) + `"`, true
	}
	return resp.Header.Get("Etag"), true
}

// checksumHeader is the response header for a checksum algorithm name (CRC32 -> X-Amz-Checksum-Crc32).
func checksumHeader(alg string) string {
	return http.CanonicalHeaderKey("X-Amz-Checksum-" + strings.ToLower(alg))
}

// completePart is one <Part> of a CompleteMultipartUpload request.
type completePart struct {
	PartNumber int    `xml:"PartNumber"`
	ETag       string `xml:"ETag"`
}

// backendPart is one part as the backend lists it.
type backendPart struct {
	etag string
	size int64
}

// listBackendParts lists every part of a backend upload (all pages).
func (g *Gateway) listBackendParts(q *request, backendID string) (map[int]backendPart, error) {
	parts := map[int]backendPart{}
	marker := ""
	for page := 0; page < 11; page++ { // 10,000 parts at 1,000 a page
		v := url.Values{"uploadId": {backendID}, "max-parts": {"1000"}}
		if marker != "" {
			v.Set("part-number-marker", marker)
		}
		doc, _, err := g.xmlRoundTrip(q, http.MethodGet, target{q.bucket, q.key, v}, nil, nil)
		if err != nil {
			return nil, err
		}
		var res struct {
			IsTruncated          bool
			NextPartNumberMarker string
			Part                 []struct {
				PartNumber int
				ETag       string
				Size       int64
			}
		}
		if err := xml.Unmarshal(doc, &res); err != nil {
			return nil, fmt.Errorf("backend ListParts: %w", err)
		}
		for _, p := range res.Part {
			parts[p.PartNumber] = backendPart{etag: p.ETag, size: p.Size}
		}
		if !res.IsTruncated || res.NextPartNumberMarker == "" {
			return parts, nil
		}
		marker = res.NextPartNumberMarker
	}
	return parts, nil
}

// completeMultipart completes the backend upload with the backend's part ETags.
func (g *Gateway) completeMultipart(q *request) {
	backendID, _ := clientUploadID(q.r.URL.Query().Get("uploadId"))
	body, err := g.readSmallBody(q)
	if err != nil {
		g.failErr(q, err)
		return
	}
	var req struct {
		Parts []completePart `xml:"Part"`
	}
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Parts) == 0 {
		g.fail(q, s3err.New("MalformedXML", ""))
		return
	}
	for i, p := range req.Parts {
		if p.PartNumber < 1 || p.PartNumber > format.MaxPartNumber || (i > 0 && p.PartNumber <= req.Parts[i-1].PartNumber) {
			g.fail(q, s3err.New("InvalidPartOrder", ""))
			return
		}
	}
	stored, err := g.listBackendParts(q, backendID)
	if err != nil {
		g.failBackend(q, err)
		return
	}
	var xmlReq bytes.Buffer
	xmlReq.WriteString("<CompleteMultipartUpload>")
	numbers := make([]int, len(req.Parts))
	sizes := make([]int64, len(req.Parts))
	for i, p := range req.Parts {
		bp, ok := stored[p.PartNumber]
		if !ok {
			g.fail(q, s3err.Newf("InvalidPart", "Part %d was not uploaded.", p.PartNumber))
			return
		}
		plain, err := format.PartDecryptedSize(bp.size)
		if err != nil {
			g.failErr(q, err)
			return
		}
		if i < len(req.Parts)-1 && plain < minPartSize {
			g.fail(q, s3err.Newf("EntityTooSmall", "Part %d is %d bytes; every part but the last must be at least 5 MiB.", p.PartNumber, plain))
			return
		}
		numbers[i], sizes[i] = p.PartNumber, bp.size
		fmt.Fprintf(&xmlReq, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", p.PartNumber, escapeXMLText(bp.etag))
	}
	xmlReq.WriteString("</CompleteMultipartUpload>")
	layout, err := format.NewLayout(numbers, sizes)
	if err != nil {
		g.failErr(q, err)
		return
	}

	h := outboundHeaders(q.r.Header)
	h.Set("Content-Type", "application/xml")
	if !g.translateIfMatch(q, h) {
		return
	}
	t := target{q.bucket, q.key, url.Values{"uploadId": {backendID}}}
	doc, resp, err := g.xmlRoundTrip(q, http.MethodPost, t, h, xmlReq.Bytes())
	if err != nil {
		g.failBackend(q, err)
		return
	}
	hits, err := findTexts(doc, "CompleteMultipartUploadResult/Location", "CompleteMultipartUploadResult/ETag")
	if err != nil {
		g.failErr(q, s3err.New("InternalError", "The backend's CompleteMultipartUpload answer is not valid XML."))
		return
	}
	var spans []span
	for _, hit := range hits {
		switch hit.path {
		case "CompleteMultipartUploadResult/Location":
			spans = append(spans, replaceText(hit, g.clientURL(q)))
		case "CompleteMultipartUploadResult/ETag":
			g.objects.Add(factsKey(q.bucket, q.key, hit.text), objectFacts{
				encrypted: true, plainSize: layout.PlainSize(), etag: hit.text, layout: layout})
		}
	}
	if v := resp.Header.Get("X-Amz-Version-Id"); v != "" {
		q.w.Header().Set("X-Amz-Version-Id", v)
	}
	writeXML(q, http.StatusOK, splice(doc, spans))
}

// clientURL is the object's URL as the client addressed the gateway.
func (g *Gateway) clientURL(q *request) string {
	scheme := "http"
	if q.r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + q.r.Host + "/" + q.bucket + "/" + s3Escape(q.key)
}

// abortMultipart forwards an abort with the backend's upload id.
func (g *Gateway) abortMultipart(q *request) {
	backendID, _ := clientUploadID(q.r.URL.Query().Get("uploadId"))
	if _, err := g.readSmallBody(q); err != nil {
		g.failErr(q, err)
		return
	}
	v := url.Values{"uploadId": {backendID}}
	resp, err := g.backend.send(q.ctx(), http.MethodDelete, target{q.bucket, q.key, v}, outboundHeaders(q.r.Header), nil, 0, "")
	if err != nil {
		g.failBackend(q, err)
		return
	}
	defer resp.Body.Close()
	g.relay(q, resp)
}

// listParts forwards ListParts and shows plaintext part sizes and the client's upload id.
// Part ETags are the backend's: the plaintext MD5s returned by UploadPart are not stored
// anywhere readable before the upload completes.
func (g *Gateway) listParts(q *request) {
	clientID := q.r.URL.Query().Get("uploadId")
	backendID, _ := clientUploadID(clientID)
	v := backendQuery(q.r)
	v.Set("uploadId", backendID)
	doc, _, err := g.xmlRoundTrip(q, http.MethodGet, target{q.bucket, q.key, v}, nil, nil)
	if err != nil {
		g.failBackend(q, err)
		return
	}
	hits, err := findTexts(doc, "ListPartsResult/UploadId", "ListPartsResult/Part/Size")
	if err != nil {
		g.failErr(q, s3err.New("InternalError", "The backend's ListParts answer is not valid XML."))
		return
	}
	var spans []span
	for _, hit := range hits {
		if hit.path == "ListPartsResult/UploadId" {
			spans = append(spans, replaceText(hit, clientID))
			continue
		}
		stored, err := strconv.ParseInt(hit.text, 10, 64)
		if err != nil {
			continue
		}
		if plain, err := format.PartDecryptedSize(stored); err == nil {
			spans = append(spans, replaceText(hit, strconv.FormatInt(plain, 10)))
		}
	}
	writeXML(q, http.StatusOK, splice(doc, spans))
}
