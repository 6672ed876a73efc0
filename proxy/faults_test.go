package proxy_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Every operation whose backend round trips fail before a response, or are answered with a
// status the backend should not send, gets an S3 error with a sensible code: no panic, no
// aborted connection, and no plaintext sent to the backend.
func TestFaultsBeforeResponse(t *testing.T) {
	f := newFixture(t)
	const marker = "PLAINTEXT-MARKER-faults"
	plain := plaintext(2*segment+99, marker)
	part := plaintext(5<<20, marker)
	f.put("existing", plain)
	f.put("victim", plain)
	ini := f.do(http.MethodPost, "/"+ipBucket+"/mp?uploads", nil, nil)
	uploadID := string(codeFree(ini.body, "UploadId"))
	if ini.status != http.StatusOK || uploadID == "" {
		t.Fatalf("CreateMultipartUpload: %d %s", ini.status, ini.body)
	}
	up := f.do(http.MethodPut, "/"+ipBucket+"/mp?partNumber=1&uploadId="+uploadID, part, nil)
	if up.status != http.StatusOK {
		t.Fatalf("UploadPart: %d %s", up.status, up.body)
	}
	complete := []byte(fmt.Sprintf(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part></CompleteMultipartUpload>`, up.header.Get("ETag")))

	ops := []struct {
		name         string
		method, path string
		body         []byte
		hdr          map[string]string
		head         bool // no body, so no error code to read
	}{
		{name: "PutObject", method: "PUT", path: "/" + ipBucket + "/new", body: plain},
		{name: "GetObject", method: "GET", path: "/" + ipBucket + "/existing"},
		{name: "GetObject range", method: "GET", path: "/" + ipBucket + "/existing", hdr: map[string]string{"Range": "bytes=70000-70010"}},
		{name: "HeadObject", method: "HEAD", path: "/" + ipBucket + "/existing", head: true},
		{name: "ListObjectsV2", method: "GET", path: "/" + ipBucket + "?list-type=2"},
		{name: "CreateMultipartUpload", method: "POST", path: "/" + ipBucket + "/mp2?uploads"},
		{name: "UploadPart", method: "PUT", path: "/" + ipBucket + "/mp?partNumber=2&uploadId=" + uploadID, body: part},
		{name: "CompleteMultipartUpload", method: "POST", path: "/" + ipBucket + "/mp?uploadId=" + uploadID, body: complete},
		{name: "CopyObject", method: "PUT", path: "/" + ipBucket + "/copy", hdr: map[string]string{"X-Amz-Copy-Source": "/" + ipBucket + "/existing"}},
		// A forwarded operation: the gateway relays the backend's answer.
		{name: "DeleteObject", method: "DELETE", path: "/" + ipBucket + "/victim"},
	}
	faults := []struct {
		name   string
		fault  fault
		status []int
		codes  []string
	}{
		{"connection refused", fault{kind: failBefore, err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}},
			[]int{503}, []string{"ServiceUnavailable"}},
		{"transport error", fault{kind: failBefore, err: errInjected},
			[]int{500, 503}, []string{"InternalError", "ServiceUnavailable"}},
		{"status 499", fault{kind: badStatus, status: 499}, []int{500}, []string{"InternalError"}},
		{"status 503 without a body", fault{kind: badStatus, status: 503}, []int{500, 503}, []string{"InternalError", "ServiceUnavailable", "SlowDown"}},
	}
	for _, fl := range faults {
		for _, op := range ops {
			t.Run(fl.name+"/"+op.name, func(t *testing.T) {
				f.faults.set(fl.fault)
				defer f.faults.set(fault{})
				r := f.do(op.method, op.path, op.body, op.hdr)
				if r.doErr != nil || r.readErr != nil {
					t.Fatalf("transport-level failure (panic or abort?): %v %v", r.doErr, r.readErr)
				}
				if f.faults.hitCount() == 0 {
					t.Fatal("the fault never applied")
				}
				if !slices.Contains(fl.status, r.status) || (!op.head && !slices.Contains(fl.codes, r.code)) {
					t.Errorf("got %d %q, want a status of %v and a code of %v: %s", r.status, r.code, fl.status, fl.codes, r.body)
				}
				if bytes.Contains(r.body, []byte(marker)) {
					t.Error("plaintext in the error answer")
				}
			})
		}
	}
	if f.faults.sentContains([]byte(marker)) {
		t.Error("the backend received plaintext")
	}
	// The object the failed requests were about is intact.
	if r := f.do(http.MethodGet, "/"+ipBucket+"/existing", nil, nil); r.status != http.StatusOK || !bytes.Equal(r.body, plain) {
		t.Errorf("GET after the faults: %d, %d bytes", r.status, len(r.body))
	}
}

// codeFree returns the text of the first <name> element of an XML body.
func codeFree(body []byte, name string) []byte {
	open, end := []byte("<"+name+">"), []byte("</"+name+">")
	i := bytes.Index(body, open)
	if i < 0 {
		return nil
	}
	rest := body[i+len(open):]
	j := bytes.Index(rest, end)
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// A GET whose backend body misbehaves never gives the client a complete answer with a short or
// wrong body: a failure within the first segment is an S3 error before the status line, a
// failure later aborts the transfer after a prefix of the true plaintext.
func TestFaultsGetBody(t *testing.T) {
	f := newFixture(t)
	plain := plaintext(16*segment+3, "PLAINTEXT-MARKER-body")
	f.put("big", plain)
	const late = 9*segment + 100 // a stored offset well past the first segment
	rng := map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", segment-10, 12*segment)}
	type outcome int
	const (
		ok      outcome = iota // 200/206 and the true bytes
		s3Error                // an S3 error before the status line
		aborted                // 200/206 then a failed read, after a prefix of the true bytes
	)
	cases := []struct {
		name  string
		fault fault
		hdr   map[string]string
		want  outcome
	}{
		{"reset in the first segment", fault{kind: resetAt, at: 100}, nil, s3Error},
		{"reset in the middle", fault{kind: resetAt, at: late}, nil, aborted},
		{"reset in the middle of a range", fault{kind: resetAt, at: 5 * segment}, rng, aborted},
		{"truncated in the first segment", fault{kind: truncateAt, at: 100}, nil, s3Error},
		{"truncated in the middle", fault{kind: truncateAt, at: late}, nil, aborted},
		{"truncated one byte short", fault{kind: truncateAt, at: -1}, nil, aborted},
		{"truncated in the middle of a range", fault{kind: truncateAt, at: 5 * segment}, rng, aborted},
		{"byte flipped in the first segment", fault{kind: flipAt, at: 200}, nil, s3Error},
		{"byte flipped later", fault{kind: flipAt, at: late}, nil, aborted},
		{"byte flipped later, in a range", fault{kind: flipAt, at: 6 * segment}, rng, aborted},
		{"slow body", fault{kind: slowBody, delay: 50 * time.Millisecond}, nil, ok},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, status := plain, http.StatusOK
			if c.hdr != nil {
				want, status = plain[segment-10:12*segment+1], http.StatusPartialContent
			}
			fl := c.fault
			if fl.at < 0 { // relative to the end of the stored object
				fl.at = storedSize(t, f, "big") + fl.at
			}
			fl.on = isObjectGet
			f.faults.set(fl)
			defer f.faults.set(fault{})
			start := time.Now()
			r := f.do(http.MethodGet, "/"+ipBucket+"/big", nil, c.hdr)
			if f.faults.hitCount() == 0 {
				t.Fatal("the fault never applied")
			}
			if r.doErr != nil {
				t.Fatalf("no response: %v", r.doErr)
			}
			switch c.want {
			case ok:
				if r.status != status || r.readErr != nil || !bytes.Equal(r.body, want) {
					t.Errorf("%d, %d bytes (want %d), %v", r.status, len(r.body), len(want), r.readErr)
				}
				if d := time.Since(start); d < 250*time.Millisecond {
					t.Errorf("took %v: the slow body was not slow", d)
				}
			case s3Error:
				if r.status < 500 || r.code == "" || r.readErr != nil {
					t.Errorf("got %d %q %v, want an S3 server error: %.200s", r.status, r.code, r.readErr, r.body)
				}
				if bytes.Contains(r.body, want[:64]) {
					t.Error("plaintext in the error answer")
				}
			case aborted:
				if r.status != status || r.readErr == nil {
					t.Errorf("got %d with %d bytes and read error %v, want %d and an aborted transfer", r.status, len(r.body), r.readErr, status)
				}
				if len(r.body) >= len(want) || !bytes.Equal(r.body, want[:len(r.body)]) {
					t.Errorf("the %d bytes received are not a strict prefix of the plaintext", len(r.body))
				}
			}
		})
	}
	// The stored object itself is intact.
	if r := f.do(http.MethodGet, "/"+ipBucket+"/big", nil, nil); r.status != http.StatusOK || !bytes.Equal(r.body, plain) {
		t.Errorf("GET after the faults: %d, %d bytes", r.status, len(r.body))
	}
}

// storedSize is the size of the stored (encrypted) object, as the backend's answers to the
// gateway's GETs of it say.
func storedSize(t *testing.T, f *fixture, key string) int64 {
	t.Helper()
	var size atomic.Int64
	size.Store(-1)
	f.faults.set(fault{observe: func(r *http.Request, resp *http.Response) {
		if !isObjectGet(r) {
			return
		}
		if m := contentRangeTotalRE.FindStringSubmatch(resp.Header.Get("Content-Range")); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			size.Store(n)
		} else if resp.StatusCode == http.StatusOK {
			size.Store(resp.ContentLength)
		}
	}})
	defer f.faults.set(fault{})
	if r := f.do(http.MethodGet, "/"+ipBucket+"/"+key, nil, nil); r.status != http.StatusOK {
		t.Fatalf("GET %s: %d", key, r.status)
	}
	if size.Load() < 0 {
		t.Fatal("no backend GET of the object seen")
	}
	return size.Load()
}

var contentRangeTotalRE = regexp.MustCompile(`^bytes \d+-\d+/(\d+)$`)

// TestCompleteOverwrittenBeforeManifest: another PUT of the key lands between the backend's
// CompleteMultipartUpload and the gateway's manifest copy (concurrent writers of one key, as in
// versitygw's CompleteMultipartUpload_racey_success). S3 answers both with success and keeps the
// later object; the gateway must not fail the Complete with 412, and above all must not delete
// the object that replaced the one it completed.
func TestCompleteOverwrittenBeforeManifest(t *testing.T) {
	f := newFixture(t)
	const marker = "PLAINTEXT-MARKER-superseded"
	p1, p2 := plaintext(5<<20, marker), plaintext(1000, marker)
	later := plaintext(3000, "LATER-WRITER")
	var once sync.Once
	f.faults.set(fault{observe: func(r *http.Request, resp *http.Response) {
		if r.Method == http.MethodPost && r.URL.Query().Has("uploadId") && resp.StatusCode == http.StatusOK {
			once.Do(func() { f.put("race", later) })
		}
	}})
	r := f.uploadMultipart("race", p1, p2)
	f.faults.set(fault{})
	if r.status != http.StatusOK {
		t.Fatalf("Complete overwritten by a later PUT: %d %s, want 200 as on S3", r.status, r.body)
	}
	if !strings.Contains(string(r.body), strings.Trim(multipartETag(p1, p2), `"`)) {
		t.Errorf("Complete answer %s lacks the multipart ETag %s", r.body, multipartETag(p1, p2))
	}
	g := f.do(http.MethodGet, "/"+ipBucket+"/race", nil, nil)
	if g.status != http.StatusOK || !bytes.Equal(g.body, later) {
		t.Fatalf("after the race: GET %d, %d bytes; want the later PUT's %d bytes", g.status, len(g.body), len(later))
	}
}

// TestSlowDownReadRetried: a GET answered 503 (MinIO's SlowDownRead under lock contention) is
// sent again after a pause, so a short burst of 503s does not reach the client; so are the
// requests of a Complete, whose bodies are in memory; a PUT of a streamed body is never sent
// twice.
func TestSlowDownReadRetried(t *testing.T) {
	f := newFixture(t)
	body := plaintext(3000, "PLAINTEXT-MARKER-slowdown")
	f.put("k", body)
	var n atomic.Int32
	f.faults.set(fault{kind: badStatus, status: http.StatusServiceUnavailable, on: func(r *http.Request) bool {
		return isObjectGet(r) && n.Add(1) <= 2
	}})
	g := f.do(http.MethodGet, "/"+ipBucket+"/k", nil, nil)
	if g.status != http.StatusOK || !bytes.Equal(g.body, body) {
		t.Fatalf("GET after two 503s: %d, %d bytes", g.status, len(g.body))
	}
	if f.faults.hitCount() != 2 {
		t.Fatalf("%d injected 503s, want 2", f.faults.hitCount())
	}
	var puts atomic.Int32
	f.faults.set(fault{kind: badStatus, status: http.StatusServiceUnavailable, on: func(r *http.Request) bool {
		if r.Method == http.MethodPut {
			puts.Add(1)
			return true
		}
		return false
	}})
	if p := f.do(http.MethodPut, "/"+ipBucket+"/k2", body, nil); p.status != http.StatusServiceUnavailable {
		t.Fatalf("PUT answered 503 by the backend: %d", p.status)
	}
	if puts.Load() != 1 {
		t.Fatalf("the PUT was sent %d times", puts.Load())
	}
	// The requests of a Complete whose bodies are in memory (the backend's Complete) are sent
	// again after a 503, as the SDKs do: answered 503 once, the client's Complete succeeds
	// with the object it uploaded.
	var complete atomic.Int32
	f.faults.set(fault{kind: slowDown, on: func(r *http.Request) bool {
		return r.Method == http.MethodPost && r.URL.Query().Has("uploadId") && complete.Add(1) == 1
	}})
	p1, p2 := plaintext(5<<20, "PLAINTEXT-MARKER-slowdown"), plaintext(100, "PLAINTEXT-MARKER-slowdown")
	if r := f.uploadMultipart("mp", p1, p2); r.status != http.StatusOK {
		t.Fatalf("Complete with a 503 on its backend Complete: %d %s", r.status, r.body)
	}
	if complete.Load() != 2 {
		t.Fatalf("backend Complete sent %d times, want 2", complete.Load())
	}
	f.faults.set(fault{})
	if g := f.do(http.MethodGet, "/"+ipBucket+"/mp", nil, nil); g.status != http.StatusOK || !bytes.Equal(g.body, append(append([]byte{}, p1...), p2...)) {
		t.Fatalf("GET after the retried Complete: %d, %d bytes", g.status, len(g.body))
	}
}

// TestReadOfReplacedObjectRetried: an object replaced between the gateway's backend requests of
// one GET (each conditional on the ETag the first saw, so the backend answers 412) is read
// again, since the client set no condition: it gets the new object, not a 412. A client that
// set a condition gets its 412.
func TestReadOfReplacedObjectRetried(t *testing.T) {
	f := newFixture(t)
	const marker = "PLAINTEXT-MARKER-reread"
	p1, p2 := plaintext(5<<20, marker), plaintext(1000, marker)
	if r := f.uploadMultipart("mp", p1, p2); r.status != http.StatusOK {
		t.Fatalf("Complete: %d %s", r.status, r.body)
	}
	later := plaintext(7000, "LATER-WRITER")
	// The gateway's first request of a read is unconditional (it learns the ETag from it); the
	// object is replaced right after it.
	replaceAfterFirstHead := func() {
		var once sync.Once
		f.faults.set(fault{observe: func(r *http.Request, resp *http.Response) {
			if (r.Method == http.MethodHead || r.Method == http.MethodGet) && r.Header.Get("If-Match") == "" {
				once.Do(func() { f.put("mp", later) })
			}
		}})
	}
	// A ranged GET: the object's facts (a small GET), then the covering stored bytes (GET,
	// If-Match).
	rng := map[string]string{"Range": "bytes=100-5300000"}
	replaceAfterFirstHead()
	g := f.do(http.MethodGet, "/"+ipBucket+"/mp", nil, rng)
	f.faults.set(fault{})
	if g.status != http.StatusPartialContent || !bytes.Equal(g.body, later[100:]) {
		t.Fatalf("ranged GET of an object replaced mid-read: %d, %d bytes; want 206 and the new object's bytes 100-", g.status, len(g.body))
	}

	if r := f.uploadMultipart("mp", p1, p2); r.status != http.StatusOK {
		t.Fatalf("Complete: %d %s", r.status, r.body)
	}
	etag := f.do(http.MethodHead, "/"+ipBucket+"/mp", nil, nil).header.Get("ETag")
	replaceAfterFirstHead()
	g = f.do(http.MethodGet, "/"+ipBucket+"/mp", nil, map[string]string{"If-Match": etag, "Range": rng["Range"]})
	f.faults.set(fault{})
	if g.status != http.StatusPreconditionFailed {
		t.Fatalf("conditional GET of an object replaced mid-read: %d (%d bytes), want 412", g.status, len(g.body))
	}
}
