package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/keys"
)

// TestDecryptFileChecksum: decrypt -file/-metadata reads the checksum algorithm of a
// single-part object (x-amz-meta-s3seal-ck) from the metadata file; without it the object does
// not decrypt.
func TestDecryptFileChecksum(t *testing.T) {
	dir := t.TempDir()
	lf, err := keys.CreateLocalFile(filepath.Join(dir, "keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	ctx := context.Background()
	used, dk, wrapped, err := lf.GenerateDataKeyID(ctx, "", format.EncryptionContext("bucket"))
	if err != nil {
		t.Fatal(err)
	}
	ok, err := format.NewObjectKey()
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Zero()
	env, err := format.SealEnvelope(ok, dk, format.SealParams{Kind: format.KindSingle, Wrap: format.WrapProvider,
		KeyID: used, WrappedKey: wrapped, Bucket: "bucket", Object: "key"})
	if err != nil {
		t.Fatal(err)
	}
	plain := bytes.Repeat([]byte("checksummed "), 9000)
	r, err := format.NewEncryptReader(bytes.NewReader(plain), ok, int64(len(plain)), format.EncryptOptions{Checksum: format.ChecksumCRC64NVME})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	file, meta := filepath.Join(dir, "stored"), filepath.Join(dir, "meta.json")
	if err := os.WriteFile(file, stored, 0o600); err != nil {
		t.Fatal(err)
	}
	for ck, want := range map[string]bool{`,"s3seal-ck":"CRC64NVME"`: true, "": false, `,"s3seal-ck":"XXHASH64"`: false} {
		doc := `{"Metadata":{"s3seal-env":"` + env.Encode() + `"` + ck + `}}`
		if err := os.WriteFile(meta, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		n, err := decryptFile(ctx, lf, file, meta, "bucket", "key", &out)
		if want && (err != nil || n != int64(len(plain)) || !bytes.Equal(out.Bytes(), plain)) {
			t.Errorf("metadata %s: %d bytes, %v", doc, n, err)
		}
		if !want && (err == nil || out.Len() != 0) {
			t.Errorf("metadata %s: wrote %d bytes, %v; want an error and nothing written", doc, out.Len(), err)
		}
	}
}
