package proxy_test

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// Upload records (FORMAT.md 3.5.3) in process, against the embedded store, with the test
// playing the hostile backend: records altered, moved to another upload, part or key.

// ipUpload is an upload started through the gateway.
type ipUpload struct {
	key, id string
	etags   map[int]string // what UploadPart returned
	bodies  map[int][]byte
}

func (f *fixture) createUpload(key string) *ipUpload {
	f.t.Helper()
	r := f.do(http.MethodPost, "/"+ipBucket+"/"+key+"?uploads", nil, nil)
	var res struct{ UploadId string }
	if r.status != http.StatusOK || xml.Unmarshal(r.body, &res) != nil || res.UploadId == "" {
		f.t.Fatalf("CreateMultipartUpload: %d %s", r.status, r.body)
	}
	return &ipUpload{key: key, id: res.UploadId, etags: map[int]string{}, bodies: map[int][]byte{}}
}

func (f *fixture) uploadPart(u *ipUpload, n int, body []byte) {
	f.t.Helper()
	r := f.do(http.MethodPut, "/"+ipBucket+"/"+u.key+"?partNumber="+strconv.Itoa(n)+"&uploadId="+url.QueryEscape(u.id), body, nil)
	if r.status != http.StatusOK || r.header.Get("Etag") != md5ETag(body) {
		f.t.Fatalf("UploadPart %d: %d %s, ETag %s", n, r.status, r.body, r.header.Get("Etag"))
	}
	u.etags[n], u.bodies[n] = r.header.Get("Etag"), body
}

// listedParts is the gateway's ListParts of u: part number -> ETag.
func (f *fixture) listedParts(u *ipUpload) map[int]string {
	f.t.Helper()
	r := f.do(http.MethodGet, "/"+ipBucket+"/"+u.key+"?uploadId="+url.QueryEscape(u.id), nil, nil)
	var res struct {
		UploadId string
		Part     []struct {
			PartNumber int
			ETag       string
		}
	}
	if r.status != http.StatusOK || xml.Unmarshal(r.body, &res) != nil || res.UploadId != u.id {
		f.t.Fatalf("ListParts: %d %s", r.status, r.body)
	}
	out := map[int]string{}
	for _, p := range res.Part {
		out[p.PartNumber] = p.ETag
	}
	return out
}

// backendKeys lists the backend's keys under prefix.
func (f *fixture) backendKeys(prefix string) []string {
	f.t.Helper()
	r := f.backendDo(http.MethodGet, "/"+ipBucket+"?list-type=2&prefix="+url.QueryEscape(prefix), nil)
	var res struct{ Contents []struct{ Key string } }
	if r.status != http.StatusOK || xml.Unmarshal(r.body, &res) != nil {
		f.t.Fatalf("backend listing: %d %s", r.status, r.body)
	}
	var keys []string
	for _, c := range res.Contents {
		keys = append(keys, c.Key)
	}
	return keys
}

// moveRecord renames the backend record from to the name to, as a hostile backend could.
func (f *fixture) moveRecord(from, to string) {
	f.t.Helper()
	if r := f.backendDo(http.MethodPut, "/"+ipBucket+"/"+to, nil); r.status != http.StatusOK {
		f.t.Fatalf("backend PUT %s: %d", to, r.status)
	}
	if r := f.backendDo(http.MethodDelete, "/"+ipBucket+"/"+from, nil); r.status/100 != 2 {
		f.t.Fatalf("backend DELETE %s: %d", from, r.status)
	}
}

// uploadsListed is the gateway's ListMultipartUploads: key -> upload ids.
func (f *fixture) uploadsListed() map[string][]string {
	f.t.Helper()
	r := f.do(http.MethodGet, "/"+ipBucket+"?uploads", nil, nil)
	var res struct {
		Upload []struct{ Key, UploadId string }
	}
	if r.status != http.StatusOK || xml.Unmarshal(r.body, &res) != nil {
		f.t.Fatalf("ListMultipartUploads: %d %s", r.status, r.body)
	}
	out := map[string][]string{}
	for _, u := range res.Upload {
		out[u.Key] = append(out[u.Key], u.UploadId)
	}
	return out
}

// backendPartETags is the backend's ListParts of u: part number -> ETag without quotes.
func (f *fixture) backendPartETags(u *ipUpload) map[int]string {
	f.t.Helper()
	r := f.backendDo(http.MethodGet, "/"+ipBucket+"/"+u.key+"?uploadId="+url.QueryEscape(backendOf(u.id)), nil)
	var res struct {
		Part []struct {
			PartNumber int
			ETag       string
		}
	}
	if r.status != http.StatusOK || xml.Unmarshal(r.body, &res) != nil {
		f.t.Fatalf("backend ListParts: %d %s", r.status, r.body)
	}
	out := map[int]string{}
	for _, p := range res.Part {
		out[p.PartNumber] = strings.Trim(p.ETag, `"`)
	}
	return out
}

func backendOf(id string) string { return id[:strings.LastIndex(id, ".s3")] }

// TestRecordsListings: ListMultipartUploads shows the ids CreateMultipartUpload gave,
// ListParts the ETags UploadPart returned (a part sent again shows its new ETag), no record
// name holds a plaintext MD5, the gateway's listings never show the reserved prefix, clients
// cannot reach keys under it, and Complete and Abort delete the upload's records.
func TestRecordsListings(t *testing.T) {
	f := newFixture(t)
	a := f.createUpload("dir/a")
	b := f.createUpload("dir/b")
	f.put("dir/c", []byte("c"))
	f.uploadPart(a, 1, plaintext(5<<20, "PLAIN-A"))
	f.uploadPart(a, 2, plaintext(1002, "PLAIN-A"))
	f.uploadPart(a, 2, plaintext(777, "PLAIN-A")) // sent again: a stale record stays behind
	f.uploadPart(b, 1, plaintext(999, "PLAIN-B"))
	listed := f.uploadsListed()
	if len(listed["dir/a"]) != 1 || listed["dir/a"][0] != a.id || len(listed["dir/b"]) != 1 || listed["dir/b"][0] != b.id {
		t.Fatalf("ListMultipartUploads shows %q, want %s and %s", listed, a.id, b.id)
	}
	got := f.listedParts(a)
	if len(got) != 2 || got[1] != a.etags[1] || got[2] != a.etags[2] {
		t.Fatalf("ListParts shows %v, UploadPart returned %v", got, a.etags)
	}
	recs := f.backendKeys(format.UploadRecordsOf(backendOf(a.id)))
	if len(recs) != 6 { // id, part 1, part 2 twice, and part 2's two held copies (under 5 MiB)
		t.Fatalf("backend holds %d records of upload a: %q", len(recs), recs)
	}
	for _, k := range recs {
		for _, body := range a.bodies {
			if strings.Contains(k, strings.Trim(md5ETag(body), `"`)) {
				t.Fatalf("a record name holds a plaintext MD5 in clear: %s", k)
			}
		}
	}
	reservedQ := url.QueryEscape(format.ReservedPrefix + "s3seal/")
	for _, q := range []string{"?list-type=2", "?list-type=2&delimiter=/", "", "?delimiter=/", "?list-type=2&prefix=" + reservedQ, "?prefix=" + reservedQ + "&delimiter=/"} {
		r := f.do(http.MethodGet, "/"+ipBucket+q, nil, nil)
		doc := strings.ReplaceAll(string(r.body), "<Prefix>"+format.ReservedPrefix+"s3seal/</Prefix>\n", "") // the request's own prefix, echoed
		if r.status != http.StatusOK || strings.Contains(doc, format.ReservedPrefix) {
			t.Errorf("listing %q: %d, shows the reserved prefix: %s", q, r.status, r.body)
		}
	}
	// max-keys 1, v1: every page continues, and the whole listing is dir/c only.
	var keys []string
	marker := ""
	for page := 0; page < 20; page++ {
		r := f.do(http.MethodGet, "/"+ipBucket+"?max-keys=1&marker="+url.QueryEscape(marker), nil, nil)
		var res struct {
			IsTruncated bool
			NextMarker  string
			Contents    []struct{ Key string }
		}
		if r.status != http.StatusOK || xml.Unmarshal(r.body, &res) != nil {
			t.Fatalf("v1 page: %d %s", r.status, r.body)
		}
		for _, c := range res.Contents {
			keys = append(keys, c.Key)
		}
		if !res.IsTruncated {
			break
		}
		switch {
		case res.NextMarker != "":
			marker = res.NextMarker
		case len(res.Contents) > 0:
			marker = res.Contents[len(res.Contents)-1].Key
		default:
			t.Fatalf("a truncated v1 page without a key or NextMarker: %s", r.body)
		}
	}
	if strings.Join(keys, ",") != "dir/c" {
		t.Fatalf("v1 pages of 1 key list %q, want dir/c", keys)
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/" + ipBucket + "/" + escapeKeyPath(recs[0])},
		{http.MethodPut, "/" + ipBucket + "/" + escapeKeyPath(format.ReservedPrefix+"x")},
		{http.MethodDelete, "/" + ipBucket + "/" + escapeKeyPath(recs[0])},
	} {
		if r := f.do(c.method, c.path, nil, nil); r.code != "AccessDenied" {
			t.Errorf("%s %s: %d %s, want AccessDenied", c.method, c.path, r.status, r.code)
		}
	}
	if r := f.do(http.MethodPut, "/"+ipBucket+"/dir/copy", nil, map[string]string{"X-Amz-Copy-Source": "/" + ipBucket + "/" + url.PathEscape(recs[0])}); r.code != "AccessDenied" {
		t.Errorf("CopyObject from a record: %d %s", r.status, r.code)
	}
	del := "<Delete><Object><Key>" + recs[0] + "</Key></Object></Delete>"
	if r := f.do(http.MethodPost, "/"+ipBucket+"?delete", []byte(del), map[string]string{"Content-Md5": contentMD5([]byte(del))}); r.code != "AccessDenied" {
		t.Errorf("DeleteObjects of a record: %d %s", r.status, r.code)
	}

	// Complete a with the listed id; abort b with the listed id.
	body := "<CompleteMultipartUpload>"
	for n := 1; n <= 2; n++ {
		body += "<Part><PartNumber>" + strconv.Itoa(n) + "</PartNumber><ETag>" + a.etags[n] + "</ETag></Part>"
	}
	body += "</CompleteMultipartUpload>"
	if r := f.do(http.MethodPost, "/"+ipBucket+"/dir/a?uploadId="+url.QueryEscape(listed["dir/a"][0]), []byte(body), nil); r.status != http.StatusOK || strings.Contains(string(r.body), "<Error>") {
		t.Fatalf("Complete: %d %s", r.status, r.body)
	}
	if r := f.do(http.MethodDelete, "/"+ipBucket+"/dir/b?uploadId="+url.QueryEscape(listed["dir/b"][0]), nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("Abort: %d %s", r.status, r.body)
	}
	if left := f.backendKeys(format.ReservedPrefix); len(left) != 0 {
		t.Fatalf("records left after Complete and Abort: %q", left)
	}
	if r := f.do(http.MethodGet, "/"+ipBucket+"/dir/a", nil, nil); r.status != http.StatusOK || string(r.body) != string(a.bodies[1])+string(a.bodies[2]) {
		t.Fatalf("GET of the completed object: %d", r.status)
	}
}

// TestRecordsHostileBackend: records the backend altered, moved to another upload, part or
// key, or replayed under another ETag are never shown; an id record moved to an upload of
// another key yields an id that UploadPart refuses (the envelope is bound to its key).
func TestRecordsHostileBackend(t *testing.T) {
	f := newFixture(t)
	a := f.createUpload("dir/a")
	b := f.createUpload("dir/b")
	for n := 1; n <= 4; n++ { // backend parts (5 MiB and more: not held)
		f.uploadPart(a, n, plaintext(5<<20+n, "PLAIN-A"))
	}
	f.uploadPart(b, 1, plaintext(999, "PLAIN-B"))
	ba, bb := backendOf(a.id), backendOf(b.id)
	partRec := func(id string, n int) string {
		ks := f.backendKeys(format.PartRecordsOf(id) + strconv.Itoa(100000 + n)[1:] + "/")
		if len(ks) != 1 {
			t.Fatalf("%d records of part %d", len(ks), n)
		}
		return ks[0]
	}
	sealedOf := func(k string) string { return k[strings.LastIndexByte(k, '/')+1:] }
	etagsA := f.backendPartETags(a)
	// Part 1: its sealed MD5 altered (one character).
	p1 := partRec(ba, 1)
	s := sealedOf(p1)
	c := "A"
	if s[0] == 'A' {
		c = "B"
	}
	f.moveRecord(p1, strings.TrimSuffix(p1, s)+c+s[1:])
	// Part 2: its record swapped with part 3's (each renamed to the other's number and ETag).
	p2, p3 := partRec(ba, 2), partRec(ba, 3)
	f.moveRecord(p2, format.PartRecordsOf(ba)+"00003/"+etagsA[3]+"/"+sealedOf(p2))
	f.moveRecord(p3, format.PartRecordsOf(ba)+"00002/"+etagsA[2]+"/"+sealedOf(p3))
	// Part 4: its record replaced by b's part-1 record renamed into a.
	p4, pb := partRec(ba, 4), partRec(bb, 1)
	f.moveRecord(p4, format.PartRecordsOf(ba)+"00004/"+etagsA[4]+"/"+sealedOf(pb))
	got := f.listedParts(a)
	for n := 1; n <= 4; n++ {
		if got[n] == a.etags[n] || got[n] != `"`+etagsA[n]+`"` {
			t.Errorf("part %d shows %s (UploadPart gave %s, the backend's ETag is %s): want the backend's", n, got[n], a.etags[n], etagsA[n])
		}
	}
	// b's part record is intact.
	if got := f.listedParts(b); got[1] != b.etags[1] {
		t.Errorf("b's part 1 shows %s, want %s", got[1], b.etags[1])
	}
	// a's id record moved to upload b (key dir/b): the listed id of b carries a's envelope.
	ida := f.backendKeys(format.IDRecordsOf(ba))[0]
	idb := f.backendKeys(format.IDRecordsOf(bb))[0]
	f.moveRecord(idb, format.IDRecordsOf(bb)+strings.TrimPrefix(ida, format.IDRecordsOf(ba)))
	listed := f.uploadsListed()["dir/b"]
	if len(listed) != 1 {
		t.Fatalf("b listed as %q", listed)
	}
	if listed[0] == b.id {
		t.Fatal("the moved id record was not used: the test does not test anything")
	}
	r := f.do(http.MethodPut, "/"+ipBucket+"/dir/b?partNumber=2&uploadId="+url.QueryEscape(listed[0]), []byte("x"), nil)
	if r.code != "NoSuchUpload" {
		t.Fatalf("UploadPart with an id record moved to another key: %d %s, want NoSuchUpload", r.status, r.code)
	}
	// Two id records for one upload: neither is shown.
	f.moveRecord(format.IDRecordsOf(bb)+strings.TrimPrefix(ida, format.IDRecordsOf(ba)), idb)
	if r := f.backendDo(http.MethodPut, "/"+ipBucket+"/"+format.IDRecordsOf(bb)+strings.TrimPrefix(ida, format.IDRecordsOf(ba)), nil); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	if listed := f.uploadsListed()["dir/b"]; len(listed) != 1 || listed[0] != bb {
		t.Fatalf("with two id records b is listed as %q, want the backend id %s", listed, bb)
	}
}

func contentMD5(b []byte) string {
	s := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// TestRecordsDeleteBucket: a bucket with open uploads and no objects can be deleted, as on S3
// (their records are deleted first); one that still holds an object is refused BucketNotEmpty
// and keeps its records.
func TestRecordsDeleteBucket(t *testing.T) {
	f := newFixture(t)
	u := f.createUpload("dir/a")
	f.uploadPart(u, 1, plaintext(100, "PLAIN"))
	f.put("obj", []byte("x"))
	if r := f.do(http.MethodDelete, "/"+ipBucket, nil, nil); r.code != "BucketNotEmpty" {
		t.Fatalf("DeleteBucket of a bucket holding an object: %d %s", r.status, r.code)
	}
	if recs := f.backendKeys(format.ReservedPrefix); len(recs) != 3 { // id, part 1's record and held copy
		t.Fatalf("records after a refused DeleteBucket: %q", recs)
	}
	if r := f.do(http.MethodDelete, "/"+ipBucket+"/obj", nil, nil); r.status != http.StatusNoContent {
		t.Fatal(r.status)
	}
	if r := f.do(http.MethodDelete, "/"+ipBucket, nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("DeleteBucket with only open uploads: %d %s", r.status, r.body)
	}
}

// escapeKeyPath escapes a key for a request path as S3 clients do: each segment, '/' kept.
func escapeKeyPath(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
