package proxy

import (
	"encoding/xml"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/s3err"
)

// restoreRequest is RestoreObject's RestoreRequest document, every element S3 defines.
type restoreRequest struct {
	XMLName              xml.Name              `xml:"RestoreRequest"`
	Days                 *string               `xml:"Days"`
	GlacierJobParameters *glacierJobParameters `xml:"GlacierJobParameters"`
	Type                 *string               `xml:"Type"`
	Tier                 *string               `xml:"Tier"`
	Description          *string               `xml:"Description"`
	SelectParameters     *xmlAny               `xml:"SelectParameters"`
	OutputLocation       *xmlAny               `xml:"OutputLocation"`
}

// glacierJobParameters is a RestoreRequest's GlacierJobParameters; Tier is required.
type glacierJobParameters struct {
	Tier *string `xml:"Tier"`
}

// restoreDocument is the RestoreRequest the backend gets: a restore of the object's own bytes,
// nothing of SELECT.
type restoreDocument struct {
	Days                 *int64                `xml:"Days"`
	GlacierJobParameters *glacierJobParameters `xml:"GlacierJobParameters"`
	Tier                 *string               `xml:"Tier"`
	Description          *string               `xml:"Description"`
}

// restoreObject forwards RestoreObject, except a SELECT-type restore: it names an output
// location (another bucket) that the backend would write query results to, outside the
// gateway's encryption and authorization.
func (g *Gateway) restoreObject(q *request) error {
	body, err := g.readSmallBody(q)
	if err != nil {
		return err
	}
	doc, e := restoreBody(body)
	if e != nil {
		return e
	}
	return g.forwardBody(q, doc)
}

// restoreBody returns the body the backend gets for a RestoreObject body: empty for an empty
// one, else the gateway's serialisation of the strictly parsed RestoreRequest (parseRestore).
func restoreBody(body []byte) ([]byte, *s3err.Error) {
	if isXMLSpace(body) {
		return nil, nil
	}
	d, e := parseRestore(body)
	if e != nil {
		return nil, e
	}
	return encodeDocument("RestoreRequest", d)
}

// parseRestore reads a RestoreRequest: a SELECT restore (Type SELECT, SelectParameters or
// OutputLocation) is NotImplemented; Days must be an integer, GlacierJobParameters must name a
// Tier, and Type has no other value than SELECT (MalformedXML).
func parseRestore(body []byte) (*restoreDocument, *s3err.Error) {
	var rr restoreRequest
	if e := decodeStrict(body, &rr); e != nil {
		return nil, e
	}
	if rr.OutputLocation != nil || rr.SelectParameters != nil || (rr.Type != nil && strings.EqualFold(xmlText(*rr.Type), "SELECT")) {
		return nil, s3err.New("NotImplemented", "RestoreObject with an output location (SELECT) is not supported by this encrypting gateway.")
	}
	if rr.Type != nil || (rr.GlacierJobParameters != nil && rr.GlacierJobParameters.Tier == nil) {
		return nil, malformedXML()
	}
	d := &restoreDocument{GlacierJobParameters: rr.GlacierJobParameters, Tier: rr.Tier, Description: rr.Description}
	if rr.Days != nil {
		n, err := strconv.ParseInt(xmlText(*rr.Days), 10, 32)
		if err != nil {
			return nil, malformedXML()
		}
		d.Days = &n
	}
	return d, nil
}
