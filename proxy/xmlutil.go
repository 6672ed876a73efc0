package proxy

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
)

// textHit is the text content of one element of an XML document, with where it is.
type textHit struct {
	path       string // element names from the root, joined by "/"
	start, end int64  // byte span of the (escaped) text in the document
	text       string // unescaped text
	elem       int    // index of the enclosing element occurrence at depth 2 (see findTexts)
}

// findTexts returns the text of every element whose path (e.g. "ListPartsResult/Part/Size")
// is in paths, in document order. elem numbers the depth-2 elements, so that texts of the
// same <Part> or <Contents> can be grouped. Offsets allow splicing replacements while keeping
// every other byte of the backend's document.
func findTexts(doc []byte, paths ...string) ([]textHit, error) {
	want := make(map[string]bool, len(paths))
	for _, p := range paths {
		want[p] = true
	}
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var stack []string
	var hits []textHit
	// open is the hit being read: the text of one element runs on over CDATA sections and
	// comments (xml.RawToken returns each as its own token) until a tag, so "1<![CDATA[2]]>"
	// is one hit "12", as a client's XML parser reads it.
	var open *textHit
	flush := func() error {
		if open == nil {
			return nil
		}
		text, err := unescapeXMLText(doc[open.start:open.end])
		if err != nil {
			return err
		}
		open.text = text
		hits = append(hits, *open)
		open = nil
		return nil
	}
	elem := -1
	for {
		before := dec.InputOffset()
		tok, err := dec.RawToken()
		if err == io.EOF {
			if err := flush(); err != nil {
				return nil, err
			}
			return hits, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.Comment:
			continue
		case xml.CharData:
			p := strings.Join(stack, "/")
			if len(stack) == 0 || !want[p] { // text outside the root element is no element's
				continue
			}
			if open == nil {
				open = &textHit{path: p, start: before, elem: elem}
			}
			open.end = dec.InputOffset()
			continue
		case xml.StartElement:
			stack = append(stack, t.Name.Local)
			if len(stack) == 2 {
				elem++
			}
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
		// Any other token ends the text being read (the stack has changed since, so flush
		// uses the path recorded in open).
		if err := flush(); err != nil {
			return nil, err
		}
	}
}

// replaceText returns a span replacing the text of hit with s (escaped).
func replaceText(hit textHit, s string) span {
	return span{hit.start, hit.end, escapeXMLText(s)}
}
