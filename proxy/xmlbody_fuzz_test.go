package proxy

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// requestDocOps are the operations whose request documents the gateway rewrites, with the
// root element of each.
var requestDocOps = map[string]string{
	"PutObjectTagging": "Tagging", "PutBucketTagging": "Tagging", "PutObjectRetention": "Retention",
	"PutObjectLegalHold": "LegalHold", "CreateBucket": "CreateBucketConfiguration",
	"DeleteObjects": "Delete", "RestoreObject": "RestoreRequest",
}

// laxKeys are the keys of a Delete document as a lenient parser (encoding/xml, first element
// only, any root name, unknown elements skipped) reads them: what a backend might act on.
func laxKeys(doc []byte) []string {
	var d struct {
		Objects []struct{ Key string } `xml:"Object"`
	}
	if xml.Unmarshal(doc, &d) != nil {
		return nil
	}
	var keys []string
	for _, o := range d.Objects {
		keys = append(keys, o.Key)
	}
	return keys
}

// FuzzRequestDocuments checks the strict request-document parsers: they never panic; a body
// they accept becomes a document with one root of the operation's name in S3's namespace that
// they accept again unchanged (the serialisation is a fixed point); a lenient parser reads
// the same keys from an accepted Delete document as from its rewrite, and none reserved; and
// parseCompleteParts accepts the rewrite of the parts it accepted.
func FuzzRequestDocuments(f *testing.F) {
	for _, s := range []string{
		`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a&amp;b&#13;</Key><VersionId>v</VersionId><Size> 3 </Size></Object><Quiet>1</Quiet></Delete>`,
		`<?xml version="1.0"?><!--c--><Delete><Object><Key><![CDATA[x]]></Key></Object></Delete><?pi?>` + "\n",
		`<Remove><Object><Key>k</Key></Object></Remove>`,
		`<Delete><Object><Key>k</Key></Object></Delete><Delete><Object><Key>` + format.ReservedPrefix + `x</Key></Object></Delete>`,
		`<RestoreRequest><Days>1</Days><GlacierJobParameters><Tier>Bulk</Tier></GlacierJobParameters><Description>d</Description></RestoreRequest>`,
		`<Decoy/><RestoreRequest><Type>SELECT</Type><OutputLocation><S3><BucketName>o</BucketName></S3></OutputLocation></RestoreRequest>`,
		`<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>`,
		`<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>`,
		`<s3:LegalHold xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/"><s3:Status>ON</s3:Status></s3:LegalHold>`,
		`<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>`,
		`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"a"</ETag><ChecksumSHA256>x</ChecksumSHA256></Part></CompleteMultipartUpload>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for op, root := range requestDocOps {
			out, e := forwardedBody(op, body)
			if e != nil || len(out) == 0 {
				continue
			}
			n, te := parseTree(out)
			if te != nil || n.name != root {
				t.Fatalf("%s: %q became %q: not one %s root (%v)", op, body, out, root, te)
			}
			if !bytes.HasPrefix(out, []byte("<"+root+` xmlns="`+s3Namespace+`">`)) {
				t.Fatalf("%s: %q has no S3 namespace", op, out)
			}
			again, e := forwardedBody(op, out)
			if e != nil || !bytes.Equal(again, out) {
				t.Fatalf("%s: %q became %q, which became %q (%v)", op, body, out, again, e)
			}
			if op == "DeleteObjects" {
				keys := laxKeys(body)
				if !slices.Equal(keys, laxKeys(out)) {
					t.Fatalf("a lenient parser reads keys %q from %q but %q from its rewrite %q", keys, body, laxKeys(out), out)
				}
				for _, k := range keys {
					if format.IsReserved(k) {
						t.Fatalf("reserved key %q accepted in %q", k, body)
					}
				}
			}
		}
		parts, err := parseCompleteParts(body)
		if err != nil {
			return
		}
		var b bytes.Buffer
		b.WriteString("<CompleteMultipartUpload>")
		for _, p := range parts {
			b.WriteString("<Part><PartNumber>")
			b.WriteString(strconv.Itoa(p.PartNumber))
			b.WriteString("</PartNumber><ETag>")
			b.Write(escapeXMLText(p.ETag))
			b.WriteString("</ETag>")
			for _, a := range p.sent() {
				fmt.Fprintf(&b, "<%s>%s</%[1]s>", checksumElement(a), escapeXMLText(*p.field(a)))
			}
			b.WriteString("</Part>")
		}
		b.WriteString("</CompleteMultipartUpload>")
		again, err := parseCompleteParts(b.Bytes())
		if err != nil || !slices.Equal(again, parts) {
			t.Fatalf("parts %+v of %q read back as %+v (%v)", parts, body, again, err)
		}
	})
}
