package embedded

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// newTestBackend is the backend without HTTP, on a fresh dir: in /dev/shm where there is one
// (a tmpfs, where fsync costs nothing, so that fuzzing gets more than a few inputs a second).
func newTestBackend(t testing.TB) *backend {
	t.Helper()
	dir := t.TempDir()
	if d, err := os.MkdirTemp("/dev/shm", "embfuzz"); err == nil {
		dir = d
		t.Cleanup(func() { os.RemoveAll(d) })
	}
	f := &files{bodies: filepath.Join(dir, "bodies"), tmp: filepath.Join(dir, "tmp")}
	for _, d := range []string{f.bodies, f.tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	db, err := openDB(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &backend{db: db, files: f, log: slog.New(slog.DiscardHandler), now: time.Now}
}

// noRetries makes an SDK call fail on the first error answer (the SDK would retry a 500).
func noRetries(o *s3.Options) { o.Retryer = aws.NopRetryer{} }

func listAll(t *testing.T, c *s3.Client, bucket, prefix, delim string) (keys, prefixes []string) {
	t.Helper()
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	if delim != "" {
		in.Delimiter = aws.String(delim)
	}
	p := s3.NewListObjectsV2Paginator(c, in)
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %q %q: %v", prefix, delim, err)
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		for _, cp := range out.CommonPrefixes {
			prefixes = append(prefixes, aws.ToString(cp.Prefix))
		}
	}
	return keys, prefixes
}

// TestAnyS3Key: keys that a store of files named by key cannot hold are ordinary objects
// here: a folder marker "folder/", "a" next to "a/b" (both listed, both readable), keys of
// 1,024 bytes, Unicode (NFC and NFD spellings are different keys, as in S3), "." and ".."
// segments and empty segments. A 1,025-byte key is KeyTooLongError, as in S3.
func TestAnyS3Key(t *testing.T) {
	s := startStore(t, shortDir(t))
	c := newClient(s, false)
	ctx := context.Background()
	mustBucket(t, c, "keys")
	long := strings.Repeat("k", 1024)
	longUTF8 := strings.Repeat("é/", 341) + "x" // 1,023 bytes of two-byte runes and slashes, plus one
	keys := map[string][]byte{
		"folder/":        {},
		"folder/in":      []byte("inside the folder"),
		"a":              []byte("object a"),
		"a/b":            []byte("object a/b"),
		"a/b/c":          []byte("object a/b/c"),
		long:             []byte("long key"),
		longUTF8:         []byte("long utf-8 key"),
		"日本語/ключ/🙂 x+y": []byte("unicode"),
		"caf\u00e9":      []byte("nfc"),
		"cafe\u0301":     []byte("nfd"),
		"d/./e/../f":     []byte("dot segments"),
		"g//h":           []byte("empty segment"),
	}
	if len(longUTF8) != 1024 {
		t.Fatalf("test key is %d bytes", len(longUTF8))
	}
	for k, v := range keys {
		put(t, c, "keys", k, v, nil)
	}
	for k, v := range keys {
		if got, _ := get(t, c, "keys", k, ""); !bytes.Equal(got, v) {
			t.Errorf("GET %q = %q, want %q", k, got, v)
		}
	}
	all, _ := listAll(t, c, "keys", "", "")
	if len(all) != len(keys) {
		t.Errorf("listing shows %d keys, %d stored: %q", len(all), len(keys), all)
	}
	for _, k := range all {
		if _, ok := keys[k]; !ok {
			t.Errorf("listing shows %q, never stored", k)
		}
	}
	if k, p := listAll(t, c, "keys", "", "/"); strings.Join(k, ",") != "a,cafe\u0301,caf\u00e9,"+long ||
		strings.Join(p, ",") != "a/,d/,folder/,g/,"+longUTF8[:3]+",日本語/" {
		t.Errorf("root listing with delimiter: keys %q prefixes %q", k, p)
	}
	if k, p := listAll(t, c, "keys", "folder/", "/"); strings.Join(k, ",") != "folder/,folder/in" || len(p) != 0 {
		t.Errorf("listing folder/ with delimiter: keys %q prefixes %q", k, p)
	}
	if k, p := listAll(t, c, "keys", "a/", "/"); strings.Join(k, ",") != "a/b" || strings.Join(p, ",") != "a/b/" {
		t.Errorf("listing a/ with delimiter: keys %q prefixes %q", k, p)
	}

	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("keys"), Key: aws.String(long + "x"),
		Body: bytes.NewReader(nil), ContentLength: aws.Int64(0)})
	if errCode(err) != "KeyTooLongError" {
		t.Errorf("PUT of a 1,025-byte key: %v, want KeyTooLongError", err)
	}
	_, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("keys"), Key: aws.String(long + "x")})
	if errCode(err) != "KeyTooLongError" {
		t.Errorf("CreateMultipartUpload of a 1,025-byte key: %v, want KeyTooLongError", err)
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("keys"), Key: aws.String(long + "x"), CopySource: aws.String("keys/a")})
	if errCode(err) != "KeyTooLongError" {
		t.Errorf("copy to a 1,025-byte key: %v, want KeyTooLongError", err)
	}

	// Deleting "a" leaves "a/b" and the other way round.
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("keys"), Key: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, c, "keys", "a/b", ""); string(got) != "object a/b" {
		t.Errorf("a/b after deleting a: %q", got)
	}
	put(t, c, "keys", "a", []byte("a again"), nil)
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("keys"), Key: aws.String("a/b")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, c, "keys", "a", ""); string(got) != "a again" {
		t.Errorf("a after deleting a/b: %q", got)
	}
}

// TestOverwriteIsAtomic: GETs racing overwrites of one key with two bodies of the same size
// always read one of the two bodies whole, never a mix, a short body or NoSuchKey. 1,000
// overwrites, two readers (the machine has two cores).
func TestOverwriteIsAtomic(t *testing.T) {
	s := startStore(t, memDir(t))
	c := newClient(s, false)
	mustBucket(t, c, "race")
	bodies := [2][]byte{randBytes(64 << 10), randBytes(64 << 10)}
	sums := map[[32]byte]int{sha256.Sum256(bodies[0]): 0, sha256.Sum256(bodies[1]): 1}
	put(t, c, "race", "k", bodies[0], nil)

	var done atomic.Bool
	var reads, bad atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("race"), Key: aws.String("k")}, noRetries)
				if err != nil {
					bad.Add(1)
					t.Errorf("GET during overwrites: %v", err)
					return
				}
				var buf bytes.Buffer
				_, err = buf.ReadFrom(out.Body)
				out.Body.Close()
				if _, ok := sums[sha256.Sum256(buf.Bytes())]; err != nil || !ok {
					bad.Add(1)
					t.Errorf("GET during overwrites read %d bytes that are neither body (err %v)", buf.Len(), err)
					return
				}
				reads.Add(1)
			}
		}()
	}
	for i := range 1000 {
		put(t, c, "race", "k", bodies[(i+1)%2], nil)
	}
	done.Store(true)
	wg.Wait()
	t.Logf("1000 overwrites, %d concurrent reads, %d bad", reads.Load(), bad.Load())
	if reads.Load() == 0 {
		t.Error("no read ran during the overwrites")
	}
	if n := bodyFiles(t, s); n != 1 {
		t.Errorf("%d body files for one object after the overwrites", n)
	}
}

// TestGetIfMatch: GET and HEAD honour If-Match against the object they read (gofakes3 alone
// ignores it), before the range; the gateway relies on it when it reads one object in several
// requests.
func TestGetIfMatch(t *testing.T) {
	s := startStore(t, shortDir(t))
	c := newClient(s, false)
	mustBucket(t, c, "cond")
	body := randBytes(3000)
	etag := aws.ToString(put(t, c, "cond", "k", body, nil).ETag)
	for _, tc := range []struct {
		method, ifMatch, rng string
		want                 int
	}{
		{"GET", etag, "", 200},
		{"GET", `"00000000000000000000000000000000", ` + etag, "", 200},
		{"GET", "*", "", 200},
		{"GET", `"00000000000000000000000000000000"`, "", 412},
		{"GET", `"00000000000000000000000000000000"`, "bytes=0-9", 412},
		{"GET", etag, "bytes=0-9", 206},
		// S3 evaluates If-Match before the range: an object replaced by a shorter one answers
		// 412, not 416 (the gateway then reads the new object again).
		{"GET", `"00000000000000000000000000000000"`, "bytes=5000-6000", 412},
		{"GET", etag, "bytes=5000-6000", 416},
		{"HEAD", `"00000000000000000000000000000000"`, "", 412},
		{"HEAD", etag, "", 200},
	} {
		hdr := http.Header{"If-Match": {tc.ifMatch}}
		if tc.rng != "" {
			hdr.Set("Range", tc.rng)
		}
		resp := rawDo(t, s, tc.method, "/cond/k", hdr, nil)
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.want {
			t.Errorf("%s If-Match %s Range %q: %d, want %d", tc.method, tc.ifMatch, tc.rng, resp.StatusCode, tc.want)
		}
		if tc.want == 412 && tc.method == "GET" && (bytes.Contains(got, body[:16]) || !bytes.Contains(got, []byte("<Code>PreconditionFailed</Code>"))) {
			t.Errorf("412 body: %q", got)
		}
		if tc.want == 200 && tc.method == "GET" && !bytes.Equal(got, body) {
			t.Errorf("GET If-Match %s: %d bytes", tc.ifMatch, len(got))
		}
	}
}
