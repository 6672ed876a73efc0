package proxy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/s3err"
)

// getObjectAttributes answers GetObjectAttributes in plaintext terms: ETag, ObjectSize,
// StorageClass, ObjectParts (the plaintext part sizes) and Checksum (the object's checksum of
// the plaintext that the gateway sealed with it; absent for an object stored without one, as
// S3 answers; the backend's would describe the ciphertext and is never shown). An SSE-C
// object's attributes need its key (customerKeyCheck), as on S3.
func (g *Gateway) getObjectAttributes(q *request) error {
	want := map[string]bool{}
	for _, v := range q.r.Header.Values("X-Amz-Object-Attributes") {
		for _, a := range strings.Split(v, ",") {
			want[strings.TrimSpace(a)] = true
		}
	}
	if len(want) == 0 {
		return s3err.New("InvalidArgument", "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty")
	}
	for a := range want {
		switch a {
		case "ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize":
		default:
			return s3err.New("InvalidArgument", "Invalid attribute name specified.")
		}
	}
	o, f, key, err := g.stat(q)
	defer key.Zero()
	if err != nil {
		return err
	}
	if !f.encrypted {
		return g.forward(q)
	}
	if err := g.customerKeyCheck(q, o, key); err != nil {
		return err // an SSE-C object's attributes are for readers with its key, as on S3
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<GetObjectAttributesResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`)
	if want["ETag"] {
		fmt.Fprintf(&b, "<ETag>%s</ETag>", escapeXMLText(strings.Trim(f.etag, `"`)))
	}
	if want["ObjectSize"] {
		fmt.Fprintf(&b, "<ObjectSize>%d</ObjectSize>", f.plainSize)
	}
	if want["StorageClass"] {
		sc := o.header.Get("X-Amz-Storage-Class")
		if sc == "" {
			sc = "STANDARD"
		}
		fmt.Fprintf(&b, "<StorageClass>%s</StorageClass>", escapeXMLText(sc))
	}
	if c := f.checksum; want["Checksum"] && c.ok() {
		// A COMPOSITE value without the "-K" that HEAD shows: S3 gives the part count here
		// as ObjectParts' TotalPartsCount.
		fmt.Fprintf(&b, "<Checksum><%[1]s>%[2]s</%[1]s><ChecksumType>%[3]s</ChecksumType></Checksum>",
			checksumElement(c.kind.Algorithm), base64.StdEncoding.EncodeToString(c.value), c.kind.Type())
	}
	if want["ObjectParts"] && f.layout != nil {
		writeObjectParts(&b, f.layout, q.r.Header.Get("X-Amz-Max-Parts"), q.r.Header.Get("X-Amz-Part-Number-Marker"))
	}
	b.WriteString("</GetObjectAttributesResponse>")
	if lm := o.header.Get("Last-Modified"); lm != "" {
		q.w.Header().Set("Last-Modified", lm)
	}
	if v := o.header.Get("X-Amz-Version-Id"); v != "" {
		q.w.Header().Set("X-Amz-Version-Id", v)
	}
	writeXML(q, http.StatusOK, b.Bytes())
	return nil
}

// writeObjectParts writes GetObjectAttributes' ObjectParts of a multipart object: the plaintext
// size of each part, by part number, a page of at most x-amz-max-parts (default and limit 1,000)
// after x-amz-part-number-marker (request headers, as S3 takes them), and the total as
// PartsCount (S3's element name).
func writeObjectParts(b *bytes.Buffer, l format.Layout, maxPartsHeader, markerHeader string) {
	maxParts, marker := 1000, 0
	if n, err := strconv.Atoi(maxPartsHeader); err == nil && n >= 0 && n <= 1000 {
		maxParts = n
	}
	if n, err := strconv.Atoi(markerHeader); err == nil && n >= 0 {
		marker = n
	}
	fmt.Fprintf(b, "<ObjectParts><PartsCount>%d</PartsCount><PartNumberMarker>%d</PartNumberMarker>", len(l), marker)
	n, next, truncated := 0, marker, false
	for _, p := range l {
		if p.Number <= marker {
			continue
		}
		if n == maxParts {
			truncated = true
			break
		}
		fmt.Fprintf(b, "<Part><PartNumber>%d</PartNumber><Size>%d</Size></Part>", p.Number, p.PlainSize)
		n, next = n+1, p.Number
	}
	fmt.Fprintf(b, "<NextPartNumberMarker>%d</NextPartNumberMarker><MaxParts>%d</MaxParts><IsTruncated>%t</IsTruncated></ObjectParts>", next, maxParts, truncated)
}
