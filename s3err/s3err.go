// Package s3err is the S3 error vocabulary of the gateway: the error codes S3 documents, the HTTP
// status each one carries, and the XML body S3 clients parse.
//
// Every error a client sees goes through Write, so that every client tool gets the shape it
// knows (`<Error><Code>…</Code><Message>…</Message>…</Error>`, no body for HEAD). No library
// exposes this table on its own (the SDKs only parse it), hence this small package.
package s3err

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
)

// Error is an S3 error response.
type Error struct {
	Code    string // S3 error code, e.g. "NoSuchKey"
	Message string // human-readable; never contains secrets
	Status  int    // HTTP status
	// Optional fields S3 includes for some codes.
	BucketName string
	Key        string
	Resource   string
	Region     string // AuthorizationHeaderMalformed: the region the gateway expects
	// Header holds response headers S3 sends with this error (x-amz-delete-marker and
	// x-amz-version-id when the key's current version, or the version asked for, is a delete
	// marker); Write sets them.
	Header http.Header
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// info is the status and default message of a code.
type info struct {
	status int
	msg    string
}

// table holds the codes the gateway emits, with the status and message S3 documents
// (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html). Read-only.
var table = map[string]info{
	"AccessDenied":                      {http.StatusForbidden, "Access Denied"},
	"AuthorizationHeaderMalformed":      {http.StatusBadRequest, "The authorization header is malformed."},
	"AuthorizationQueryParametersError": {http.StatusBadRequest, "Error parsing the X-Amz-Credential parameter."},
	"BadRequest":                        {http.StatusBadRequest, "Bad Request"},
	"BadDigest":                         {http.StatusBadRequest, "The Content-MD5 or checksum value you specified did not match what the server received."},
	"BucketAlreadyExists":               {http.StatusConflict, "The requested bucket name is not available."},
	"BucketAlreadyOwnedByYou":           {http.StatusConflict, "Your previous request to create the named bucket succeeded and you already own it."},
	"BucketNotEmpty":                    {http.StatusConflict, "The bucket you tried to delete is not empty."},
	"EntityTooLarge":                    {http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size."},
	"EntityTooSmall":                    {http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size."},
	"IncompleteBody":                    {http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header."},
	"InternalError":                     {http.StatusInternalServerError, "We encountered an internal error. Please try again."},
	"InvalidAccessKeyId":                {http.StatusForbidden, "The AWS access key ID you provided does not exist in our records."},
	"InvalidArgument":                   {http.StatusBadRequest, "Invalid Argument"},
	"InvalidBucketName":                 {http.StatusBadRequest, "The specified bucket is not valid."},
	"InvalidDigest":                     {http.StatusBadRequest, "The Content-MD5 or checksum value you specified is not valid."},
	"InvalidEncryptionAlgorithmError":   {http.StatusBadRequest, "The encryption request you specified is not valid."},
	"InvalidObjectState":                {http.StatusForbidden, "The operation is not valid for the current state of the object."},
	"InvalidPart":                       {http.StatusBadRequest, "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."},
	"InvalidPartNumber":                 {http.StatusRequestedRangeNotSatisfiable, "The requested partnumber is not satisfiable"},
	"InvalidPartOrder":                  {http.StatusBadRequest, "The list of parts was not in ascending order."},
	"InvalidRange":                      {http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable"},
	"InvalidTag":                        {http.StatusBadRequest, "The tag provided was not a valid tag."},
	"InvalidRequest":                    {http.StatusBadRequest, "Invalid Request"},
	"KeyTooLongError":                   {http.StatusBadRequest, "Your key is too long."},
	"KMS.DisabledException":             {http.StatusBadRequest, "The KMS key is disabled."},
	"KMS.NotFoundException":             {http.StatusBadRequest, "The KMS key was not found."},
	"MalformedXML":                      {http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema."},
	"MalformedTrailerError":             {http.StatusBadRequest, "The request contained trailing data that was not well-formed or did not conform to our published schema."},
	"MaxMessageLengthExceeded":          {http.StatusBadRequest, "Your request was too big."},
	"MetadataTooLarge":                  {http.StatusBadRequest, "Your metadata headers exceed the maximum allowed metadata size."},
	"MethodNotAllowed":                  {http.StatusMethodNotAllowed, "The specified method is not allowed against this resource."},
	"MissingContentLength":              {http.StatusLengthRequired, "You must provide the Content-Length HTTP header."},
	"MissingSecurityHeader":             {http.StatusBadRequest, "Your request was missing a required header."},
	"NoSuchBucket":                      {http.StatusNotFound, "The specified bucket does not exist."},
	"NoSuchKey":                         {http.StatusNotFound, "The specified key does not exist."},
	"NoSuchUpload":                      {http.StatusNotFound, "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."},
	"NoSuchVersion":                     {http.StatusNotFound, "The specified version does not exist."},
	"NotImplemented":                    {http.StatusNotImplemented, "A header you provided implies functionality that is not implemented."},
	"NotModified":                       {http.StatusNotModified, "Not Modified"},
	"PreconditionFailed":                {http.StatusPreconditionFailed, "At least one of the preconditions you specified did not hold."},
	"RequestHeaderSectionTooLarge":      {http.StatusBadRequest, "Your request header section exceeds the maximum allowed size."},
	"RequestTimeTooSkewed":              {http.StatusForbidden, "The difference between the request time and the server's time is too large."},
	"RequestTimeout":                    {http.StatusBadRequest, "Your socket connection to the server was not read from or written to within the timeout period."},
	"ServiceUnavailable":                {http.StatusServiceUnavailable, "Service is unable to handle request."},
	"SignatureDoesNotMatch":             {http.StatusForbidden, "The request signature we calculated does not match the signature you provided. Check your key and signing method."},
	"SlowDown":                          {http.StatusServiceUnavailable, "Please reduce your request rate."},
	"XAmzContentSHA256Mismatch":         {http.StatusBadRequest, "The provided 'x-amz-content-sha256' header does not match what was computed."},
}

// New returns the error for code with message msg ("" = the code's default message). An unknown
// code is kept, with status 500 unless the table knows it.
func New(code, msg string) *Error {
	in, ok := table[code]
	if !ok {
		in = info{http.StatusInternalServerError, "We encountered an internal error. Please try again."}
	}
	if msg == "" {
		msg = in.msg
	}
	return &Error{Code: code, Message: msg, Status: in.status}
}

// Newf is New with a formatted message.
func Newf(code, format string, args ...any) *Error {
	return New(code, fmt.Sprintf(format, args...))
}

// Known reports whether code is in the table.
func Known(code string) bool {
	_, ok := table[code]
	return ok
}

// StatusOf returns the HTTP status of code (500 for unknown codes).
// IsS3Status reports whether status is one S3 answers errors with (a backend's own statuses,
// such as MinIO's 499 for a request it saw canceled, are not).
func IsS3Status(status int) bool {
	if status == http.StatusMovedPermanently || status == http.StatusTemporaryRedirect { // PermanentRedirect, TemporaryRedirect
		return true
	}
	for _, in := range table {
		if in.status == status {
			return true
		}
	}
	return false
}

func StatusOf(code string) int {
	if in, ok := table[code]; ok {
		return in.status
	}
	return http.StatusInternalServerError
}

// body is the XML document S3 sends.
type body struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string   `xml:"Code"`
	Message    string   `xml:"Message"`
	BucketName string   `xml:"BucketName,omitempty"`
	Key        string   `xml:"Key,omitempty"`
	Resource   string   `xml:"Resource,omitempty"`
	Region     string   `xml:"Region,omitempty"`
	RequestID  string   `xml:"RequestId"`
	HostID     string   `xml:"HostId"`
}

// Write sends e as S3 does: status, XML body (none for HEAD requests and 304), and the request
// id in the body and in x-amz-request-id.
func Write(w http.ResponseWriter, r *http.Request, e *Error, requestID string) {
	h := w.Header()
	for name, vs := range e.Header {
		h[name] = append([]string(nil), vs...)
	}
	if requestID != "" {
		h.Set("X-Amz-Request-Id", requestID)
	}
	if r.Method == http.MethodHead || e.Status == http.StatusNotModified {
		w.WriteHeader(e.Status)
		return
	}
	out, err := xml.Marshal(body{
		Code: e.Code, Message: e.Message, BucketName: e.BucketName, Key: e.Key,
		Resource: e.Resource, Region: e.Region, RequestID: requestID, HostID: requestID,
	})
	if err != nil { // cannot happen with string fields; fail closed with a bare status
		w.WriteHeader(e.Status)
		return
	}
	doc := append([]byte(xml.Header), out...)
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(doc)
}

// Parse reads an S3 XML error document (as a backend sends it). It returns nil when data is not
// one.
func Parse(data []byte, status int) *Error {
	var b body
	if err := xml.Unmarshal(data, &b); err != nil || b.Code == "" {
		return nil
	}
	return &Error{Code: b.Code, Message: b.Message, Status: status, BucketName: b.BucketName, Key: b.Key}
}
