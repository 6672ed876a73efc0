package proxy_test

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// An object read back whole, by ranges and by HEAD shows its plaintext, sizes and ETag; the
// backend never saw the plaintext.
func TestInProcessPutGetRangesHead(t *testing.T) {
	f := newFixture(t)
	const marker = "PLAINTEXT-MARKER-put"
	plain := plaintext(3*segment+12345, marker)
	n := int64(len(plain))
	f.put("obj", plain)

	r := f.do(http.MethodGet, "/"+ipBucket+"/obj", nil, nil)
	if r.status != http.StatusOK || r.readErr != nil || !bytes.Equal(r.body, plain) {
		t.Fatalf("GET: %d, %d bytes (want %d), err %v", r.status, len(r.body), n, r.readErr)
	}
	if got := r.header.Get("ETag"); got != md5ETag(plain) {
		t.Errorf("GET ETag %s, want %s", got, md5ETag(plain))
	}

	ranges := []struct {
		name, hdr string
		off, end  int64 // inclusive
	}{
		{"first byte", "bytes=0-0", 0, 0},
		{"last byte", fmt.Sprintf("bytes=%d-%d", n-1, n-1), n - 1, n - 1},
		{"across a segment boundary", fmt.Sprintf("bytes=%d-%d", segment-10, segment+9), segment - 10, segment + 9},
		{"across two boundaries", fmt.Sprintf("bytes=%d-%d", segment-1, 2*segment), segment - 1, 2 * segment},
		{"suffix", "bytes=-100", n - 100, n - 1},
		{"open end", fmt.Sprintf("bytes=%d-", 2*segment+1), 2*segment + 1, n - 1},
		{"end past the object", fmt.Sprintf("bytes=%d-%d", n-5, n+1000), n - 5, n - 1},
	}
	for _, c := range ranges {
		t.Run(c.name, func(t *testing.T) {
			r := f.do(http.MethodGet, "/"+ipBucket+"/obj", nil, map[string]string{"Range": c.hdr})
			if r.status != http.StatusPartialContent || r.readErr != nil {
				t.Fatalf("%s: %d %v %s", c.hdr, r.status, r.readErr, r.body)
			}
			if !bytes.Equal(r.body, plain[c.off:c.end+1]) {
				t.Errorf("%s: %d bytes, not plaintext[%d:%d]", c.hdr, len(r.body), c.off, c.end+1)
			}
			if want := fmt.Sprintf("bytes %d-%d/%d", c.off, c.end, n); r.header.Get("Content-Range") != want {
				t.Errorf("%s: Content-Range %q, want %q", c.hdr, r.header.Get("Content-Range"), want)
			}
		})
	}
	if r := f.do(http.MethodGet, "/"+ipBucket+"/obj", nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", n)}); r.status != http.StatusRequestedRangeNotSatisfiable || r.code != "InvalidRange" {
		t.Errorf("range at the end: %d %s, want 416 InvalidRange", r.status, r.code)
	}

	h := f.do(http.MethodHead, "/"+ipBucket+"/obj", nil, nil)
	if h.status != http.StatusOK || h.header.Get("Content-Length") != strconv.FormatInt(n, 10) || h.header.Get("ETag") != md5ETag(plain) {
		t.Errorf("HEAD: %d, Content-Length %s ETag %s; want %d, %s", h.status, h.header.Get("Content-Length"), h.header.Get("ETag"), n, md5ETag(plain))
	}
	if f.faults.sentContains([]byte(marker)) {
		t.Error("the backend received plaintext")
	}
}

type initiateResult struct {
	UploadID string `xml:"UploadId"`
}

type completeUpload struct {
	XMLName xml.Name       `xml:"CompleteMultipartUpload"`
	Parts   []completePart `xml:"Part"`
}

type completePart struct {
	PartNumber int
	ETag       string
}

// uploadMultipart uploads parts as one multipart object through the gateway.
func (f *fixture) uploadMultipart(key string, parts ...[]byte) result {
	f.t.Helper()
	r := f.do(http.MethodPost, "/"+ipBucket+"/"+key+"?uploads", nil, nil)
	var ini initiateResult
	if r.status != http.StatusOK || xml.Unmarshal(r.body, &ini) != nil || ini.UploadID == "" {
		f.t.Fatalf("CreateMultipartUpload: %d %s", r.status, r.body)
	}
	var done completeUpload
	for i, p := range parts {
		r := f.do(http.MethodPut, fmt.Sprintf("/%s/%s?partNumber=%d&uploadId=%s", ipBucket, key, i+1, ini.UploadID), p, nil)
		if r.status != http.StatusOK {
			f.t.Fatalf("UploadPart %d: %d %s", i+1, r.status, r.body)
		}
		if r.header.Get("ETag") != md5ETag(p) {
			f.t.Errorf("UploadPart %d ETag %s, want %s", i+1, r.header.Get("ETag"), md5ETag(p))
		}
		done.Parts = append(done.Parts, completePart{i + 1, r.header.Get("ETag")})
	}
	body, _ := xml.Marshal(done)
	return f.do(http.MethodPost, fmt.Sprintf("/%s/%s?uploadId=%s", ipBucket, key, ini.UploadID), body, nil)
}

// A multipart upload reads back whole, by part number, by a range across the part boundary, and
// HEAD and the ETag are the plaintext's.
func TestInProcessMultipart(t *testing.T) {
	f := newFixture(t)
	const marker = "PLAINTEXT-MARKER-multipart"
	p1, p2 := plaintext(5<<20, marker), plaintext(segment+777, marker)
	all := append(bytes.Clone(p1), p2...)
	if r := f.uploadMultipart("mp", p1, p2); r.status != http.StatusOK || !bytes.Contains(r.body, []byte(multipartETag(p1, p2)[1:34])) {
		t.Fatalf("CompleteMultipartUpload: %d %s; want ETag %s", r.status, r.body, multipartETag(p1, p2))
	}

	r := f.do(http.MethodGet, "/"+ipBucket+"/mp", nil, nil)
	if r.status != http.StatusOK || r.readErr != nil || !bytes.Equal(r.body, all) {
		t.Fatalf("GET: %d, %d bytes (want %d), %v", r.status, len(r.body), len(all), r.readErr)
	}
	if got := r.header.Get("ETag"); got != multipartETag(p1, p2) {
		t.Errorf("GET ETag %s, want %s", got, multipartETag(p1, p2))
	}
	for i, p := range [][]byte{p1, p2} {
		r := f.do(http.MethodGet, fmt.Sprintf("/%s/mp?partNumber=%d", ipBucket, i+1), nil, nil)
		if r.status != http.StatusPartialContent || r.readErr != nil || !bytes.Equal(r.body, p) {
			t.Errorf("GET part %d: %d, %d bytes (want %d), %v", i+1, r.status, len(r.body), len(p), r.readErr)
		}
		if r.header.Get("X-Amz-Mp-Parts-Count") != "2" {
			t.Errorf("GET part %d: x-amz-mp-parts-count %q, want 2", i+1, r.header.Get("X-Amz-Mp-Parts-Count"))
		}
	}
	if r := f.do(http.MethodGet, "/"+ipBucket+"/mp?partNumber=3", nil, nil); r.status != http.StatusRequestedRangeNotSatisfiable || r.code != "InvalidPartNumber" {
		t.Errorf("GET part 3 of 2: %d %s, want 416 InvalidPartNumber", r.status, r.code)
	}
	b := int64(len(p1))
	rg := f.do(http.MethodGet, "/"+ipBucket+"/mp", nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", b-3, b+2)})
	if rg.status != http.StatusPartialContent || !bytes.Equal(rg.body, all[b-3:b+3]) {
		t.Errorf("range across the part boundary: %d, %x", rg.status, rg.body)
	}
	h := f.do(http.MethodHead, "/"+ipBucket+"/mp", nil, nil)
	if h.status != http.StatusOK || h.header.Get("Content-Length") != strconv.Itoa(len(all)) || h.header.Get("ETag") != multipartETag(p1, p2) {
		t.Errorf("HEAD: %d, Content-Length %s ETag %s", h.status, h.header.Get("Content-Length"), h.header.Get("ETag"))
	}
	if f.faults.sentContains([]byte(marker)) {
		t.Error("the backend received plaintext")
	}
}

// CopyObject copies single-part and multipart objects; the copies read back.
func TestInProcessCopyObject(t *testing.T) {
	f := newFixture(t)
	single := plaintext(2*segment+5, "PLAINTEXT-MARKER-copy")
	f.put("src", single)
	p1, p2 := plaintext(5<<20, "PLAINTEXT-MARKER-copy"), plaintext(1000, "PLAINTEXT-MARKER-copy")
	if r := f.uploadMultipart("mpsrc", p1, p2); r.status != http.StatusOK {
		t.Fatalf("multipart source: %d %s", r.status, r.body)
	}
	cases := []struct {
		src  string
		want []byte
	}{
		{"src", single},
		{"mpsrc", append(bytes.Clone(p1), p2...)},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			if c.src == "mpsrc" {
			}
			dst := c.src + "-copy"
			r := f.do(http.MethodPut, "/"+ipBucket+"/"+dst, nil, map[string]string{"X-Amz-Copy-Source": "/" + ipBucket + "/" + c.src})
			if r.status != http.StatusOK || !bytes.Contains(r.body, []byte("CopyObjectResult")) {
				t.Fatalf("CopyObject: %d %s", r.status, r.body)
			}
			g := f.do(http.MethodGet, "/"+ipBucket+"/"+dst, nil, nil)
			if g.status != http.StatusOK || g.readErr != nil || !bytes.Equal(g.body, c.want) {
				t.Fatalf("GET copy: %d, %d bytes (want %d), %v", g.status, len(g.body), len(c.want), g.readErr)
			}
			rg := f.do(http.MethodGet, "/"+ipBucket+"/"+dst, nil, map[string]string{"Range": "bytes=-10"})
			if rg.status != http.StatusPartialContent || !bytes.Equal(rg.body, c.want[len(c.want)-10:]) {
				t.Errorf("suffix range of the copy: %d %x", rg.status, rg.body)
			}
		})
	}
	if f.faults.sentContains([]byte("PLAINTEXT-MARKER-copy")) {
		t.Error("the backend received plaintext")
	}
}

type listV2 struct {
	KeyCount int
	Contents []struct {
		Key  string
		Size int64
		ETag string
	}
}

// ListObjectsV2 shows plaintext sizes and ETags.
func TestInProcessListObjectsV2(t *testing.T) {
	f := newFixture(t)
	want := map[string][]byte{}
	for _, n := range []int{0, 1, segment - 1, segment, segment + 1, 3*segment + 7} {
		key := fmt.Sprintf("list/%07d", n)
		want[key] = plaintext(n, "")
		f.put(key, want[key])
	}
	f.put("other", []byte("not listed"))
	r := f.do(http.MethodGet, "/"+ipBucket+"?list-type=2&prefix=list/", nil, nil)
	var l listV2
	if r.status != http.StatusOK || xml.Unmarshal(r.body, &l) != nil {
		t.Fatalf("ListObjectsV2: %d %s", r.status, r.body)
	}
	if l.KeyCount != len(want) || len(l.Contents) != len(want) {
		t.Fatalf("listed %d (KeyCount %d), want %d: %s", len(l.Contents), l.KeyCount, len(want), r.body)
	}
	for _, c := range l.Contents {
		p, ok := want[c.Key]
		if !ok {
			t.Errorf("unexpected key %q", c.Key)
			continue
		}
		if c.Size != int64(len(p)) {
			t.Errorf("%s: Size %d, want %d", c.Key, c.Size, len(p))
		}
		if c.ETag != md5ETag(p) {
			t.Errorf("%s: ETag %s, want %s", c.Key, c.ETag, md5ETag(p))
		}
	}
}

// listSizes lists prefix through the gateway and returns each key's listed Size.
func (f *fixture) listSizes(prefix string) map[string]int64 {
	f.t.Helper()
	r := f.do(http.MethodGet, "/"+ipBucket+"?list-type=2&prefix="+prefix, nil, nil)
	var l listV2
	if r.status != http.StatusOK || xml.Unmarshal(r.body, &l) != nil {
		f.t.Fatalf("ListObjectsV2: %d %s", r.status, r.body)
	}
	out := map[string]int64{}
	for _, c := range l.Contents {
		out[c.Key] = c.Size
	}
	return out
}

// TestInProcessListingMemo: answers remembered for unchanged listing documents (listmemo.go)
// follow every change of the listing (overwrite, delete, new key), and an answer in which an
// entry's facts could not be read is never given (the listing fails, 5xx): once the backend
// answers again, the same listing shows the plaintext size.
func TestInProcessListingMemo(t *testing.T) {
	f := newFixture(t)
	f.put("memo/a", plaintext(10, ""))
	f.put("memo/b", plaintext(segment+1, ""))
	want := map[string]int64{"memo/a": 10, "memo/b": segment + 1}
	check := func(step string) {
		t.Helper()
		for range 2 { // the second listing is answered from the memo
			if got := f.listSizes("memo/"); !maps.Equal(got, want) {
				t.Fatalf("%s: listed %v, want %v", step, got, want)
			}
		}
	}
	check("first")
	f.put("memo/a", plaintext(7, ""))
	want["memo/a"] = 7
	check("after an overwrite")
	if r := f.do(http.MethodDelete, "/"+ipBucket+"/memo/b", nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	delete(want, "memo/b")
	check("after a delete")

	// memo/c is stored, but the gateway sees the PUT fail and so has not cached its facts.
	f.faults.set(fault{kind: badStatus, status: http.StatusInternalServerError, on: methodIs(http.MethodPut)})
	if r := f.do(http.MethodPut, "/"+ipBucket+"/memo/c", plaintext(3, ""), nil); r.status == http.StatusOK {
		t.Fatalf("PUT with the backend's answer replaced by 500: %d", r.status)
	}
	// With its facts unreadable (the backend's GETs fail, or are answered 503), the listing
	// fails with a 5xx a client retries: it showed memo/c's stored size, a size the object
	// never had (seen by the flapping-backend load test).
	for _, fl := range []fault{{kind: failBefore, err: errInjected, on: isObjectGet},
		{kind: badStatus, status: http.StatusServiceUnavailable, on: isObjectGet}} {
		f.faults.set(fl)
		r := f.do(http.MethodGet, "/"+ipBucket+"?list-type=2&prefix=memo/", nil, nil)
		f.faults.set(fault{})
		if r.status < 500 || r.code == "" || bytes.Contains(r.body, []byte("<Contents>")) {
			t.Fatalf("ListObjectsV2 with the facts of memo/c unreadable (%v): %d %s, want a 5xx S3 error", fl.kind, r.status, r.body)
		}
	}
	want["memo/c"] = 3
	check("after the backend answers again")
}

// TestInProcessListingBadObject: an object whose facts can never be read (its envelope is not
// one the gateway wrote: a backend that altered it) does not make its prefix unlistable: the
// listing answers, with that entry's stored size, and the other entries' plaintext sizes.
func TestInProcessListingBadObject(t *testing.T) {
	f := newFixture(t)
	f.put("bad/good", plaintext(10, ""))
	body := plaintext(100, "")
	f.putRaw("bad/altered", body, http.Header{format.MetaEnvelope: {"not-an-envelope"}})
	got := f.listSizes("bad/")
	if want := map[string]int64{"bad/good": 10, "bad/altered": int64(len(body))}; !maps.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
}
