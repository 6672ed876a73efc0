package tools

import (
	"strings"
	"testing"
)

// FuzzParseMetadataFile: any metadata file gives an envelope that occurs in it, or an error;
// never a panic.
func FuzzParseMetadataFile(f *testing.F) {
	f.Add([]byte(`{"Metadata":{"s3seal-env":"AQ=="}}`))
	f.Add([]byte("x-amz-meta-s3seal-env: abc\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := ParseMetadataFile(data)
		env := md.Envelope
		if err != nil {
			return
		}
		if env == "" && !strings.Contains(strings.ToLower(string(data)), metaEnvelope) {
			t.Fatalf("empty envelope from %q", data)
		}
		if env != "" && !strings.Contains(string(data), env) && !strings.Contains(string(data), `\`) {
			t.Fatalf("envelope %q does not occur in %q", env, data)
		}
	})
}

// FuzzParseS3URI: a parsed URI gives back its input.
func FuzzParseS3URI(f *testing.F) {
	f.Add("s3://bucket/key")
	f.Add("s3://bucket")
	f.Fuzz(func(t *testing.T, s string) {
		b, k, err := ParseS3URI(s)
		if err != nil {
			return
		}
		if !validBucket(b) {
			t.Fatalf("invalid bucket %q from %q", b, s)
		}
		if s != "s3://"+b+"/"+k && !(k == "" && s == "s3://"+b) {
			t.Fatalf("%q parsed as %q, %q", s, b, k)
		}
	})
}
