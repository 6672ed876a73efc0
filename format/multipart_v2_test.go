package format_test

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// v2Object is a format-2 multipart object written through an envelope, as the gateway does.
type v2Object struct {
	key     *format.ObjectKey // opened from the envelope (bound to format 2)
	parts   [][]byte          // stored bytes of each part, header first
	numbers []int
	plain   []byte
	md5s    [][]byte
}

func newV2Object(t *testing.T, numbers []int, sizes []int64) v2Object {
	t.Helper()
	fresh := format.AsVersion(newKey(t), format.Version2) // new keys make format 3
	kek := randomBytes(t, 32)
	env, err := format.SealEnvelope(fresh, kek, format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapProvider, KeyID: "k", WrappedKey: []byte{1}, Bucket: "b", Object: "o"})
	if err != nil || env.Version() != format.Version2 {
		t.Fatalf("envelope of version %d: %v", env.Version(), err)
	}
	k, err := env.Open(kek, "b", "o")
	if err != nil {
		t.Fatal(err)
	}
	o := v2Object{key: k, numbers: numbers}
	for i, n := range numbers {
		p := randomBytes(t, sizes[i])
		r, err := k.NewPartEncryptReader(bytes.NewReader(p), n, sizes[i], format.EncryptOptions{ComputeMD5: true})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		o.parts = append(o.parts, stored)
		o.plain = append(o.plain, p...)
		o.md5s = append(o.md5s, r.MD5())
	}
	return o
}

// layoutOf checks every part as a reader does (header, trailer) and returns the layout with
// the parts' IDs.
func layoutOf(t *testing.T, k *format.ObjectKey, parts [][]byte) (format.Layout, error) {
	t.Helper()
	var numbers []int
	var sizes []int64
	for _, p := range parts {
		n, _, err := format.ParsePartHeader(p[:48])
		if err != nil {
			return nil, err
		}
		s, err := k.PartStream(p[:48], n)
		if err != nil {
			return nil, err
		}
		if _, err := s.OpenTrailer(p[len(p)-32:]); err != nil {
			return nil, err
		}
		numbers = append(numbers, n)
		sizes = append(sizes, int64(len(p)))
	}
	l, err := format.NewLayout(numbers, sizes)
	if err != nil {
		return nil, err
	}
	for i := range l {
		copy(l[i].ID[:], parts[i][16:48])
	}
	return l, nil
}

func TestV2PartsAndManifest(t *testing.T) {
	o := newV2Object(t, []int{1, 2, 3}, []int64{2*S + 5, 2*S + 5, 7})
	l, err := layoutOf(t, o.key, o.parts)
	if err != nil {
		t.Fatal(err)
	}
	all := md5.Sum(bytes.Join(o.md5s, nil))
	v, err := o.key.SealManifest(l, all[:])
	if err != nil {
		t.Fatal(err)
	}
	m, err := o.key.OpenManifest(v)
	if err != nil || m.Parts != 3 || !bytes.Equal(m.ETagMD5, all[:]) {
		t.Fatalf("manifest %+v: %v", m, err)
	}
	if err := m.Check(l); err != nil {
		t.Fatal(err)
	}
	numbers, sizes := m.Layout()
	if len(numbers) != 3 || numbers[2] != 3 || sizes[0] != int64(len(o.parts[0])) || sizes[2] != int64(len(o.parts[2])) {
		t.Fatalf("manifest layout %v %v", numbers, sizes)
	}

	// The attacks of the hostile-backend review, on the stored parts.
	retry := newV2ObjectPart(t, o.key, 2, 2*S+5)
	attacks := map[string][][]byte{
		"first dropped":   {o.parts[1], o.parts[2]},
		"middle dropped":  {o.parts[0], o.parts[2]},
		"last dropped":    {o.parts[0], o.parts[1]},
		"older retry":     {o.parts[0], retry, o.parts[2]},
		"part duplicated": {o.parts[0], o.parts[1], o.parts[1], o.parts[2]},
		"reordered":       {o.parts[1], o.parts[0], o.parts[2]},
	}
	for name, parts := range attacks {
		l, err := layoutOf(t, o.key, parts)
		if err == nil {
			err = m.Check(l)
		}
		if !errors.Is(err, format.ErrAuth) && !errors.Is(err, format.ErrMalformed) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}

	// A manifest of another object, or altered, does not open.
	other := newV2Object(t, []int{1}, []int64{3})
	if _, err := other.key.OpenManifest(v); !errors.Is(err, format.ErrAuth) {
		t.Errorf("manifest under another key: %v", err)
	}
	b := []byte(v)
	b[20] ^= 1
	if _, err := o.key.OpenManifest(string(b)); err == nil {
		t.Error("altered manifest opened")
	}
}

func newV2ObjectPart(t *testing.T, k *format.ObjectKey, n int, size int64) []byte {
	r, err := k.NewPartEncryptReader(bytes.NewReader(randomBytes(t, size)), n, size, format.EncryptOptions{ComputeMD5: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestV2NoDowngrade: a key opened from a format-2 envelope refuses format-1 part headers and
// the reverse; an envelope's version byte changed does not open.
func TestV2NoDowngrade(t *testing.T) {
	o := newV2Object(t, []int{1}, []int64{10})
	hdr := bytes.Clone(o.parts[0][:48])
	hdr[0] = format.Version
	if _, err := o.key.PartStream(hdr, 1); !errors.Is(err, format.ErrAuth) {
		t.Errorf("format-1 header under a format-2 key: %v", err)
	}
	kek := randomBytes(t, 32)
	env, _ := format.SealEnvelope(format.AsVersion(newKey(t), format.Version2), kek, format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapCustomerKey, Bucket: "b", Object: "o"})
	raw := []byte(env.Encode())
	dec, _ := format.DecodeEnvelope(string(raw))
	if _, err := dec.Open(kek, "b", "o"); err != nil {
		t.Fatal(err)
	}
	// Flip the version byte 2 -> 1 in the binary envelope.
	bin := mustB64(t, env.Encode())
	bin[0] = format.Version
	down, err := format.DecodeEnvelope(b64bytes(bin))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := down.Open(kek, "b", "o"); !errors.Is(err, format.ErrAuth) {
		t.Errorf("envelope downgraded to format 1 opened: %v", err)
	}
	// A format-1 key refuses a format-2 part.
	k1, _ := format.NewObjectKeyOfVersion(bytes.NewReader(randomBytes(t, 32)), 1)
	if _, err := k1.NewPartEncryptReader(bytes.NewReader(nil), 1, 0, format.EncryptOptions{}); !errors.Is(err, format.ErrVersion) {
		t.Errorf("format-2 part under a format-1 key: %v", err)
	}
}

func TestUploadIDV2(t *testing.T) {
	kek := randomBytes(t, 32)
	env, _ := format.SealEnvelope(format.AsVersion(newKey(t), format.Version2), kek, format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapProvider, KeyID: "arn:x", WrappedKey: randomBytes(t, 96), Bucket: "b", Object: "o"})
	id := format.UploadID{Backend: "Zm9v.bar-baz", Envelope: env, Context: "eyJhIjoiYiJ9"}.String()
	u, err := format.ParseUploadID(id)
	if err != nil || u.Backend != "Zm9v.bar-baz" || u.Context != "eyJhIjoiYiJ9" || u.Envelope.Encode() != env.Encode() {
		t.Fatalf("round trip: %+v %v", u, err)
	}
	if _, err := u.Envelope.Open(kek, "b", "o"); err != nil {
		t.Fatal(err)
	}
	v1 := format.EncodeUploadID("backend", make([]byte, 32))
	if u, err := format.ParseUploadID(v1); !errors.Is(err, format.ErrVersion) || u.Backend != "backend" {
		t.Errorf("format-1 id: %+v %v", u, err)
	}
	for _, bad := range []string{"", "plain-backend-id", id[:len(id)-3], id + "x", ".s2AAAA", "x.s2!!"} {
		if _, err := format.ParseUploadID(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func mustB64(t *testing.T, s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64bytes(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestLayoutOfHeaders(t *testing.T) {
	o := newV2Object(t, []int{2, 5}, []int64{S + 1, 9})
	l, err := format.LayoutOfHeaders([][]byte{o.parts[0][:48], o.parts[1][:48]})
	if err != nil || len(l) != 2 || l[1].Number != 5 || l[1].StoredOffset != int64(len(o.parts[0])) || l[1].StoredSize != int64(len(o.parts[1])) ||
		!bytes.Equal(l[0].ID[:], o.parts[0][16:48]) || !bytes.Equal(l[1].ID[:], o.parts[1][16:48]) {
		t.Fatalf("layout %+v: %v", l, err)
	}
	if _, err := format.LayoutOfHeaders([][]byte{o.parts[1][:48], o.parts[0][:48]}); !errors.Is(err, format.ErrMalformed) {
		t.Errorf("decreasing part numbers: %v", err)
	}
}
