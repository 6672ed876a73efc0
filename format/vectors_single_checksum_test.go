package format_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/specdecode"
)

// TestVectorsSingleChecksum re-encrypts every single-part checksum vector with package format
// (EncryptOptions.Checksum of the algorithm x-amz-meta-s3seal-ck names) and compares with the
// recorded outputs, then reads it with format (SingleStreamOf) and with the independent
// decoder, both of which return the checksum sealed in the trailer; read as another algorithm,
// or as none, it does not decrypt.
func TestVectorsSingleChecksum(t *testing.T) {
	vs := loadVectorFile(t).SingleChecksum
	if len(vs) < 5 {
		t.Fatalf("%d single-part checksum vectors", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			a, err := format.ParseChecksumMeta(v.ChecksumAlgorithm)
			if err != nil || int(a) != v.ChecksumNumber || a == format.ChecksumNone {
				t.Fatalf("x-amz-meta-s3seal-ck %q: algorithm %d, %v; vector number %d", v.ChecksumAlgorithm, a, err, v.ChecksumNumber)
			}
			k := checkEnvelopeVector(t, v.EnvelopeVector)
			plain := format.VectorPlain(0, v.PlainSize)
			r, err := format.NewEncryptReader(bytes.NewReader(plain), k, v.PlainSize, format.EncryptOptions{ComputeMD5: v.ComputeMD5, Checksum: a})
			if err != nil {
				t.Fatal(err)
			}
			stored, err := io.ReadAll(r)
			if err != nil || shaHex(stored) != v.StoredSHA256 || int64(len(stored)) != v.StoredSize || (v.StoredHex != "" && hex.EncodeToString(stored) != v.StoredHex) {
				t.Fatalf("stored bytes differ from the vector (%v)", err)
			}
			if want := plainChecksum(a, plain); hex.EncodeToString(want) != v.Checksum || !bytes.Equal(r.Checksum(), want) || v.TrailerPlain != v.MD5+v.Checksum {
				t.Fatalf("checksum %x (EncryptReader %x), vector %s; trailer plaintext %s", want, r.Checksum(), v.Checksum, v.TrailerPlain)
			}
			pi := unhex(t, v.PartInfo)
			if len(pi) != 16 || pi[0] != 1 || pi[1] != 0 || int(pi[2]) != v.ChecksumNumber || pi[3] != 0 {
				t.Fatalf("PartInfo %x", pi)
			}
			if format.EncryptedSizeOf(v.PlainSize, a) != v.StoredSize {
				t.Fatalf("EncryptedSizeOf %d, vector %d", format.EncryptedSizeOf(v.PlainSize, a), v.StoredSize)
			}
			p, err := format.DecryptedSizeOf(v.StoredSize, a)
			if err != nil || p != v.PlainSize {
				t.Fatalf("DecryptedSizeOf: %d, %v", p, err)
			}
			s, err := k.SingleStreamOf(p, a)
			if err != nil || s.TrailerSize() != int64(32+a.Size()) {
				t.Fatalf("SingleStreamOf: %v", err)
			}
			d := s.DecryptAll(bytes.NewReader(stored))
			got, err := io.ReadAll(d)
			if err != nil || !bytes.Equal(got, plain) || hex.EncodeToString(d.MD5()) != v.MD5 || hex.EncodeToString(d.Checksum()) != v.Checksum {
				t.Fatalf("format decrypt: %v", err)
			}
			sp, sm, sc, err := specdecode.DecryptSingleChecksum(unhex(t, v.OK), stored, byte(v.ChecksumNumber))
			if err != nil || !bytes.Equal(sp, plain) || hex.EncodeToString(sm) != v.MD5 || hex.EncodeToString(sc) != v.Checksum {
				t.Fatalf("specdecode decrypt: %v", err)
			}
			// The algorithm feeds PK and the stored size: read as another one, nothing decrypts.
			for b := format.ChecksumNone; b <= format.ChecksumXXHASH128; b++ {
				if b == a {
					continue
				}
				p, err := format.DecryptedSizeOf(v.StoredSize, b)
				if err != nil {
					continue
				}
				s, err := k.SingleStreamOf(p, b)
				if err != nil {
					t.Fatal(err)
				}
				if out, err := io.ReadAll(s.DecryptAll(bytes.NewReader(stored))); !errors.Is(err, format.ErrAuth) || len(out) != 0 {
					t.Errorf("read as %s: %d bytes, %v", b, len(out), err)
				}
				if _, _, _, err := specdecode.DecryptSingleChecksum(unhex(t, v.OK), stored, byte(b)); err == nil {
					t.Errorf("specdecode read it as %s", b)
				}
			}
		})
	}
}
