package proxy

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/checksum"
	"github.com/s3seal/s3seal/s3err"
)

// maxPutSize is S3's limit for a single PUT.
const maxPutSize = 5 << 30

// putObject encrypts the request body on the fly and stores it with its envelope.
func (g *Gateway) putObject(q *request) error {
	r := q.r
	choice, err := g.newObjectChoice(q)
	if err != nil {
		return err
	}
	defer choice.ssec.zero()
	size, err := payloadSize(q)
	if err != nil {
		return err
	}
	h := outboundHeaders(r.Header)
	if err := g.translateConditions(q, h); err != nil {
		return err
	}
	payload := q.auth.Body(r.Body, r.Header)
	defer payload.Close()
	res, err := g.putEncrypted(q, choice, h, plainBody{r: payload, size: size, checksum: payload.ChecksumAlgorithm()})
	if err != nil {
		return err
	}
	w := q.w.Header()
	w.Set("Etag", res.etag)
	if res.versionID != "" {
		w.Set("X-Amz-Version-Id", res.versionID)
	}
	setSSEHeaders(w, res.env, res.meta, choice.ssec)
	if res.checksum.ok() {
		// The gateway's, of the plaintext it sealed: the client's (the payload verified it).
		setChecksumHeaders(w, res.checksum, true)
	}
	w.Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusOK)
	return nil
}

// payloadSize is the plaintext size of a PUT or UploadPart body: required, and at most 5 GiB.
func payloadSize(q *request) (int64, error) {
	size := q.auth.DecodedLength
	if size < 0 {
		return 0, s3err.New("MissingContentLength", "")
	}
	if size > maxPutSize {
		return 0, s3err.New("EntityTooLarge", "")
	}
	return size, nil
}

// putResult is what putEncrypted stored.
type putResult struct {
	etag, versionID string
	env             *format.Envelope
	meta            http.Header    // the gateway's metadata (for SSE response headers)
	checksum        objectChecksum // sealed in the object's trailer
}

// plainBody is the plaintext of a single-part object to store: size bytes from r, and the S3
// checksum algorithm to seal with it (checksum.None for none).
type plainBody struct {
	r        io.Reader
	size     int64
	checksum checksum.Algorithm
}

// putEncrypted stores the plaintext src as q's object, encrypted under a new object key
// protected as c says, with the backend headers h, and src's checksum sealed in its trailer
// (the algorithm recorded as format.MetaChecksum: FORMAT.md 3.3).
func (g *Gateway) putEncrypted(q *request, c *encryptionChoice, h http.Header, src plainBody) (putResult, error) {
	size := src.size
	s, err := g.seal(q, c, format.KindSingle, nil, size)
	if err != nil {
		return putResult{}, err
	}
	defer s.key.Zero()
	enc, err := format.NewEncryptReader(src.r, s.key, size, format.EncryptOptions{ComputeMD5: g.cfg.ETag == ETagPlaintext && c.ssec == nil, Checksum: src.checksum})
	if err != nil {
		return putResult{}, err
	}
	g.storedHeaders(h, s)
	if src.checksum != checksum.None {
		h.Set(format.MetaChecksum, src.checksum.String())
	}
	t := target{q.bucket, q.key, nil}
	resp, err := g.backend.sendObject(q.ctx(), http.MethodPut, t, h, countingReader{enc, &q.storedOut}, enc.Size())
	if err := g.roundTripErr(q, t, resp, err); err != nil {
		return putResult{}, err
	}
	defer resp.Body.Close()
	q.plainIn = size
	g.keyUse(q, "write", s.keyID, s.wrapped)
	backendETag := resp.Header.Get("Etag")
	etag := backendETag
	if sum := enc.MD5(); sum != nil {
		etag = `"` + hex.EncodeToString(sum) + `"`
	}
	var sum objectChecksum
	if src.checksum != checksum.None {
		sum = objectChecksum{kind: format.ChecksumKind{Algorithm: src.checksum, FullObject: true}, value: enc.Checksum()}
	}
	g.cacheWritten(q, writtenVersion{backendETag: backendETag, storedSize: enc.Size(), versionID: resp.Header.Get("X-Amz-Version-Id"), meta: h},
		objectFacts{encrypted: true, plainSize: size, etag: etag, checksum: sum})
	return putResult{etag: etag, versionID: resp.Header.Get("X-Amz-Version-Id"), env: s.env, meta: s.meta, checksum: sum}, nil
}

// translateConditions evaluates a conditional write's If-Match and If-None-Match against the
// client-visible ETag of the current object, and sets in h (the backend request's headers) an
// If-Match on that object's backend ETag, so that the backend applies the condition atomically
// (the write fails if the object changed meanwhile). If-None-Match: * (no object at the key) is
// the backend's to check and passes unchanged. A condition that does not hold is
// PreconditionFailed, as on S3.
func (g *Gateway) translateConditions(q *request, h http.Header) error {
	im, inm := q.r.Header.Get("If-Match"), q.r.Header.Get("If-None-Match")
	h.Del("If-Match")
	if inm != "*" {
		h.Del("If-None-Match")
	}
	if im == "" && (inm == "" || inm == "*") {
		return nil
	}
	o, f, key, err := g.stat(sourceRequest(q, q.bucket, q.key, ""))
	key.Zero()
	var se *s3err.Error
	if im == "" && errors.As(err, &se) && se.Code == "NoSuchKey" {
		h.Set("If-None-Match", "*") // no object: the condition holds while there is none
		return nil
	}
	if err != nil {
		return err
	}
	if (im != "" && !etagMatches(im, f.etag)) || (inm != "" && inm != "*" && etagMatches(inm, f.etag)) {
		return s3err.New("PreconditionFailed", "")
	}
	h.Set("If-Match", o.backendETag)
	return nil
}

// readConditions evaluates a read's conditional headers against the client-visible ETag and
// Last-Modified; a 304 carries both, as on S3.
func (g *Gateway) readConditions(q *request, o *storedObject, f objectFacts) *s3err.Error {
	e := checkConditions(q.r, f.etag, o.header.Get("Last-Modified"))
	if e != nil && e.Code == "NotModified" {
		h := q.w.Header()
		h.Set("Etag", f.etag)
		if lm := o.header.Get("Last-Modified"); lm != "" {
			h.Set("Last-Modified", lm)
		}
	}
	return e
}

// sseOnRead refuses the SSE-S3/SSE-KMS request headers on GET and HEAD, as S3 does (they only
// apply to writes; SSE-C headers are how a reader gives its key and are handled elsewhere).
func sseOnRead(r *http.Request) *s3err.Error {
	for _, name := range []string{"X-Amz-Server-Side-Encryption", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id",
		"X-Amz-Server-Side-Encryption-Context", "X-Amz-Server-Side-Encryption-Bucket-Key-Enabled"} {
		if r.Header.Get(name) != "" {
			return s3err.Newf("InvalidArgument", "The header %s is not supported on %s requests.", name, r.Method)
		}
	}
	return nil
}

// setObjectHeaders writes the response headers of GET/HEAD for o with facts f.
func (g *Gateway) setObjectHeaders(q *request, o *storedObject, f objectFacts) {
	w := q.w.Header()
	copyObjectHeaders(w, o.header)
	w.Set("Etag", f.etag)
	w.Set("Accept-Ranges", "bytes")
	if o.env != nil {
		setSSEHeaders(w, o.env, o.header, q.ssec)
	} else if v := o.header.Get("X-Amz-Server-Side-Encryption"); v != "" {
		w.Set("X-Amz-Server-Side-Encryption", v)
	}
	v := q.r.URL.Query()
	if checksumModeEnabled(q.r) && q.r.Header.Get("Range") == "" && v.Get("partNumber") == "" {
		// The whole object's checksum, as S3 answers (none for a range or a part).
		setChecksumHeaders(w, f.checksum, true)
	}
	for param, header := range responseOverrides {
		if x := v.Get(param); x != "" {
			w.Set(header, x)
		}
	}
}

// setRangeHeaders writes the headers of a GET/HEAD answer for the plaintext range rng (with
// Content-Range when partial) and returns its status.
func (g *Gateway) setRangeHeaders(q *request, o *storedObject, f objectFacts, rng byteRange, partial bool) int {
	g.setObjectHeaders(q, o, f)
	w := q.w.Header()
	w.Set("Content-Length", strconv.FormatInt(rng.length, 10))
	if f.layout != nil && q.r.URL.Query().Get("partNumber") != "" {
		w.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(len(f.layout)))
	}
	if !partial {
		return http.StatusOK
	}
	w.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rng.off, rng.off+rng.length-1, f.plainSize))
	return http.StatusPartialContent
}

// headObject answers HEAD in plaintext terms (Range and partNumber as for GET).
func (g *Gateway) headObject(q *request) error {
	if e := sseOnRead(q.r); e != nil {
		return e
	}
	o, f, key, err := g.stat(q)
	if key != nil {
		defer key.Zero()
	}
	if err != nil {
		return err
	}
	if !f.encrypted && (q.r.Header.Get("Range") != "" || q.r.URL.Query().Get("partNumber") != "") {
		return g.forward(q) // the backend applies Range and partNumber to what it stores
	}
	if err := g.customerKeyCheck(q, o, key); err != nil {
		return err
	}
	if e := g.readConditions(q, o, f); e != nil {
		return e
	}
	rng, partial, e := requestedRange(q.r, f)
	if e != nil {
		return e
	}
	status := g.setRangeHeaders(q, o, f, rng, partial)
	q.w.WriteHeader(status)
	return nil
}

// getObject streams an object's plaintext (or a range or part of it), decrypting and
// authenticating segment by segment.
func (g *Gateway) getObject(q *request) error {
	if e := sseOnRead(q.r); e != nil {
		return e
	}
	if q.r.Header.Get("Range") == "" && q.r.URL.Query().Get("partNumber") == "" {
		return g.getWhole(q)
	}
	return g.getRange(q)
}

// getWhole serves a GET without Range with one backend GET of the whole stored object (plus,
// when the object's facts are not cached, one small request for the trailer or the layout).
func (g *Gateway) getWhole(q *request) error {
	t := target{q.bucket, q.key, objectQuery(q.r)}
	resp, err := g.backend.send(q.ctx(), http.MethodGet, t, nil, nil, 0, "")
	if err := g.roundTripErr(q, t, resp, err); err != nil {
		return err
	}
	defer resp.Body.Close()
	o, err := parseStored(resp)
	if err != nil {
		return err
	}
	f, key, err := g.resolve(q, o, nil)
	if err != nil {
		return err
	}
	if !f.encrypted {
		return g.serveStored(q, o, f, resp.Body)
	}
	if o.s3ec != nil {
		resp.Body.Close() // the whole object is verified first, then read again
		return g.getRange(q)
	}
	if key == nil {
		if key, err = g.openKey(q, o); err != nil {
			return err
		}
	}
	defer key.Zero()
	if e := g.readConditions(q, o, f); e != nil {
		return e
	}
	body := countingReader{resp.Body, &q.storedIn}
	var plain io.Reader
	if f.layout != nil {
		plain = &partsReader{src: body, key: key, layout: f.layout, tail: o.storedSize - f.layout.StoredSize()}
	} else {
		stream, err := singleStream(key, o, f)
		if err != nil {
			return err
		}
		plain = stream.DecryptAll(body)
	}
	g.setObjectHeaders(q, o, f)
	q.w.Header().Set("Content-Length", strconv.FormatInt(f.plainSize, 10))
	return g.streamPlain(q, http.StatusOK, plain, f.plainSize)
}

// getRange serves a ranged GET or a GET of one part: the facts first, then only the covering
// segments.
func (g *Gateway) getRange(q *request) error {
	o, f, key, err := g.stat(q)
	if err != nil {
		return err
	}
	if !f.encrypted {
		return g.forward(q) // the backend applies Range, partNumber and conditions itself
	}
	if key == nil && o.env != nil {
		if key, err = g.openKey(q, o); err != nil {
			return err
		}
	}
	if key != nil {
		defer key.Zero()
	}
	if e := g.readConditions(q, o, f); e != nil {
		return e
	}
	rng, partial, e := requestedRange(q.r, f)
	if e != nil {
		return e
	}
	var plain io.Reader = http.NoBody
	if rng.length > 0 {
		rc, err := g.rangeReader(q, o, f, key, rng.off, rng.length)
		if err != nil {
			return err
		}
		defer rc.Close()
		plain = rc
	}
	status := g.setRangeHeaders(q, o, f, rng, partial)
	return g.streamPlain(q, status, plain, rng.length)
}

// requestedRange resolves the Range header or the partNumber parameter of r against the
// object's facts. partial reports whether the answer is 206 with Content-Range.
func requestedRange(r *http.Request, f objectFacts) (rng byteRange, partial bool, e *s3err.Error) {
	if pn := r.URL.Query().Get("partNumber"); pn != "" {
		n, err := strconv.Atoi(pn)
		if err != nil || n < 1 || n > format.MaxPartNumber {
			return byteRange{}, false, s3err.New("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
		}
		if r.Header.Get("Range") != "" {
			return byteRange{}, false, s3err.New("InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
		}
		if f.layout == nil {
			if n != 1 {
				return byteRange{}, false, s3err.New("InvalidPartNumber", "The requested partnumber is not satisfiable")
			}
			return byteRange{0, f.plainSize}, f.plainSize > 0, nil
		}
		if n > len(f.layout) {
			return byteRange{}, false, s3err.New("InvalidPartNumber", "The requested partnumber is not satisfiable")
		}
		p := f.layout[n-1]
		return byteRange{p.PlainOffset, p.PlainSize}, p.PlainSize > 0, nil
	}
	br, e := parseRange(r.Header.Get("Range"), f.plainSize)
	if e != nil {
		e.Message = fmt.Sprintf("The requested range is not satisfiable (object size %d)", f.plainSize)
		return byteRange{}, false, e
	}
	if br == nil {
		return byteRange{0, f.plainSize}, false, nil
	}
	return *br, true, nil
}

// serveStored relays an object the gateway did not encrypt.
func (g *Gateway) serveStored(q *request, o *storedObject, f objectFacts, body io.Reader) error {
	if e := g.readConditions(q, o, f); e != nil {
		return e
	}
	g.setObjectHeaders(q, o, f)
	q.w.Header().Set("Content-Length", strconv.FormatInt(f.plainSize, 10))
	return g.streamPlain(q, http.StatusOK, body, f.plainSize)
}

// streamPlain sends status and then src, which yields size bytes. The first segment is read
// before the status line, so that an object that fails authentication at its start gets an S3
// error; a failure later aborts the connection, so the client never takes a short or altered
// body for a whole one. An object smaller than a segment is read to its end (trailer and EOF
// checked) before the status line, with a buffer of its size plus one byte, not a segment.
func (g *Gateway) streamPlain(q *request, status int, src io.Reader, size int64) error {
	buf := make([]byte, min(max(size, 0), format.SegmentSize-1)+1)
	n, err := io.ReadFull(src, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return err
	}
	q.w.WriteHeader(status)
	if q.r.Method == http.MethodHead {
		return nil
	}
	if _, werr := q.w.Write(buf[:n]); werr != nil {
		panic(http.ErrAbortHandler)
	}
	if err != nil { // EOF within the first segment: done
		return nil
	}
	if _, err := io.CopyBuffer(q.w, src, buf); err != nil {
		return err // answerError logs the cause with its kind (tamper or I/O) and aborts
	}
	return nil
}
