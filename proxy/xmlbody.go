package proxy

import (
	"bytes"
	"encoding/xml"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/s3seal/s3seal/s3err"
)

// Request documents. The gateway lends its backend key to every request it forwards, and the
// backend is the attacker: an XML body the gateway acts on (checks a key of, refuses a kind of
// request by) must mean to the backend what it meant to the gateway. So such a body is parsed
// strictly (decodeStrict) and the backend gets a document the gateway wrote from the parsed
// values (encodeDocument), never the client's bytes:
//
//   - exactly one root element, of the document's name, in S3's namespace or none; before and
//     after it nothing but white space, comments and processing instructions (no second root,
//     no trailing bytes, no DOCTYPE);
//   - every element in S3's namespace or none, no attributes but namespace declarations;
//   - no child element the document's type does not define, none of the non-repeating ones
//     twice, no text between child elements;
//   - bounded: at most maxForwardBody bytes (readSmallBody), maxXMLElements elements,
//     maxXMLDepth levels.
//
// Anything else is MalformedXML. A document's type is a struct with encoding/xml tags (a plain
// element name per field; a slice repeats; an ",innerxml" field takes any content); its
// XMLName tag names the root.

// s3Namespace is the XML namespace of S3's documents.
const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

// maxXMLElements and maxXMLDepth bound a request document (CompleteMultipartUpload with 10,000
// parts of 8 elements is the largest S3 defines).
const (
	maxXMLElements = 100_000
	maxXMLDepth    = 16
)

// malformedXML is S3's answer to a request document it does not accept.
func malformedXML() *s3err.Error { return s3err.New("MalformedXML", "") }

// xmlNode is an element of a request document as parseTree reads it: its local name, its
// child elements, and whether it holds text other than white space.
type xmlNode struct {
	name     string
	children []*xmlNode
	text     bool
}

// isXMLSpace reports whether b holds nothing but XML white space (space, tab, CR, LF).
func isXMLSpace(b []byte) bool {
	return len(bytes.Trim(b, " \t\r\n")) == 0
}

// s3Element reports whether name is in S3's namespace or in none.
func s3Element(name xml.Name) bool {
	return name.Space == "" || name.Space == s3Namespace
}

// onlyNamespaceAttrs reports whether attrs are namespace declarations only.
func onlyNamespaceAttrs(attrs []xml.Attr) bool {
	for _, a := range attrs {
		if a.Name.Space != "xmlns" && (a.Name.Space != "" || a.Name.Local != "xmlns") {
			return false
		}
	}
	return true
}

// parseTree reads the element structure of a request document, enforcing the rules above
// that do not depend on the document's type.
func parseTree(body []byte) (*xmlNode, *s3err.Error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var root *xmlNode
	var stack []*xmlNode
	count := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, malformedXML()
		}
		switch t := tok.(type) {
		case xml.StartElement:
			count++
			if (len(stack) == 0 && root != nil) || !s3Element(t.Name) || !onlyNamespaceAttrs(t.Attr) ||
				count > maxXMLElements || len(stack) >= maxXMLDepth {
				return nil, malformedXML()
			}
			n := &xmlNode{name: t.Name.Local}
			if len(stack) == 0 {
				root = n
			} else {
				top := stack[len(stack)-1]
				top.children = append(top.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if !isXMLSpace(t) {
				if len(stack) == 0 {
					return nil, malformedXML()
				}
				stack[len(stack)-1].text = true
			}
		case xml.Directive:
			return nil, malformedXML()
		}
	}
	if root == nil || len(stack) != 0 {
		return nil, malformedXML()
	}
	return root, nil
}

// elementFields adds to into the child elements struct type t defines, by name, with the
// type of each (a slice: the element may repeat). It reports whether t takes any content (an
// ",innerxml" field). Tags the strict decoder does not support are programming errors.
func elementFields(t reflect.Type, into map[string]reflect.Type) (anyContent bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("xml")
		if f.Name == "XMLName" || tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		switch opts {
		case "", "omitempty":
		case "innerxml":
			anyContent = true
			continue
		default:
			panic("xmlbody: unsupported xml tag option " + opts + " on " + t.String() + "." + f.Name)
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			anyContent = elementFields(ft, into) || anyContent
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.ContainsAny(name, "> ") {
			panic("xmlbody: unsupported xml tag " + tag + " on " + t.String() + "." + f.Name)
		}
		into[name] = f.Type
	}
	return anyContent
}

// checkShape refuses an element n that type t does not describe: a child element t does not
// define, a non-repeating one twice, text between child elements, or children of a leaf.
func checkShape(n *xmlNode, t reflect.Type) *s3err.Error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		if len(n.children) > 0 {
			return malformedXML()
		}
		return nil
	}
	fields := map[string]reflect.Type{}
	if elementFields(t, fields) {
		return nil
	}
	if n.text {
		return malformedXML()
	}
	seen := map[string]bool{}
	for _, c := range n.children {
		ft, ok := fields[c.name]
		if !ok {
			return malformedXML()
		}
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		} else if seen[c.name] {
			return malformedXML()
		}
		seen[c.name] = true
		if e := checkShape(c, ft); e != nil {
			return e
		}
	}
	return nil
}

// rootName is the element name of the XMLName field's tag of struct type t.
func rootName(t reflect.Type) string {
	f, ok := t.FieldByName("XMLName")
	name, _, _ := strings.Cut(f.Tag.Get("xml"), ",")
	if !ok || name == "" || strings.Contains(name, " ") {
		panic("xmlbody: " + t.String() + " has no plain XMLName tag")
	}
	return name
}

// decodeStrict parses request document body into v (a pointer to a document type, see above)
// or refuses it with MalformedXML.
func decodeStrict(body []byte, v any) *s3err.Error {
	t := reflect.TypeOf(v).Elem()
	n, e := parseTree(body)
	if e != nil {
		return e
	}
	if n.name != rootName(t) {
		return malformedXML()
	}
	if e := checkShape(n, t); e != nil {
		return e
	}
	// The structure is the one t describes, and nothing else is in the document: what
	// encoding/xml reads is all there is.
	if err := xml.Unmarshal(body, v); err != nil {
		return malformedXML()
	}
	return nil
}

// encodeDocument writes v as the request document root, in S3's namespace. Its values come
// from a parsed document (valid UTF-8, characters XML allows), escaped so that any XML parser
// reads them back unchanged (CR and tab as character references).
func encodeDocument(root string, v any) ([]byte, *s3err.Error) {
	var b bytes.Buffer
	if err := xml.NewEncoder(&b).EncodeElement(v, xml.StartElement{Name: xml.Name{Space: s3Namespace, Local: root}}); err != nil {
		return nil, s3err.New("InternalError", "")
	}
	return b.Bytes(), nil
}

// xmlAny is an element whose content the gateway does not read: documents holding one are
// refused.
type xmlAny struct {
	Inner []byte `xml:",innerxml"`
}

// xmlText is the text of an element with XML white space around it removed (for numbers).
func xmlText(s string) string { return strings.Trim(s, " \t\r\n") }

// canonicalUint rewrites *s, a non-negative decimal integer, in canonical form; ok is false if
// it is not one.
func canonicalUint(s *string) (ok bool) {
	if s == nil {
		return true
	}
	n, err := strconv.ParseUint(xmlText(*s), 10, 63)
	if err != nil {
		return false
	}
	*s = strconv.FormatUint(n, 10)
	return true
}

// maxDeleteObjects is S3's limit on the keys of one DeleteObjects request.
const maxDeleteObjects = 1000

// deleteRequest is DeleteObjects' Delete document.
type deleteRequest struct {
	XMLName xml.Name       `xml:"Delete"`
	Objects []deleteObject `xml:"Object"`
	Quiet   *bool          `xml:"Quiet"`
}

// deleteObject is one Object (ObjectIdentifier) of a Delete document; Key is required.
type deleteObject struct {
	Key              *string `xml:"Key"`
	VersionID        *string `xml:"VersionId"`
	ETag             *string `xml:"ETag"`
	LastModifiedTime *string `xml:"LastModifiedTime"`
	Size             *string `xml:"Size"`
}

// parseDelete reads a Delete document: 1 to 1000 objects, each with a key; Size a
// non-negative integer.
func parseDelete(body []byte) (*deleteRequest, *s3err.Error) {
	var d deleteRequest
	if e := decodeStrict(body, &d); e != nil {
		return nil, e
	}
	if len(d.Objects) == 0 || len(d.Objects) > maxDeleteObjects {
		return nil, malformedXML()
	}
	for i := range d.Objects {
		if d.Objects[i].Key == nil || !canonicalUint(d.Objects[i].Size) {
			return nil, malformedXML()
		}
	}
	return &d, nil
}

// document is the Delete document the backend gets.
func (d *deleteRequest) document() ([]byte, *s3err.Error) {
	return encodeDocument("Delete", d)
}

// Tagging limits (S3: tags per object and per bucket, key and value length in characters).
const (
	maxObjectTags  = 10
	maxBucketTags  = 50
	maxTagKeyLen   = 128
	maxTagValueLen = 256
)

// tagging is PutObjectTagging's and PutBucketTagging's Tagging document.
type tagging struct {
	XMLName xml.Name `xml:"Tagging"`
	TagSet  *tagSet  `xml:"TagSet"`
}

// tagSet is a Tagging document's TagSet.
type tagSet struct {
	Tags []tag `xml:"Tag"`
}

// tag is one Tag; Key and Value are required.
type tag struct {
	Key   *string `xml:"Key"`
	Value *string `xml:"Value"`
}

// invalidTag is S3's InvalidTag (400).
func invalidTag(msg string) *s3err.Error {
	return s3err.New("InvalidTag", msg)
}

// parseTagging reads a Tagging document of at most maxTags tags, keys and values within S3's
// limits, no key twice.
func parseTagging(body []byte, maxTags int) (*tagging, *s3err.Error) {
	var d tagging
	if e := decodeStrict(body, &d); e != nil {
		return nil, e
	}
	if d.TagSet == nil {
		return &d, nil
	}
	if len(d.TagSet.Tags) > maxTags {
		// S3's answers (the object and bucket limits have their own messages, code BadRequest).
		if maxTags == maxObjectTags {
			return nil, s3err.Newf("BadRequest", "Object tags cannot be greater than %d", maxTags)
		}
		return nil, s3err.Newf("BadRequest", "Bucket tag count cannot be greater than %d", maxTags)
	}
	keys := map[string]bool{}
	for _, t := range d.TagSet.Tags {
		if t.Key == nil || t.Value == nil {
			return nil, malformedXML()
		}
		switch {
		case *t.Key == "" || utf8.RuneCountInString(*t.Key) > maxTagKeyLen:
			return nil, invalidTag("The TagKey you have provided is invalid")
		case utf8.RuneCountInString(*t.Value) > maxTagValueLen:
			return nil, invalidTag("The TagValue you have provided is invalid")
		case keys[*t.Key]:
			return nil, invalidTag("Cannot provide multiple Tags with the same key")
		}
		keys[*t.Key] = true
	}
	return &d, nil
}

// document is the Tagging document the backend gets.
func (d *tagging) document() ([]byte, *s3err.Error) { return encodeDocument("Tagging", d) }

// retention is PutObjectRetention's Retention document (empty: no retention, which S3 accepts
// with governance bypass).
type retention struct {
	XMLName         xml.Name `xml:"Retention"`
	Mode            *string  `xml:"Mode"`
	RetainUntilDate *string  `xml:"RetainUntilDate"`
}

// parseRetention reads a Retention document.
func parseRetention(body []byte) (*retention, *s3err.Error) {
	var d retention
	if e := decodeStrict(body, &d); e != nil {
		return nil, e
	}
	return &d, nil
}

// document is the Retention document the backend gets.
func (d *retention) document() ([]byte, *s3err.Error) { return encodeDocument("Retention", d) }

// legalHold is PutObjectLegalHold's LegalHold document.
type legalHold struct {
	XMLName xml.Name `xml:"LegalHold"`
	Status  *string  `xml:"Status"`
}

// parseLegalHold reads a LegalHold document.
func parseLegalHold(body []byte) (*legalHold, *s3err.Error) {
	var d legalHold
	if e := decodeStrict(body, &d); e != nil {
		return nil, e
	}
	return &d, nil
}

// document is the LegalHold document the backend gets.
func (d *legalHold) document() ([]byte, *s3err.Error) { return encodeDocument("LegalHold", d) }

// createBucketConfiguration is CreateBucket's CreateBucketConfiguration document. Location and
// Bucket describe directory buckets (S3 Express One Zone), which the gateway does not serve:
// they are refused (NotImplemented) rather than dropped, which would create a general purpose
// bucket instead.
type createBucketConfiguration struct {
	XMLName            xml.Name `xml:"CreateBucketConfiguration"`
	LocationConstraint *string  `xml:"LocationConstraint"`
	Location           *xmlAny  `xml:"Location"`
	Bucket             *xmlAny  `xml:"Bucket"`
}

// createBucketDocument is the CreateBucketConfiguration the backend gets.
type createBucketDocument struct {
	LocationConstraint *string `xml:"LocationConstraint"`
}

// parseCreateBucket reads a CreateBucketConfiguration document.
func parseCreateBucket(body []byte) (*createBucketDocument, *s3err.Error) {
	var d createBucketConfiguration
	if e := decodeStrict(body, &d); e != nil {
		return nil, e
	}
	if d.Location != nil || d.Bucket != nil {
		return nil, s3err.New("NotImplemented", "Directory buckets (Location and Bucket in CreateBucketConfiguration) are not supported by this encrypting gateway.")
	}
	return &createBucketDocument{LocationConstraint: d.LocationConstraint}, nil
}

// document is the CreateBucketConfiguration document the backend gets.
func (d *createBucketDocument) document() ([]byte, *s3err.Error) {
	return encodeDocument("CreateBucketConfiguration", d)
}

// adminBodyOps are the operations that need an admin credential (subAdmin in routes.go):
// their bodies are forwarded as the client sent them.
var adminBodyOps = func() map[string]bool {
	m := map[string]bool{}
	for _, table := range []map[string]map[string]subOp{bucketSubresources, objectSubresources} {
		for _, methods := range table {
			for _, op := range methods {
				if op.admin {
					m[op.op] = true
				}
			}
		}
	}
	return m
}()

// document is what the parse functions return: a parsed request document that serialises
// itself.
type document interface {
	document() ([]byte, *s3err.Error)
}

// parsed adapts a parse function to the body rewriters of bodyDocuments: an empty body (white
// space only) stays empty.
func parsed[D document](parse func([]byte) (D, *s3err.Error)) func([]byte) ([]byte, *s3err.Error) {
	return func(body []byte) ([]byte, *s3err.Error) {
		if isXMLSpace(body) {
			return nil, nil
		}
		d, e := parse(body)
		if e != nil {
			return nil, e
		}
		return d.document()
	}
}

// bodyDocuments rewrite the request bodies of the non-admin operations that have one, by S3
// operation name.
var bodyDocuments = map[string]func([]byte) ([]byte, *s3err.Error){
	"PutObjectTagging":   parsed(func(b []byte) (*tagging, *s3err.Error) { return parseTagging(b, maxObjectTags) }),
	"PutBucketTagging":   parsed(func(b []byte) (*tagging, *s3err.Error) { return parseTagging(b, maxBucketTags) }),
	"PutObjectRetention": parsed(parseRetention),
	"PutObjectLegalHold": parsed(parseLegalHold),
	"CreateBucket":       parsed(parseCreateBucket),
	"DeleteObjects":      deleteBody,
	"RestoreObject":      restoreBody,
}

// forwardedBody returns the body the backend gets for a forwarded request of operation op
// with the client's (verified) body: for admin operations the client's body; for the
// operations of bodyDocuments the gateway's serialisation of the strictly parsed document
// (empty stays empty); for any other operation no body, and a non-empty one is refused.
func forwardedBody(op string, body []byte) ([]byte, *s3err.Error) {
	if adminBodyOps[op] {
		return body, nil
	}
	if rewrite, ok := bodyDocuments[op]; ok {
		return rewrite(body)
	}
	if len(body) > 0 {
		return nil, s3err.Newf("NotImplemented", "A request body for %s is not supported by this encrypting gateway.", op)
	}
	return nil, nil
}
