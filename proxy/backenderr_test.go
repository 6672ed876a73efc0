package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBackendErrorOf: a status S3 never answers with (MinIO's 499 for a canceled request)
// reaches the client as InternalError 500; a delete marker's headers are kept; a HEAD's bare
// 405 is MethodNotAllowed.
func TestBackendErrorOf(t *testing.T) {
	resp := func(status int, body string, hdr map[string]string) *http.Response {
		h := http.Header{}
		for k, v := range hdr {
			h.Set(k, v)
		}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}
	}
	obj := target{bucket: "b", key: "k"}
	if e := backendErrorOf(resp(499, "", nil), obj); e.Status != 500 || e.Code != "InternalError" {
		t.Errorf("499: %d %s", e.Status, e.Code)
	}
	if e := backendErrorOf(resp(499, `<Error><Code>RequestCanceled</Code></Error>`, nil), obj); e.Status != 500 || e.Code != "InternalError" {
		t.Errorf("499 with XML: %d %s", e.Status, e.Code)
	}
	e := backendErrorOf(resp(404, "", map[string]string{"X-Amz-Delete-Marker": "true", "X-Amz-Version-Id": "v1"}), obj)
	if e.Status != 404 || e.Code != "NoSuchKey" || e.Header.Get("X-Amz-Delete-Marker") != "true" || e.Header.Get("X-Amz-Version-Id") != "v1" {
		t.Errorf("delete marker: %d %s %v", e.Status, e.Code, e.Header)
	}
	if e := backendErrorOf(resp(405, "", map[string]string{"X-Amz-Delete-Marker": "true"}), obj); e.Status != 405 || e.Code != "MethodNotAllowed" || e.Header.Get("X-Amz-Delete-Marker") != "true" {
		t.Errorf("405: %d %s %v", e.Status, e.Code, e.Header)
	}
	if e := backendErrorOf(resp(404, "", nil), obj); e.Header != nil {
		t.Errorf("plain 404 carries headers %v", e.Header)
	}
}

// TestRelayNonS3Status: a forwarded answer with a status S3 never sends becomes InternalError.
func TestRelayNonS3Status(t *testing.T) {
	g, _ := newTestGateway(t)
	rec := httptest.NewRecorder()
	q := &request{w: &responseWriter{ResponseWriter: rec}, r: httptest.NewRequest(http.MethodGet, "http://gw.test/b", nil), bucket: "b", id: "r1"}
	if err := g.relay(q, &http.Response{StatusCode: 499, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}); err != nil {
		g.answerError(q, err)
	}
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "<Code>InternalError</Code>") {
		t.Errorf("relayed 499: %d %q", rec.Code, rec.Body.String())
	}
}
