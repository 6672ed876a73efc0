package benchutil

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCPUSecondsGrowsWithWork(t *testing.T) {
	before, err := CPUSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Busy until 0.2 s of CPU time show up; on a loaded machine that takes longer than 0.2 s,
	// so only a counter that does not move fails (after 20 s).
	deadline := time.Now().Add(20 * time.Second)
	for x := 0; ; x++ {
		if x%1_000_000 == 0 {
			now, err := CPUSeconds(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			if now-before >= 0.2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("CPU time grew by %.2f s over 20 s of busy loop", now-before)
			}
		}
	}
	if _, err := CPUSeconds(-1); err == nil {
		t.Error("no error for a missing process")
	}
}

func TestPeakRSSSeesAnAllocation(t *testing.T) {
	if err := ResetPeakRSS(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	before, err := PeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64<<20)
	for i := range b {
		b[i] = byte(i)
	}
	after, err := PeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after < before+32<<20 {
		t.Errorf("peak RSS %d -> %d after touching 64 MiB", before, after)
	}
	_ = b[len(b)-1]
}

func TestMedianPercentile(t *testing.T) {
	if m := Median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := Median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(100-i) * time.Millisecond
	}
	if p := Percentile(ds, 99); p != 99*time.Millisecond {
		t.Errorf("p99 = %v", p)
	}
	if p := Percentile(ds, 100); p != 100*time.Millisecond {
		t.Errorf("p100 = %v", p)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("Percentile sorted its input")
	}
}

func TestTable(t *testing.T) {
	var tb Table
	tb.Add(AtMost("cpu", "%.2f×", 1.05, 1.10), AtLeast("ops", "%.2f×", 0.7, 0.8), Info("x", "a|b"), Unmeasured("y", "≤ 1", "no tool"),
		Bound("hop", "0.90"))
	if tb.Count(Met) != 1 || tb.Count(Missed) != 1 || tb.Count(NotMeasured) != 1 || tb.Count(NoTarget) != 2 {
		t.Errorf("counts: %+v", tb.Rows)
	}
	md := tb.Markdown()
	for _, want := range []string{"| cpu | 1.05× | ≤ 1.10× | MET |", "| ops | 0.70× | ≥ 0.80× | MISSED |", `a\|b`, "| bound: hop | 0.90 | - | - |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestThroughputPlotWritesPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.png")
	err := ThroughputPlot(path, "t", []Series{{Name: "a", Points: []Point{{4 << 10, 10}, {1 << 20, 300}}}, {Name: "b", Points: []Point{{4 << 10, 8}, {1 << 20, 200}}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Fatalf("not a PNG (%d bytes, %v)", len(b), err)
	}
}

func TestS3Request(t *testing.T) {
	cases := []struct {
		method, target, header, op, bucket, key string
	}{
		{"GET", "/", "", "ListBuckets", "", ""},
		{"GET", "/b?list-type=2&prefix=x", "", "ListObjectsV2", "b", ""},
		{"GET", "/b/?versions&prefix=x", "", "ListObjectVersions", "b", ""},
		{"GET", "/b?uploads", "", "ListMultipartUploads", "b", ""},
		{"GET", "/b?prefix=x&max-keys=5", "", "ListObjects", "b", ""},
		{"GET", "/b?acl", "", "GET bucket ?acl", "b", ""},
		{"POST", "/b?delete", "", "DeleteObjects", "b", ""},
		{"HEAD", "/b", "", "HeadBucket", "b", ""},
		{"GET", "/b/k/l", "", "GetObject", "b", "k/l"},
		{"GET", "/b/k", "Range: bytes=-32", "GetObject range", "b", "k"},
		{"GET", "/b/k?uploadId=u&max-parts=1000", "", "ListParts", "b", "k"},
		{"GET", "/b/k?tagging", "", "GET object ?tagging", "b", "k"},
		{"HEAD", "/b/k?versionId=v", "", "HeadObject", "b", "k"},
		{"PUT", "/b/k", "", "PutObject", "b", "k"},
		{"PUT", "/b/k", "X-Amz-Copy-Source: /b/k", "CopyObject", "b", "k"},
		{"PUT", "/b/k?partNumber=2&uploadId=u", "", "UploadPart", "b", "k"},
		{"PUT", "/b/k?partNumber=2&uploadId=u", "X-Amz-Copy-Source: /b/k", "UploadPartCopy", "b", "k"},
		{"POST", "/b/k?uploads", "", "CreateMultipartUpload", "b", "k"},
		{"POST", "/b/k?uploadId=u", "", "CompleteMultipartUpload", "b", "k"},
		{"DELETE", "/b/k?uploadId=u", "", "AbortMultipartUpload", "b", "k"},
		{"DELETE", "/b/k?versionId=null", "", "DeleteObject", "b", "k"},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.target, nil)
		if name, value, ok := strings.Cut(c.header, ": "); ok {
			r.Header.Set(name, value)
		}
		op, bucket, key := S3Request(r)
		if op != c.op || bucket != c.bucket || key != c.key {
			t.Errorf("%s %s %q: %q %q %q, want %q %q %q", c.method, c.target, c.header, op, bucket, key, c.op, c.bucket, c.key)
		}
	}
}

func TestCounter(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	c := NewCounter(u, nil)
	front := httptest.NewServer(c)
	defer front.Close()
	do := func(method, target string) {
		req, _ := http.NewRequest(method, front.URL+target, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	do("GET", "/b/k")
	before := c.Counts()
	do("GET", "/b/k")
	do("POST", "/b/k?uploadId=u")
	do("GET", "/b/k?uploadId=u")
	got := c.CountsSince(before)
	want := map[string]int{"GetObject": 1, "CompleteMultipartUpload": 1, "ListParts": 1}
	if !maps.Equal(got, want) {
		t.Errorf("since: %v, want %v", got, want)
	}
	if n := c.Counts()["GetObject"]; n != 2 {
		t.Errorf("GetObject counted %d times", n)
	}
}
