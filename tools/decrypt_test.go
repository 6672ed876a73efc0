package tools

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/keys"
)

// testKeys is a local key file in a temp dir.
func testKeys(t *testing.T) *keys.LocalFile {
	t.Helper()
	lf, err := keys.CreateLocalFile(filepath.Join(t.TempDir(), "keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lf.Close() })
	return lf
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// sealObject encrypts parts (one = single-part object, several = multipart) with the format
// package, as the gateway would, and returns the stored bytes and the envelope.
func sealObject(t *testing.T, lf *keys.LocalFile, bucket, key string, parts ...[]byte) ([]byte, string) {
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
	kind := format.KindSingle
	if len(parts) > 1 {
		kind = format.KindMultipart
	}
	env, err := format.SealEnvelope(ok, dk, format.SealParams{Kind: kind, Wrap: format.WrapProvider,
		KeyID: used, WrappedKey: wrapped, Bucket: bucket, Object: key})
	if err != nil {
		t.Fatal(err)
	}
	var stored bytes.Buffer
	if kind == format.KindSingle {
		r, err := format.NewEncryptReader(bytes.NewReader(parts[0]), ok, int64(len(parts[0])), format.EncryptOptions{ComputeMD5: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(&stored, r); err != nil {
			t.Fatal(err)
		}
		return stored.Bytes(), env.Encode()
	}
	// Parts are written under the key as opened from the envelope (format 3), as the gateway
	// does, and the tail from what their records would hold.
	opened, err := env.Open(dk, bucket, key)
	if err != nil || env.Version() != format.Version3 {
		t.Fatalf("a multipart envelope of version %d: %v", env.Version(), err)
	}
	defer opened.Zero()
	stored.Write(encryptPartsV3(t, opened, 1, parts...))
	return stored.Bytes(), env.Encode()
}

// encryptPartsV3 returns the stored bytes of a format-3 object of the given parts, numbered
// first, first+2, …: the parts, then the tail.
func encryptPartsV3(t *testing.T, k *format.ObjectKey, first int, parts ...[]byte) []byte {
	t.Helper()
	var stored bytes.Buffer
	var facts []format.ManifestPart
	for i, p := range parts {
		r, err := k.NewPartEncryptReader(bytes.NewReader(p), first+2*i, int64(len(p)), format.EncryptOptions{ComputeMD5: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(&stored, r); err != nil {
			t.Fatal(err)
		}
		f := format.ManifestPart{Number: first + 2*i, PlainSize: int64(len(p)), MD5: r.MD5()}
		copy(f.Salt[:], r.PartHeader()[16:])
		facts = append(facts, f)
	}
	tail, _, err := k.SealTail(facts)
	if err != nil {
		t.Fatal(err)
	}
	stored.Write(tail)
	return stored.Bytes()
}

// fixedKey is a key source that unwraps every data key to dk (the known-answer vectors' data
// keys: their wrapped keys are made up).
type fixedKey struct{ dk []byte }

func (f fixedKey) GenerateDataKey(context.Context, string, map[string]string) ([]byte, []byte, error) {
	return nil, nil, errors.New("fixedKey: no new data keys")
}

func (f fixedKey) Decrypt(context.Context, string, []byte, map[string]string) ([]byte, error) {
	return bytes.Clone(f.dk), nil
}

// v2Object is a format-2 multipart object and what opens it.
type v2Object struct {
	stored                     []byte
	env, manifest, bucket, key string
	keys                       KeySource
}

// sealObjectV2 makes a format-2 multipart object of parts (numbered 1, 3, …) for the name of
// the first format-2 known-answer vector, under its envelope: gateways no longer make format-2
// uploads, but a key opened from a format-2 envelope writes format-2 parts. The key source
// opens the envelope.
func sealObjectV2(t *testing.T, parts ...[]byte) v2Object {
	t.Helper()
	b, err := os.ReadFile("../testdata/format/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		V2 []struct{ DK, Envelope, Bucket, Key string } `json:"multipart_v2"`
	}
	if err := json.Unmarshal(b, &f); err != nil || len(f.V2) == 0 {
		t.Fatalf("format-2 vectors: %v", err)
	}
	v := f.V2[0]
	dk, _ := hex.DecodeString(v.DK)
	e, err := format.DecodeEnvelope(v.Envelope)
	if err != nil || e.Version() != format.Version2 {
		t.Fatalf("vector envelope: %v", err)
	}
	k, err := e.Open(dk, v.Bucket, v.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Zero()
	var out bytes.Buffer
	var headers [][]byte
	for i, p := range parts {
		r, err := k.NewPartEncryptReader(bytes.NewReader(p), 2*i+1, int64(len(p)), format.EncryptOptions{})
		if err != nil {
			t.Fatal(err)
		}
		start := out.Len()
		if _, err := io.Copy(&out, r); err != nil {
			t.Fatal(err)
		}
		headers = append(headers, bytes.Clone(out.Bytes()[start:start+format.PartHeaderSize]))
		if out.Bytes()[start] != format.Version2 {
			t.Fatalf("part header of version %d", out.Bytes()[start])
		}
	}
	l, err := format.LayoutOfHeaders(headers)
	if err != nil {
		t.Fatal(err)
	}
	m, err := k.SealManifest(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v2Object{out.Bytes(), v.Envelope, m, v.Bucket, v.Key, fixedKey{dk}}
}

func decryptBytes(lf *keys.LocalFile, bucket, key, env string, stored []byte) ([]byte, error) {
	var out bytes.Buffer
	_, err := Decrypt(context.Background(), lf, DecryptInput{
		Bucket: bucket, Key: key, Envelope: env, Stored: bytes.NewReader(stored), StoredSize: int64(len(stored)),
	}, &out)
	return out.Bytes(), err
}

// TestDecryptRequiresManifest: a format-2 multipart object (read only now) decrypts with its
// part manifest, and is refused without it, with another object's, and with a part dropped.
func TestDecryptRequiresManifest(t *testing.T) {
	p1, p2 := randomBytes(t, 70000), randomBytes(t, 10)
	o := sealObjectV2(t, p1, p2)
	stored, env, man, bucket, key, ks := o.stored, o.env, o.manifest, o.bucket, o.key, o.keys
	other := sealObjectV2(t, p1, p2).manifest // the same object key, other salts
	first := int(format.PartEncryptedSize(int64(len(p1))))
	var out bytes.Buffer
	in := DecryptInput{Bucket: bucket, Key: key, Envelope: env, Manifest: man, Stored: bytes.NewReader(stored), StoredSize: int64(len(stored))}
	if _, err := Decrypt(context.Background(), ks, in, &out); err != nil || !bytes.Equal(out.Bytes(), append(bytes.Clone(p1), p2...)) {
		t.Fatalf("the format-2 object: %v", err)
	}
	for name, in := range map[string]DecryptInput{
		"no manifest":        {Envelope: env, Stored: bytes.NewReader(stored), StoredSize: int64(len(stored))},
		"another's manifest": {Envelope: env, Manifest: other, Stored: bytes.NewReader(stored), StoredSize: int64(len(stored))},
		"last part dropped":  {Envelope: env, Manifest: man, Stored: bytes.NewReader(stored[:first]), StoredSize: int64(first)},
	} {
		in.Bucket, in.Key = bucket, key
		if _, err := Decrypt(context.Background(), ks, in, io.Discard); !errors.Is(err, format.ErrAuth) {
			t.Errorf("%s: %v, want an authentication failure", name, err)
		}
	}
}

func TestDecryptRoundTrip(t *testing.T) {
	lf := testKeys(t)
	for _, parts := range [][]int{{0}, {1}, {format.SegmentSize}, {format.SegmentSize + 1}, {3, 0, format.SegmentSize*2 + 5}, {100}} {
		var plain [][]byte
		var all []byte
		for _, n := range parts {
			p := randomBytes(t, n)
			plain = append(plain, p)
			all = append(all, p...)
		}
		if len(parts) == 1 && parts[0] == 100 { // a multipart object of one part
			plain = append(plain, nil)
		}
		stored, env := sealObject(t, lf, "bucket", "dir/key", plain...)
		got, err := decryptBytes(lf, "bucket", "dir/key", env, stored)
		if err != nil || !bytes.Equal(got, all) {
			t.Errorf("parts %v: %d bytes, err %v; want %d bytes", parts, len(got), err, len(all))
		}
	}
}

func TestDecryptRefuses(t *testing.T) {
	lf := testKeys(t)
	p1, p2, p3 := randomBytes(t, 70000), randomBytes(t, 10), randomBytes(t, 5)
	single, senv := sealObject(t, lf, "bucket", "key", p1)
	multi, menv := sealObject(t, lf, "bucket", "key", p1, p2, p3)
	part1 := format.PartEncryptedSize(int64(len(p1)))
	part2 := format.PartEncryptedSize(int64(len(p2)))
	swapped := append(append(append([]byte(nil), multi[part1:part1+part2]...), multi[:part1]...), multi[part1+part2:]...)
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }

	for _, c := range []struct {
		name, bucket, key, env string
		stored                 []byte
		want                   error
	}{
		{"other key name", "bucket", "key2", senv, single, format.ErrAuth},
		{"other bucket", "bucket2", "key", senv, single, keys.ErrInvalidCiphertext},
		{"flipped byte", "bucket", "key", senv, flip(single, 100), format.ErrAuth},
		{"truncated", "bucket", "key", senv, single[:len(single)-1], nil},
		{"extended", "bucket", "key", senv, append(bytes.Clone(single), 0), nil},
		{"no envelope", "bucket", "key", "", single, ErrNotEncrypted},
		{"bad envelope", "bucket", "key", "!" + senv, single, format.ErrMalformed},
		{"multipart other name", "bucket", "k", menv, multi, format.ErrAuth},
		{"multipart parts swapped", "bucket", "key", menv, swapped, format.ErrAuth},
		{"multipart flipped header", "bucket", "key", menv, flip(multi, int(part1)+5), nil},
		{"multipart cut in a header", "bucket", "key", menv, multi[:part1+20], format.ErrAuth},
		{"multipart cut in a part", "bucket", "key", menv, multi[:len(multi)-3], nil},
		{"multipart extended", "bucket", "key", menv, append(bytes.Clone(multi), make([]byte, 48)...), nil},
		{"multipart empty", "bucket", "key", menv, nil, format.ErrAuth},
	} {
		got, err := decryptBytes(lf, c.bucket, c.key, c.env, c.stored)
		if err == nil {
			t.Errorf("%s: decrypted %d bytes, want an error", c.name, len(got))
			continue
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
}

func TestParseMetadataFile(t *testing.T) {
	lf := testKeys(t)
	_, env := sealObject(t, lf, "bucket", "key", []byte("x"))
	for name, doc := range map[string]string{
		"aws s3api head-object": `{"AcceptRanges":"bytes","ContentLength":49,"ETag":"\"abc\"","Metadata":{"s3seal-env":"` + env + `","owner":"x"}}`,
		"mc stat --json":        `{"status":"success","name":"key","metadata":{"Content-Type":"x","X-Amz-Meta-S3seal-Env":"` + env + `"}}`,
		"header lists":          `{"X-Amz-Meta-S3seal-Env":["` + env + `"]}`,
		"curl -I":               "HTTP/1.1 200 OK\r\nContent-Length: 49\r\nx-amz-meta-s3seal-env: " + env + "\r\n\r\n",
		"the value alone":       "\n" + env + "\n",
		"with a context":        `{"Metadata":{"s3seal-env":"` + env + `","s3seal-ctx":"e30="}}`,
	} {
		md, err := ParseMetadataFile([]byte(doc))
		got := md.Envelope
		if err != nil || got != env {
			t.Errorf("%s: got %q, %v", name, got, err)
		}
	}
	for name, doc := range map[string]string{
		"no envelope":    `{"Metadata":{"owner":"x"}}`,
		"two envelopes":  `{"Metadata":{"s3seal-env":"` + env + `"},"x-amz-meta-s3seal-env":"other"}`,
		"not metadata":   "hello",
		"empty":          "",
		"number value":   `{"s3seal-env":5}`,
		"two-item list":  `{"s3seal-env":["a","b"]}`,
		"truncated JSON": `{"Metadata":{"s3seal-env":"` + env[:10],
	} {
		if got, err := ParseMetadataFile([]byte(doc)); err == nil {
			t.Errorf("%s: got %q, want an error", name, got)
		}
	}
}

// TestParseMetadataFileRefusesInvalidUTF8: a file with bytes that are not UTF-8 is refused
// with an error naming the first bad byte, whether the bad byte is in a value the parser would
// use, in a name, or elsewhere (the fuzz finding {"":{"s3seAl-env":"\xbd"}} among them).
func TestParseMetadataFileRefusesInvalidUTF8(t *testing.T) {
	lf := testKeys(t)
	_, env := sealObject(t, lf, "bucket", "key", []byte("x"))
	for name, c := range map[string]struct {
		doc    string
		offset int
	}{
		"fuzz finding":          {"{\"\":{\"s3seAl-env\":\"\xbd\"}}", 19},
		"in the envelope value": {`{"Metadata":{"s3seal-env":"` + env + "\xff\"}}", 27 + len(env)},
		"in a name":             {"{\"Metadata\":{\"s3seal-env\xc3\":\"" + env + "\"}}", 24},
		"in another member":     {"{\"owner\":\"\xe9\",\"s3seal-env\":\"" + env + "\"}", 10},
		"in a header line":      {"HTTP/1.1 200 OK\r\nX-Note: caf\xe9\r\nx-amz-meta-s3seal-env: " + env + "\r\n", 28},
		"truncated sequence":    {env + "\xe2\x82", len(env)},
	} {
		md, err := ParseMetadataFile([]byte(c.doc))
		if err == nil {
			t.Errorf("%s: got %+v, want an error", name, md)
			continue
		}
		if want := fmt.Sprintf("not valid UTF-8 text (first invalid byte at offset %d)", c.offset); !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q, want it to say %q", name, err, want)
		}
	}
	// Valid UTF-8 beyond ASCII elsewhere in the file is fine.
	md, err := ParseMetadataFile([]byte(`{"Metadata":{"owner":"café ✓","s3seal-env":"` + env + `"}}`))
	if err != nil || md.Envelope != env {
		t.Errorf("non-ASCII UTF-8: got %+v, %v", md, err)
	}
}

func TestWriteFileLeavesNothingOnFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	err := WriteFile(path, func(w io.Writer) error {
		_, _ = w.Write([]byte("partial plaintext"))
		return format.ErrAuth
	})
	if !errors.Is(err, format.ErrAuth) {
		t.Fatalf("WriteFile: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
	if err := WriteFile(path, func(w io.Writer) error { _, err := io.WriteString(w, "ok"); return err }); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	st, _ := os.Stat(path)
	if err != nil || string(b) != "ok" || st.Mode().Perm() != 0o600 {
		t.Fatalf("output %q (%v), mode %v", b, err, st.Mode())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 || strings.Contains(entries[0].Name(), "partial") {
		t.Fatalf("directory holds %v", entries)
	}
}

// TestDecryptClientContext: an SSE-KMS object whose data key carries the client's encryption
// context (x-amz-meta-s3seal-ctx) opens only with that context.
func TestDecryptClientContext(t *testing.T) {
	lf := testKeys(t)
	ctx := context.Background()
	// The data key's context as FORMAT.md 3 and 4 give it: the reserved keys plus the client's.
	kctx := map[string]string{"gateway": "s3seal", "bucket": "bucket", "project": "x"}
	used, dk, wrapped, err := lf.GenerateDataKeyID(ctx, "", kctx)
	if err != nil {
		t.Fatal(err)
	}
	ok, _ := format.NewObjectKey()
	envl, err := format.SealEnvelope(ok, dk, format.SealParams{Kind: format.KindSingle, Wrap: format.WrapProvider,
		KeyID: used, WrappedKey: wrapped, Bucket: "bucket", Object: "key"})
	if err != nil {
		t.Fatal(err)
	}
	plain := randomBytes(t, 1000)
	r, _ := format.NewEncryptReader(bytes.NewReader(plain), ok, int64(len(plain)), format.EncryptOptions{})
	stored, _ := io.ReadAll(r)
	md, err := ParseMetadataFile([]byte(`{"Metadata":{"s3seal-env":"` + envl.Encode() + `","s3seal-ctx":"eyJwcm9qZWN0IjoieCJ9"}}`))
	if err != nil || md.Context != "eyJwcm9qZWN0IjoieCJ9" {
		t.Fatalf("metadata %+v, %v", md, err)
	}
	in := DecryptInput{Bucket: "bucket", Key: "key", Envelope: md.Envelope, Context: md.Context,
		Stored: bytes.NewReader(stored), StoredSize: int64(len(stored))}
	var out bytes.Buffer
	if _, err := Decrypt(ctx, lf, in, &out); err != nil || !bytes.Equal(out.Bytes(), plain) {
		t.Fatalf("with the context: %v", err)
	}
	for name, c := range map[string]string{"no context": "", "another context": "eyJwcm9qZWN0IjoieSJ9", "not base64": "!!"} {
		in.Context, in.Stored = c, bytes.NewReader(stored)
		if _, err := Decrypt(ctx, lf, in, io.Discard); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

// TestDecryptRefusesReservedStoredContext: a stored context (x-amz-meta-s3seal-ctx) that names a
// reserved key is refused as altered metadata (format.ErrAuth, format.ReservedContextKeyError),
// both through Decrypt and through the SDK-metadata lookup rewrap uses, even when it repeats the
// reserved value so that the resulting KMS context would equal the real one (which the tools'
// old merge, where the reserved keys silently won, let through).
func TestDecryptRefusesReservedStoredContext(t *testing.T) {
	lf := testKeys(t)
	ctx := context.Background()
	plain := []byte("secret")
	stored, env := sealObject(t, lf, "bucket", "key", plain)
	in := DecryptInput{Bucket: "bucket", Key: "key", Envelope: env, Stored: bytes.NewReader(stored), StoredSize: int64(len(stored))}
	var out bytes.Buffer
	if _, err := Decrypt(ctx, lf, in, &out); err != nil || !bytes.Equal(out.Bytes(), plain) {
		t.Fatalf("without a stored context: %q, %v", out.Bytes(), err)
	}
	for _, js := range []string{`{"bucket":"bucket"}`, `{"gateway":"s3seal"}`, `{"Bucket":"bucket"}`, `{"project":"x","GATEWAY":"s3seal"}`} {
		v := base64.StdEncoding.EncodeToString([]byte(js))
		in.Context, in.Stored = v, bytes.NewReader(stored)
		out.Reset()
		_, err := Decrypt(ctx, lf, in, &out)
		var rk *format.ReservedContextKeyError
		if !errors.As(err, &rk) || !rk.Stored || !errors.Is(err, format.ErrAuth) || out.Len() != 0 {
			t.Errorf("Decrypt with stored context %s: %v (wrote %d bytes), want a stored ReservedContextKeyError", js, err, out.Len())
		}
		if _, err := storedContext(map[string]string{"S3seal-Ctx": v, "s3seal-env": env}); !errors.As(err, &rk) || !errors.Is(err, format.ErrAuth) {
			t.Errorf("storedContext of %s: %v, want a stored ReservedContextKeyError", js, err)
		}
	}
}
