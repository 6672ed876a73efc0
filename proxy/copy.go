package proxy

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/s3path"
	"github.com/s3seal/s3seal/s3err"
)

// Copies. Between encrypted objects the backend copies the stored bytes and the gateway writes
// a new envelope for the destination name (same object key, FORMAT.md 4); an object the
// gateway did not encrypt is streamed through it and encrypted on the way. UploadPartCopy must
// re-encrypt (a part is bound to its upload's key), so it streams the source range through.

// maxCopySize is S3's limit for CopyObject and for one UploadPartCopy.
const maxCopySize = 5 << 30

// copyLimit is the largest copy source CopyObject and UploadPartCopy accept
// (backend.max_copy_size, S3's limit by default).
func (g *Gateway) copyLimit() int64 {
	if g.cfg.BackendMaxCopySize > 0 {
		return min(g.cfg.BackendMaxCopySize, maxCopySize)
	}
	return maxCopySize
}

// copyTooLarge is S3's refusal of a copy source above the limit.
func (g *Gateway) copyTooLarge() error {
	return s3err.Newf("InvalidRequest", "The specified copy source is larger than the maximum allowable size for a copy source: %d", g.copyLimit())
}

// copySource parses x-amz-copy-source ("[/]bucket/key[?versionId=v]", URL-encoded).
func copySource(h string) (bucket, key, version string, e *s3err.Error) {
	p, query, _ := strings.Cut(strings.TrimPrefix(h, "/"), "?")
	p, err := url.PathUnescape(p)
	if err != nil {
		return "", "", "", s3err.New("InvalidArgument", "Invalid copy source encoding")
	}
	bucket, key, ok := strings.Cut(p, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", "", s3err.New("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	if strings.HasPrefix(bucket, "arn:") {
		return "", "", "", s3err.New("NotImplemented", "Access point copy sources are not supported.")
	}
	if query != "" {
		v, err := url.ParseQuery(query)
		if err != nil {
			return "", "", "", s3err.New("InvalidArgument", "Invalid copy source version")
		}
		version = v.Get("versionId")
	}
	return bucket, key, version, nil
}

// unchangedSelfCopy refuses, as S3 does, a CopyObject of an object onto itself that changes
// nothing: no REPLACE metadata directive, no storage class, website redirect or encryption
// request header. (The gateway always rewrites the envelope, so the backend would not refuse
// it.) A copy from another version of the same key is allowed.
func unchangedSelfCopy(q *request) *s3err.Error {
	h := q.r.Header
	bucket, key, version, e := copySource(h.Get("X-Amz-Copy-Source"))
	d := strings.ToUpper(h.Get("X-Amz-Metadata-Directive"))
	if e != nil || bucket != q.bucket || key != q.key || version != "" ||
		(d != "" && d != "COPY") || // REPLACE, or an invalid directive (InvalidArgument later)
		h.Get("X-Amz-Storage-Class") != "" || h.Get("X-Amz-Website-Redirect-Location") != "" {
		return nil
	}
	for name := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(name), "X-Amz-Server-Side-Encryption") {
			return nil
		}
	}
	return s3err.New("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
}

// sourceRequest is a request for the copy source: same client and credential, the source's
// bucket, key and version, no client conditions (copy conditions are checked apart).
func sourceRequest(q *request, bucket, key, version string) *request {
	r := q.r.Clone(q.r.Context())
	u := *q.r.URL
	v := url.Values{}
	if version != "" {
		v.Set("versionId", version)
	}
	u.RawQuery = v.Encode()
	r.URL = &u
	r.Header = http.Header{}
	return &request{w: q.w, r: r, id: q.id, op: q.op, bucket: bucket, key: key, auth: q.auth, cred: q.cred}
}

// copyConditions evaluates the x-amz-copy-source-if-* headers against the source: every
// failure is 412 PreconditionFailed.
func copyConditions(h http.Header, etag, lastModified string) *s3err.Error {
	c := http.Header{}
	for _, name := range []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if v := h.Get("X-Amz-Copy-Source-" + name); v != "" {
			c.Set(name, v)
		}
	}
	if e := checkConditions(&http.Request{Header: c}, etag, lastModified); e != nil {
		return s3err.New("PreconditionFailed", "")
	}
	return nil
}

// openedObject is a stored object opened for reading: the request that addresses it (for a
// copy source: the source's bucket, key, version and SSE-C key), its stored form, the facts
// clients see, and its object key (nil for objects the gateway did not encrypt). Close zeroes
// the keys.
type openedObject struct {
	req   *request
	obj   *storedObject
	facts objectFacts
	key   *format.ObjectKey
}

// Close zeroes the object key and the request's SSE-C key.
func (o *openedObject) Close() {
	o.key.Zero()
	o.req.ssec.zero()
}

// openSource authenticates the copy source for q's credential and returns it opened (key
// opened for encrypted sources).
func (g *Gateway) openSource(q *request) (*openedObject, error) {
	bucket, key, version, e := copySource(q.r.Header.Get("X-Amz-Copy-Source"))
	if e != nil {
		return nil, e
	}
	if !g.bucketAllowed(q.cred, bucket) {
		g.obs.AuthFailure(q.op, "AccessDenied")
		return nil, s3err.New("AccessDenied", "The credential may not read the copy source.")
	}
	src := sourceRequest(q, bucket, key, version)
	ck, e := g.requestCustomerKey(q, copySourceSSECHeaders)
	if e != nil {
		return nil, e
	}
	src.ssec, src.ssecParsed = ck, true
	o, f, k, err := g.stat(src)
	if err != nil {
		return nil, err
	}
	if e := copyConditions(q.r.Header, f.etag, o.header.Get("Last-Modified")); e != nil {
		if k != nil {
			k.Zero()
		}
		return nil, e
	}
	if f.encrypted && k == nil && o.env != nil {
		if k, err = g.openKey(src, o); err != nil {
			return nil, err
		}
	}
	return &openedObject{req: src, obj: o, facts: f, key: k}, nil
}

// copyHeaders returns the destination headers of a CopyObject: the source's descriptive headers
// and user metadata (directive COPY, the default) or the request's (REPLACE), plus the request's
// storage class, ACL and tagging settings.
func copyHeaders(r *http.Request, src *storedObject) (http.Header, *s3err.Error) {
	out := outboundHeaders(r.Header)
	for name := range out {
		if strings.HasPrefix(name, "X-Amz-Copy-Source") {
			out.Del(name)
		}
	}
	switch d := strings.ToUpper(r.Header.Get("X-Amz-Metadata-Directive")); d {
	case "", "COPY":
		for name := range out {
			if strings.HasPrefix(name, "X-Amz-Meta-") || isContentHeader(name) {
				out.Del(name)
			}
		}
		for name, vs := range src.header {
			cn := http.CanonicalHeaderKey(name)
			if (strings.HasPrefix(cn, "X-Amz-Meta-") && !strings.HasPrefix(cn, format.MetaPrefix) && (src.s3ec == nil || !isS3ECMeta(cn))) || isContentHeader(cn) {
				out[cn] = append([]string(nil), vs...)
			}
		}
	case "REPLACE":
	default:
		return nil, s3err.New("InvalidArgument", "Unknown metadata directive.") // S3's words
	}
	out.Del("X-Amz-Metadata-Directive")
	out.Set("X-Amz-Metadata-Directive", "REPLACE") // the envelope always changes
	out.Del("X-Amz-Server-Side-Encryption")
	return out, nil
}

// isContentHeader reports the object headers that metadata directives copy or replace.
func isContentHeader(name string) bool {
	switch name {
	case "Content-Type", "Content-Disposition", "Content-Encoding", "Content-Language",
		"Cache-Control", "Expires", "X-Amz-Website-Redirect-Location":
		return true
	}
	return false
}

// copyObject copies an object under a new name (or onto itself with new metadata).
func (g *Gateway) copyObject(q *request) error {
	if e := unchangedSelfCopy(q); e != nil {
		return e
	}
	if err := copyChecksumHeader(q.r); err != nil {
		return err
	}
	choice, err := g.newObjectChoice(q)
	if err != nil {
		return err
	}
	defer choice.ssec.zero()
	so, err := g.openSource(q)
	if err != nil {
		return err
	}
	defer so.Close()
	src, o, f, key := so.req, so.obj, so.facts, so.key
	h, e := copyHeaders(q.r, o)
	if e != nil {
		return e
	}
	if f.plainSize > g.copyLimit() {
		return g.copyTooLarge()
	}
	if !f.encrypted || o.s3ec != nil || !sameKeyDomain(o.env, choice, src.ssec) || copyChecksum(q.r, f) != keptChecksum(f) {
		// A copy under another key, or with another checksum than the bytes seal.
		return g.copyStreamed(q, choice, src, o, f, key, h)
	}

	sl, err := g.seal(q, choice, o.env.Kind, key, 0)
	if err != nil {
		return err
	}
	g.storedHeaders(h, sl)
	if m := o.header.Get(format.MetaManifest); m != "" {
		h.Set(format.MetaManifest, m) // sealed under the object key, which the copy keeps
	}
	if m := o.header.Get(format.MetaChecksum); m != "" {
		h.Set(format.MetaChecksum, m) // in the stream key of the bytes the copy keeps
	}
	cs := "/" + src.bucket + "/" + s3path.Escape(src.key)
	if v := src.r.URL.Query().Get("versionId"); v != "" {
		cs += "?versionId=" + url.QueryEscape(v)
	}
	h.Set("X-Amz-Copy-Source", cs)
	if o.backendETag != "" {
		h.Set("X-Amz-Copy-Source-If-Match", o.backendETag) // exactly the version we opened
	}
	t := target{q.bucket, q.key, nil}
	doc, resp, err := g.xmlRoundTrip(q, http.MethodPut, t, h, nil)
	if err != nil {
		return err
	}
	hits, err := findTexts(doc, "CopyObjectResult/ETag")
	if err != nil || len(hits) != 1 {
		return s3err.New("InternalError", "The backend's CopyObject answer has no ETag.")
	}
	newBackend := hits[0].text
	df := objectFacts{encrypted: true, plainSize: f.plainSize, etag: f.etag, layout: f.layout, checksum: f.checksum}
	if f.layout != nil || choice.ssec != nil || o.env.Wrap == format.WrapCustomerKey {
		// Multipart and SSE-C objects show the backend's ETag (FORMAT.md 5); an SSE-C source
		// has no plaintext MD5 in its trailer.
		df.etag = newBackend
	}
	g.cacheWritten(q, writtenVersion{backendETag: newBackend, storedSize: o.storedSize, versionID: resp.Header.Get("X-Amz-Version-Id"), meta: h}, df)
	g.keyUse(q, "copy", sl.keyID, sl.wrapped)
	g.setCopyResponseHeaders(q, resp, src)
	setSSEHeaders(q.w.Header(), sl.env, sl.meta, choice.ssec)
	writeXML(q, http.StatusOK, splice(doc, []span{replaceText(hits[0], df.etag)}))
	return nil
}

// setCopyResponseHeaders sets the headers S3 sends with a copy result.
func (g *Gateway) setCopyResponseHeaders(q *request, resp *http.Response, src *request) {
	w := q.w.Header()
	if v := resp.Header.Get("X-Amz-Version-Id"); v != "" {
		w.Set("X-Amz-Version-Id", v)
	}
	if v := src.r.URL.Query().Get("versionId"); v != "" {
		w.Set("X-Amz-Copy-Source-Version-Id", v)
	}
}

// sameKeyDomain reports whether a server-side copy of an object protected by env to a
// destination protected as c says may keep the object key: only when whoever can open the new
// envelope could already open the old one (the same KMS or local key, or the same SSE-C
// key). Across key domains the copy is re-encrypted under a fresh object key, so that holding
// the destination's key never yields the source's object key (with which, and write access to
// the backend, the source could be forged).
func sameKeyDomain(env *format.Envelope, c *encryptionChoice, srcKey *customerKey) bool {
	switch env.Wrap {
	case format.WrapCustomerKey:
		return c.ssec != nil && srcKey != nil && subtle.ConstantTimeCompare(c.ssec.key, srcKey.key) == 1
	case format.WrapProvider:
		return c.ssec == nil && format.SameKeyID(c.keyID, env.KeyID)
	}
	return false
}

// copyStreamed copies a source by streaming its plaintext through the encryption pipeline under
// a fresh object key: a source the gateway did not encrypt (plain, or written by the S3
// Encryption Client), or one in another key domain (key is its opened object key).
func (g *Gateway) copyStreamed(q *request, c *encryptionChoice, src *request, o *storedObject, f objectFacts, key *format.ObjectKey, h http.Header) error {
	var body io.ReadCloser = io.NopCloser(http.NoBody)
	if f.plainSize > 0 {
		var err error
		if f.encrypted {
			body, err = g.rangeReader(src, o, f, key, 0, f.plainSize)
		} else {
			body, err = g.readStored(src, o, 0, f.plainSize)
		}
		if err != nil {
			return err
		}
	}
	defer body.Close()
	h.Del("X-Amz-Copy-Source")
	res, err := g.putEncrypted(q, c, h, plainBody{r: body, size: f.plainSize, checksum: copyChecksum(q.r, f)})
	if err != nil {
		return err
	}
	etag := res.etag
	now := g.cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	w := q.w.Header()
	if res.versionID != "" {
		w.Set("X-Amz-Version-Id", res.versionID)
	}
	setSSEHeaders(w, res.env, res.meta, c.ssec)
	writeXML(q, http.StatusOK, []byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<CopyObjectResult><LastModified>`+now+`</LastModified><ETag>`+string(escapeXMLText(etag))+`</ETag></CopyObjectResult>`))
	return nil
}

// uploadPartCopy fills a part of an upload from a range of another object.
func (g *Gateway) uploadPartCopy(q *request) error {
	t, err := g.partRequest(q)
	defer q.ssec.zero()
	if err != nil {
		return err
	}
	defer t.key.Zero()
	so, err := g.openSource(q)
	if err != nil {
		return err
	}
	defer so.Close()
	src, o, f, key := so.req, so.obj, so.facts, so.key
	off, length := int64(0), f.plainSize
	if cr := q.r.Header.Get("X-Amz-Copy-Source-Range"); cr != "" {
		a, b, ok := parseCopyRange(cr)
		if !ok || b >= f.plainSize {
			return s3err.Newf("InvalidArgument", "Range specified is not valid for source object of size: %d", f.plainSize)
		}
		off, length = a, b-a+1
	}
	if length > g.copyLimit() {
		return g.copyTooLarge()
	}
	var body io.ReadCloser = io.NopCloser(http.NoBody)
	if length > 0 {
		if f.encrypted {
			body, err = g.rangeReader(src, o, f, key, off, length)
		} else {
			body, err = g.readStored(src, o, off, length)
		}
		if err != nil {
			return err
		}
	}
	defer body.Close()
	part, err := g.storePart(q, t, body, length)
	if err != nil {
		return err
	}
	g.setCopyResponseHeaders(q, &http.Response{Header: http.Header{}}, src)
	res := copyPartResult{LastModified: g.cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z"), ETag: part.etag}
	if c := part.checksum; c.Algorithm != format.ChecksumNone {
		res.partChecksums = res.set(c.Algorithm, base64.StdEncoding.EncodeToString(c.Value))
	}
	doc, e := encodeDocument("CopyPartResult", res)
	if e != nil {
		return e
	}
	writeXML(q, http.StatusOK, append([]byte(xml.Header), doc...))
	return nil
}

// copyPartResult is UploadPartCopy's answer: the part's ETag and, in an upload with a checksum
// algorithm, the part's checksum of the copied plaintext.
type copyPartResult struct {
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	partChecksums
}

// parseCopyRange parses "bytes=a-b" (both required, as S3 wants for x-amz-copy-source-range).
func parseCopyRange(s string) (a, b int64, ok bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(s), "bytes=")
	if !found {
		return 0, 0, false
	}
	first, last, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	if strings.Trim(first, "0123456789") != "" || strings.Trim(last, "0123456789") != "" {
		return 0, 0, false // digits only: ParseInt would take a sign
	}
	a, err1 := strconv.ParseInt(first, 10, 64)
	b, err2 := strconv.ParseInt(last, 10, 64)
	if err1 != nil || err2 != nil || a < 0 || b < a {
		return 0, 0, false
	}
	return a, b, true
}
