package proxy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/s3seal/s3seal/keys"
	"github.com/s3seal/s3seal/s3err"
)

// maxListBody bounds a backend listing document (1,000 entries are well under 1 MiB).
const maxListBody = 32 << 20

// listConcurrency bounds the backend requests one listing makes to learn plaintext facts of
// objects it has not seen yet.
const listConcurrency = 16

// span is a byte range of a document and what replaces it.
type span struct {
	start, end int64
	repl       []byte // nil: delete
}

// splice applies non-overlapping spans to doc (an insertion, start == end, at the start of
// another span goes first).
func splice(doc []byte, spans []span) []byte {
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].start != spans[j].start {
			return spans[i].start < spans[j].start
		}
		return spans[i].end < spans[j].end
	})
	var out bytes.Buffer
	out.Grow(len(doc))
	var at int64
	for _, s := range spans {
		out.Write(doc[at:s.start])
		out.Write(s.repl)
		at = s.end
	}
	out.Write(doc[at:])
	return out.Bytes()
}

// listEntry is one <Contents> (or <Version>) of a listing, with where its Size and ETag texts
// are.
type listEntry struct {
	key       string
	version   string
	size      int64
	etag      string
	sizeAt    [2]int64 // text span, {-1,-1} if absent
	etagAt    [2]int64
	facts     objectFacts
	haveFacts bool
}

// errDuplicateListText: a listing entry with more than one Size or ETag element or text run.
var errDuplicateListText = errors.New("listing entry with more than one Size or ETag text")

// parseListing finds the Contents entries of a ListBucketResult (v1 or v2), or the Version
// entries of a ListVersionsResult. Offsets point into doc so that everything else is sent back
// byte for byte.
func parseListing(doc []byte) ([]*listEntry, bool, error) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var entries []*listEntry
	var cur *listEntry
	var path []string
	var seenSize, seenETag bool // Size and ETag elements seen in cur
	urlEncoded := false
	for {
		before := dec.InputOffset()
		tok, err := dec.RawToken()
		if err == io.EOF {
			return entries, urlEncoded, nil
		}
		if err != nil {
			return nil, false, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			if len(path) == 2 && (t.Name.Local == "Contents" || t.Name.Local == "Version") {
				cur = &listEntry{sizeAt: [2]int64{-1, -1}, etagAt: [2]int64{-1, -1}}
				entries = append(entries, cur)
				seenSize, seenETag = false, false
			}
			// A second Size or ETag of an entry, or one whose text is split (by a comment, say),
			// would leave backend text that a client reads next to the rewritten one.
			if cur != nil && len(path) == 3 {
				size, etag := t.Name.Local == "Size", t.Name.Local == "ETag"
				if size && seenSize || etag && seenETag {
					return nil, false, errDuplicateListText
				}
				seenSize, seenETag = seenSize || size, seenETag || etag
			}
		case xml.EndElement:
			if len(path) == 2 && (path[1] == "Contents" || path[1] == "Version") {
				cur = nil
			}
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
		case xml.CharData:
			if len(path) == 2 && path[1] == "EncodingType" && string(t) == "url" {
				urlEncoded = true
			}
			if cur == nil || len(path) != 3 {
				continue
			}
			// The decoder has already replaced entities (and CDATA) in t: the element's text.
			switch path[2] {
			case "Key":
				cur.key = string(t)
			case "VersionId":
				cur.version = string(t)
			case "Size":
				if cur.sizeAt[0] >= 0 {
					return nil, false, errDuplicateListText
				}
				cur.size, _ = strconv.ParseInt(string(t), 10, 64)
				cur.sizeAt = [2]int64{before, dec.InputOffset()}
			case "ETag":
				if cur.etagAt[0] >= 0 {
					return nil, false, errDuplicateListText
				}
				cur.etag = string(t)
				cur.etagAt = [2]int64{before, dec.InputOffset()}
			}
		}
	}
}

// unescapeXMLText decodes the entities of one raw XML text run.
func unescapeXMLText(raw []byte) (string, error) {
	var v struct {
		S string `xml:",chardata"`
	}
	doc := append(append([]byte("<x>"), raw...), "</x>"...)
	if err := xml.Unmarshal(doc, &v); err != nil {
		return "", err
	}
	return v.S, nil
}

func escapeXMLText(s string) []byte {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.Bytes()
}

// listObjects forwards ListObjects (v1 and v2) and ListObjectVersions, hides the reserved
// prefix (hideReserved) and rewrites sizes and ETags to what clients stored: plaintext sizes
// and plaintext ETags, except the ETags of SSE-C objects, which stay the backend's (a
// plaintext MD5 would let a reader without the key confirm guesses of the content).
func (g *Gateway) listObjects(q *request) error {
	t := target{q.bucket, "", backendQuery(q.r)}
	resp, err := g.backend.send(q.ctx(), http.MethodGet, t, nil, nil, 0, "")
	if err := g.roundTripErr(q, t, resp, err); err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxListBody))
	if err != nil {
		return err
	}
	urlEncoding := q.r.URL.Query().Get("encoding-type") == "url"
	memoKey, memoable := g.listings.key(q.bucket, urlEncoding, raw)
	if answer, ok := g.listings.get(memoKey); memoable && ok {
		writeXML(q, http.StatusOK, answer)
		return nil
	}
	doc, err := hideReserved(raw, urlEncoding)
	if err != nil {
		return s3err.New("InternalError", "The backend sent a listing that is not valid XML.")
	}
	entries, urlEncoded, err := parseListing(doc)
	if err != nil {
		return s3err.New("InternalError", "The backend sent a listing that is not valid XML.")
	}
	if err := g.listFacts(q, entries, urlEncoded); err != nil {
		return err
	}
	var spans []span
	complete := true
	for _, e := range entries {
		if !e.haveFacts {
			complete = false
			continue
		}
		if e.sizeAt[0] >= 0 {
			spans = append(spans, span{e.sizeAt[0], e.sizeAt[1], []byte(strconv.FormatInt(e.facts.plainSize, 10))})
		}
		// An SSE-C object's listing ETag stays the backend's: its plaintext ETag is for
		// readers with its key (COMPATIBILITY.md).
		if e.etagAt[0] >= 0 && e.facts.etag != "" && !e.facts.customerKey {
			spans = append(spans, span{e.etagAt[0], e.etagAt[1], escapeXMLText(e.facts.etag)})
		}
	}
	answer := splice(doc, spans)
	if memoable && complete {
		g.listings.add(memoKey, answer)
	}
	writeXML(q, http.StatusOK, answer)
	return nil
}

// listFacts fills in the plaintext facts of every entry: from the cache, or by asking the
// backend (bounded concurrency). Nothing in a listing entry tells a single-part object from a
// multipart object (after format 2's manifest copy the backend may hold it as one part, with
// a plain ETag; format 3's tail has no fixed length), so no size is computed from the stored
// size alone. When an entry's facts cannot be read because the backend or the key provider
// did not answer (listingFails), the listing fails with that error, which a client retries: a
// listing that showed the entry's stored size instead told a client with a flapping backend a
// size its object never had (the fault test's load saw it). An entry whose object is gone,
// fails authentication or is under a key the gateway may no longer use keeps its stored
// values and is logged: no retry would learn more, and one bad object must not make its
// prefix unlistable.
func (g *Gateway) listFacts(q *request, entries []*listEntry, urlEncoded bool) error {
	var pending []*listEntry
	var names []string
	for _, e := range entries {
		key := e.key
		if urlEncoded {
			if k, err := url.QueryUnescape(key); err == nil {
				key = k
			}
		}
		if f, ok := g.objects.Listed(q.bucket, key, listedVersion{backendETag: e.etag, storedSize: e.size, versionID: e.version}); ok {
			e.facts, e.haveFacts = f, true
			continue
		}
		pending, names = append(pending, e), append(names, key)
	}
	errs := make([]error, len(pending))
	g.parallel(len(pending), func(i int) {
		e, key := pending[i], names[i]
		version := e.version
		if version == "null" {
			version = ""
		}
		_, f, k, err := g.stat(sourceRequest(q, q.bucket, key, version))
		k.Zero()
		if err != nil {
			g.log.Warn("listing: cannot read object facts", "request_id", q.id, "bucket", q.bucket, "key", key, "err", err)
			errs[i] = err
			return
		}
		e.facts, e.haveFacts = f, true
	})
	for _, err := range errs {
		if err != nil && listingFails(err) {
			return err
		}
	}
	return nil
}

// listingFails reports whether err, met while reading a listed object's facts, fails the
// listing: the facts are unknown for now (the backend or the key provider unreachable or
// answering 5xx, an error of no known kind), not unknowable (the object gone, tampered with,
// in a format the gateway cannot read, or under a key it may not use).
func listingFails(err error) bool {
	if formatError(err) != nil || errors.Is(err, keys.ErrInvalidCiphertext) {
		return false
	}
	if e := keyError(err); e != nil {
		return e.Status >= 500
	}
	var se *s3err.Error
	if errors.As(err, &se) {
		return se.Status >= 500
	}
	return true
}

// listBuckets forwards ListBuckets, showing a restricted credential only its buckets.
func (g *Gateway) listBuckets(q *request) error {
	t := target{query: backendQuery(q.r)}
	resp, err := g.backend.send(q.ctx(), http.MethodGet, t, nil, nil, 0, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 || len(q.cred.Buckets) == 0 {
		return g.relay(q, resp)
	}
	doc, err := io.ReadAll(io.LimitReader(resp.Body, maxListBody))
	if err != nil {
		return err
	}
	spans, err := hiddenBuckets(doc, func(name string) bool { return g.bucketAllowed(q.cred, name) })
	if err != nil {
		return s3err.New("InternalError", "The backend sent a bucket list that is not valid XML.")
	}
	writeXML(q, http.StatusOK, splice(doc, spans))
	return nil
}

// hiddenBuckets returns spans deleting the <Bucket> elements whose name is not allowed.
func hiddenBuckets(doc []byte, allowed func(string) bool) ([]span, error) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var spans []span
	var path []string
	var start int64
	var name string
	for {
		before := dec.InputOffset()
		tok, err := dec.RawToken()
		if err == io.EOF {
			return spans, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			if len(path) == 3 && t.Name.Local == "Bucket" {
				start, name = before, ""
			}
		case xml.CharData:
			if len(path) == 4 && path[2] == "Bucket" && path[3] == "Name" {
				name, _ = unescapeXMLText(doc[before:dec.InputOffset()])
			}
		case xml.EndElement:
			if len(path) == 3 && path[2] == "Bucket" && !allowed(name) {
				spans = append(spans, span{start, dec.InputOffset(), nil})
			}
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
		}
	}
}
