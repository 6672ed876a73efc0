package proxy_test

// What readers without the SSE-C key see of SSE-C objects (no plaintext ETag, no attributes),
// sizes reported with the key (authenticated, not the backend's claim), and facts of one stored
// version never served for another (issue 21).

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// gatewayPair is two gateways over one backend store and one key file (a load-balanced
// deployment): a reader whose facts cache has not seen what the writer wrote.
type gatewayPair struct {
	writer, reader *fixture
}

// newGatewayPair builds two fixtures over one embedded store; both accept SSE-C over HTTP.
func newGatewayPair(t *testing.T) gatewayPair {
	t.Helper()
	store, lf := newTestStore(t)
	mk := func() *fixture {
		ft := &faultTransport{next: store.Transport()}
		c := fixtureConfig(store, lf, ft)
		c.SSECAllowHTTP = true
		return serveFixture(t, c, ft, store)
	}
	p := gatewayPair{writer: mk(), reader: mk()}
	p.writer.createBucket()
	return p
}

// ssecHeaders are the SSE-C request headers of a fresh random key.
func ssecHeaders(t *testing.T) map[string]string {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(raw)
	return map[string]string{
		"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256",
		"X-Amz-Server-Side-Encryption-Customer-Key":       base64.StdEncoding.EncodeToString(raw),
		"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   base64.StdEncoding.EncodeToString(sum[:]),
	}
}

// with returns h with the extra headers added (h is not changed).
func with(h map[string]string, extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// uploadSSEC uploads parts as one SSE-C multipart object (every request with the key headers)
// and returns the Complete answer.
func (f *fixture) uploadSSEC(key string, ssec map[string]string, parts ...[]byte) result {
	f.t.Helper()
	r := f.do(http.MethodPost, "/"+ipBucket+"/"+key+"?uploads", nil, ssec)
	var ini initiateResult
	if r.status != http.StatusOK || xml.Unmarshal(r.body, &ini) != nil || ini.UploadID == "" {
		f.t.Fatalf("CreateMultipartUpload: %d %s", r.status, r.body)
	}
	var done completeUpload
	for i, p := range parts {
		r := f.do(http.MethodPut, fmt.Sprintf("/%s/%s?partNumber=%d&uploadId=%s", ipBucket, key, i+1, ini.UploadID), p, ssec)
		if r.status != http.StatusOK {
			f.t.Fatalf("UploadPart %d: %d %s", i+1, r.status, r.body)
		}
		done.Parts = append(done.Parts, completePart{i + 1, r.header.Get("ETag")})
	}
	body, _ := xml.Marshal(done)
	r = f.do(http.MethodPost, fmt.Sprintf("/%s/%s?uploadId=%s", ipBucket, key, ini.UploadID), body, ssec)
	if r.status != http.StatusOK {
		f.t.Fatalf("CompleteMultipartUpload: %d %s", r.status, r.body)
	}
	return r
}

var listETagRE = regexp.MustCompile(`(?s)<Key>([^<]*)</Key>.*?<ETag>([^<]*)</ETag>.*?<Size>([^<]*)</Size>`)

// listed returns key → (ETag, Size) of a listing answer, the ETag unescaped.
func listed(t *testing.T, doc []byte) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	for _, m := range listETagRE.FindAllSubmatch(doc, -1) {
		out[string(m[1])] = [2]string{strings.ReplaceAll(strings.ReplaceAll(string(m[2]), "&#34;", `"`), "&quot;", `"`), string(m[3])}
	}
	return out
}

// TestSSECListingsHidePlaintextETag: listings never show the plaintext ETag of an SSE-C object
// (multipart or single-part), not after CompleteMultipartUpload, not after a read with the key;
// readers with the key still get it from HEAD and GET, and the listing shows the plaintext size.
func TestSSECListingsHidePlaintextETag(t *testing.T) {
	p := newGatewayPair(t)
	f := p.writer
	ssec := ssecHeaders(t)
	p1, p2 := plaintext(5<<20, "SSEC-MP"), plaintext(segment+5, "SSEC-MP")
	single := plaintext(1000, "SSEC-SINGLE")
	f.uploadSSEC("mp", ssec, p1, p2)
	if r := f.do(http.MethodPut, "/"+ipBucket+"/single", single, ssec); r.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	plainETag := map[string]string{"mp": multipartETag(p1, p2), "single": md5ETag(single)}
	sizes := map[string]int{"mp": len(p1) + len(p2), "single": len(single)}
	check := func(f *fixture, when string) {
		t.Helper()
		for _, list := range []string{"?list-type=2", ""} { // the embedded store has no ?versions

			r := f.do(http.MethodGet, "/"+ipBucket+"/"+list, nil, nil)
			if r.status != http.StatusOK {
				t.Fatalf("%s: list %q: %d %s", when, list, r.status, r.body)
			}
			got := listed(t, r.body)
			for key, etag := range plainETag {
				e, ok := got[key]
				if !ok {
					t.Fatalf("%s: list %q lacks %s: %s", when, list, key, r.body)
				}
				if strings.Trim(e[0], `"`) == strings.Trim(etag, `"`) {
					t.Errorf("%s: list %q shows the plaintext ETag %s of SSE-C object %s", when, list, e[0], key)
				}
				if e[1] != strconv.Itoa(sizes[key]) {
					t.Errorf("%s: list %q size of %s %s, want %d", when, list, key, e[1], sizes[key])
				}
			}
		}
	}
	check(f, "after the writes")
	check(p.reader, "another gateway")
	if h := p.reader.do(http.MethodHead, "/"+ipBucket+"/mp", nil, ssec); h.status != http.StatusOK {
		t.Fatalf("HEAD with the key (other gateway): %d", h.status)
	}
	check(p.reader, "another gateway, after a HEAD with the key")
	h := f.do(http.MethodHead, "/"+ipBucket+"/mp", nil, ssec)
	if h.status != http.StatusOK || h.header.Get("ETag") != plainETag["mp"] {
		t.Fatalf("HEAD with the key: %d ETag %s, want %s", h.status, h.header.Get("ETag"), plainETag["mp"])
	}
	check(f, "after a HEAD with the key")
	if r := f.do(http.MethodGet, "/"+ipBucket+"/mp", nil, ssec); r.status != http.StatusOK || r.header.Get("ETag") != plainETag["mp"] {
		t.Fatalf("GET with the key: %d ETag %s", r.status, r.header.Get("ETag"))
	}
	check(f, "after a GET with the key")
	if h := f.do(http.MethodHead, "/"+ipBucket+"/mp", nil, nil); h.status != http.StatusBadRequest || h.header.Get("ETag") != "" {
		t.Errorf("HEAD without the key: %d ETag %q, want 400 and no ETag", h.status, h.header.Get("ETag"))
	}
}

// TestSSECObjectAttributesNeedKey: GetObjectAttributes of an SSE-C object needs its key, as on
// S3: 400 InvalidRequest without, 403 AccessDenied with another key; with it, the attributes.
func TestSSECObjectAttributesNeedKey(t *testing.T) {
	p := newGatewayPair(t)
	f := p.writer
	ssec, other := ssecHeaders(t), ssecHeaders(t)
	p1, p2 := plaintext(5<<20, "SSEC-ATTR"), plaintext(77, "SSEC-ATTR")
	f.uploadSSEC("mp", ssec, p1, p2)
	single := plaintext(1000, "SSEC-ATTR")
	if r := f.do(http.MethodPut, "/"+ipBucket+"/single", single, ssec); r.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	attrs := map[string]string{"X-Amz-Object-Attributes": "ETag,ObjectSize,ObjectParts,StorageClass"}
	for _, key := range []string{"mp", "single"} {
		for _, g := range []*fixture{p.writer, p.reader} {
			path := "/" + ipBucket + "/" + key + "?attributes"
			if r := g.do(http.MethodGet, path, nil, attrs); r.status != http.StatusBadRequest || r.code != "InvalidRequest" {
				t.Errorf("%s without the key: %d %s %s, want 400 InvalidRequest", key, r.status, r.code, r.body)
			}
			if r := g.do(http.MethodGet, path, nil, with(attrs, other)); r.status != http.StatusForbidden || r.code != "AccessDenied" {
				t.Errorf("%s with another key: %d %s %s, want 403 AccessDenied", key, r.status, r.code, r.body)
			}
			r := g.do(http.MethodGet, path, nil, with(attrs, ssec))
			want := len(single)
			if key == "mp" {
				want = len(p1) + len(p2)
			}
			if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(fmt.Sprintf("<ObjectSize>%d</ObjectSize>", want))) {
				t.Errorf("%s with the key: %d %s", key, r.status, r.body)
			}
		}
	}
}

// TestSSECListPartsWithoutKey: ListParts of an SSE-C upload without the key shows the parts
// but not their plaintext MD5s (S3 lists an SSE-C upload's parts without the key); with the key,
// the ETags UploadPart returned.
func TestSSECListPartsWithoutKey(t *testing.T) {
	f := newGatewayPair(t).writer
	ssec := ssecHeaders(t)
	r := f.do(http.MethodPost, "/"+ipBucket+"/lp?uploads", nil, ssec)
	var ini initiateResult
	if r.status != http.StatusOK || xml.Unmarshal(r.body, &ini) != nil {
		t.Fatalf("CreateMultipartUpload: %d %s", r.status, r.body)
	}
	part := plaintext(1000, "SSEC-LP")
	if r := f.do(http.MethodPut, "/"+ipBucket+"/lp?partNumber=1&uploadId="+ini.UploadID, part, ssec); r.status != http.StatusOK {
		t.Fatalf("UploadPart: %d %s", r.status, r.body)
	}
	plainMD5 := strings.Trim(md5ETag(part), `"`)
	path := "/" + ipBucket + "/lp?uploadId=" + ini.UploadID
	if r := f.do(http.MethodGet, path, nil, nil); r.status != http.StatusOK || bytes.Contains(r.body, []byte(plainMD5)) {
		t.Errorf("ListParts without the key: %d, shows the plaintext MD5 %s: %s", r.status, plainMD5, r.body)
	}
	if r := f.do(http.MethodGet, path, nil, ssec); r.status != http.StatusOK || !bytes.Contains(r.body, []byte(plainMD5)) {
		t.Errorf("ListParts with the key: %d, want the part's ETag %s: %s", r.status, plainMD5, r.body)
	}
}

var claimedTotalRE = regexp.MustCompile(`^(bytes \d+-\d+/)\d+$`)

// TestSSECSizeNotFromBackendClaim: with the key, HEAD and ranged GET of an SSE-C object report
// its authenticated size, not the total a backend claims in Content-Range (an error is fine,
// the claimed size is not).
func TestSSECSizeNotFromBackendClaim(t *testing.T) {
	p := newGatewayPair(t)
	ssec := ssecHeaders(t)
	body := plaintext(1000, "SSEC-SIZE")
	if r := p.writer.do(http.MethodPut, "/"+ipBucket+"/obj", body, ssec); r.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	const lie = 999_999_999 // stored bytes claimed; 999,755,920 plaintext bytes
	p.reader.faults.set(fault{on: isObjectGet, observe: func(_ *http.Request, resp *http.Response) {
		if m := claimedTotalRE.FindStringSubmatch(resp.Header.Get("Content-Range")); m != nil {
			resp.Header.Set("Content-Range", m[1]+strconv.Itoa(lie))
		}
	}})
	for _, c := range []struct {
		method string
		hdr    map[string]string
	}{{http.MethodHead, ssec}, {http.MethodGet, with(ssec, map[string]string{"Range": "bytes=0-9"})}} {
		r := p.reader.do(c.method, "/"+ipBucket+"/obj", nil, c.hdr)
		if r.status/100 != 2 {
			continue // refused: fine
		}
		if cl := r.header.Get("Content-Length"); c.method == http.MethodHead && cl != strconv.Itoa(len(body)) {
			t.Errorf("HEAD with the key: Content-Length %s, want %d (the backend claimed %d stored bytes)", cl, len(body), lie)
		}
		if cr := r.header.Get("Content-Range"); c.method == http.MethodGet && cr != fmt.Sprintf("bytes 0-9/%d", len(body)) {
			t.Errorf("ranged GET with the key: Content-Range %s, want bytes 0-9/%d", cr, len(body))
		}
	}
}

// putRaw stores body at key straight in the backend with the given headers, as an attacker
// holding the backend would.
func (f *fixture) putRaw(key string, body []byte, hdr http.Header) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPut, f.store.Endpoint()+"/"+ipBucket+"/"+key, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	for name, vs := range hdr {
		if strings.HasPrefix(name, "X-Amz-Meta-") || name == "Content-Type" {
			req.Header[name] = vs
		}
	}
	resp, err := f.store.Transport().RoundTrip(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		f.t.Fatalf("raw PUT %s: %d %v", key, resp.StatusCode, err)
	}
}

// TestFactsOfSwappedVersion: a backend that puts back an older version's stored bytes and
// metadata and answers with the newest version's ETag does not get the newest version's facts
// (size, ETag) served for it: the gateway answers with the facts of what it is served, or an
// error.
func TestFactsOfSwappedVersion(t *testing.T) {
	for _, c := range []struct {
		name     string
		old, new int
	}{{"same size", 3000, 3000}, {"other size", 1000, 3000}} {
		t.Run(c.name, func(t *testing.T) {
			f := newGatewayPair(t).writer
			oldBody, newBody := plaintext(c.old, "OLD-VERSION"), plaintext(c.new, "NEW-VERSION")
			f.put("k", oldBody)
			old := f.backendDo(http.MethodGet, "/"+ipBucket+"/k", nil)
			if old.status != http.StatusOK {
				t.Fatalf("backend GET: %d", old.status)
			}
			f.put("k", newBody)
			h := f.do(http.MethodHead, "/"+ipBucket+"/k", nil, nil)
			if h.status != http.StatusOK || h.header.Get("ETag") != md5ETag(newBody) {
				t.Fatalf("HEAD of the new version: %d %s", h.status, h.header.Get("ETag"))
			}
			newETag := f.backendDo(http.MethodHead, "/"+ipBucket+"/k", nil).header.Get("ETag")
			f.putRaw("k", old.body, old.header)
			f.faults.set(fault{on: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/k") },
				observe: func(_ *http.Request, resp *http.Response) {
					if resp.Header.Get("ETag") != "" {
						resp.Header.Set("ETag", newETag)
					}
				}})
			for _, method := range []string{http.MethodHead, http.MethodGet} {
				r := f.do(method, "/"+ipBucket+"/k", nil, nil)
				if r.status/100 != 2 {
					continue // refused: fine
				}
				if got := r.header.Get("ETag"); got != md5ETag(oldBody) {
					t.Errorf("%s of the swapped-in old version: ETag %s, want the old version's %s (new: %s)", method, got, md5ETag(oldBody), md5ETag(newBody))
				}
				if got := r.header.Get("Content-Length"); got != strconv.Itoa(c.old) {
					t.Errorf("%s of the swapped-in old version: Content-Length %s, want %d", method, got, c.old)
				}
				if method == http.MethodGet && r.readErr == nil && !bytes.Equal(r.body, oldBody) {
					t.Errorf("GET of the swapped-in old version: %d bytes, not the old version", len(r.body))
				}
			}
		})
	}
}
