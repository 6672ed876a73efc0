package embedded

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// shortDir returns a short temp dir: the socket path must fit in sun_path.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "emb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "data")
}

func startStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Start(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// clientSettings are the settings the gateway uses: no default checksums, UNSIGNED-PAYLOAD,
// plain Content-Length bodies.
func newClient(s *Store, defaultChecksums bool) *s3.Client {
	o := s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint()),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("AKTEST", "secret", ""),
		HTTPClient:   &http.Client{Transport: s.Transport()},
	}
	if !defaultChecksums {
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	}
	return s3.New(o)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func mustBucket(t *testing.T, c *s3.Client, name string) {
	t.Helper()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, c *s3.Client, bucket, key string, body []byte, meta map[string]string) *s3.PutObjectOutput {
	t.Helper()
	out, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), Metadata: meta,
	})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return out
}

func get(t *testing.T, c *s3.Client, bucket, key, rng string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if rng != "" {
		in.Range = aws.String(rng)
	}
	out, err := c.GetObject(context.Background(), in)
	if err != nil {
		t.Fatalf("get %s %s: %v", key, rng, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, out
}

func TestObjectsThroughSDK(t *testing.T) {
	s := startStore(t, shortDir(t))
	c := newClient(s, false)
	ctx := context.Background()
	mustBucket(t, c, "bkt")

	body := randBytes(100_000)
	longMeta := base64.StdEncoding.EncodeToString(randBytes(450)) // 600 characters
	meta := map[string]string{"s3seal-env": longMeta, "color": "blue"}
	out, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("bkt"), Key: aws.String("dir/obj"), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), Metadata: meta, ContentType: aws.String("text/x-test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(out.ETag), `"`+md5hex(body)+`"`; got != want {
		t.Errorf("put ETag %s, want %s", got, want)
	}

	t.Run("head", func(t *testing.T) {
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/obj")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt64(h.ContentLength) != int64(len(body)) {
			t.Errorf("Content-Length %d, want %d", aws.ToInt64(h.ContentLength), len(body))
		}
		if aws.ToString(h.ETag) != `"`+md5hex(body)+`"` {
			t.Errorf("ETag %s", aws.ToString(h.ETag))
		}
		if h.Metadata["s3seal-env"] != longMeta || h.Metadata["color"] != "blue" || len(h.Metadata) != 2 {
			t.Errorf("metadata %v", h.Metadata)
		}
		if aws.ToString(h.ContentType) != "text/x-test" {
			t.Errorf("Content-Type %q", aws.ToString(h.ContentType))
		}
		if h.LastModified == nil || h.LastModified.IsZero() {
			t.Error("no Last-Modified")
		}
	})

	t.Run("ranges", func(t *testing.T) {
		n := int64(len(body))
		for _, tc := range []struct {
			rng        string
			start, end int64
		}{
			{"bytes=0-0", 0, 0},
			{"bytes=10-65545", 10, 65545},
			{"bytes=99990-", 99990, n - 1},
			{"bytes=-17", n - 17, n - 1},
			{"bytes=99990-200000", 99990, n - 1},
		} {
			got, out := get(t, c, "bkt", "dir/obj", tc.rng)
			if !bytes.Equal(got, body[tc.start:tc.end+1]) {
				t.Errorf("%s: wrong bytes (%d bytes)", tc.rng, len(got))
			}
			if want := fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end, n); aws.ToString(out.ContentRange) != want {
				t.Errorf("%s: Content-Range %q, want %q", tc.rng, aws.ToString(out.ContentRange), want)
			}
		}
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/obj"), Range: aws.String("bytes=100000-")})
		if errCode(err) != "InvalidRange" {
			t.Errorf("range past the end: %v", err)
		}
	})

	t.Run("overwrite replaces metadata", func(t *testing.T) {
		put(t, c, "bkt", "ow", []byte("one"), map[string]string{"a": "1", "b": "2"})
		put(t, c, "bkt", "ow", []byte("two!"), map[string]string{"b": "3"})
		got, out := get(t, c, "bkt", "ow", "")
		if string(got) != "two!" || len(out.Metadata) != 1 || out.Metadata["b"] != "3" {
			t.Errorf("after overwrite: %q %v", got, out.Metadata)
		}
	})

	t.Run("no protocol headers stored", func(t *testing.T) {
		resp := rawDo(t, s, http.MethodHead, "/bkt/dir/obj", nil, nil)
		for k := range resp.Header {
			if strings.HasPrefix(k, "X-Amz-") && !strings.HasPrefix(k, "X-Amz-Meta-") && k != "X-Amz-Id-2" && k != "X-Amz-Request-Id" {
				t.Errorf("stored request header echoed: %s", k)
			}
		}
	})

	t.Run("metadata limit", func(t *testing.T) {
		big := strings.Repeat("x", 2048-len("k"))
		put(t, c, "bkt", "meta-ok", []byte("x"), map[string]string{"k": big})
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("bkt"), Key: aws.String("meta-big"), Body: bytes.NewReader([]byte("x")),
			Metadata: map[string]string{"k": big + "y"},
		})
		if errCode(err) != "MetadataTooLarge" {
			t.Errorf("2049 bytes of metadata: %v", err)
		}
	})

	t.Run("copy", func(t *testing.T) {
		put(t, c, "bkt", "src", []byte("copy me"), map[string]string{"a": "1", "b": "2"})
		_, err := c.CopyObject(ctx, &s3.CopyObjectInput{
			Bucket: aws.String("bkt"), Key: aws.String("dst-replace"), CopySource: aws.String("bkt/src"),
			MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"b": "2", "c": "3"},
		})
		if err != nil {
			t.Fatal(err)
		}
		got, out := get(t, c, "bkt", "dst-replace", "")
		if string(got) != "copy me" || len(out.Metadata) != 2 || out.Metadata["b"] != "2" || out.Metadata["c"] != "3" {
			t.Errorf("REPLACE copy: %q %v", got, out.Metadata)
		}
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{
			Bucket: aws.String("bkt"), Key: aws.String("dst-copy"), CopySource: aws.String("bkt/src"),
			Metadata: map[string]string{"ignored": "x"},
		}); err != nil {
			t.Fatal(err)
		}
		_, out = get(t, c, "bkt", "dst-copy", "")
		if len(out.Metadata) != 2 || out.Metadata["a"] != "1" || out.Metadata["b"] != "2" {
			t.Errorf("COPY copy: %v", out.Metadata)
		}
		// In place, as the gateway does to rewrite an envelope.
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{
			Bucket: aws.String("bkt"), Key: aws.String("src"), CopySource: aws.String("bkt/src"),
			MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"z": "9"},
		}); err != nil {
			t.Fatal(err)
		}
		got, out = get(t, c, "bkt", "src", "")
		if string(got) != "copy me" || len(out.Metadata) != 1 || out.Metadata["z"] != "9" {
			t.Errorf("in-place copy: %q %v", got, out.Metadata)
		}
	})

	t.Run("list", func(t *testing.T) {
		mustBucket(t, c, "lst")
		keys := []string{"a-c", "a/b", "a/c/d", "b", "c/x", "c/y"}
		sizes := map[string]int64{}
		for i, k := range keys {
			put(t, c, "lst", k, make([]byte, i*7), nil)
			sizes[k] = int64(i * 7)
		}
		var got []string
		var token *string
		for pages := 0; ; pages++ {
			out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), MaxKeys: aws.Int32(2), ContinuationToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range out.Contents {
				got = append(got, aws.ToString(o.Key))
				if aws.ToInt64(o.Size) != sizes[aws.ToString(o.Key)] {
					t.Errorf("%s: size %d, want %d", aws.ToString(o.Key), aws.ToInt64(o.Size), sizes[aws.ToString(o.Key)])
				}
			}
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			token = out.NextContinuationToken
			if pages > 10 {
				t.Fatal("paging does not end")
			}
		}
		want := append([]string(nil), keys...)
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("V2 pages: %v, want %v", got, want)
		}

		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Delimiter: aws.String("/")})
		if err != nil {
			t.Fatal(err)
		}
		var prefixes, contents []string
		for _, p := range out.CommonPrefixes {
			prefixes = append(prefixes, aws.ToString(p.Prefix))
		}
		for _, o := range out.Contents {
			contents = append(contents, aws.ToString(o.Key))
		}
		if strings.Join(prefixes, " ") != "a/ c/" || strings.Join(contents, " ") != "a-c b" {
			t.Errorf("delimiter: prefixes %v contents %v", prefixes, contents)
		}

		out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Prefix: aws.String("a/c"), Delimiter: aws.String("/")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.CommonPrefixes) != 1 || aws.ToString(out.CommonPrefixes[0].Prefix) != "a/c/" || len(out.Contents) != 0 {
			t.Errorf("nested prefix: %+v %+v", out.CommonPrefixes, out.Contents)
		}
		out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Prefix: aws.String("nothing/"), Delimiter: aws.String("/")})
		if err != nil || len(out.Contents)+len(out.CommonPrefixes) != 0 {
			t.Errorf("missing prefix: %v %v", err, out)
		}

		v1, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("lst"), Marker: aws.String("a/c/d")})
		if err != nil {
			t.Fatal(err)
		}
		var v1keys []string
		for _, o := range v1.Contents {
			v1keys = append(v1keys, aws.ToString(o.Key))
			if aws.ToInt64(o.Size) != sizes[aws.ToString(o.Key)] {
				t.Errorf("V1 %s: size %d", aws.ToString(o.Key), aws.ToInt64(o.Size))
			}
		}
		if strings.Join(v1keys, " ") != "b c/x c/y" {
			t.Errorf("V1 after marker: %v", v1keys)
		}
	})

	t.Run("delete", func(t *testing.T) {
		put(t, c, "bkt", "gone/deep/x", []byte("x"), nil)
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bkt"), Key: aws.String("gone/deep/x")}); err != nil {
			t.Fatal(err)
		}
		_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("gone/deep/x")})
		if errCode(err) != "NotFound" {
			t.Errorf("head after delete: %v", err)
		}
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bkt"), Prefix: aws.String("gone"), Delimiter: aws.String("/")})
		if err != nil || len(out.CommonPrefixes) != 0 {
			t.Errorf("empty directory still listed: %v %+v", err, out.CommonPrefixes)
		}
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bkt"), Key: aws.String("never-existed")}); err != nil {
			t.Errorf("delete of a missing key: %v", err)
		}

		put(t, c, "bkt", "m1", []byte("1"), nil)
		put(t, c, "bkt", "m/2", []byte("2"), nil)
		dout, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("bkt"), Delete: &types.Delete{
			Objects: []types.ObjectIdentifier{{Key: aws.String("m1")}, {Key: aws.String("m/2")}, {Key: aws.String("nope")}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(dout.Deleted) != 3 || len(dout.Errors) != 0 {
			t.Errorf("DeleteObjects: %d deleted, %d errors", len(dout.Deleted), len(dout.Errors))
		}
		for _, k := range []string{"m1", "m/2"} {
			if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String(k)}); errCode(err) != "NotFound" {
				t.Errorf("%s after DeleteObjects: %v", k, err)
			}
		}
	})

	t.Run("buckets", func(t *testing.T) {
		mustBucket(t, c, "tmp-bucket")
		if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("tmp-bucket")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("tmp-bucket")}); errCode(err) != "BucketAlreadyExists" {
			t.Errorf("second create: %v", err)
		}
		lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, b := range lb.Buckets {
			names = append(names, aws.ToString(b.Name))
		}
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " tmp-bucket ") {
			t.Errorf("ListBuckets: %v", names)
		}
		put(t, c, "tmp-bucket", "d/x", []byte("x"), nil)
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("tmp-bucket")}); errCode(err) != "BucketNotEmpty" {
			t.Errorf("delete of a full bucket: %v", err)
		}
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("tmp-bucket"), Key: aws.String("d/x")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("tmp-bucket")}); err != nil {
			t.Fatalf("delete of the emptied bucket: %v", err)
		}
		if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("tmp-bucket")}); errCode(err) != "NotFound" {
			t.Errorf("head of a deleted bucket: %v", err)
		}
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("no-such-bucket"), Key: aws.String("k"), Body: bytes.NewReader(nil)}); errCode(err) != "NoSuchBucket" {
			t.Errorf("put into a missing bucket: %v", err)
		}
	})
}

// TestSDKDefaultChecksums records what the SDK's default settings (CRC32 on PUT, signed
// payload) do against the store.
func TestSDKDefaultChecksums(t *testing.T) {
	s := startStore(t, shortDir(t))
	c := newClient(s, true)
	mustBucket(t, c, "bkt")
	body := randBytes(5000)
	put(t, c, "bkt", "k", body, map[string]string{"m": "v"})
	got, out := get(t, c, "bkt", "k", "")
	if !bytes.Equal(got, body) || out.Metadata["m"] != "v" {
		t.Errorf("round trip with default checksums: %d bytes, %v", len(got), out.Metadata)
	}
}

func TestRestartPersistence(t *testing.T) {
	dir := shortDir(t)
	s, err := Start(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(s, false)
	mustBucket(t, c, "keep")
	body := randBytes(3000)
	put(t, c, "keep", "a/b", body, map[string]string{"x": "y"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.SocketPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
	if conn, err := net.Dial("unix", s.SocketPath()); err == nil {
		conn.Close()
		t.Error("store still accepts connections after Close")
	}

	s2 := startStore(t, dir)
	c2 := newClient(s2, false)
	got, out := get(t, c2, "keep", "a/b", "")
	if !bytes.Equal(got, body) || out.Metadata["x"] != "y" || aws.ToString(out.ETag) != `"`+md5hex(body)+`"` {
		t.Errorf("after restart: %d bytes, %v, %s", len(got), out.Metadata, aws.ToString(out.ETag))
	}
}

func TestSocketAndLock(t *testing.T) {
	dir := shortDir(t)
	s := startStore(t, dir)
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Dir(s.SocketPath()): 0o700, s.SocketPath(): 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", path, st.Mode().Perm(), want)
		}
	}
	if st, _ := os.Stat(s.SocketPath()); st.Mode()&os.ModeSocket == 0 {
		t.Errorf("%s is not a socket", s.SocketPath())
	}
	if !strings.HasPrefix(s.SocketPath(), dir+string(filepath.Separator)) {
		t.Errorf("socket %s outside the data dir", s.SocketPath())
	}
	if _, err := Start(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Start on the same dir: %v", err)
	}
	// Nothing of ours listens on TCP: every listening socket of this process is a unix one.
	for _, proto := range []string{"tcp", "tcp6"} {
		if inodes := listeningInodes(t, proto); len(inodes) > 0 && ownsAny(t, inodes) {
			t.Errorf("the process listens on %s", proto)
		}
	}
}

// listeningInodes returns the socket inodes in state LISTEN from /proc/net/<proto>.
func listeningInodes(t *testing.T, proto string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("/proc/net/" + proto)
	if err != nil {
		t.Skipf("no /proc/net/%s: %v", proto, err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[3] == "0A" { // TCP_LISTEN
			out[f[9]] = true
		}
	}
	return out
}

func ownsAny(t *testing.T, inodes map[string]bool) bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	for _, fd := range fds {
		link, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(link, "socket:[") && inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
			return true
		}
	}
	return false
}

// rawDo sends one request over the store's socket.
func rawDo(t *testing.T, s *Store, method, path string, hdr http.Header, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, s.Endpoint()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Transport: s.Transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
