package specdecode

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// The single-part checksum vectors (section 9), re-encrypted from their inputs by the layout
// the lead's design gives (FORMAT.md 3.3 is still to describe it: PartInfo byte 2 is the
// algorithm's number of section 3.6.6's table, the trailer seals MD5 ‖ C) and decoded.

type singleChecksumVec struct {
	envVec
	Name                                               string
	PlainSize, StoredSize                              int64
	ChecksumNumber                                     int
	ChecksumAlgorithm, PartInfo, PK, Checksum, Trailer string
	StoredHex, StoredSHA256, MD5Hex                    string
}

func loadSingleChecksumVectors(t *testing.T) []singleChecksumVec {
	b, err := os.ReadFile("../../testdata/format/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		V []json.RawMessage `json:"single_checksum"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var out []singleChecksumVec
	for _, raw := range f.V {
		var v singleChecksumVec
		fs := v.fields()
		for k, p := range map[string]any{"name": &v.Name, "plain_size": &v.PlainSize, "stored_size": &v.StoredSize,
			"checksum_number": &v.ChecksumNumber, "checksum_algorithm": &v.ChecksumAlgorithm, "part_info": &v.PartInfo,
			"pk": &v.PK, "checksum": &v.Checksum, "trailer_plain": &v.Trailer, "stored_sha256": &v.StoredSHA256, "md5": &v.MD5Hex} {
			fs[k] = p
		}
		decodeInto(t, raw, fs)
		var hx struct {
			StoredHex string `json:"stored_hex"`
		}
		_ = json.Unmarshal(raw, &hx)
		v.StoredHex = hx.StoredHex
		out = append(out, v)
	}
	if len(out) < 5 {
		t.Fatalf("expected at least 5 single-part checksum vectors, got %d", len(out))
	}
	return out
}

// specEncryptSingleChecksum writes a single-part object sealing checksum ck of algorithm alg.
func specEncryptSingleChecksum(ok []byte, alg byte, plain, ck []byte) (stored, pi, pk []byte) {
	pi = []byte{1, 0, alg, 0}
	pi = binary.BigEndian.AppendUint32(pi, 0)
	pi = binary.BigEndian.AppendUint64(pi, uint64(len(plain)))
	pk = hkdf32(ok, nil, "s3seal/1 part"+string(pi))
	a := gcm(pk)
	n := max(1, (len(plain)+S-1)/S)
	for i := 0; i < n; i++ {
		final := uint32(0)
		if i == n-1 {
			final = 1
		}
		stored = a.Seal(stored, nonce(uint64(i), final), plain[i*S:min(len(plain), (i+1)*S)], nil)
	}
	sum := md5.Sum(plain)
	return a.Seal(stored, nonce(uint64(n), 2), append(sum[:], ck...), nil), pi, pk
}

func TestSingleChecksumVectors(t *testing.T) {
	for _, v := range loadSingleChecksumVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			alg, err := ChecksumOfMeta(v.ChecksumAlgorithm)
			if err != nil || int(alg) != v.ChecksumNumber || alg == 0 {
				t.Fatalf("x-amz-meta-s3seal-ck %q: %d, %v", v.ChecksumAlgorithm, alg, err)
			}
			if got := specSealEnvelope(t, v.envVec); got != v.Envelope {
				t.Fatalf("envelope: spec %s\nvector %s", got, v.Envelope)
			}
			ok, _, _, kind, err := OpenEnvelope(v.Envelope, unhex(t, v.DK), v.Bucket, v.Key)
			if err != nil || kind != 0 || hex.EncodeToString(ok) != v.OK {
				t.Fatalf("envelope: %v", err)
			}
			plain := plainAt(0, v.PlainSize)
			ck, _ := Checksum(alg, plain)
			if hex.EncodeToString(ck) != v.Checksum || v.Trailer != v.MD5Hex+v.Checksum {
				t.Fatalf("checksum %x, vector %s (trailer %s)", ck, v.Checksum, v.Trailer)
			}
			stored, pi, pk := specEncryptSingleChecksum(ok, alg, plain, ck)
			if hex.EncodeToString(pi) != v.PartInfo || hex.EncodeToString(pk) != v.PK {
				t.Fatalf("PartInfo %x PK %x, vector %s %s", pi, pk, v.PartInfo, v.PK)
			}
			n := max(1, (v.PlainSize+S-1)/S)
			if sha(stored) != v.StoredSHA256 || int64(len(stored)) != v.StoredSize || int64(len(stored)) != v.PlainSize+16*n+32+int64(len(ck)) ||
				(v.StoredHex != "" && hex.EncodeToString(stored) != v.StoredHex) {
				t.Fatalf("stored bytes: spec encryptor gives %d bytes sha256 %s, vector %d %s", len(stored), sha(stored), v.StoredSize, v.StoredSHA256)
			}
			got, sum, c, err := DecryptSingleChecksum(ok, stored, alg)
			if err != nil || !bytes.Equal(got, plain) || hex.EncodeToString(sum) != v.MD5Hex || !bytes.Equal(c, ck) {
				t.Fatalf("DecryptSingleChecksum: %v", err)
			}
			// Read as another algorithm (PK and the trailer's size differ), or as none: refused.
			for other := byte(0); other <= 11; other++ {
				if other == alg {
					continue
				}
				if _, _, _, err := DecryptSingleChecksum(ok, stored, other); err == nil {
					t.Errorf("read as algorithm %d", other)
				}
			}
			if _, _, err := DecryptSingle(ok, stored); err == nil {
				t.Error("DecryptSingle read an object with a checksum")
			}
			// A trailer that seals another value: it opens, but is not the plaintext's checksum.
			other := bytes.Clone(ck)
			other[0] ^= 1
			forged, _, _ := specEncryptSingleChecksum(ok, alg, plain, other)
			if _, _, _, err := DecryptSingleChecksum(ok, forged, alg); err == nil {
				t.Error("a trailer with another checksum decoded")
			}
			bad := bytes.Clone(stored)
			bad[len(bad)-1] ^= 1
			if _, _, _, err := DecryptSingleChecksum(ok, bad, alg); err == nil {
				t.Error("a flipped trailer decoded")
			}
		})
	}
	// The metadata value is S3's name exactly.
	for _, bad := range []string{"crc32", "Crc32", " CRC32", "CRC32 ", "CRC-32", "NONE", "0"} {
		if alg, err := ChecksumOfMeta(bad); err == nil {
			t.Errorf("x-amz-meta-s3seal-ck %q read as %d", bad, alg)
		}
	}
	if alg, err := ChecksumOfMeta(""); err != nil || alg != 0 {
		t.Errorf("no metadata: %d, %v", alg, err)
	}
}
