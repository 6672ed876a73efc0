package proxy

import (
	"crypto/md5"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/s3err"
)

// bodyCase is one request of a gateway-level body test: the backend gets want (a document
// written out by hand, S3's namespace on the root) or the client gets code.
type bodyCase struct {
	name, target, body string
	want               string // the backend's body; "" with code set: refused
	code               string
}

// runBodyCases sends each case as a signed POST and checks what the backend received.
func runBodyCases(t *testing.T, cases []bodyCase) {
	t.Helper()
	user := Credential{AccessKeyID: "USER", SecretAccessKey: "usersecret"}
	g, bb, _ := newStrictGateway(t, user)
	for _, c := range cases {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, signedRequest(t, user, http.MethodPost, c.target, c.body, nil))
		seen := bb.take()
		if c.code != "" {
			if !strings.Contains(rec.Body.String(), "<Code>"+c.code+"</Code>") || len(seen) != 0 {
				t.Errorf("%s: %d %s, backend saw %d requests; want %s and none", c.name, rec.Code, rec.Body.String(), len(seen), c.code)
			}
			continue
		}
		if rec.Code != http.StatusOK || len(seen) != 1 {
			t.Errorf("%s: %d %s, backend saw %d requests; want 200 and one", c.name, rec.Code, rec.Body.String(), len(seen))
			continue
		}
		wantMD5 := ""
		if c.want != "" {
			sum := md5.Sum([]byte(c.want))
			wantMD5 = base64.StdEncoding.EncodeToString(sum[:])
		}
		if seen[0].body != c.want || seen[0].contentMD5 != wantMD5 {
			t.Errorf("%s: backend body\n%s (Content-MD5 %s)\nwant\n%s", c.name, seen[0].body, seen[0].contentMD5, c.want)
		}
	}
}

const s3NS = `xmlns="http://s3.amazonaws.com/doc/2006-03-01/"`

// TestDeleteObjectsStrict: DeleteObjects is parsed strictly, the reserved prefix is checked on
// the parsed keys, and the backend gets the gateway's serialisation, not the client's bytes.
func TestDeleteObjectsStrict(t *testing.T) {
	rec := format.ReservedPrefix + "s3seal/uploads/u/id"
	obj := func(k string) string { return "<Object><Key>" + k + "</Key></Object>" }
	runBodyCases(t, []bodyCase{
		{name: "canonical", target: "/bkt?delete",
			body: `<?xml version="1.0" encoding="UTF-8"?>` + "\n<!-- c -->\n" + `<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"> <Quiet>1</Quiet>` +
				`<Object><Key>a&amp;b&#13;</Key><VersionId>v1</VersionId></Object>` +
				`<Object><Key> sp </Key><ETag>"e"</ETag><LastModifiedTime>2026-01-01T00:00:00Z</LastModifiedTime><Size> 12 </Size></Object></Delete>` + "\n",
			want: `<Delete ` + s3NS + `><Object><Key>a&amp;b&#xD;</Key><VersionId>v1</VersionId></Object>` +
				`<Object><Key> sp </Key><ETag>&#34;e&#34;</ETag><LastModifiedTime>2026-01-01T00:00:00Z</LastModifiedTime><Size>12</Size></Object><Quiet>true</Quiet></Delete>`},
		{name: "no namespace, CDATA", target: "/bkt?delete", body: `<Delete><Object><Key><![CDATA[x<y]]></Key></Object></Delete>`,
			want: `<Delete ` + s3NS + `><Object><Key>x&lt;y</Key></Object></Delete>`},
		{name: "another root", target: "/bkt?delete", body: `<Remove>` + obj(rec) + `</Remove>`, code: "MalformedXML"},
		{name: "another root, plain key", target: "/bkt?delete", body: `<Remove>` + obj("k") + `</Remove>`, code: "MalformedXML"},
		{name: "second root", target: "/bkt?delete", body: `<Delete>` + obj("k") + `</Delete><Delete>` + obj(rec) + `</Delete>`, code: "MalformedXML"},
		{name: "trailing element", target: "/bkt?delete", body: `<Delete>` + obj("k") + `</Delete><x/>`, code: "MalformedXML"},
		{name: "trailing text", target: "/bkt?delete", body: `<Delete>` + obj("k") + `</Delete>junk`, code: "MalformedXML"},
		{name: "unknown element", target: "/bkt?delete", body: `<Delete>` + obj("k") + `<Objects>` + obj(rec) + `</Objects></Delete>`, code: "MalformedXML"},
		{name: "other namespace", target: "/bkt?delete", body: `<Delete xmlns="urn:x">` + obj("k") + `</Delete>`, code: "MalformedXML"},
		{name: "two keys in one object", target: "/bkt?delete", body: `<Delete><Object><Key>k</Key><Key>` + rec + `</Key></Object></Delete>`, code: "MalformedXML"},
		{name: "no key", target: "/bkt?delete", body: `<Delete><Object><VersionId>v</VersionId></Object></Delete>`, code: "MalformedXML"},
		{name: "no object", target: "/bkt?delete", body: `<Delete><Quiet>true</Quiet></Delete>`, code: "MalformedXML"},
		{name: "1001 objects", target: "/bkt?delete", body: `<Delete>` + strings.Repeat(obj("k"), 1001) + `</Delete>`, code: "MalformedXML"},
		{name: "bad size", target: "/bkt?delete", body: `<Delete><Object><Key>k</Key><Size>-1</Size></Object></Delete>`, code: "MalformedXML"},
		{name: "reserved key", target: "/bkt?delete", body: `<Delete>` + obj("k") + obj(rec) + `</Delete>`, code: "AccessDenied"},
		{name: "reserved key as a reference", target: "/bkt?delete", body: `<Delete>` + obj("&#x10FFFF;s3seal/x") + `</Delete>`, code: "AccessDenied"},
	})
}

// TestRestoreObjectStrict: a RestoreRequest is parsed strictly (a decoy element no longer hides
// a SELECT restore) and the backend gets only Days, GlacierJobParameters, Tier and Description.
func TestRestoreObjectStrict(t *testing.T) {
	const sel = `<RestoreRequest><Type>SELECT</Type><OutputLocation><S3><BucketName>out</BucketName><Prefix>p</Prefix></S3></OutputLocation></RestoreRequest>`
	runBodyCases(t, []bodyCase{
		{name: "canonical", target: "/bkt/k?restore",
			body: `<RestoreRequest xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Days> 3 </Days><GlacierJobParameters><Tier>Bulk</Tier></GlacierJobParameters><Description>d&lt;</Description></RestoreRequest>`,
			want: `<RestoreRequest ` + s3NS + `><Days>3</Days><GlacierJobParameters><Tier>Bulk</Tier></GlacierJobParameters><Description>d&lt;</Description></RestoreRequest>`},
		{name: "tier", target: "/bkt/k?restore", body: `<RestoreRequest><Tier>Standard</Tier></RestoreRequest>`,
			want: `<RestoreRequest ` + s3NS + `><Tier>Standard</Tier></RestoreRequest>`},
		{name: "empty body", target: "/bkt/k?restore", body: "", want: ""},
		{name: "decoy first element", target: "/bkt/k?restore", body: `<Decoy/>` + sel, code: "MalformedXML"},
		{name: "decoy first root", target: "/bkt/k?restore", body: `<RestoreRequest><Days>1</Days></RestoreRequest>` + sel, code: "MalformedXML"},
		{name: "decoy wrapper", target: "/bkt/k?restore", body: `<RestoreRequest><Days>1</Days><X>` + sel + `</X></RestoreRequest>`, code: "MalformedXML"},
		{name: "select", target: "/bkt/k?restore", body: sel, code: "NotImplemented"},
		{name: "select parameters", target: "/bkt/k?restore", body: `<RestoreRequest><SelectParameters><Expression>x</Expression></SelectParameters></RestoreRequest>`, code: "NotImplemented"},
		{name: "type twice", target: "/bkt/k?restore", body: `<RestoreRequest><Type>X</Type><Type>SELECT</Type></RestoreRequest>`, code: "MalformedXML"},
		{name: "bad days", target: "/bkt/k?restore", body: `<RestoreRequest><Days>1x</Days></RestoreRequest>`, code: "MalformedXML"},
		{name: "glacier job without tier", target: "/bkt/k?restore", body: `<RestoreRequest><GlacierJobParameters/></RestoreRequest>`, code: "MalformedXML"},
	})
}

// TestParseCompletePartsStrict: CompleteMultipartUpload's document has one root of that
// name, nothing after it, and no element S3 does not define there.
func TestParseCompletePartsStrict(t *testing.T) {
	part := func(n, etag string) string {
		return "<Part><PartNumber>" + n + "</PartNumber><ETag>" + etag + "</ETag></Part>"
	}
	good := `<?xml version="1.0"?><CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` + part("1", `"a"`) +
		`<Part><PartNumber>2</PartNumber><ETag>"b"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32><ChecksumCRC32C>x</ChecksumCRC32C>` +
		`<ChecksumCRC64NVME>x</ChecksumCRC64NVME><ChecksumSHA1>x</ChecksumSHA1><ChecksumSHA256>x</ChecksumSHA256></Part></CompleteMultipartUpload>` + "\n"
	parts, err := parseCompleteParts([]byte(good))
	if err != nil || len(parts) != 2 || parts[0].PartNumber != 1 || parts[0].ETag != `"a"` || parts[1].PartNumber != 2 || parts[1].ETag != `"b"` {
		t.Fatalf("good document: %+v %v", parts, err)
	}
	for name, c := range map[string]struct{ body, code string }{
		"another root":     {`<Complete>` + part("1", "a") + `</Complete>`, "MalformedXML"},
		"second root":      {`<CompleteMultipartUpload>` + part("1", "a") + `</CompleteMultipartUpload><CompleteMultipartUpload>` + part("2", "b") + `</CompleteMultipartUpload>`, "MalformedXML"},
		"trailing element": {`<CompleteMultipartUpload>` + part("1", "a") + `</CompleteMultipartUpload><x/>`, "MalformedXML"},
		"unknown element":  {`<CompleteMultipartUpload>` + part("1", "a") + `<Parts>` + part("2", "b") + `</Parts></CompleteMultipartUpload>`, "MalformedXML"},
		"unknown in part":  {`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag><Size>5</Size></Part></CompleteMultipartUpload>`, "MalformedXML"},
		"two numbers":      {`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><PartNumber>2</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>`, "MalformedXML"},
		"doctype":          {`<!DOCTYPE x [<!ENTITY e "1">]><CompleteMultipartUpload>` + part("1", "a") + `</CompleteMultipartUpload>`, "MalformedXML"},
		"no parts":         {`<CompleteMultipartUpload/>`, "MalformedXML"},
		"out of order":     {`<CompleteMultipartUpload>` + part("2", "a") + part("1", "b") + `</CompleteMultipartUpload>`, "InvalidPartOrder"},
	} {
		_, err := parseCompleteParts([]byte(c.body))
		var e *s3err.Error
		if !errors.As(err, &e) || e.Code != c.code {
			t.Errorf("%s: %v, want %s", name, err, c.code)
		}
	}
}

// TestForwardedBody: for each operation with a request document, the backend's body is the
// canonical serialisation, and a wrong root, content after the root or an unknown element is
// refused; admin operations keep the client's body; any other operation has no body.
func TestForwardedBody(t *testing.T) {
	tags := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString("<Tag><Key>k" + strings.Repeat("x", i) + "</Key><Value>v</Value></Tag>")
		}
		return "<Tagging><TagSet>" + b.String() + "</TagSet></Tagging>"
	}
	ok := []struct{ op, body, want string }{
		{"PutObjectTagging", "<?xml version=\"1.0\"?>\n<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n <TagSet>\n  <Tag><Key>a b</Key><Value>&lt;v&gt;</Value></Tag>\n  <Tag><Key>c</Key><Value></Value></Tag>\n </TagSet>\n</Tagging>\n",
			`<Tagging ` + s3NS + `><TagSet><Tag><Key>a b</Key><Value>&lt;v&gt;</Value></Tag><Tag><Key>c</Key><Value></Value></Tag></TagSet></Tagging>`},
		{"PutObjectTagging", tags(10), ""},
		{"PutBucketTagging", `<Tagging><TagSet><Tag><Key>` + strings.Repeat("é", 128) + `</Key><Value>` + strings.Repeat("v", 256) + `</Value></Tag></TagSet></Tagging>`,
			`<Tagging ` + s3NS + `><TagSet><Tag><Key>` + strings.Repeat("é", 128) + `</Key><Value>` + strings.Repeat("v", 256) + `</Value></Tag></TagSet></Tagging>`},
		{"PutBucketTagging", tags(50), ""},
		{"PutBucketTagging", `<Tagging/>`, `<Tagging ` + s3NS + `></Tagging>`},
		{"PutObjectRetention", `<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>`,
			`<Retention ` + s3NS + `><Mode>GOVERNANCE</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>`},
		{"PutObjectRetention", `<Retention/>`, `<Retention ` + s3NS + `></Retention>`},
		{"PutObjectLegalHold", `<s3:LegalHold xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/"><s3:Status>ON</s3:Status></s3:LegalHold>`,
			`<LegalHold ` + s3NS + `><Status>ON</Status></LegalHold>`},
		{"CreateBucket", `<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>`,
			`<CreateBucketConfiguration ` + s3NS + `><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>`},
		{"CreateBucket", "", ""},
		{"CreateBucket", " \r\n", ""},
		{"PutObjectTagging", "", ""},
		{"DeleteObjects", `<Delete><Object><Key>k</Key></Object></Delete>`, `<Delete ` + s3NS + `><Object><Key>k</Key></Object></Delete>`},
		{"RestoreObject", `<RestoreRequest><Days>2</Days></RestoreRequest>`, `<RestoreRequest ` + s3NS + `><Days>2</Days></RestoreRequest>`},
		{"DeleteObject", "", ""},
		{"PutBucketPolicy", `{"Version":"2012-10-17"} trailing`, `{"Version":"2012-10-17"} trailing`},
		{"PutBucketLifecycleConfiguration", `<LifecycleConfiguration/><x/>`, `<LifecycleConfiguration/><x/>`},
		{"PutObjectAcl", `<AccessControlPolicy/>`, `<AccessControlPolicy/>`},
	}
	for _, c := range ok {
		got, e := forwardedBody(c.op, []byte(c.body))
		if c.want == "" && strings.TrimSpace(c.body) != "" { // accepted; output checked by the fuzz target
			if e != nil {
				t.Errorf("%s %.40q: %v", c.op, c.body, e)
			}
			continue
		}
		if e != nil || string(got) != c.want {
			t.Errorf("%s %q:\n%s %v\nwant\n%s", c.op, c.body, got, e, c.want)
		}
	}
	// inner is a valid content of root; single one of its elements that may not repeat.
	docs := map[string]struct{ root, inner, single string }{
		"PutObjectTagging":   {"Tagging", "", "<TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet>"},
		"PutBucketTagging":   {"Tagging", "", "<TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet>"},
		"PutObjectRetention": {"Retention", "<Mode>COMPLIANCE</Mode>", "<RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate>"},
		"PutObjectLegalHold": {"LegalHold", "", "<Status>OFF</Status>"},
		"CreateBucket":       {"CreateBucketConfiguration", "", "<LocationConstraint>x</LocationConstraint>"},
		"DeleteObjects":      {"Delete", "<Object><Key>k</Key></Object>", "<Quiet>true</Quiet>"},
		"RestoreObject":      {"RestoreRequest", "<Days>1</Days>", "<Tier>Bulk</Tier>"},
	}
	for op, d := range docs {
		doc := func(root, inner string) string { return "<" + root + ">" + inner + "</" + root + ">" }
		if _, e := forwardedBody(op, []byte(doc(d.root, d.inner+d.single))); e != nil {
			t.Errorf("%s: the base document is refused: %v", op, e)
		}
		for name, body := range map[string]string{
			"wrong root":           doc(d.root+"s", d.inner),
			"second root":          doc(d.root, d.inner) + doc(d.root, d.inner),
			"trailing element":     doc(d.root, d.inner) + "<x/>",
			"trailing text":        doc(d.root, d.inner) + "x",
			"unclosed":             "<" + d.root + ">" + d.inner,
			"unknown element":      doc(d.root, d.inner+"<Unknown/>"),
			"unknown nested":       doc(d.root, d.inner+strings.Replace(d.single, "</", "<Unknown/></", 1)),
			"element twice":        doc(d.root, d.inner+d.single+d.single),
			"text between":         doc(d.root, "x"+d.inner),
			"other namespace":      `<` + d.root + ` xmlns="urn:other">` + d.inner + `</` + d.root + `>`,
			"unbound prefix":       "<p:" + d.root + ">" + d.inner + "</p:" + d.root + ">",
			"attribute":            `<` + d.root + ` a="1">` + d.inner + `</` + d.root + `>`,
			"doctype":              `<!DOCTYPE ` + d.root + `>` + doc(d.root, d.inner),
			"not UTF-8":            `<?xml version="1.0" encoding="ISO-8859-1"?>` + doc(d.root, d.inner),
			"undefined entity":     doc(d.root, d.inner+strings.Replace(d.single, "</", "&e;</", 1)),
			"child in another ns":  doc(d.root, d.inner+strings.Replace(d.single, ">", ` xmlns="urn:other">`, 1)),
			"too deep (wrapper)":   doc(d.root, strings.Repeat("<W>", maxXMLDepth)+strings.Repeat("</W>", maxXMLDepth)),
			"byte order mark then": "\ufeff" + doc(d.root, d.inner),
		} {
			if _, e := forwardedBody(op, []byte(body)); e == nil || e.Code != "MalformedXML" || e.Status != http.StatusBadRequest {
				t.Errorf("%s, %s %q: %v, want MalformedXML", op, name, body, e)
			}
		}
	}
	for _, c := range []struct{ op, body, code string }{
		{"PutObjectTagging", tags(11), "BadRequest"},
		{"PutBucketTagging", tags(51), "BadRequest"},
		{"PutObjectTagging", `<Tagging><TagSet><Tag><Key>` + strings.Repeat("k", 129) + `</Key><Value>v</Value></Tag></TagSet></Tagging>`, "InvalidTag"},
		{"PutObjectTagging", `<Tagging><TagSet><Tag><Key>k</Key><Value>` + strings.Repeat("é", 257) + `</Value></Tag></TagSet></Tagging>`, "InvalidTag"},
		{"PutObjectTagging", `<Tagging><TagSet><Tag><Key></Key><Value>v</Value></Tag></TagSet></Tagging>`, "InvalidTag"},
		{"PutObjectTagging", `<Tagging><TagSet><Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>k</Key><Value>2</Value></Tag></TagSet></Tagging>`, "InvalidTag"},
		{"PutObjectTagging", `<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>`, "MalformedXML"},
		{"CreateBucket", `<CreateBucketConfiguration><Location><Type>AvailabilityZone</Type><Name>usw2-az1</Name></Location><Bucket><Type>Directory</Type></Bucket></CreateBucketConfiguration>`, "NotImplemented"},
		{"CreateBucket", `<CreateBucketConfiguration><Bucket><DataRedundancy>SingleAvailabilityZone</DataRedundancy></Bucket></CreateBucketConfiguration>`, "NotImplemented"},
		{"DeleteObjects", "", "MalformedXML"},
		{"DeleteObjectTagging", "<Tagging/>", "NotImplemented"},
		{"HeadBucket", " ", "NotImplemented"},
		{"NoSuchOperation", "x", "NotImplemented"},
	} {
		status := map[string]int{"InvalidTag": 400, "BadRequest": 400, "MalformedXML": 400, "NotImplemented": 501}[c.code]
		if _, e := forwardedBody(c.op, []byte(c.body)); e == nil || e.Code != c.code || e.Status != status {
			t.Errorf("%s %.60q: %v, want %s %d", c.op, c.body, e, c.code, status)
		}
	}
}
