package format_test

import (
	"encoding/base64"
	"errors"
	"maps"
	"testing"

	"github.com/s3seal/s3seal/format"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestKMSContextReservedKeys pins the one rule of FORMAT.md 4: the context of a bucket's data
// key is {"gateway": "s3seal", "bucket": <bucket>} plus the extra context, and an extra context
// that names a reserved key (any letter case) is refused, never merged either way.
func TestKMSContextReservedKeys(t *testing.T) {
	for _, c := range []struct {
		name     string
		extra    map[string]string
		want     map[string]string // nil: refused
		reserved string
	}{
		{"no extra", nil, map[string]string{"gateway": "s3seal", "bucket": "b1"}, ""},
		{"empty extra", map[string]string{}, map[string]string{"gateway": "s3seal", "bucket": "b1"}, ""},
		{"client keys", map[string]string{"project": "x", "team": ""},
			map[string]string{"gateway": "s3seal", "bucket": "b1", "project": "x", "team": ""}, ""},
		{"bucket overridden", map[string]string{"bucket": "other"}, nil, "bucket"},
		{"bucket repeated", map[string]string{"bucket": "b1"}, nil, "bucket"},
		{"gateway overridden", map[string]string{"gateway": "x", "project": "x"}, nil, "gateway"},
		{"other case", map[string]string{"Bucket": "other"}, nil, "Bucket"},
		{"both", map[string]string{"gateway": "x", "bucket": "y"}, nil, "bucket"},
	} {
		got, err := format.KMSContext("b1", c.extra)
		if c.want != nil {
			if err != nil || !maps.Equal(got, c.want) {
				t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
			}
			continue
		}
		var rk *format.ReservedContextKeyError
		if got != nil || !errors.As(err, &rk) || rk.Key != c.reserved || rk.Stored || !errors.Is(err, format.ErrMalformed) {
			t.Errorf("%s: %v, %v; want a ReservedContextKeyError for %q", c.name, got, err, c.reserved)
		}
	}
	// The context is a new map each time: changing one does not change the next.
	a, _ := format.KMSContext("b1", map[string]string{"project": "x"})
	a["bucket"] = "other"
	if b, _ := format.KMSContext("b1", nil); b["bucket"] != "b1" || len(b) != 2 {
		t.Errorf("context changed by an earlier caller: %v", b)
	}
}

// TestParseClientContext: the client's x-amz-server-side-encryption-context must be base64 of
// a UTF-8 JSON object of strings naming no reserved key; every refusal wraps ErrMalformed.
func TestParseClientContext(t *testing.T) {
	got, err := format.ParseClientContext(b64(`{"project":"x","ü":"ö"}`))
	if want := map[string]string{"project": "x", "ü": "ö"}; err != nil || !maps.Equal(got, want) {
		t.Fatalf("good context: %v, %v", got, err)
	}
	for name, v := range map[string]string{
		"bucket":         b64(`{"bucket":"other"}`),
		"gateway":        b64(`{"project":"x","gateway":"s3seal"}`),
		"upper case":     b64(`{"BUCKET":"b1"}`),
		"not base64":     "{not base64}",
		"not JSON":       b64(`project=x`),
		"a list":         b64(`["project","x"]`),
		"null":           b64(`null`),
		"number value":   b64(`{"project":1}`),
		"nested":         b64(`{"project":{"a":"b"}}`),
		"trailing data":  b64(`{"project":"x"} {}`),
		"invalid UTF-8":  b64("{\"project\":\"\xbd\"}"),
		"invalid in key": b64("{\"\xff\":\"x\"}"),
	} {
		got, err := format.ParseClientContext(v)
		if err == nil || got != nil || !errors.Is(err, format.ErrMalformed) || errors.Is(err, format.ErrAuth) {
			t.Errorf("%s: %v, %v; want an ErrMalformed error", name, got, err)
		}
	}
	var rk *format.ReservedContextKeyError
	if _, err := format.ParseClientContext(b64(`{"bucket":"b1"}`)); !errors.As(err, &rk) || rk.Key != "bucket" || rk.Stored {
		t.Errorf("reserved key: %v, want a client ReservedContextKeyError for bucket", err)
	}
}

// TestDecodeStoredContext: x-amz-meta-s3seal-ctx as the gateway writes it decodes back; "" is no
// context; a stored context naming a reserved key is an authentication failure (the gateway
// never writes one: the metadata was altered), one that does not decode is malformed.
func TestDecodeStoredContext(t *testing.T) {
	extra := map[string]string{"project": "x", "team": "a b"}
	v := format.EncodeStoredContext(extra)
	if got, err := format.DecodeStoredContext(v); err != nil || !maps.Equal(got, extra) {
		t.Fatalf("round trip of %q: %v, %v", v, got, err)
	}
	if v := format.EncodeStoredContext(nil); v != "" {
		t.Errorf("empty context stored as %q", v)
	}
	if got, err := format.DecodeStoredContext(""); got != nil || err != nil {
		t.Errorf("no context: %v, %v", got, err)
	}
	for name, v := range map[string]string{
		"bucket":          b64(`{"bucket":"b1"}`),
		"gateway":         b64(`{"gateway":"s3seal","project":"x"}`),
		"mixed case":      b64(`{"Gateway":"s3seal"}`),
		"bucket, escaped": b64(`{"buck\u0065t":"other"}`),
	} {
		var rk *format.ReservedContextKeyError
		_, err := format.DecodeStoredContext(v)
		if !errors.As(err, &rk) || !rk.Stored || !errors.Is(err, format.ErrAuth) {
			t.Errorf("%s: %v, want a stored ReservedContextKeyError (ErrAuth)", name, err)
		}
	}
	for name, v := range map[string]string{"not base64": "!!", "not an object": b64(`"x"`), "invalid UTF-8": b64("{\"a\":\"\xc3\"}")} {
		if _, err := format.DecodeStoredContext(v); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzDecodeStoredContext: whatever the backend stores as x-amz-meta-s3seal-ctx either is
// refused or decodes to a context that names no reserved key, that KMSContext accepts without
// losing the bucket binding, and that encodes back to a value decoding to the same context.
func FuzzDecodeStoredContext(f *testing.F) {
	f.Add(b64(`{"project":"x"}`))
	f.Add(b64(`{"bucket":"b1"}`))
	f.Add(b64(`{"buck\u0065t":"b1"}`))
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		m, err := format.DecodeStoredContext(v)
		if err != nil {
			if m != nil {
				t.Fatalf("%q: context %v with error %v", v, m, err)
			}
			return
		}
		c, err := format.KMSContext("b1", m)
		if err != nil || c["bucket"] != "b1" || c["gateway"] != "s3seal" || len(c) != len(m)+2 {
			t.Fatalf("%q: decoded %v, KMS context %v, %v", v, m, c, err)
		}
		back, err := format.DecodeStoredContext(format.EncodeStoredContext(m))
		if err != nil || !maps.Equal(back, m) {
			t.Fatalf("%q: %v encodes back as %v, %v", v, m, back, err)
		}
	})
}
