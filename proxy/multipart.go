package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/s3path"
	"github.com/s3seal/s3seal/s3err"
)

// Multipart uploads (FORMAT.md 3.6). CreateMultipartUpload seals the object's envelope into the
// upload's metadata and hands the client an upload id that carries the envelope, so that any
// gateway process can encrypt any part, in any order, without state and with a cached key.

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
// key opened from the envelope the upload id carries (caller zeroes it), the part number, and
// the upload's checksum algorithm and type (from its id).
type uploadTarget struct {
	backendID string
	key       *format.ObjectKey
	number    int
	checksum  format.ChecksumKind
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
func (g *Gateway) openUploadToWrite(q *request) (format.UploadID, *format.ObjectKey, error) {
	u, key, err := g.openUploadID(q)
	if err != nil {
		return format.UploadID{}, nil, err
	}
	if u.Envelope.Version() != format.Version3 {
		// A format-2 upload, started before the gateway wrote format 3: its parts have
		// records without the headers the tail is built from. It can be listed and aborted.
		key.Zero()
		return format.UploadID{}, nil, s3err.New("NoSuchUpload", "")
	}
	if err := g.mayUseUploadKey(q, u.Envelope); err != nil {
		key.Zero()
		return format.UploadID{}, nil, err
	}
	return u, key, nil
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
	u, key, err := g.openUploadToWrite(q)
	if err != nil {
		return uploadTarget{}, err
	}
	return uploadTarget{backendID: u.Backend, key: key, number: n, checksum: u.Checksum}, nil
}

// createMultipart starts an upload whose object key is sealed in the upload's metadata.
func (g *Gateway) createMultipart(q *request) error {
	r := q.r
	choice, err := g.newObjectChoice(q)
	if err != nil {
		return err
	}
	defer choice.ssec.zero()
	kind, err := uploadChecksumKind(r.Header)
	if err != nil {
		return err
	}
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
	id := format.UploadID{Backend: hits[0].text, Envelope: s.env, Context: s.meta.Get(metaCtx), Checksum: kind}
	g.writeIDRecord(q, id)
	out := splice(doc, []span{replaceText(hits[0], id.String())})
	setSSEHeaders(q.w.Header(), s.env, s.meta, choice.ssec)
	setUploadChecksumHeaders(q.w.Header(), kind)
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
	sent := payload.ChecksumAlgorithm()
	if _, err := partChecksumAlgorithm(t.checksum, sent); err != nil {
		return err
	}
	part, err := g.storePart(q, t, payload, size)
	if err != nil {
		return err
	}
	w := q.w.Header()
	w.Set("Etag", part.etag)
	if q.ssec != nil {
		w.Set("X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256")
		w.Set("X-Amz-Server-Side-Encryption-Customer-Key-Md5", q.ssec.md5b64)
	}
	if part.checksum.Algorithm != format.ChecksumNone {
		// The gateway's, of the plaintext it encrypted: the client's, when it sent one (the
		// payload verified it).
		w.Set(http.CanonicalHeaderKey(part.checksum.Algorithm.Header()), base64.StdEncoding.EncodeToString(part.checksum.Value))
	} else if alg, val := payload.Checksum(); alg != "" {
		w.Set(checksumHeader(alg), val)
	}
	w.Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusOK)
	return nil
}

// storedPartResult is what the client hears of a stored part: its ETag and, in an upload with a
// checksum algorithm, its checksum.
type storedPartResult struct {
	etag     string
	checksum format.PartChecksum
}

// storePart encrypts size plaintext bytes from src as part t.number of an upload and returns the
// part's client-visible ETag (the plaintext MD5, or the backend's with encryption.etag backend)
// and, in an upload with a checksum algorithm, the part's checksum of that algorithm, which its
// record keeps.
// A part that can only be the upload's last one is held aside (FORMAT.md 3.6: under 5 MiB, or
// number 10,000), for Complete to send with the tail. The part's record, which Complete builds
// the manifest from, is written before the client hears of the part: a part without one could
// not be completed, so a record that cannot be written fails the part (the client retries it).
func (g *Gateway) storePart(q *request, t uploadTarget, src io.Reader, size int64) (storedPartResult, error) {
	enc, err := t.key.NewPartEncryptReader(src, t.number, size, format.EncryptOptions{ComputeMD5: g.cfg.ETag == ETagPlaintext, Checksum: t.checksum.Algorithm})
	if err != nil {
		return storedPartResult{}, err
	}
	bt := target{q.bucket, q.key, url.Values{"partNumber": {strconv.Itoa(t.number)}, "uploadId": {t.backendID}}}
	h := http.Header{}
	if heldPart(t.number, size) {
		// The id starts with the time, so that the newest copy of a part sorts last.
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], uint64(g.cfg.Now().UnixNano()))
		if _, err := rand.Read(id[8:]); err != nil {
			return storedPartResult{}, err
		}
		bt = target{q.bucket, format.HeldPartKey(t.backendID, t.number, id), nil}
		g.backendSSE(h)
	}
	resp, err := g.backend.sendObject(q.ctx(), http.MethodPut, bt, h, countingReader{enc, &q.storedOut}, enc.Size())
	if err := g.roundTripErr(q, bt, resp, err); err != nil {
		return storedPartResult{}, err
	}
	defer resp.Body.Close()
	q.plainIn = size
	backendETag := resp.Header.Get("Etag")
	f := format.PartFacts{MD5: enc.MD5(), PlainSize: size}
	if a := t.checksum.Algorithm; a != format.ChecksumNone {
		f.Checksum = format.PartChecksum{Algorithm: a, Value: enc.Checksum()}
	}
	copy(f.Salt[:], enc.PartHeader()[format.PartHeaderSize-32:])
	if err := g.writePartRecord(q, t, backendETag, f); err != nil {
		return storedPartResult{}, err
	}
	res := storedPartResult{etag: backendETag, checksum: f.Checksum}
	if f.MD5 != nil {
		res.etag = md5ETag(f.MD5)
	}
	return res, nil
}

// heldPart reports whether a part of size plaintext bytes numbered n is held aside rather
// than uploaded as a backend part (FORMAT.md 3.6): it can only be the last part of the
// object (S3 wants every other part to be at least 5 MiB; nothing follows part 10,000), and
// the gateway's tail must follow the last part in the backend's upload.
func heldPart(n int, size int64) bool {
	return size < minPartSize || n == format.MaxPartNumber
}

// checksumHeader is the response header for a checksum algorithm name (CRC32 -> X-Amz-Checksum-Crc32).
func checksumHeader(alg string) string {
	return http.CanonicalHeaderKey("X-Amz-Checksum-" + strings.ToLower(alg))
}

// completePart is one <Part> of a CompleteMultipartUpload request.
type completePart struct {
	PartNumber int    `xml:"PartNumber"`
	ETag       string `xml:"ETag"`
	partChecksums
}

// backendPart is one part as the backend lists it.
type backendPart struct {
	etag     string
	size     int64
	modified string
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
				PartNumber   int
				ETag         string
				Size         int64
				LastModified string
			}
		}
		if err := xml.Unmarshal(doc, &res); err != nil {
			return nil, fmt.Errorf("backend ListParts: %w", err)
		}
		for _, p := range res.Part {
			parts[p.PartNumber] = backendPart{etag: p.ETag, size: p.Size, modified: p.LastModified}
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

// listParts answers ListParts from the backend's answer, rebuilt: plaintext part sizes, the
// client's upload id, the held parts (FORMAT.md 3.6) merged in, and for parts with a record
// the ETag UploadPart returned (the plaintext MD5) and the checksum the gateway sealed in the
// part's record (an upload with a checksum algorithm). The backend's checksums would be of the
// ciphertext and are never shown. Parts keep the backend's ETag where there is nothing to show:
// an id without the gateway's suffix, an SSE-C upload listed without its key, a format-2
// upload, records lost.
func (g *Gateway) listParts(q *request) error {
	clientID := q.r.URL.Query().Get("uploadId")
	backendID := backendUploadID(clientID)
	v := backendQuery(q.r)
	v.Set("uploadId", backendID)
	doc, _, err := g.xmlRoundTrip(q, http.MethodGet, target{q.bucket, q.key, v}, nil, nil)
	if err != nil {
		return err
	}
	var res listPartsResult
	if err := xml.Unmarshal(doc, &res); err != nil {
		return s3err.New("InternalError", "The backend's ListParts answer is not valid XML.")
	}
	res.XMLName = xml.Name{Space: "http://s3.amazonaws.com/doc/2006-03-01/", Local: "ListPartsResult"}
	res.UploadID = clientID
	res.Bucket, res.Key = q.bucket, q.key
	copies, err := g.listedCopies(q, clientID, backendID, &res)
	if err != nil {
		return err
	}
	res.Parts = res.Parts[:0]
	res.ChecksumAlgorithm, res.ChecksumType = "", ""
	if u, err := format.ParseUploadID(clientID); err == nil && u.Checksum.Algorithm != format.ChecksumNone {
		res.ChecksumAlgorithm, res.ChecksumType = u.Checksum.Algorithm.String(), u.Checksum.Type()
	}
	for _, n := range slices.Sorted(maps.Keys(copies)) {
		c := latestPart(copies[n])
		p := listedPart{PartNumber: n, LastModified: c.modified, ETag: `"` + c.etag + `"`, Size: c.size}
		if c.recorded {
			p.ETag, p.Size = c.clientETag(), c.facts.PlainSize
			if ck := c.facts.Checksum; ck.Algorithm != format.ChecksumNone {
				p.partChecksums = p.set(ck.Algorithm, base64.StdEncoding.EncodeToString(ck.Value))
			}
		} else if plain, err := format.PartDecryptedSize(c.size); err == nil {
			p.Size = plain
		}
		res.Parts = append(res.Parts, p)
	}
	out, err := xml.Marshal(res)
	if err != nil {
		return err
	}
	writeXML(q, http.StatusOK, append([]byte(xml.Header), out...))
	return nil
}

// listPartsResult is the ListParts answer, as parsed from the backend and sent to the client.
type listPartsResult struct {
	XMLName              xml.Name     `xml:"ListPartsResult"`
	Bucket               string       `xml:"Bucket"`
	Key                  string       `xml:"Key"`
	UploadID             string       `xml:"UploadId"`
	PartNumberMarker     int          `xml:"PartNumberMarker"`
	NextPartNumberMarker int          `xml:"NextPartNumberMarker"`
	MaxParts             int          `xml:"MaxParts"`
	IsTruncated          bool         `xml:"IsTruncated"`
	Parts                []listedPart `xml:"Part"`
	Initiator            *listOwner   `xml:"Initiator,omitempty"`
	Owner                *listOwner   `xml:"Owner,omitempty"`
	StorageClass         string       `xml:"StorageClass,omitempty"`
	ChecksumAlgorithm    string       `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType         string       `xml:"ChecksumType,omitempty"`
}

type listedPart struct {
	PartNumber   int    `xml:"PartNumber"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	partChecksums
}

type listOwner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName,omitempty"`
}

// listedCopies is the stored copies of the parts of a ListParts page res: the backend's
// parts, and the held parts of the page's range (after its marker; up to its next marker when
// truncated), with their records opened where the upload's key can be (a format-3 id; an
// SSE-C upload only with its key).
func (g *Gateway) listedCopies(q *request, clientID, backendID string, res *listPartsResult) (map[int][]storedPart, error) {
	backend := map[int]backendPart{}
	for _, p := range res.Parts {
		backend[p.PartNumber] = backendPart{etag: p.ETag, size: p.Size, modified: p.LastModified}
	}
	bare := func() map[int][]storedPart {
		m := map[int][]storedPart{}
		for n, bp := range backend {
			m[n] = []storedPart{{number: n, etag: strings.Trim(bp.etag, `"`), size: bp.size, modified: bp.modified}}
		}
		return m
	}
	u, err := format.ParseUploadID(clientID)
	if err != nil || u.Envelope.Version() != format.Version3 {
		return bare(), nil
	}
	first, last := res.PartNumberMarker+1, format.MaxPartNumber
	if res.IsTruncated {
		last = res.NextPartNumberMarker
	}
	if u.Envelope.Wrap == format.WrapCustomerKey && q.r.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key") == "" {
		// The held parts too, with the backend's ETags: no record can be opened.
		return g.uploadParts(q, backendID, nil, backend, first, last)
	}
	_, key, err := g.openUpload(q)
	defer q.ssec.zero()
	if err != nil {
		return nil, err
	}
	defer key.Zero()
	return g.uploadParts(q, backendID, key, backend, first, last)
}
