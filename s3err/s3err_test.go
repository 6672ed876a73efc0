package s3err

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The statuses below are from the S3 API reference's error code list, not from this package.
func TestStatuses(t *testing.T) {
	want := map[string]int{
		"AccessDenied": 403, "SignatureDoesNotMatch": 403, "InvalidAccessKeyId": 403,
		"RequestTimeTooSkewed": 403, "NoSuchKey": 404, "NoSuchBucket": 404, "NoSuchUpload": 404,
		"InvalidRange": 416, "PreconditionFailed": 412, "MissingContentLength": 411,
		"NotImplemented": 501, "SlowDown": 503, "XAmzContentSHA256Mismatch": 400, "BadDigest": 400,
		"InternalError": 500, "BucketNotEmpty": 409, "MethodNotAllowed": 405, "EntityTooLarge": 400,
	}
	for code, status := range want {
		if got := New(code, "").Status; got != status {
			t.Errorf("%s: status %d, want %d", code, got, status)
		}
	}
	if New("SomethingNew", "").Status != 500 {
		t.Error("unknown codes must be 500")
	}
}

// TestWriteXML parses the written document the way SDKs do (root Error, Code, Message,
// RequestId) and checks HEAD gets no body.
func TestWriteXML(t *testing.T) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/b/k", nil)
	e := New("NoSuchKey", "")
	e.Key = "k"
	Write(rec, req, e, "REQ1")
	if rec.Code != 404 || rec.Header().Get("Content-Type") != "application/xml" || rec.Header().Get("X-Amz-Request-Id") != "REQ1" {
		t.Fatalf("status %d headers %v", rec.Code, rec.Header())
	}
	var doc struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		Key       string
		RequestId string
	}
	if err := xml.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, rec.Body.String())
	}
	if doc.Code != "NoSuchKey" || doc.Message != "The specified key does not exist." || doc.Key != "k" || doc.RequestId != "REQ1" {
		t.Errorf("doc %+v", doc)
	}
	if back := Parse(rec.Body.Bytes(), 404); back == nil || back.Code != "NoSuchKey" || back.Key != "k" {
		t.Errorf("Parse: %+v", back)
	}

	rec = httptest.NewRecorder()
	Write(rec, httptest.NewRequest(http.MethodHead, "/b/k", nil), New("NoSuchKey", ""), "R")
	if rec.Code != 404 || rec.Body.Len() != 0 {
		t.Errorf("HEAD: status %d body %q", rec.Code, rec.Body.String())
	}
	if Parse([]byte("<html>oops</html>"), 502) != nil {
		t.Error("Parse accepted a non-S3 document")
	}
}

func TestIsS3Status(t *testing.T) {
	for status, want := range map[int]bool{400: true, 403: true, 404: true, 405: true, 412: true, 416: true, 500: true, 501: true, 503: true, 301: true, 307: true, 499: false, 502: false, 418: false, 200: false} {
		if got := IsS3Status(status); got != want {
			t.Errorf("IsS3Status(%d) = %v, want %v", status, got, want)
		}
	}
}
