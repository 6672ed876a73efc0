package proxy

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"testing"
)

var xmlSeeds = []string{
	`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><EncodingType>url</EncodingType><Contents><Key>a%20b</Key><Size>1056</Size><ETag>&quot;abc&quot;</ETag></Contents><Contents><Key>k&amp;</Key><ETag>"x"</ETag></Contents></ListBucketResult>`,
	`<ListVersionsResult><Version><Key>k</Key><VersionId>v1</VersionId><Size>0</Size><ETag>&#34;e&#34;</ETag></Version><DeleteMarker><Key>k</Key></DeleteMarker></ListVersionsResult>`,
	`<ListPartsResult><UploadId>u</UploadId><Part><PartNumber>1</PartNumber><Size>5</Size><ETag>"p"</ETag></Part></ListPartsResult>`,
	`<a><Contents><Size>1<!--c-->2</Size><Size><![CDATA[7]]></Size></Contents></a>`,
	`<a:b xmlns:a="x"><a:Contents><a:Size>3</a:Size></a:Contents></a:b>`,
	`<a><Contents><Size>1</Size>`,
	`<a><Contents><Size>&bogus;</Size></Contents></a>`,
}

// FuzzFindTexts checks findTexts: hits are in document order, do not overlap, lie within the
// document and hold the escaped form of their text; splicing every hit with its own bytes gives
// the document back, and splicing in the escaped text gives a document with the same hits.
func FuzzFindTexts(f *testing.F) {
	for _, s := range xmlSeeds {
		f.Add([]byte(s), "ListPartsResult/Part/Size")
	}
	paths := []string{"ListBucketResult/Contents/Size", "ListBucketResult/Contents/ETag", "ListPartsResult/UploadId",
		"ListPartsResult/Part/Size", "a/Contents/Size", "b/Contents/Size", "a"}
	f.Fuzz(func(t *testing.T, doc []byte, extra string) {
		hits, err := findTexts(doc, append(paths, extra)...)
		if err != nil {
			return
		}
		var same, escaped []span
		var at int64
		for _, h := range hits {
			if h.start < at || h.end < h.start || h.end > int64(len(doc)) {
				t.Fatalf("hit %+v out of order or outside the document (previous end %d, %d bytes)", h, at, len(doc))
			}
			if h.path != extra && !contains(paths, h.path) {
				t.Fatalf("hit %+v for a path not asked for", h)
			}
			text, err := unescapeXMLText(doc[h.start:h.end])
			if err != nil || text != h.text {
				t.Fatalf("hit %+v: span %q unescapes to %q (%v)", h, doc[h.start:h.end], text, err)
			}
			at = h.end
			same = append(same, span{h.start, h.end, doc[h.start:h.end]})
			escaped = append(escaped, replaceText(h, h.text))
		}
		if got := splice(doc, same); !bytes.Equal(got, doc) {
			t.Fatalf("splice of the hits' own bytes changed the document:\n%q\n%q", doc, got)
		}
		re := splice(doc, escaped)
		again, err := findTexts(re, append(paths, extra)...)
		if err != nil || len(again) != len(hits) {
			t.Fatalf("re-escaped document %q: %d hits (%v), want %d", re, len(again), err, len(hits))
		}
		for i := range hits {
			if again[i].path != hits[i].path || again[i].text != hits[i].text || again[i].elem != hits[i].elem {
				t.Fatalf("re-escaped document: hit %d = %+v, want %+v", i, again[i], hits[i])
			}
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// FuzzParseListing checks the listing rewrite: the Size and ETag spans of the entries lie in
// the document without overlapping, and after splicing in new sizes and ETags (as listObjects
// does) the document parses to the same entries carrying exactly the new values, every other
// byte unchanged.
func FuzzParseListing(f *testing.F) {
	for _, s := range xmlSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		entries, enc, err := parseListing(doc)
		if err != nil {
			return
		}
		var spans, same []span
		type at struct{ s, e int64 }
		var all []at
		for i, e := range entries {
			for _, a := range [][2]int64{e.sizeAt, e.etagAt} {
				if a[0] == -1 && a[1] == -1 {
					continue
				}
				if a[0] < 0 || a[1] < a[0] || a[1] > int64(len(doc)) {
					t.Fatalf("entry %d: span %v outside the document (%d bytes)", i, a, len(doc))
				}
				for _, b := range all {
					if a[0] < b.e && b.s < a[1] {
						t.Fatalf("entry %d: span %v overlaps %v", i, a, b)
					}
				}
				all = append(all, at{a[0], a[1]})
				same = append(same, span{a[0], a[1], doc[a[0]:a[1]]})
			}
			if e.sizeAt[0] >= 0 {
				spans = append(spans, span{e.sizeAt[0], e.sizeAt[1], []byte(strconv.Itoa(1000 + i))})
			}
			if e.etagAt[0] >= 0 {
				spans = append(spans, span{e.etagAt[0], e.etagAt[1], escapeXMLText(`"<new&` + strconv.Itoa(i) + `">`)})
			}
		}
		if got := splice(doc, same); !bytes.Equal(got, doc) {
			t.Fatalf("splice of the spans' own bytes changed the document:\n%q\n%q", doc, got)
		}
		out := splice(doc, spans)
		again, enc2, err := parseListing(out)
		if err != nil || len(again) != len(entries) || enc2 != enc {
			t.Fatalf("rewritten listing %q: %d entries, url %v (%v); want %d, %v", out, len(again), enc2, err, len(entries), enc)
		}
		for i, e := range entries {
			g := again[i]
			if g.key != e.key || g.version != e.version {
				t.Fatalf("entry %d: key %q version %q after the rewrite, was %q %q", i, g.key, g.version, e.key, e.version)
			}
			if e.sizeAt[0] >= 0 && (g.size != int64(1000+i) || g.sizeAt[0] < 0) {
				t.Fatalf("entry %d: size %d after the rewrite, want %d:\n%q", i, g.size, 1000+i, out)
			}
			if e.etagAt[0] >= 0 && g.etag != `"<new&`+strconv.Itoa(i)+`">` {
				t.Fatalf("entry %d: etag %q after the rewrite:\n%q", i, g.etag, out)
			}
			if (e.sizeAt[0] < 0) != (g.sizeAt[0] < 0) || (e.etagAt[0] < 0) != (g.etagAt[0] < 0) {
				t.Fatalf("entry %d: spans %v/%v became %v/%v", i, e.sizeAt, e.etagAt, g.sizeAt, g.etagAt)
			}
		}
		// What a client's XML parser sees: the whole text of each Size and ETag element of an
		// entry, every occurrence, must be the rewritten value (no text of the backend's left).
		seen := clientView(t, out)
		if seen == nil {
			return // not well-formed for a strict parser; no client reads it
		}
		if len(seen) != len(entries) {
			t.Fatalf("client sees %d entries, gateway %d:\n%q", len(seen), len(entries), out)
		}
		for i, e := range entries {
			for _, v := range seen[i]["Size"] {
				if e.sizeAt[0] >= 0 && v != strconv.Itoa(1000+i) {
					t.Fatalf("entry %d: a client reads Size %q, the gateway wrote %d:\n%q", i, v, 1000+i, out)
				}
			}
			for _, v := range seen[i]["ETag"] {
				if e.etagAt[0] >= 0 && v != `"<new&`+strconv.Itoa(i)+`">` {
					t.Fatalf("entry %d: a client reads ETag %q:\n%q", i, v, out)
				}
			}
		}
	})
}

// clientView decodes a listing as a strict XML parser does: for each depth-2 Contents or
// Version element, the full text of each of its Size and ETag children. nil if doc is not
// well-formed.
func clientView(t *testing.T, doc []byte) []map[string][]string {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var out []map[string][]string
	var path []string
	var text []byte
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if out == nil {
				out = []map[string][]string{}
			}
			return out
		}
		if err != nil {
			return nil
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			path = append(path, tk.Name.Local)
			if len(path) == 2 && (tk.Name.Local == "Contents" || tk.Name.Local == "Version") {
				out = append(out, map[string][]string{})
			}
			text = text[:0]
		case xml.CharData:
			text = append(text, tk...)
		case xml.EndElement:
			if len(path) == 3 && (path[1] == "Contents" || path[1] == "Version") && (path[2] == "Size" || path[2] == "ETag") {
				m := out[len(out)-1]
				m[path[2]] = append(m[path[2]], string(text))
			}
			path = path[:len(path)-1]
			text = text[:0]
		}
	}
}
