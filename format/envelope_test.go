package format_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/textproto"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/format"
)

func sealTestEnvelope(t *testing.T, ok *format.ObjectKey, dk []byte) (*format.Envelope, format.SealParams) {
	p := format.SealParams{Kind: format.KindSingle, Wrap: format.WrapProvider, KeyID: "alias/s3seal",
		WrappedKey: bytes.Repeat([]byte{0xab}, 96), Bucket: "bucket", Object: "dir/object.txt"}
	e, err := format.SealEnvelope(ok, dk, p)
	if err != nil {
		t.Fatal(err)
	}
	return e, p
}

func sameKey(a, b *format.ObjectKey) bool {
	x, _ := a.UploadPublicKey()
	y, _ := b.UploadPublicKey()
	return bytes.Equal(x, y)
}

func TestEnvelopeRoundTrip(t *testing.T) {
	ok, dk := newKey(t), randomBytes(t, 32)
	e, p := sealTestEnvelope(t, ok, dk)
	enc := e.Encode()
	d, err := format.DecodeEnvelope(enc)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != p.Kind || d.Wrap != p.Wrap || d.KeyID != p.KeyID || !bytes.Equal(d.WrappedKey, p.WrappedKey) || d.Encode() != enc {
		t.Fatalf("decoded %+v", d)
	}
	got, err := d.Open(dk, p.Bucket, p.Object)
	if err != nil || !sameKey(got, ok) {
		t.Fatalf("Open: %v", err)
	}
	// A fresh envelope salt on every seal.
	e2, _ := sealTestEnvelope(t, ok, dk)
	if e2.Encode() == enc {
		t.Fatal("two seals of the same key produced the same envelope")
	}
	// Size claim of docs/FORMAT.md: 4+2+k+2+w+32+32+48 bytes.
	raw, _ := base64.StdEncoding.DecodeString(enc)
	if len(raw) != 4+2+len(p.KeyID)+2+len(p.WrappedKey)+32+32+48 {
		t.Fatalf("envelope is %d bytes", len(raw))
	}
	if textproto.CanonicalMIMEHeaderKey("x-amz-meta-s3seal-env") != format.MetaEnvelope ||
		!strings.HasPrefix(format.MetaEnvelope, format.MetaPrefix) {
		t.Fatal("metadata names are not canonical")
	}
	ctx := format.EncryptionContext("b1")
	if len(ctx) != 2 || ctx["gateway"] != "s3seal" || ctx["bucket"] != "b1" {
		t.Fatalf("EncryptionContext: %v", ctx)
	}
}

func TestEnvelopeCustomerKey(t *testing.T) {
	ok, key := newKey(t), randomBytes(t, 32)
	e, err := format.SealEnvelope(ok, key, format.SealParams{Kind: format.KindMultipart, Wrap: format.WrapCustomerKey, Bucket: "b", Object: "o"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := format.DecodeEnvelope(e.Encode())
	if err != nil || d.Kind != format.KindMultipart || d.Wrap != format.WrapCustomerKey {
		t.Fatalf("decode: %+v, %v", d, err)
	}
	if got, err := d.Open(key, "b", "o"); err != nil || !sameKey(got, ok) {
		t.Fatalf("open: %v", err)
	}
	if _, err := d.Open(randomBytes(t, 32), "b", "o"); !errors.Is(err, format.ErrAuth) {
		t.Fatalf("other customer key: %v", err)
	}
	_, err = format.SealEnvelope(ok, key, format.SealParams{Kind: format.KindSingle, Wrap: format.WrapCustomerKey, KeyID: "x"})
	if !errors.Is(err, format.ErrMalformed) {
		t.Fatalf("customer-key envelope with key id: %v", err)
	}
}

func TestEnvelopeWrongContext(t *testing.T) {
	ok, dk := newKey(t), randomBytes(t, 32)
	e, p := sealTestEnvelope(t, ok, dk)
	cases := []struct {
		name           string
		kek            []byte
		bucket, object string
	}{
		{"other DK", randomBytes(t, 32), p.Bucket, p.Object},
		{"short DK", dk[:16], p.Bucket, p.Object},
		{"other bucket", dk, "bucket2", p.Object},
		{"other object", dk, p.Bucket, p.Object + "2"},
		{"boundary moved", dk, p.Bucket + "d", "ir/object.txt"},
		{"names swapped", dk, p.Object, p.Bucket},
	}
	for _, c := range cases {
		if k, err := e.Open(c.kek, c.bucket, c.object); !errors.Is(err, format.ErrAuth) || k != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// Public fields are authenticated too.
	mods := map[string]func(*format.Envelope){
		"kind":        func(e *format.Envelope) { e.Kind = format.KindMultipart },
		"key id":      func(e *format.Envelope) { e.KeyID += "x" },
		"wrapped key": func(e *format.Envelope) { e.WrappedKey = append(bytes.Clone(e.WrappedKey), 0) },
	}
	for name, mod := range mods {
		d, _ := format.DecodeEnvelope(e.Encode())
		mod(d)
		if _, err := d.Open(dk, p.Bucket, p.Object); !errors.Is(err, format.ErrAuth) {
			t.Errorf("%s modified: %v", name, err)
		}
	}
}

func TestEnvelopeEveryByteAuthenticated(t *testing.T) {
	ok, dk := newKey(t), randomBytes(t, 32)
	e, p := sealTestEnvelope(t, ok, dk)
	raw, _ := base64.StdEncoding.DecodeString(e.Encode())
	for i := range raw {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(raw)
			bad[i] ^= bit
			d, err := format.DecodeEnvelope(base64.StdEncoding.EncodeToString(bad))
			if err == nil {
				_, err = d.Open(dk, p.Bucket, p.Object)
			}
			if !errors.Is(err, format.ErrAuth) && !errors.Is(err, format.ErrMalformed) && !errors.Is(err, format.ErrVersion) {
				t.Fatalf("byte %d bit %#x flipped: %v", i, bit, err)
			}
			// Fields before the variable parts have a defined class.
			want := map[int]error{0: format.ErrVersion, 3: format.ErrVersion}[i]
			if want != nil && !errors.Is(err, want) {
				t.Fatalf("byte %d flipped: %v, want %v", i, err, want)
			}
		}
	}
}

func TestDecodeEnvelopeMalformed(t *testing.T) {
	ok, dk := newKey(t), randomBytes(t, 32)
	e, _ := sealTestEnvelope(t, ok, dk)
	raw, _ := base64.StdEncoding.DecodeString(e.Encode())
	b64 := base64.StdEncoding.EncodeToString
	with := func(i int, v byte) string { b := bytes.Clone(raw); b[i] = v; return b64(b) }
	cases := map[string]struct {
		in   string
		want error
	}{
		"empty":                    {"", format.ErrMalformed},
		"not base64":               {"!!!!", format.ErrMalformed},
		"unpadded":                 {strings.TrimRight(b64(raw[:len(raw)-1]), "="), format.ErrMalformed},
		"url alphabet":             {base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 150)), format.ErrMalformed},
		"short":                    {b64(raw[:len(raw)-1]), format.ErrMalformed},
		"line break":               {b64(raw)[:8] + "\r\n" + b64(raw)[8:], format.ErrMalformed},
		"trailing byte":            {b64(append(bytes.Clone(raw), 0)), format.ErrMalformed},
		"key id too long":          {with(5, 0xff), format.ErrMalformed},
		"version 2":                {with(0, 2), format.ErrVersion},
		"kind 2":                   {with(1, 2), format.ErrVersion},
		"wrap 0":                   {with(2, 0), format.ErrVersion},
		"wrap 3":                   {with(2, 3), format.ErrVersion},
		"seg_shift 20":             {with(3, 20), format.ErrVersion},
		"customer key with key id": {with(2, byte(format.WrapCustomerKey)), format.ErrMalformed},
	}
	for name, c := range cases {
		if _, err := format.DecodeEnvelope(c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := format.SealEnvelope(ok, dk[:31], format.SealParams{Wrap: format.WrapProvider}); !errors.Is(err, format.ErrMalformed) {
		t.Errorf("short DK: %v", err)
	}
	if _, err := format.SealEnvelope(ok, dk, format.SealParams{Wrap: 9}); !errors.Is(err, format.ErrVersion) {
		t.Errorf("wrap 9: %v", err)
	}
	if _, err := format.SealEnvelope(ok, dk, format.SealParams{Wrap: format.WrapProvider, KeyID: strings.Repeat("k", 65536)}); !errors.Is(err, format.ErrMalformed) {
		t.Errorf("long key id: %v", err)
	}
}

func TestUploadID(t *testing.T) {
	k := newKey(t)
	upub, _ := k.UploadPublicKey()
	for _, backend := range []string{"x", "2~abcDEF.s1-_", strings.Repeat("m", 200)} {
		id := format.EncodeUploadID(backend, upub)
		if len(id) != len(backend)+46 {
			t.Fatalf("suffix of %d characters", len(id)-len(backend))
		}
		b, u, err := format.DecodeUploadID(id)
		if err != nil || b != backend || !bytes.Equal(u, upub) {
			t.Fatalf("DecodeUploadID(%q) = %q, %x, %v", id, b, u, err)
		}
	}
	good := format.EncodeUploadID("abc", upub)
	bad := []string{
		"", "abc", good[3:], // no backend id
		good[:len(good)-1], good + "A",
		strings.Replace(good, ".s1", ".s2", 1),
		good[:len(good)-43] + strings.Repeat("=", 43),
		good[:len(good)-1] + "B", // non-canonical final character (unused low bits set)
	}
	for _, id := range bad {
		if _, _, err := format.DecodeUploadID(id); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("DecodeUploadID(%q): %v", id, err)
		}
	}
}

func TestObjectKeyZero(t *testing.T) {
	k := newKey(t)
	before, _ := k.UploadPublicKey()
	k.Zero()
	after, _ := k.UploadPublicKey()
	zero, _ := format.NewObjectKeyFrom(bytes.NewReader(make([]byte, 32)))
	z, _ := zero.UploadPublicKey()
	if bytes.Equal(before, after) || !bytes.Equal(after, z) {
		t.Fatal("Zero did not clear the key")
	}
	var nilKey *format.ObjectKey
	nilKey.Zero()
}
