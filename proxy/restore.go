package proxy

import (
	"bytes"
	"encoding/xml"
	"strings"

	"github.com/s3seal/s3seal/s3err"
)

// restoreRequest is the part of RestoreObject's RestoreRequest document the gateway checks.
type restoreRequest struct {
	Type             string    `xml:"Type"`
	OutputLocation   *struct{} `xml:"OutputLocation"`
	SelectParameters *struct{} `xml:"SelectParameters"`
}

// restoreObject forwards RestoreObject, except a SELECT-type restore: it names an output
// location (another bucket) that the backend would write query results to, outside the
// gateway's encryption and authorization.
func (g *Gateway) restoreObject(q *request) error {
	body, err := g.readSmallBody(q)
	if err != nil {
		return err
	}
	if e := checkRestoreBody(body); e != nil {
		return e
	}
	return g.forwardBody(q, body)
}

// checkRestoreBody refuses a RestoreRequest with an output location, SELECT parameters or
// type SELECT, and a body that is not XML.
func checkRestoreBody(body []byte) *s3err.Error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var rr restoreRequest
	d := xml.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(&rr); err != nil {
		return s3err.New("MalformedXML", "")
	}
	if rr.OutputLocation != nil || rr.SelectParameters != nil || strings.EqualFold(strings.TrimSpace(rr.Type), "SELECT") {
		return s3err.New("NotImplemented", "RestoreObject with an output location (SELECT) is not supported by this encrypting gateway.")
	}
	return nil
}
