package proxy_test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// backendRewrite replaces the stored object at key with its own bytes under headers changed by
// edit, as a backend that rewrites metadata would.
func (f *fixture) backendRewrite(key string, edit func(h http.Header)) {
	f.t.Helper()
	r := f.backendDo(http.MethodGet, "/"+ipBucket+"/"+key, nil)
	if r.status != http.StatusOK {
		f.t.Fatalf("backend GET %s: %d", key, r.status)
	}
	h := http.Header{}
	for name, vs := range r.header {
		if strings.HasPrefix(name, "X-Amz-Meta-") {
			h[name] = vs
		}
	}
	edit(h)
	req, err := http.NewRequest(http.MethodPut, f.store.Endpoint()+"/"+ipBucket+"/"+key, bytes.NewReader(r.body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header = h
	resp, err := f.store.Transport().RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		f.t.Fatalf("backend PUT %s: %v %v", key, resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// A single-part object PUT with a checksum keeps it sealed: PutObject's answer, HEAD and GET
// with checksum mode (FULL_OBJECT, as S3 answers for a single-part object), GetObjectAttributes;
// none without checksum mode or on a range; sizes, ranges and listings in plaintext terms; a
// server-side copy keeps it, a copy asking for another algorithm gets that one. An object PUT
// without one answers with none. A backend that changes or drops the algorithm's metadata gets
// an error, never plaintext.
func TestInProcessSingleChecksums(t *testing.T) {
	f := newFixture(t)
	for _, alg := range []string{"CRC32", "CRC32C", "CRC64NVME", "SHA256"} {
		t.Run(alg, func(t *testing.T) {
			f.t = t
			key := "single-" + strings.ToLower(alg)
			p := plaintext(2*segment+77, "PLAINTEXT-MARKER-single")
			want := b64(sumOf(alg, p))
			put := f.do(http.MethodPut, "/"+ipBucket+"/"+key, p, map[string]string{"X-Amz-Checksum-" + alg: want})
			if put.status != http.StatusOK || put.header.Get("X-Amz-Checksum-"+alg) != want {
				t.Fatalf("PUT: %d, checksum %q, want %s (%s)", put.status, put.header.Get("X-Amz-Checksum-"+alg), want, put.body)
			}
			f.objectsHaveChecksum(t, key, alg, want, p)

			cp := f.do(http.MethodPut, "/"+ipBucket+"/"+key+"-copy", nil, map[string]string{"X-Amz-Copy-Source": "/" + ipBucket + "/" + key})
			if cp.status != http.StatusOK {
				t.Fatalf("CopyObject: %d %s", cp.status, cp.body)
			}
			f.objectsHaveChecksum(t, key+"-copy", alg, want, p)
			re := f.do(http.MethodPut, "/"+ipBucket+"/"+key+"-sha256", nil, map[string]string{"X-Amz-Copy-Source": "/" + ipBucket + "/" + key, "X-Amz-Checksum-Algorithm": "SHA256"})
			if re.status != http.StatusOK {
				t.Fatalf("CopyObject with x-amz-checksum-algorithm SHA256: %d %s", re.status, re.body)
			}
			f.objectsHaveChecksum(t, key+"-sha256", "SHA256", b64(sumOf("SHA256", p)), p)
		})
	}
	f.t = t
	plain := plaintext(1000, "PLAINTEXT-MARKER-single")
	f.put("none", plain)
	if h := f.do(http.MethodHead, "/"+ipBucket+"/none", nil, map[string]string{"X-Amz-Checksum-Mode": "ENABLED"}); h.status != http.StatusOK || h.header.Get("X-Amz-Checksum-Type") != "" {
		t.Errorf("HEAD of an object without a checksum: %d, type %q", h.status, h.header.Get("X-Amz-Checksum-Type"))
	}
	if f.faults.sentContains([]byte("PLAINTEXT-MARKER-single")) {
		t.Error("the backend received plaintext")
	}

	// The hostile backend: the algorithm changed to another of the same size, dropped, or
	// added to an object without one.
	for name, c := range map[string]struct {
		key  string
		edit func(h http.Header)
	}{
		"CRC32 to CRC32C": {"single-crc32", func(h http.Header) { h.Set("X-Amz-Meta-S3seal-Ck", "CRC32C") }},
		"dropped":         {"single-sha256", func(h http.Header) { h.Del("X-Amz-Meta-S3seal-Ck") }},
		"added":           {"none", func(h http.Header) { h.Set("X-Amz-Meta-S3seal-Ck", "CRC32") }},
		"unknown":         {"single-crc64nvme", func(h http.Header) { h.Set("X-Amz-Meta-S3seal-Ck", "crc64nvme") }},
	} {
		t.Run(name, func(t *testing.T) {
			f.t = t
			f.backendRewrite(c.key, c.edit)
			for _, hdr := range []map[string]string{nil, {"Range": "bytes=0-9"}} {
				r := f.do(http.MethodGet, "/"+ipBucket+"/"+c.key, nil, hdr)
				if r.status < 400 && r.readErr == nil {
					t.Errorf("GET %v of an object whose checksum metadata was %s: %d, %d bytes", hdr, name, r.status, len(r.body))
				}
				if bytes.Contains(r.body, []byte("PLAINTEXT-MARKER-single")) {
					t.Errorf("GET %v: plaintext released", hdr)
				}
			}
		})
	}
}

// objectsHaveChecksum checks what a reader sees of key, a single-part object holding plain with
// checksum want of alg.
func (f *fixture) objectsHaveChecksum(t *testing.T, key, alg, want string, plain []byte) {
	t.Helper()
	mode := map[string]string{"X-Amz-Checksum-Mode": "ENABLED"}
	for _, m := range []string{http.MethodHead, http.MethodGet} {
		r := f.do(m, "/"+ipBucket+"/"+key, nil, mode)
		if r.status != http.StatusOK || r.header.Get("X-Amz-Checksum-"+alg) != want || r.header.Get("X-Amz-Checksum-Type") != "FULL_OBJECT" {
			t.Errorf("%s %s with checksum mode: %d, %q %q; want %s FULL_OBJECT", m, key, r.status, r.header.Get("X-Amz-Checksum-"+alg), r.header.Get("X-Amz-Checksum-Type"), want)
		}
		if r.header.Get("Content-Length") != strconv.Itoa(len(plain)) || r.header.Get("ETag") != md5ETag(plain) {
			t.Errorf("%s %s: Content-Length %s ETag %s; want %d %s", m, key, r.header.Get("Content-Length"), r.header.Get("ETag"), len(plain), md5ETag(plain))
		}
		if m == http.MethodGet && !bytes.Equal(r.body, plain) {
			t.Errorf("GET %s: %d bytes, not the plaintext (%v)", key, len(r.body), r.readErr)
		}
	}
	if r := f.do(http.MethodHead, "/"+ipBucket+"/"+key, nil, nil); r.header.Get("X-Amz-Checksum-"+alg) != "" {
		t.Errorf("HEAD %s without checksum mode shows %q", key, r.header.Get("X-Amz-Checksum-"+alg))
	}
	rg := f.do(http.MethodGet, "/"+ipBucket+"/"+key, nil, map[string]string{"X-Amz-Checksum-Mode": "ENABLED", "Range": "bytes=65530-65545"})
	if rg.status != http.StatusPartialContent || !bytes.Equal(rg.body, plain[65530:65546]) || rg.header.Get("X-Amz-Checksum-"+alg) != "" {
		t.Errorf("ranged GET %s: %d, %d bytes, checksum %q", key, rg.status, len(rg.body), rg.header.Get("X-Amz-Checksum-"+alg))
	}
	ga := f.do(http.MethodGet, "/"+ipBucket+"/"+key+"?attributes", nil, map[string]string{"X-Amz-Object-Attributes": "Checksum,ObjectSize"})
	if ga.status != http.StatusOK || !bytes.Contains(ga.body, []byte("<Checksum"+alg+">"+want+"</Checksum"+alg+">")) ||
		!bytes.Contains(ga.body, []byte("<ObjectSize>"+strconv.Itoa(len(plain))+"</ObjectSize>")) {
		t.Errorf("GetObjectAttributes %s: %d %s", key, ga.status, ga.body)
	}
	ls := f.do(http.MethodGet, "/"+ipBucket+"?list-type=2&prefix="+key, nil, nil)
	if !bytes.Contains(ls.body, []byte("<Key>"+key+"</Key>")) || !bytes.Contains(ls.body, []byte("<Size>"+strconv.Itoa(len(plain))+"</Size>")) {
		t.Errorf("listing %s: %s", key, ls.body)
	}
}
