package tools

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/embedded"
	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/keys"
)

// embeddedBackend starts the gateway's embedded S3 store (gofakes3 on local disk) with one
// bucket and returns a client for it.
func embeddedBackend(t *testing.T, bucket string) *s3.Client {
	t.Helper()
	st, err := embedded.Start(embedded.Options{Dir: filepath.Join(t.TempDir(), "store")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	c := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(st.Endpoint()), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider("embedded", "embedded", ""),
		HTTPClient:                 &http.Client{Transport: st.Transport()},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	return c
}

func put(t *testing.T, c Backend, bucket, key string, body []byte, meta map[string]string) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: bytes.NewReader(body), Metadata: meta, ContentType: aws.String("text/x-test"),
	}); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, c Backend, bucket, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	o, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	defer o.Body.Close()
	b, err := io.ReadAll(o.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, o
}

func listKeys(t *testing.T, c Backend, bucket string) []string {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// recover decrypts bucket/key from the backend.
func recoverObject(t *testing.T, c Backend, ks KeySource, bucket, key string) []byte {
	t.Helper()
	var out bytes.Buffer
	if _, err := DecryptObject(context.Background(), c, ks, bucket, key, &out); err != nil {
		t.Fatalf("decrypt %s: %v", key, err)
	}
	return out.Bytes()
}

// TestMigrateRewrapLocalKeys migrates objects in the embedded store under local key k1, rewraps
// them to local key k2, and checks that the data bytes never change after migration and that
// only the right key opens them.
func TestMigrateRewrapLocalKeys(t *testing.T) {
	const bucket = "tools-unit"
	c := embeddedBackend(t, bucket)
	lf := testKeys(t)
	plain := map[string][]byte{"p/a": randomBytes(t, 0), "p/b": randomBytes(t, 70000), "p/c d": randomBytes(t, 5)}
	for k, b := range plain {
		put(t, c, bucket, k, b, map[string]string{"owner": k})
	}
	put(t, c, bucket, "q/outside", []byte("outside"), nil)
	ctx := context.Background()

	s, leftovers, err := Migrate(ctx, c, MigrateOptions{RunOptions: RunOptions{Bucket: bucket, Prefix: "p/"}, Keys: lf, KeyID: "k1", ComputeMD5: true})
	if err != nil || s.Count(Done) != 3 || !s.Complete() || len(leftovers) != 0 {
		t.Fatalf("migrate: %v, %v, leftovers %v", s, err, leftovers)
	}
	stored := map[string][]byte{}
	for k, want := range plain {
		b, o := get(t, c, bucket, k)
		stored[k] = b
		if o.Metadata["owner"] != k || aws.ToString(o.ContentType) != "text/x-test" || envelopeOf(o.Metadata) == "" {
			t.Errorf("%s after migrate: metadata %v, content type %q", k, o.Metadata, aws.ToString(o.ContentType))
		}
		if got := recoverObject(t, c, lf, bucket, k); !bytes.Equal(got, want) {
			t.Errorf("%s: recovered %d bytes, want %d", k, len(got), len(want))
		}
	}
	if b, _ := get(t, c, bucket, "q/outside"); string(b) != "outside" {
		t.Error("object outside the prefix changed")
	}

	if err := lf.AddKey("k2"); err != nil {
		t.Fatal(err)
	}
	s, err = Rewrap(ctx, c, RewrapOptions{RunOptions: RunOptions{Bucket: bucket, Prefix: "p/", Concurrency: 2}, From: lf, To: lf, ToKey: "k2"})
	if err != nil || s.Count(Done) != 3 || !s.Complete() {
		t.Fatalf("rewrap: %v, %v", s, err)
	}
	s, err = Rewrap(ctx, c, RewrapOptions{RunOptions: RunOptions{Bucket: bucket, Prefix: ""}, From: lf, To: lf, ToKey: "k2"})
	if err != nil || s.Count(Skipped) != 3 || s.Count(NotEncrypted) != 1 || s.Count(Done) != 0 {
		t.Fatalf("second rewrap: %v, %v", s, err)
	}
	for k, want := range plain {
		b, o := get(t, c, bucket, k)
		if !bytes.Equal(b, stored[k]) {
			t.Errorf("%s: stored bytes changed by the rewrap", k)
		}
		if o.Metadata["owner"] != k {
			t.Errorf("%s: metadata lost: %v", k, o.Metadata)
		}
		if got := recoverObject(t, c, lf, bucket, k); !bytes.Equal(got, want) {
			t.Errorf("%s after rewrap: recovered %d bytes, want %d", k, len(got), len(want))
		}
	}
	// A key file holding only k1 (the old key) can no longer open them.
	old, err := keys.CreateLocalFile(filepath.Join(t.TempDir(), "old.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := DecryptObject(ctx, c, old, bucket, "p/b", io.Discard); err == nil {
		t.Error("an object rewrapped to k2 opened without k2")
	}
}

// racingBackend writes a new version of the object being migrated right before the migration
// checks that the original is unchanged.
type racingBackend struct {
	Backend
	bucket, key string
	tmpWritten  atomic.Bool
	raced       atomic.Bool
	newContent  []byte
}

func (r *racingBackend) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	out, err := r.Backend.PutObject(ctx, in, o...)
	if strings.Contains(aws.ToString(in.Key), TempMarker) {
		r.tmpWritten.Store(true)
	}
	return out, err
}

func (r *racingBackend) HeadObject(ctx context.Context, in *s3.HeadObjectInput, o ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	if aws.ToString(in.Key) == r.key && r.tmpWritten.Load() && !r.raced.Swap(true) {
		if _, err := r.Backend.PutObject(ctx, &s3.PutObjectInput{Bucket: &r.bucket, Key: &r.key, Body: bytes.NewReader(r.newContent)}); err != nil {
			return nil, err
		}
	}
	return r.Backend.HeadObject(ctx, in, o...)
}

// TestMigrateLeavesConcurrentWrite: an object rewritten while it was being migrated is left as
// the writer left it, counted as failed, and the temporary object is removed.
func TestMigrateLeavesConcurrentWrite(t *testing.T) {
	const bucket = "tools-race"
	inner := embeddedBackend(t, bucket)
	put(t, inner, bucket, "k", []byte("original content"), nil)
	rb := &racingBackend{Backend: inner, bucket: bucket, key: "k", newContent: []byte("written meanwhile")}
	s, _, err := Migrate(context.Background(), rb, MigrateOptions{RunOptions: RunOptions{Bucket: bucket}, Keys: testKeys(t)})
	if err != nil || s.Count(Failed) != 1 || s.Count(Done) != 0 || !rb.raced.Load() {
		t.Fatalf("migrate: %v, %v (raced %v)", s, err, rb.raced.Load())
	}
	if !strings.Contains(strings.Join(s.Errors, "\n"), "changed") {
		t.Errorf("errors %v do not say the object changed", s.Errors)
	}
	b, o := get(t, inner, bucket, "k")
	if string(b) != "written meanwhile" || envelopeOf(o.Metadata) != "" {
		t.Errorf("the concurrent write was not kept: %q, envelope %q", b, envelopeOf(o.Metadata))
	}
	if keys := listKeys(t, inner, bucket); len(keys) != 1 {
		t.Errorf("objects left: %v", keys)
	}
}

// sizedBackend reports a different stored size for one key on HEAD.
type sizedBackend struct {
	Backend
	key  string
	size int64
}

func (s sizedBackend) HeadObject(ctx context.Context, in *s3.HeadObjectInput, o ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	out, err := s.Backend.HeadObject(ctx, in, o...)
	if err == nil && aws.ToString(in.Key) == s.key {
		out.ContentLength = aws.Int64(s.size)
	}
	return out, err
}

// TestMigrateRefusesTooLarge: an object whose encrypted form would not fit one CopyObject is
// refused with a message, counted, and left alone.
func TestMigrateRefusesTooLarge(t *testing.T) {
	const bucket = "tools-large"
	inner := embeddedBackend(t, bucket)
	put(t, inner, bucket, "big", []byte("pretend to be 5 GiB"), nil)
	put(t, inner, bucket, "small", []byte("small"), nil)
	b := sizedBackend{Backend: inner, key: "big", size: MaxCopySize}
	s, _, err := Migrate(context.Background(), b, MigrateOptions{RunOptions: RunOptions{Bucket: bucket}, Keys: testKeys(t)})
	if err != nil || s.Count(TooLarge) != 1 || s.Count(Done) != 1 || s.Count(Failed) != 0 || s.Complete() {
		t.Fatalf("migrate: %v, %v", s, err)
	}
	if len(s.Errors) != 1 || !strings.HasPrefix(s.Errors[0], "big: ") || !strings.Contains(s.Errors[0], "copy limit") {
		t.Errorf("errors %q", s.Errors)
	}
	if body, o := get(t, inner, bucket, "big"); string(body) != "pretend to be 5 GiB" || envelopeOf(o.Metadata) != "" {
		t.Error("the refused object was changed")
	}
}

// cancelingBackend cancels the run's context at the n-th HEAD, as SIGINT would.
type cancelingBackend struct {
	Backend
	n      atomic.Int64
	at     int64
	cancel context.CancelFunc
}

func (c *cancelingBackend) HeadObject(ctx context.Context, in *s3.HeadObjectInput, o ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	if c.n.Add(1) == c.at {
		c.cancel()
	}
	return c.Backend.HeadObject(ctx, in, o...)
}

// TestRewrapInterrupted: a canceled run stops listing, finishes the object in progress (every
// object ends old or new, none fails), says it was interrupted, and a rerun does the rest.
func TestRewrapInterrupted(t *testing.T) {
	const bucket = "tools-cancel"
	inner := embeddedBackend(t, bucket)
	lf := testKeys(t)
	for i := range 40 {
		put(t, inner, bucket, "o/"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+string(rune('a'+i/26)), randomBytes(t, 10), nil)
	}
	ctx := context.Background()
	if s, _, err := Migrate(ctx, inner, MigrateOptions{RunOptions: RunOptions{Bucket: bucket}, Keys: lf, KeyID: "k1"}); err != nil || s.Count(Done) != 40 {
		t.Fatalf("setup: %v %v", s, err)
	}
	if err := lf.AddKey("k2"); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cb := &cancelingBackend{Backend: inner, at: 10, cancel: cancel}
	s, err := Rewrap(runCtx, cb, RewrapOptions{RunOptions: RunOptions{Bucket: bucket, Concurrency: 1}, From: lf, To: lf, ToKey: "k2"})
	if err != nil || !strings.Contains(s.Stop, "interrupted") || s.Count(Failed) != 0 || s.Count(Done) == 0 || s.Count(Done) >= 40 {
		t.Fatalf("interrupted run: %v (stop %q), %v", s, s.Stop, err)
	}
	first := s.Count(Done)
	s, err = Rewrap(ctx, inner, RewrapOptions{RunOptions: RunOptions{Bucket: bucket}, From: lf, To: lf, ToKey: "k2"})
	if err != nil || s.Count(Done) != 40-first || s.Count(Skipped) != first || !s.Complete() {
		t.Fatalf("rerun after %d: %v, %v", first, s, err)
	}
}

// TestToolsSkipUploadRecords: migrate and rewrap leave the gateway's upload records (keys under
// format.ReservedPrefix, FORMAT.md 3.5.3) alone: they are not objects.
func TestToolsSkipUploadRecords(t *testing.T) {
	const bucket = "tools-records"
	c := embeddedBackend(t, bucket)
	lf := testKeys(t)
	const rec = format.UploadRecordsPrefix + "u1/part/00001/abc/AAAA"
	put(t, c, bucket, rec, nil, nil)
	put(t, c, bucket, "obj", []byte("plain"), nil)
	ctx := context.Background()
	s, _, err := Migrate(ctx, c, MigrateOptions{RunOptions: RunOptions{Bucket: bucket}, Keys: lf, KeyID: "k1", ComputeMD5: true})
	if err != nil || s.Count(Done) != 1 {
		t.Fatalf("migrate: %v, %v", s, err)
	}
	if _, o := get(t, c, bucket, rec); envelopeOf(o.Metadata) != "" {
		t.Fatal("migrate encrypted an upload record")
	}
	s, err = Rewrap(ctx, c, RewrapOptions{RunOptions: RunOptions{Bucket: bucket}, From: lf, To: lf, ToKey: "k1"})
	if err != nil || s.Count(NotEncrypted) != 0 {
		t.Fatalf("rewrap counts an upload record: %v, %v", s, err)
	}
}
