package proxy

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/s3path"
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

// backendUploadID is the backend's id inside an upload id given by a client: the gateway's
// format-2 form, a format-1 form (still good to list parts or abort), or a bare backend id as
// a backend listing shows it.
func backendUploadID(id string) string {
	u, _ := format.ParseUploadID(id)
	return u.Backend
}

// uploadTarget is what UploadPart and UploadPartCopy address: the backend upload, the object
// key opened from the envelope the upload id carries (caller zeroes it), and the part number.
type uploadTarget struct {
	backendID string
	key       *format.ObjectKey
	number    int
}

// openUpload opens the object key of the upload q names. The upload id carries the upload's
// envelope (FORMAT.md 3.5.1): it is opened like a stored object's, bound to q's bucket and key,
// with the key provider (cached) or the request's SSE-C key, so only a gateway, or the SSE-C
// key holder, can produce parts.
func (g *Gateway) openUpload(q *request) (string, *format.ObjectKey, error) {
	u, key, err := g.openUploadID(q)
	return u.Backend, key, err
}

// openUploadToWrite is openUpload for the requests that write under the upload's key
// (UploadPart, UploadPartCopy, CompleteMultipartUpload): the credential must also be allowed
// the upload's KMS key (mayUseUploadKey), as it must be to create the upload.
func (g *Gateway) openUploadToWrite(q *request) (string, *format.ObjectKey, error) {
	u, key, err := g.openUploadID(q)
	if err != nil {
		return "", nil, err
	}
	if err := g.mayUseUploadKey(q, u.Envelope); err != nil {
		key.Zero()
		return "", nil, err
	}
	return u.Backend, key, nil
}

// openUploadID parses the upload id q names and opens its envelope (openUpload).
func (g *Gateway) openUploadID(q *request) (format.UploadID, *format.ObjectKey, error) {
	u, err := format.ParseUploadID(q.r.URL.Query().Get("uploadId"))
	if err != nil {
		// Also an id of an older gateway version, or one cut short: S3's message, which
		// clients match.
		return format.UploadID{}, nil, s3err.New("NoSuchUpload", "")
	}
	h := http.Header{}
	if u.Context != "" {
		h.Set(metaCtx, u.Context)
	}
	key, err := g.openKey(q, &storedObject{header: h, env: u.Envelope})
	if errors.Is(err, format.ErrAuth) {
		// An id made for another bucket or key, or altered.
		return format.UploadID{}, nil, s3err.New("NoSuchUpload", "")
	}
	if err != nil {
		return format.UploadID{}, nil, err
	}
	return u, key, nil
}

// partRequest reads and opens what UploadPart and UploadPartCopy address. S3 wants an SSE-C
// upload's key on every part; here it is needed anyway, to open the upload's envelope.
func (g *Gateway) partRequest(q *request) (uploadTarget, error) {
	n, e := partNumber(q.r.URL.Query())
	if e != nil {
		return uploadTarget{}, e
	}
	backendID, key, err := g.openUploadToWrite(q)
	if err != nil {
		return uploadTarget{}, err
	}
	return uploadTarget{backendID: backendID, key: key, number: n}, nil
}

// createMultipart starts an upload whose object key is sealed in the upload's metadata.
func (g *Gateway) createMultipart(q *request) error {
	r := q.r
	choice, err := g.newObjectChoice(q)
	if err != nil {
		return err
	}
	defer choice.ssec.zero()
	if _, err := g.readSmallBody(q); err != nil {
		return err
	}
	s, err := g.seal(q, choice, format.KindMultipart, nil, 0)
	if err != nil {
		return err
	}
	defer s.key.Zero()
	h := outboundHeaders(r.Header)
	g.storedHeaders(h, s)
	t := target{q.bucket, q.key, url.Values{"uploads": {""}}}
	doc, _, err := g.xmlRoundTrip(q, http.MethodPost, t, h, nil)
	if err != nil {
		return err
	}
	hits, err := findTexts(doc, "InitiateMultipartUploadResult/UploadId")
	if err != nil || len(hits) != 1 {
		return s3err.New("InternalError", "The backend's CreateMultipartUpload answer has no upload id.")
	}
	g.keyUse(q, "write", s.keyID, s.wrapped)
	id := format.UploadID{Backend: hits[0].text, Envelope: s.env, Context: s.meta.Get(metaCtx)}
	g.writeIDRecord(q, id)
	out := splice(doc, []span{replaceText(hits[0], id.String())})
	setSSEHeaders(q.w.Header(), s.env, s.meta, choice.ssec)
	writeXML(q, http.StatusOK, out)
	return nil
}

// partNumber parses the partNumber parameter (1..10000).
func partNumber(v url.Values) (int, *s3err.Error) {
	n, err := strconv.Atoi(v.Get("partNumber"))
	if err != nil || n < 1 || n > format.MaxPartNumber {
		return 0, s3err.New("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
	}
	return n, nil
}

// uploadPart encrypts one part under the upload's object key and stores it.
func (g *Gateway) uploadPart(q *request) error {
	r := q.r
	t, err := g.partRequest(q)
	defer q.ssec.zero()
	if err != nil {
		return err
	}
	defer t.key.Zero()
	size, err := payloadSize(q)
	if err != nil {
		return err
	}
	payload := q.auth.Body(r.Body, r.Header)
	defer payload.Close()
	etag, err := g.storePart(q, t, payload, size)
	if err != nil {
		return err
	}
	w := q.w.Header()
	w.Set("Etag", etag)
	if q.ssec != nil {
		w.Set("X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256")
		w.Set("X-Amz-Server-Side-Encryption-Customer-Key-Md5", q.ssec.md5b64)
	}
	if alg, val := payload.Checksum(); alg != "" {
		w.Set(checksumHeader(alg), val)
	}
	w.Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusOK)
	return nil
}

// storePart encrypts size plaintext bytes from src as part t.number of an upload and returns the
// part's client-visible ETag (the plaintext MD5, or the backend's with encryption.etag backend).
func (g *Gateway) storePart(q *request, t uploadTarget, src io.Reader, size int64) (string, error) {
	enc, err := t.key.NewPartEncryptReader(src, t.number, size, format.EncryptOptions{ComputeMD5: g.cfg.ETag == ETagPlaintext})
	if err != nil {
		return "", err
	}
	v := url.Values{"partNumber": {strconv.Itoa(t.number)}, "uploadId": {t.backendID}}
	bt := target{q.bucket, q.key, v}
	resp, err := g.backend.sendObject(q.ctx(), http.MethodPut, bt, http.Header{}, countingReader{enc, &q.storedOut}, enc.Size())
	if err := g.roundTripErr(q, bt, resp, err); err != nil {
		return "", err
	}
	defer resp.Body.Close()
	q.plainIn = size
	if sum := enc.MD5(); sum != nil {
		g.writePartRecord(q, t, resp.Header.Get("Etag"), sum)
		return md5ETag(sum), nil
	}
	return resp.Header.Get("Etag"), nil
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

// clientURL is the object's URL as the client addressed the gateway.
func (g *Gateway) clientURL(q *request) string {
	scheme := "http"
	if q.r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + q.r.Host + "/" + q.bucket + "/" + s3path.Escape(q.key)
}

// abortMultipart forwards an abort with the backend's upload id and, when the backend aborted
// the upload, deletes its upload records.
func (g *Gateway) abortMultipart(q *request) error {
	backendID := backendUploadID(q.r.URL.Query().Get("uploadId"))
	if _, err := g.readSmallBody(q); err != nil {
		return err
	}
	v := url.Values{"uploadId": {backendID}}
	resp, err := g.backend.send(q.ctx(), http.MethodDelete, target{q.bucket, q.key, v}, outboundHeaders(q.r.Header), nil, 0, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		// Not on NoSuchUpload: the id may be right and the key wrong, and the upload alive.
		g.deleteRecords(q, backendID)
	}
	return g.relay(q, resp)
}

// listParts forwards ListParts and shows plaintext part sizes, the client's upload id and, for
// parts with an upload record (FORMAT.md 3.5.3), the ETag UploadPart returned (the plaintext
// MD5). Other parts keep the backend's ETag: parts of an id without the gateway's suffix, of an
// SSE-C upload listed without its key, or of records lost.
func (g *Gateway) listParts(q *request) error {
	clientID := q.r.URL.Query().Get("uploadId")
	backendID := backendUploadID(clientID)
	v := backendQuery(q.r)
	v.Set("uploadId", backendID)
	doc, _, err := g.xmlRoundTrip(q, http.MethodGet, target{q.bucket, q.key, v}, nil, nil)
	if err != nil {
		return err
	}
	hits, err := findTexts(doc, "ListPartsResult/UploadId", "ListPartsResult/Part/Size", "ListPartsResult/Part/PartNumber", "ListPartsResult/Part/ETag")
	if err != nil {
		return s3err.New("InternalError", "The backend's ListParts answer is not valid XML.")
	}
	md5s, err := g.listedPartMD5s(q, clientID, backendID, hits)
	if err != nil {
		return err
	}
	etags := recordETags(hits)
	nums := map[int]int{}
	for _, hit := range hits {
		if hit.path == "ListPartsResult/Part/PartNumber" {
			nums[hit.elem], _ = strconv.Atoi(hit.text)
		}
	}
	var spans []span
	for _, hit := range hits {
		switch hit.path {
		case "ListPartsResult/UploadId":
			spans = append(spans, replaceText(hit, clientID))
		case "ListPartsResult/Part/ETag":
			n := nums[hit.elem]
			if e, ok := format.RecordETag(hit.text); ok && md5s[n] != nil && etags[n] == e {
				spans = append(spans, replaceText(hit, md5ETag(md5s[n])))
			}
		case "ListPartsResult/Part/Size":
			stored, err := strconv.ParseInt(hit.text, 10, 64)
			if err != nil {
				continue
			}
			if plain, err := format.PartDecryptedSize(stored); err == nil {
				spans = append(spans, replaceText(hit, strconv.FormatInt(plain, 10)))
			}
		}
	}
	writeXML(q, http.StatusOK, splice(doc, spans))
	return nil
}

// listedPartMD5s opens the upload's object key and reads the part records of the parts in a
// ListParts answer. Without plaintext ETags, an id that is not the gateway's format-2 id, or an
// SSE-C upload listed without its key, there is nothing to show (nil, no error).
func (g *Gateway) listedPartMD5s(q *request, clientID, backendID string, hits []textHit) (map[int][]byte, error) {
	if g.cfg.ETag != ETagPlaintext {
		return nil, nil
	}
	u, err := format.ParseUploadID(clientID)
	if err != nil {
		return nil, nil
	}
	if u.Envelope.Wrap == format.WrapCustomerKey && q.r.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key") == "" {
		return nil, nil
	}
	etags := recordETags(hits)
	if len(etags) == 0 {
		return nil, nil
	}
	_, key, err := g.openUpload(q)
	defer q.ssec.zero()
	if err != nil {
		return nil, err
	}
	defer key.Zero()
	return g.partMD5s(q, backendID, key, etags)
}
