package tools

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/keys"
)

// sealSingleChecksum encrypts plain as a single-part object whose trailer seals the checksum
// of algorithm a (FORMAT.md 3.3), as the gateway would, and returns the stored bytes and the
// envelope. The object's x-amz-meta-s3seal-ck is a.String().
func sealSingleChecksum(t *testing.T, lf *keys.LocalFile, bucket, key string, plain []byte, a format.ChecksumAlgorithm) ([]byte, string) {
	t.Helper()
	ctx := context.Background()
	used, dk, wrapped, err := lf.GenerateDataKeyID(ctx, "", format.EncryptionContext(bucket))
	if err != nil {
		t.Fatal(err)
	}
	defer clear(dk)
	ok, err := format.NewObjectKey()
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Zero()
	env, err := format.SealEnvelope(ok, dk, format.SealParams{Kind: format.KindSingle, Wrap: format.WrapProvider,
		KeyID: used, WrappedKey: wrapped, Bucket: bucket, Object: key})
	if err != nil {
		t.Fatal(err)
	}
	r, err := format.NewEncryptReader(bytes.NewReader(plain), ok, int64(len(plain)), format.EncryptOptions{ComputeMD5: true, Checksum: a})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(stored)) != format.EncryptedSizeOf(int64(len(plain)), a) || len(r.Checksum()) != a.Size() {
		t.Fatalf("%v: %d stored bytes, a checksum of %d", a, len(stored), len(r.Checksum()))
	}
	return stored, env.Encode()
}

// TestDecryptSingleChecksum: a single-part object that seals a checksum decrypts byte for byte
// with its x-amz-meta-s3seal-ck value, and fails, writing nothing, with the value removed,
// changed to another algorithm (of the same digest size too) or to one that is not S3's name
// of an algorithm; an object without a checksum fails when a value is added.
func TestDecryptSingleChecksum(t *testing.T) {
	lf := testKeys(t)
	ctx := context.Background()
	others := map[format.ChecksumAlgorithm][]format.ChecksumAlgorithm{
		format.ChecksumSHA256:    {format.ChecksumNone, format.ChecksumSHA512, format.ChecksumSHA1, format.ChecksumCRC32},
		format.ChecksumCRC64NVME: {format.ChecksumNone, format.ChecksumXXHASH64, format.ChecksumXXHASH3, format.ChecksumSHA256},
		format.ChecksumCRC32:     {format.ChecksumNone, format.ChecksumCRC32C},
		format.ChecksumNone:      {format.ChecksumCRC32, format.ChecksumSHA512},
	}
	for a, wrong := range others {
		for _, n := range []int{0, 1, format.SegmentSize, format.SegmentSize + 1, 2*format.SegmentSize + 5} {
			plain := randomBytes(t, n)
			stored, env := sealSingleChecksum(t, lf, "bucket", "dir/key", plain, a)
			in := func(ck string) DecryptInput {
				return DecryptInput{Bucket: "bucket", Key: "dir/key", Envelope: env, Checksum: ck,
					Stored: bytes.NewReader(stored), StoredSize: int64(len(stored))}
			}
			ck := ""
			if a != format.ChecksumNone {
				ck = a.String()
			}
			var out bytes.Buffer
			if k, err := Decrypt(ctx, lf, in(ck), &out); err != nil || k != int64(n) || !bytes.Equal(out.Bytes(), plain) {
				t.Errorf("%v, %d bytes: wrote %d (%d), %v", a, n, out.Len(), k, err)
			}
			for _, w := range wrong {
				v := ""
				if w != format.ChecksumNone {
					v = w.String()
				}
				out.Reset()
				if _, err := Decrypt(ctx, lf, in(v), &out); err == nil || out.Len() != 0 {
					t.Errorf("%v, %d bytes, read as %q: wrote %d bytes, %v; want an error and nothing written", a, n, v, out.Len(), err)
				}
			}
			for _, v := range []string{"crc32", "Sha256", " SHA256", "SHA256 ", "BOGUS", "NONE", "0"} {
				out.Reset()
				_, err := Decrypt(ctx, lf, in(v), &out)
				if !errors.Is(err, format.ErrMalformed) || !strings.Contains(err.Error(), "unknown checksum algorithm") || out.Len() != 0 {
					t.Errorf("%v, %d bytes, read as %q: wrote %d bytes, %v; want an unknown-algorithm error", a, n, v, out.Len(), err)
				}
			}
		}
	}
	// Through WriteFile, as the command writes its output: no file is left.
	plain := randomBytes(t, 1000)
	stored, env := sealSingleChecksum(t, lf, "bucket", "k", plain, format.ChecksumSHA256)
	path := filepath.Join(t.TempDir(), "out")
	err := WriteFile(path, func(w io.Writer) error {
		_, err := Decrypt(ctx, lf, DecryptInput{Bucket: "bucket", Key: "k", Envelope: env,
			Stored: bytes.NewReader(stored), StoredSize: int64(len(stored))}, w)
		return err
	})
	if _, serr := os.Stat(path); err == nil || !os.IsNotExist(serr) {
		t.Errorf("without its checksum metadata: %v, output %v", err, serr)
	}
	if err == nil || !strings.Contains(err.Error(), "s3seal-ck") {
		t.Errorf("the error %v does not mention the checksum metadata", err)
	}
}

// TestParseMetadataFileChecksum: the checksum algorithm is read from every form that carries
// metadata.
func TestParseMetadataFileChecksum(t *testing.T) {
	lf := testKeys(t)
	_, env := sealObject(t, lf, "bucket", "key", []byte("x"))
	for name, doc := range map[string]string{
		"aws s3api head-object": `{"ContentLength":89,"Metadata":{"s3seal-env":"` + env + `","s3seal-ck":"SHA256"}}`,
		"mc stat --json":        `{"metadata":{"X-Amz-Meta-S3seal-Env":"` + env + `","X-Amz-Meta-S3seal-Ck":"SHA256"}}`,
		"curl -I":               "HTTP/1.1 200 OK\r\nx-amz-meta-s3seal-env: " + env + "\r\nX-Amz-Meta-S3seal-Ck: SHA256\r\n\r\n",
	} {
		md, err := ParseMetadataFile([]byte(doc))
		if err != nil || md.Envelope != env || md.Checksum != "SHA256" {
			t.Errorf("%s: got %+v, %v", name, md, err)
		}
	}
	if md, err := ParseMetadataFile([]byte(`{"Metadata":{"s3seal-env":"` + env + `"}}`)); err != nil || md.Checksum != "" {
		t.Errorf("no checksum: got %+v, %v", md, err)
	}
	if md, err := ParseMetadataFile([]byte(`{"Metadata":{"s3seal-env":"` + env + `","s3seal-ck":"SHA256"},"S3seal-Ck":"CRC32"}`)); err == nil {
		t.Errorf("two checksum values: got %+v", md)
	}
}

// TestChecksumBackendDecryptRewrap: single-part objects with a sealed checksum in the backend
// are recovered by DecryptObject with the algorithm of their metadata, and rewrapped (whole
// and part by part) with that metadata kept and the stored bytes unchanged, so they still
// decrypt; with the metadata removed they do not.
func TestChecksumBackendDecryptRewrap(t *testing.T) {
	const bucket = "tools-ck"
	c := embeddedBackend(t, bucket)
	lf := testKeys(t)
	ctx := context.Background()
	objects := map[string]format.ChecksumAlgorithm{
		"ck/sha256": format.ChecksumSHA256, "ck/crc64": format.ChecksumCRC64NVME, "ck/crc32": format.ChecksumCRC32,
		"ck/parts-sha256": format.ChecksumSHA256, "ck/parts-crc64": format.ChecksumCRC64NVME,
	}
	want, before := map[string][]byte{}, map[string][]byte{}
	for key, a := range objects {
		want[key] = randomBytes(t, format.SegmentSize+7)
		stored, env := sealSingleChecksum(t, lf, bucket, key, want[key], a)
		put(t, c, bucket, key, stored, map[string]string{"s3seal-env": env, "s3seal-ck": a.String(), "owner": "x"})
		before[key] = stored
		if got := recoverObject(t, c, lf, bucket, key); !bytes.Equal(got, want[key]) {
			t.Fatalf("%s: recovered %d bytes, want %d", key, len(got), len(want[key]))
		}
	}
	if err := lf.AddKey("k2"); err != nil {
		t.Fatal(err)
	}
	s, err := Rewrap(ctx, c, RewrapOptions{RunOptions: RunOptions{Bucket: bucket, Prefix: "ck/parts-"}, From: lf, To: lf, ToKey: "k2", CopyThreshold: 1})
	if err != nil || s.Count(Done) != 2 {
		t.Fatalf("rewrap part by part: %v, %v", s, err)
	}
	s, err = Rewrap(ctx, c, RewrapOptions{RunOptions: RunOptions{Bucket: bucket, Prefix: "ck/"}, From: lf, To: lf, ToKey: "k2"})
	if err != nil || s.Count(Done) != 3 || s.Count(Skipped) != 2 {
		t.Fatalf("rewrap: %v, %v", s, err)
	}
	for key, a := range objects {
		b, o := get(t, c, bucket, key)
		if !bytes.Equal(b, before[key]) {
			t.Errorf("%s: stored bytes changed by the rewrap", key)
		}
		if got := metaValue(o.Metadata, metaChecksum); got != a.String() || o.Metadata["owner"] != "x" {
			t.Errorf("%s: metadata after rewrap %v, want s3seal-ck %q kept", key, o.Metadata, a.String())
		}
		if e, err := format.DecodeEnvelope(envelopeOf(o.Metadata)); err != nil || e.KeyID != "k2" {
			t.Errorf("%s: envelope after rewrap %+v, %v", key, e, err)
		}
		if got := recoverObject(t, c, lf, bucket, key); !bytes.Equal(got, want[key]) {
			t.Errorf("%s after rewrap: recovered %d bytes, want %d", key, len(got), len(want[key]))
		}
	}
	// The same bytes and envelope without the checksum metadata, or with another algorithm's,
	// do not decrypt.
	b, o := get(t, c, bucket, "ck/crc32")
	for _, v := range []string{"", "CRC32C", "crc32"} {
		meta := map[string]string{"s3seal-env": envelopeOf(o.Metadata)}
		if v != "" {
			meta["s3seal-ck"] = v
		}
		put(t, c, bucket, "ck/crc32", b, meta)
		var out bytes.Buffer
		if _, err := DecryptObject(ctx, c, lf, bucket, "ck/crc32", &out); err == nil || out.Len() != 0 {
			t.Errorf("s3seal-ck %q: wrote %d bytes, %v; want an error and nothing written", v, out.Len(), err)
		}
	}
}

// TestMigrateDropsStrayChecksumMetadata: migrate writes objects without a checksum, so a
// plaintext object's own x-amz-meta-s3seal-ck (reserved; not the gateway's) does not survive
// the migration, which would make the object unreadable.
func TestMigrateDropsStrayChecksumMetadata(t *testing.T) {
	const bucket = "tools-ck-migrate"
	c := embeddedBackend(t, bucket)
	lf := testKeys(t)
	plain := randomBytes(t, 5000)
	put(t, c, bucket, "k", plain, map[string]string{"s3seal-ck": "SHA256", "owner": "x"})
	s, _, err := Migrate(context.Background(), c, MigrateOptions{RunOptions: RunOptions{Bucket: bucket}, Keys: lf, ComputeMD5: true})
	if err != nil || s.Count(Done) != 1 {
		t.Fatalf("migrate: %v, %v", s, err)
	}
	head, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if v := metaValue(head.Metadata, metaChecksum); v != "" || head.Metadata["owner"] != "x" || aws.ToInt64(head.ContentLength) != format.EncryptedSize(int64(len(plain))) {
		t.Errorf("after migrate: metadata %v, %d stored bytes", head.Metadata, aws.ToInt64(head.ContentLength))
	}
	if got := recoverObject(t, c, lf, bucket, "k"); !bytes.Equal(got, plain) {
		t.Errorf("recovered %d bytes, want %d", len(got), len(plain))
	}
}
