package tools

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/format"
)

func TestMetadataNamesMatchFormat(t *testing.T) {
	if got := "X-Amz-Meta-" + metaEnvelope; !strings.EqualFold(got, format.MetaEnvelope) {
		t.Errorf("metaEnvelope gives %q, format says %q", got, format.MetaEnvelope)
	}
	if got := "X-Amz-Meta-" + metaReserved; !strings.EqualFold(got, format.MetaPrefix) {
		t.Errorf("metaReserved gives %q, format says %q", got, format.MetaPrefix)
	}
}

func TestParseS3URI(t *testing.T) {
	for _, c := range []struct{ in, bucket, key string }{
		{"s3://bucket", "bucket", ""},
		{"s3://bucket/", "bucket", ""},
		{"s3://my.bucket-1/a/b c/", "my.bucket-1", "a/b c/"},
		{"s3://bkt/key//x", "bkt", "key//x"},
	} {
		b, k, err := ParseS3URI(c.in)
		if err != nil || b != c.bucket || k != c.key {
			t.Errorf("ParseS3URI(%q) = %q, %q, %v; want %q, %q", c.in, b, k, err, c.bucket, c.key)
		}
	}
	for _, in := range []string{"", "bucket/key", "s3:/bucket", "s3://", "s3:///key", "s3://UPPER/k", "s3://ab/k", "s3://b\x00ad/k", "S3://bucket/k"} {
		if b, k, err := ParseS3URI(in); err == nil {
			t.Errorf("ParseS3URI(%q) = %q, %q; want an error", in, b, k)
		}
	}
}

func TestIsTemp(t *testing.T) {
	for key, want := range map[string]bool{
		"a" + TempMarker + "0123456789abcdef":     true,
		"a/b c" + TempMarker + "fedcba9876543210": true,
		"a" + TempMarker + "0123456789abcde":      false,
		"a" + TempMarker + "0123456789abcdefg":    false,
		"a" + TempMarker + "0123456789abcdeZ":     false,
		"a.s3seal-migrate":                        false,
	} {
		if got := isTemp(key); got != want {
			t.Errorf("isTemp(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestEqualRanges(t *testing.T) {
	for _, size := range []int64{1, 512 << 20, 512<<20 + 1, 6 << 30, 5 << 40} {
		rs := equalRanges(size)
		var off int64
		for i, r := range rs {
			if r.off != off || r.n <= 0 || r.n > MaxCopySize {
				t.Fatalf("size %d: range %d is %+v at offset %d", size, i, r, off)
			}
			if i < len(rs)-1 && r.n < 5<<20 {
				t.Fatalf("size %d: part %d below S3's 5 MiB minimum", size, i)
			}
			off += r.n
		}
		if off != size || len(rs) > format.MaxPartNumber {
			t.Errorf("size %d: %d ranges cover %d bytes", size, len(rs), off)
		}
	}
}

func TestWithEnvelopeReplacesReserved(t *testing.T) {
	out := withEnvelope(map[string]string{"owner": "x", "S3seal-Env": "old", "s3seal-other": "y"}, "new")
	if len(out) != 2 || out["owner"] != "x" || out[metaEnvelope] != "new" {
		t.Errorf("withEnvelope = %v", out)
	}
}

func TestSummaryString(t *testing.T) {
	tl := newTally(rewrapLabels())
	tl.listed.Store(7)
	tl.add(Done)
	tl.add(Done)
	tl.add(Skipped)
	tl.fail("k", errPrecondition)
	s := tl.summary("")
	got := s.String()
	for _, want := range []string{"listed=7 ", "rewrapped=2 ", "skipped=1 ", "not-encrypted=0 ", "failed=1 "} {
		if !strings.Contains(got, want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
	if s.Complete() || len(s.Errors) != 1 || !strings.HasPrefix(s.Errors[0], "k: ") {
		t.Errorf("summary %+v: want incomplete with one error", s)
	}
}

func TestReporterLines(t *testing.T) {
	for _, bar := range []bool{false, true} {
		var buf syncBuffer
		tl := newTally(migrateLabels())
		r := startReporter("migrate", tl, ProgressOptions{W: &buf, Bar: bar, Interval: time.Millisecond})
		tl.listed.Store(3)
		tl.add(Done)
		tl.add(Foreign)
		time.Sleep(20 * time.Millisecond)
		r.stop()
		r.stop() // idempotent
		out := buf.String()
		for _, want := range []string{"migrated 1", "client-encrypted 1", "failed 0"} {
			if !strings.Contains(out, want) {
				t.Errorf("bar=%v: progress %q lacks %q", bar, out, want)
			}
		}
		if !bar && !strings.Contains(out, "migrate: 3 listed, 2 done: ") {
			t.Errorf("plain progress %q lacks the listed/done counts", out)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the reporter's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
