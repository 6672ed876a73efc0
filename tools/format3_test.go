package tools

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/format"
)

// onlyReader hides every method of a reader but Read (a pipe, not a file).
type onlyReader struct{ io.Reader }

// differentAt answers ReadAt from other bytes than the stream (a backend that changed the
// object between requests).
type differentAt struct{ b []byte }

func (d differentAt) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(d.b).ReadAt(p, off)
}

// TestDecryptFormat3: a format-3 multipart object (FORMAT.md 3.6) decrypts from a file (its
// tail read first), and every rearrangement of its parts or tail is refused with ErrAuth before
// a byte is written.
func TestDecryptFormat3(t *testing.T) {
	lf := testKeys(t)
	p1, p2, p3 := randomBytes(t, 2*format.SegmentSize+3), randomBytes(t, 2*format.SegmentSize+3), randomBytes(t, 7)
	stored, env := sealObject(t, lf, "bucket", "key", p1, p2, p3)
	all := bytes.Join([][]byte{p1, p2, p3}, nil)
	if got, err := decryptBytes(lf, "bucket", "key", env, stored); err != nil || !bytes.Equal(got, all) {
		t.Fatalf("the object: %d bytes, %v", len(got), err)
	}
	e, _ := format.DecodeEnvelope(env)
	if e.Version() != format.Version3 {
		t.Fatalf("envelope of version %d", e.Version())
	}
	size := func(p []byte) int { return int(format.PartEncryptedSize(int64(len(p)))) }
	a, b := size(p1), size(p2)
	part := [][]byte{stored[:a], stored[a : a+b], stored[a+b : a+b+size(p3)]}
	tail := stored[a+b+size(p3):]
	// A second upload of part 3 (the middle one: numbers 1, 3, 5), same size, other salt.
	ek, err := lf.Decrypt(context.Background(), e.KeyID, e.WrappedKey, format.EncryptionContext("bucket"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := e.Open(ek, "bucket", "key")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := k.NewPartEncryptReader(bytes.NewReader(p2), 3, int64(len(p2)), format.EncryptOptions{ComputeMD5: true})
	retry, _ := io.ReadAll(r)
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	footer := bytes.Clone(stored)
	binary.BigEndian.PutUint32(footer[len(footer)-12:], uint32(len(tail)-12+16))
	flipTail := bytes.Clone(stored)
	flipTail[len(stored)-len(tail)+20] ^= 1
	other, _ := sealObject(t, lf, "bucket", "key", p1, p2, p3)
	for name, c := range map[string][]byte{
		"middle part dropped":    join(part[0], part[2], tail),
		"parts swapped":          join(part[1], part[0], part[2], tail),
		"retried part":           join(part[0], retry, part[2], tail),
		"part duplicated":        join(part[0], part[1], part[1], part[2], tail),
		"tail dropped":           join(part...),
		"tail altered":           flipTail,
		"footer length lies":     footer,
		"tail of another object": join(part[0], part[1], part[2], other[len(other)-len(tail):]),
		"a byte appended":        append(bytes.Clone(stored), 0),
		"a byte cut":             stored[:len(stored)-1],
		"a byte before the tail": join(part[0], part[1], part[2], []byte{0}, tail),
	} {
		var out bytes.Buffer
		_, err := Decrypt(context.Background(), lf, DecryptInput{Bucket: "bucket", Key: "key", Envelope: env,
			Stored: bytes.NewReader(c), StoredSize: int64(len(c))}, &out)
		if !errors.Is(err, format.ErrAuth) || out.Len() != 0 {
			t.Errorf("%s: %v (%d bytes written), want ErrAuth and nothing written", name, err, out.Len())
		}
	}
	// The stream and the random reads must be of the same object.
	var out bytes.Buffer
	_, err = Decrypt(context.Background(), lf, DecryptInput{Bucket: "bucket", Key: "key", Envelope: env,
		Stored: bytes.NewReader(join(part[0], retry, part[2], tail)), StoredSize: int64(len(stored)), At: differentAt{stored}}, &out)
	if !errors.Is(err, format.ErrAuth) || out.Len() > len(p1) {
		t.Errorf("a stream that differs from the checked object: %v (%d bytes written)", err, out.Len())
	}
	out.Reset()
	_, err = Decrypt(context.Background(), lf, DecryptInput{Bucket: "bucket", Key: "key", Envelope: env,
		Stored: bytes.NewReader(stored[:len(stored)-len(tail)]), StoredSize: int64(len(stored)), At: differentAt{stored}}, &out)
	if !errors.Is(err, format.ErrAuth) {
		t.Errorf("a stream without the tail the random reads found: %v", err)
	}
	// Without random access, or without the size, a format-3 object cannot be read.
	for name, in := range map[string]DecryptInput{
		"a pipe":       {Stored: onlyReader{bytes.NewReader(stored)}, StoredSize: int64(len(stored))},
		"no size":      {Stored: bytes.NewReader(stored), StoredSize: -1},
		"a pipe, onto": {Stored: onlyReader{bytes.NewReader(stored)}, StoredSize: int64(len(stored)), At: bytes.NewReader(stored)},
	} {
		in.Bucket, in.Key, in.Envelope = "bucket", "key", env
		out.Reset()
		_, err := Decrypt(context.Background(), lf, in, &out)
		if name == "a pipe, onto" {
			if err != nil || !bytes.Equal(out.Bytes(), all) {
				t.Errorf("%s: %v", name, err)
			}
		} else if err == nil || out.Len() != 0 {
			t.Errorf("%s: %v (%d bytes)", name, err, out.Len())
		}
	}
	// Manifest metadata is not what a format-3 object is read by (it has none).
	out.Reset()
	if _, err := Decrypt(context.Background(), lf, DecryptInput{Bucket: "bucket", Key: "key", Envelope: env, Manifest: "AAAA",
		Stored: bytes.NewReader(stored), StoredSize: int64(len(stored))}, &out); err != nil || !bytes.Equal(out.Bytes(), all) {
		t.Errorf("with manifest metadata: %v", err)
	}
}

// TestFormat3BackendDecryptAndRewrap: a format-3 object in the backend (as one backend part, as
// after a copy) is recovered by DecryptObject (the tail and headers by ranged GETs), rewrapped
// part by part (the tail goes with the last part) and whole, and its stored bytes never change.
func TestFormat3BackendDecryptAndRewrap(t *testing.T) {
	const bucket = "tools-v3"
	c := embeddedBackend(t, bucket)
	lf := testKeys(t)
	ctx := context.Background()
	p1, p2 := randomBytes(t, 3*format.SegmentSize+1), randomBytes(t, 99)
	for _, key := range []string{"v3/whole", "v3/parts"} {
		stored, env := sealObject(t, lf, bucket, key, p1, p2)
		put(t, c, bucket, key, stored, map[string]string{"s3seal-env": env, "owner": "x"})
	}
	// A format-3 object whose tail is longer than one end read (250 runs: parts of 0 and 1 byte).
	var many [][]byte
	var manyPlain []byte
	for i := range 250 {
		p := randomBytes(t, i%2)
		many = append(many, p)
		manyPlain = append(manyPlain, p...)
	}
	longStored, longEnv := sealObject(t, lf, bucket, "v3/long", many...)
	put(t, c, bucket, "v3/long", longStored, map[string]string{"s3seal-env": longEnv})
	want := map[string][]byte{"v3/whole": append(bytes.Clone(p1), p2...), "v3/parts": append(bytes.Clone(p1), p2...), "v3/long": manyPlain}
	before := map[string][]byte{}
	for key, plain := range want {
		before[key], _ = get(t, c, bucket, key)
		if got := recoverObject(t, c, lf, bucket, key); !bytes.Equal(got, plain) {
			t.Fatalf("%s: recovered %d bytes, want %d", key, len(got), len(plain))
		}
	}
	if err := lf.AddKey("k2"); err != nil {
		t.Fatal(err)
	}
	// Part by part (a copy threshold of 1 byte): ranges found from the part headers and the
	// tail's footer.
	s, err := Rewrap(ctx, c, RewrapOptions{RunOptions: RunOptions{Bucket: bucket, Prefix: "v3/parts"}, From: lf, To: lf, ToKey: "k2", CopyThreshold: 1})
	if err != nil || s.Count(Done) != 1 {
		t.Fatalf("rewrap part by part: %v, %v", s, err)
	}
	s, err = Rewrap(ctx, c, RewrapOptions{RunOptions: RunOptions{Bucket: bucket, Prefix: "v3/"}, From: lf, To: lf, ToKey: "k2"})
	if err != nil || s.Count(Done) != 2 || s.Count(Skipped) != 1 {
		t.Fatalf("rewrap: %v, %v", s, err)
	}
	for key, plain := range want {
		b, o := get(t, c, bucket, key)
		if !bytes.Equal(b, before[key]) {
			t.Errorf("%s: stored bytes changed by the rewrap", key)
		}
		e, err := format.DecodeEnvelope(envelopeOf(o.Metadata))
		if err != nil || e.Version() != format.Version3 || e.KeyID != "k2" {
			t.Errorf("%s: envelope after rewrap %+v, %v", key, e, err)
		}
		if got := recoverObject(t, c, lf, bucket, key); !bytes.Equal(got, plain) {
			t.Errorf("%s after rewrap: recovered %d bytes, want %d", key, len(got), len(plain))
		}
	}
	// An object whose headers do not end where the tail starts is not copied part by part (nor
	// read).
	stored, env := sealObject(t, lf, bucket, "v3/bad", p1, p2)
	tl := int(binary.BigEndian.Uint32(stored[len(stored)-12:])) + 12
	bad := append(append(bytes.Clone(stored[:len(stored)-tl]), 0), stored[len(stored)-tl:]...)
	put(t, c, bucket, "v3/bad", bad, map[string]string{"s3seal-env": env})
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("v3/bad")})
	if err != nil {
		t.Fatal(err)
	}
	mc := metaCopy{bucket: bucket, key: "v3/bad", srcKey: "v3/bad", srcETag: aws.ToString(head.ETag), size: int64(len(bad)), kind: format.KindMultipart, version: format.Version3}
	if _, err := mc.headerRanges(ctx, c); err == nil {
		t.Errorf("headerRanges of an object with a byte before its tail: %v", err)
	}
	if _, err := DecryptObject(ctx, c, lf, bucket, "v3/bad", io.Discard); !errors.Is(err, format.ErrAuth) {
		t.Errorf("DecryptObject of an object with a byte before its tail: %v", err)
	}
}
