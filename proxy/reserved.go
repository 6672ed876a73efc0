package proxy

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/s3err"
)

// The reserved prefix (format.ReservedPrefix: keys starting with U+10FFFF, which sort after
// every other key): the gateway's upload records live there (records.go). Clients can neither
// read nor write keys under it (AccessDenied), and listings never show them.

// reservedEnd is a key after every key the gateway writes under the reserved prefix (they
// continue in ASCII after the prefix).
const reservedEnd = format.ReservedPrefix + "\U0010FFFF"

// reservedMessage is the message of the AccessDenied a request naming a reserved key gets.
const reservedMessage = "Keys starting with U+10FFFF are reserved for this encrypting gateway."

// reservedAccess refuses a request that names a key under the reserved prefix: as its object
// key or its copy source.
func reservedAccess(q *request) *s3err.Error {
	denied := s3err.New("AccessDenied", reservedMessage)
	if format.IsReserved(q.key) {
		return denied
	}
	if cs := q.r.Header.Get("X-Amz-Copy-Source"); cs != "" {
		if _, key, _, e := copySource(cs); e == nil && format.IsReserved(key) {
			return denied
		}
	}
	return nil
}

// deleteObjects forwards DeleteObjects unless it names a key under the reserved prefix. The
// backend gets the gateway's serialisation of the strictly parsed document (deleteBody).
func (g *Gateway) deleteObjects(q *request) error {
	body, err := g.readSmallBody(q)
	if err != nil {
		return err
	}
	doc, e := deleteBody(body)
	if e != nil {
		return e
	}
	return g.forwardBody(q, doc)
}

// deleteBody parses a Delete document strictly (parseDelete), refuses it when one of its keys
// is under the reserved prefix, and returns the document the backend gets.
func deleteBody(body []byte) ([]byte, *s3err.Error) {
	d, e := parseDelete(body)
	if e != nil {
		return nil, e
	}
	for _, o := range d.Objects {
		if format.IsReserved(*o.Key) {
			return nil, s3err.New("AccessDenied", reservedMessage)
		}
	}
	return d.document()
}

// listingEntry is a depth-2 element of a listing that may name a reserved key.
type listingEntry struct {
	name       string // Contents, Version, DeleteMarker or CommonPrefixes
	start, end int64
	key        string // Key, or Prefix of CommonPrefixes
}

// hideReserved removes from a listing document (ListObjects v1 and v2, ListObjectVersions)
// the entries under the reserved prefix: Contents, Version, DeleteMarker and CommonPrefixes
// (with a delimiter, the reserved prefix rolls up into one). It corrects KeyCount. Reserved
// keys sort after every other key, so a page holding one is the last a client may see: it is
// made the last page (IsTruncated false, no NextMarker, NextContinuationToken, NextKeyMarker or
// NextVersionIdMarker), and every page before it is as full as the backend made it.
// urlEncoded: the request asked for encoding-type url.
func hideReserved(doc []byte, urlEncoded bool) ([]byte, error) {
	if !mayNameReserved(doc) {
		return doc, nil
	}
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var path []string
	var entries []*listingEntry
	var cur *listingEntry
	texts := map[string]textHit{} // depth-2 texts: KeyCount, NextMarker, IsTruncated, ...
	ends := map[string]int64{}    // where a depth-2 element ends (IsTruncated)
	starts := map[string]int64{}
	for {
		before := dec.InputOffset()
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			if len(path) == 2 {
				starts[t.Name.Local] = before
				switch t.Name.Local {
				case "Contents", "Version", "DeleteMarker", "CommonPrefixes":
					cur = &listingEntry{name: t.Name.Local, start: before}
					entries = append(entries, cur)
				}
			}
		case xml.EndElement:
			if len(path) == 2 {
				ends[path[1]] = dec.InputOffset()
				if cur != nil {
					cur.end = dec.InputOffset()
					cur = nil
				}
			}
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
		case xml.CharData:
			text, err := unescapeXMLText(doc[before:dec.InputOffset()])
			if err != nil {
				return nil, err
			}
			if urlEncoded {
				if k, err := url.QueryUnescape(text); err == nil {
					text = k
				}
			}
			switch {
			case len(path) == 2:
				texts[path[1]] = textHit{path: path[1], start: before, end: dec.InputOffset(), text: text}
			case len(path) == 3 && cur != nil && (path[2] == "Key" || path[2] == "Prefix"):
				cur.key += text
			}
		}
	}
	var spans []span
	removed := 0
	for _, e := range entries {
		if format.IsReserved(e.key) {
			spans = append(spans, span{e.start, e.end, nil})
			if e.name == "Contents" || e.name == "CommonPrefixes" {
				removed++
			}
		}
	}
	if len(spans) == 0 {
		return doc, nil
	}
	if kc, ok := texts["KeyCount"]; ok {
		if n, err := strconv.Atoi(kc.text); err == nil {
			spans = append(spans, replaceText(kc, strconv.Itoa(max(0, n-removed))))
		}
	}
	// Reserved keys sort after every other key: a page that holds one holds the last key a
	// client may see, so it is the last page.
	if t, ok := texts["IsTruncated"]; ok && t.text == "true" {
		spans = append(spans, replaceText(t, "false"))
	}
	for _, name := range []string{"NextMarker", "NextContinuationToken", "NextKeyMarker", "NextVersionIdMarker"} {
		if at, ok := starts[name]; ok {
			spans = append(spans, span{at, ends[name], nil})
		}
	}
	return splice(doc, spans), nil
}

// mayNameReserved reports whether doc may name a key under the reserved prefix, so that the
// listings without one (all but the last page of a bucket with open uploads) are passed on
// without being parsed a second time. The prefix's character may be written raw (UTF-8),
// percent-encoded (encoding-type url) or as an XML character reference.
func mayNameReserved(doc []byte) bool {
	if bytes.Contains(doc, []byte(format.ReservedPrefix)) || bytes.Contains(bytes.ToUpper(percentRuns(doc)), []byte("%F4%8F%BF%BF")) {
		return true
	}
	for rest := doc; ; {
		i := bytes.Index(rest, []byte("&#"))
		if i < 0 {
			return false
		}
		rest = rest[i+2:]
		end := bytes.IndexByte(rest, ';')
		if end < 0 || end > 16 {
			continue
		}
		ref, base := string(rest[:end]), 10
		if len(ref) > 0 && (ref[0] == 'x' || ref[0] == 'X') {
			ref, base = ref[1:], 16
		}
		if n, err := strconv.ParseUint(ref, base, 32); err == nil && n == 0x10FFFF {
			return true
		}
	}
}

// percentRuns returns the bytes of doc that are in runs of percent-encoded octets (what
// mayNameReserved needs to compare without case), without copying the whole document.
func percentRuns(doc []byte) []byte {
	var out []byte
	for i := 0; i+2 < len(doc); i++ {
		if doc[i] == '%' {
			out = append(out, doc[i:i+3]...)
			i += 2
			continue
		}
		if len(out) > 0 && out[len(out)-1] != ' ' {
			out = append(out, ' ')
		}
	}
	return out
}

// deleteBucket forwards DeleteBucket. Open uploads do not keep S3 from deleting a bucket, but
// their upload records are objects: when the backend refuses (409) and the bucket holds
// nothing but keys under the reserved prefix, those are deleted (every version) and the
// DeleteBucket is sent again.
func (g *Gateway) deleteBucket(q *request) error {
	if _, err := g.readSmallBody(q); err != nil {
		return err
	}
	t := target{q.bucket, "", backendQuery(q.r)}
	send := func() (*http.Response, error) {
		return g.backend.sendSmall(q.ctx(), http.MethodDelete, t, outboundHeaders(q.r.Header), nil)
	}
	resp, err := send()
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusConflict && g.onlyRecordsLeft(q) {
		drain(resp)
		if err := g.deleteReserved(q); err != nil {
			g.log.Warn("could not delete upload records of a bucket being deleted", "request_id", q.id, "bucket", q.bucket, "err", err)
		}
		if resp, err = send(); err != nil {
			return err
		}
	}
	defer resp.Body.Close()
	return g.relay(q, resp)
}

// onlyRecordsLeft reports whether the bucket's only keys (versions and delete markers where
// the backend lists them) are under the reserved prefix, and there is one at least.
func (g *Gateway) onlyRecordsLeft(q *request) bool {
	first := func(v url.Values) (string, bool) {
		doc, _, err := g.xmlRoundTrip(q, http.MethodGet, target{q.bucket, "", v}, nil, nil)
		if err != nil {
			return "", false
		}
		hits, err := findTexts(doc, "ListVersionsResult/Version/Key", "ListVersionsResult/DeleteMarker/Key", "ListBucketResult/Contents/Key")
		if err != nil {
			return "", false
		}
		if len(hits) == 0 {
			return "", true
		}
		return hits[0].text, true
	}
	listing := url.Values{"versions": {""}, "max-keys": {"1"}}
	after := "key-marker"
	if _, ok := first(listing); !ok {
		listing = url.Values{"list-type": {"2"}, "max-keys": {"1"}}
		after = "start-after"
	}
	k, ok := first(listing)
	if !ok || !format.IsReserved(k) {
		return false
	}
	listing.Set(after, reservedEnd)
	k, ok = first(listing)
	return ok && k == ""
}

// deleteReserved deletes every key (every version) under the reserved prefix.
func (g *Gateway) deleteReserved(q *request) error {
	return g.deleteRecordsUnder(q, format.ReservedPrefix)
}
