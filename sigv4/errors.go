package sigv4

import "net/http"

// S3 error codes returned in Error.Code.
const (
	CodeSignatureDoesNotMatch         = "SignatureDoesNotMatch"
	CodeInvalidAccessKeyID            = "InvalidAccessKeyId"
	CodeAccessDenied                  = "AccessDenied"
	CodeRequestTimeTooSkewed          = "RequestTimeTooSkewed"
	CodeAuthorizationHeaderMalformed  = "AuthorizationHeaderMalformed"
	CodeAuthorizationQueryParamsError = "AuthorizationQueryParametersError"
	CodeXAmzContentSHA256Mismatch     = "XAmzContentSHA256Mismatch"
	CodeBadDigest                     = "BadDigest"
	CodeInvalidDigest                 = "InvalidDigest"
	CodeIncompleteBody                = "IncompleteBody"
	CodeMissingContentLength          = "MissingContentLength"
	CodeInvalidArgument               = "InvalidArgument"
	CodeInvalidRequest                = "InvalidRequest"
	CodeMissingSecurityHeader         = "MissingSecurityHeader"
	CodeNotImplemented                = "NotImplemented"
	CodeMalformedTrailerError         = "MalformedTrailerError"
)

// Error is what every failure of this package returns; Code is the S3 error
// code. Message is human readable and never contains secrets or signatures.
type Error struct {
	Code    string
	Message string
	cause   error // underlying I/O error, if any (see Unwrap)
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the underlying I/O error of a body read failure (for example
// an *http.MaxBytesError from a size-limiting wrapper), or nil.
func (e *Error) Unwrap() error { return e.cause }

// StatusCode is the HTTP status S3 answers with for e.Code.
func (e *Error) StatusCode() int {
	switch e.Code {
	case CodeSignatureDoesNotMatch, CodeInvalidAccessKeyID, CodeAccessDenied, CodeRequestTimeTooSkewed:
		return http.StatusForbidden
	case CodeMissingContentLength:
		return http.StatusLengthRequired
	case CodeNotImplemented:
		return http.StatusNotImplemented
	default:
		return http.StatusBadRequest
	}
}

func newError(code, msg string) *Error { return &Error{Code: code, Message: msg} }

func errSignature() *Error {
	return newError(CodeSignatureDoesNotMatch,
		"The request signature we calculated does not match the signature you provided. Check your key and signing method.")
}
