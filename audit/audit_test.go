package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func readRecords(t *testing.T, path string) []Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func TestFileConcurrentAndReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				r := Record{Time: time.Unix(int64(i), 0).UTC(), RequestID: fmt.Sprintf("%d-%d", g, i), Action: "write",
					Object: strings.Repeat("k", 3000)} // long lines: a torn write would show
				if err := w.Write(r); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	recs := readRecords(t, path)
	if len(recs) != writers*each {
		t.Fatalf("%d records, want %d", len(recs), writers*each)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.RequestID] = true
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct records", len(seen))
	}

	// logrotate: rename, then Reopen; new records go to the new file only.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Record{RequestID: "before-reopen"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Record{RequestID: "after-reopen", KeyID: "arn:aws:kms:k"}); err != nil {
		t.Fatal(err)
	}
	if got := readRecords(t, path); len(got) != 1 || got[0].RequestID != "after-reopen" || got[0].KeyID != "arn:aws:kms:k" {
		t.Errorf("new file: %+v", got)
	}
	if got := readRecords(t, path+".1"); got[len(got)-1].RequestID != "before-reopen" {
		t.Errorf("rotated file ends with %+v", got[len(got)-1])
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(""); err == nil {
		t.Error("empty destination accepted")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing-dir", "a.log")); err == nil {
		t.Error("unwritable path accepted")
	}
	w, err := Open(Stdout)
	if err != nil || w.Reopen() != nil || w.Close() != nil {
		t.Errorf("stdout writer: %v", err)
	}
}

func TestRecordFields(t *testing.T) {
	var buf bytes.Buffer
	w := New(&buf)
	r := Record{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), RequestID: "R1", Action: "read", AccessKey: "AK",
		Bucket: "b", Object: "a/b.txt", KeyID: "k1", WrappedKeySHA256: "00ff"}
	if err := w.Write(r); err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2026-01-02T03:04:05Z","request_id":"R1","action":"read","access_key":"AK","bucket":"b",` +
		`"object":"a/b.txt","key_id":"k1","wrapped_key_sha256":"00ff"}` + "\n"
	if buf.String() != want {
		t.Errorf("got  %s\nwant %s", buf.String(), want)
	}
}

// FuzzRecordOneLine: whatever the object name (S3 keys may hold any UTF-8, newlines included),
// a record is exactly one line that decodes back to the same record.
func FuzzRecordOneLine(f *testing.F) {
	f.Add("key", "bucket")
	f.Fuzz(func(t *testing.T, object, bucket string) {
		var buf bytes.Buffer
		r := Record{Object: object, Bucket: bucket, Action: "write"}
		if err := New(&buf).Write(r); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		if bytes.IndexByte(b, '\n') != len(b)-1 {
			t.Fatalf("record is not one line: %q", b)
		}
		var back Record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if validUTF8(object) != back.Object || validUTF8(bucket) != back.Bucket {
			t.Errorf("round trip %q/%q -> %q/%q", bucket, object, back.Bucket, back.Object)
		}
	})
}

// validUTF8 replaces every invalid byte by U+FFFD, as encoding/json does.
func validUTF8(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}
