package specdecode

import (
	"bytes"
	"crypto/ecdh"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// These tests read the known-answer vectors without package format: they re-encrypt every
// vector from its inputs following docs/FORMAT.md (a spec-only encryptor below), compare with
// the recorded outputs, and decode the result with this package.

type envVec struct {
	DK, OK, ES, KeyID, WrappedKey, Bucket, Key, WK, KC, Envelope string
	Kind, Wrap                                                   int
}

type singleVec struct {
	envVec
	Name                                string
	PlainSize, StoredSize               int64
	PK, StoredHex, StoredSHA256, MD5Hex string
}

type partVec struct {
	Number                                            int
	EphPriv, EphPub, Header, PK, StoredSHA256, MD5Hex string
	PlainOffset, PlainSize, StoredSize                int64
}

type multiVec struct {
	envVec
	Name, UPub, UploadIDSuffix, StoredSHA256 string
	StoredSize                               int64
	Parts                                    []partVec
}

// The JSON field names are snake_case; map them explicitly.
func (v *envVec) fields() map[string]any {
	return map[string]any{"dk": &v.DK, "ok": &v.OK, "es": &v.ES, "key_id": &v.KeyID, "wrapped_key": &v.WrappedKey,
		"bucket": &v.Bucket, "key": &v.Key, "wk": &v.WK, "kc": &v.KC, "envelope": &v.Envelope, "kind": &v.Kind, "wrap": &v.Wrap}
}

func decodeInto(t *testing.T, raw json.RawMessage, fields map[string]any) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for k, dst := range fields {
		v, ok := m[k]
		if !ok {
			t.Fatalf("vector field %q missing", k)
		}
		if err := json.Unmarshal(v, dst); err != nil {
			t.Fatalf("field %q: %v", k, err)
		}
	}
}

func loadVectors(t *testing.T) ([]singleVec, []multiVec) {
	b, err := os.ReadFile("../../testdata/format/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Single, Multipart []json.RawMessage }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var singles []singleVec
	for _, raw := range f.Single {
		var v singleVec
		fs := v.fields()
		for k, p := range map[string]any{"name": &v.Name, "plain_size": &v.PlainSize, "stored_size": &v.StoredSize,
			"pk": &v.PK, "stored_sha256": &v.StoredSHA256, "md5": &v.MD5Hex} {
			fs[k] = p
		}
		decodeInto(t, raw, fs)
		var hx struct {
			StoredHex string `json:"stored_hex"`
		}
		_ = json.Unmarshal(raw, &hx)
		v.StoredHex = hx.StoredHex
		singles = append(singles, v)
	}
	var multis []multiVec
	for _, raw := range f.Multipart {
		var v multiVec
		var parts []json.RawMessage
		fs := v.fields()
		for k, p := range map[string]any{"name": &v.Name, "upub": &v.UPub, "upload_id_suffix": &v.UploadIDSuffix,
			"stored_sha256": &v.StoredSHA256, "stored_size": &v.StoredSize, "parts": &parts} {
			fs[k] = p
		}
		decodeInto(t, raw, fs)
		for _, pr := range parts {
			var p partVec
			decodeInto(t, pr, map[string]any{"number": &p.Number, "eph_priv": &p.EphPriv, "eph_pub": &p.EphPub,
				"header": &p.Header, "pk": &p.PK, "stored_sha256": &p.StoredSHA256, "md5": &p.MD5Hex,
				"plain_offset": &p.PlainOffset, "plain_size": &p.PlainSize, "stored_size": &p.StoredSize})
			v.Parts = append(v.Parts, p)
		}
		multis = append(multis, v)
	}
	if len(singles) < 4 || len(multis) < 1 {
		t.Fatalf("expected at least 4 single and 1 multipart vectors, got %d and %d", len(singles), len(multis))
	}
	return singles, multis
}

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func plainAt(off, n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off + int64(i)) % 251)
	}
	return b
}

func sha(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// specSealEnvelope writes an envelope from section 4.
func specSealEnvelope(t *testing.T, v envVec) string {
	ok, dk, es := unhex(t, v.OK), unhex(t, v.DK), unhex(t, v.ES)
	wrapped := unhex(t, v.WrappedKey)
	b := []byte{1, byte(v.Kind), byte(v.Wrap), 16}
	b = binary.BigEndian.AppendUint16(b, uint16(len(v.KeyID)))
	b = append(b, v.KeyID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(wrapped)))
	b = append(b, wrapped...)
	b = append(b, es...)
	kc := hkdf32(ok, nil, "s3seal/1 commit")
	if hex.EncodeToString(kc) != v.KC {
		t.Errorf("KC: spec %x, vector %s", kc, v.KC)
	}
	b = append(b, kc...)
	wk := hkdf32(dk, es, "s3seal/1 wrap")
	if hex.EncodeToString(wk) != v.WK {
		t.Errorf("WK: spec %x, vector %s", wk, v.WK)
	}
	aad := append(append(append([]byte("s3seal/1 envelope"), b...), lp(v.Bucket)...), lp(v.Key)...)
	b = gcm(wk).Seal(b, make([]byte, 12), ok, aad)
	return base64.StdEncoding.EncodeToString(b)
}

// specEncryptStream writes Seg_0 … ‖ Trailer from section 3.2.
func specEncryptStream(pk, plain []byte) []byte {
	a := gcm(pk)
	n := max(1, (len(plain)+S-1)/S)
	var out []byte
	for i := 0; i < n; i++ {
		seg, final := plain[i*S:min(len(plain), (i+1)*S)], uint32(0)
		if i == n-1 {
			final = 1
		}
		out = a.Seal(out, nonce(uint64(i), final), seg, nil)
	}
	sum := md5.Sum(plain)
	return a.Seal(out, nonce(uint64(n), 2), sum[:], nil)
}

func TestSingleVectors(t *testing.T) {
	singles, _ := loadVectors(t)
	for _, v := range singles {
		t.Run(v.Name, func(t *testing.T) {
			if got := specSealEnvelope(t, v.envVec); got != v.Envelope {
				t.Errorf("envelope: spec encryptor %s\nvector %s", got, v.Envelope)
			}
			ok, keyID, wrapped, kind, err := OpenEnvelope(v.Envelope, unhex(t, v.DK), v.Bucket, v.Key)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(ok) != v.OK || keyID != v.KeyID || hex.EncodeToString(wrapped) != v.WrappedKey || kind != 0 {
				t.Fatalf("envelope opened to ok=%x keyID=%q wrapped=%x kind=%d", ok, keyID, wrapped, kind)
			}
			plain := plainAt(0, v.PlainSize)
			pk := hkdf32(ok, nil, "s3seal/1 part"+string(partInfo(0, 0, uint64(v.PlainSize))))
			if hex.EncodeToString(pk) != v.PK {
				t.Errorf("PK: spec %x, vector %s", pk, v.PK)
			}
			stored := specEncryptStream(pk, plain)
			if sha(stored) != v.StoredSHA256 || int64(len(stored)) != v.StoredSize {
				t.Fatalf("stored bytes: spec encryptor gives %d bytes sha256 %s, vector %d bytes %s", len(stored), sha(stored), v.StoredSize, v.StoredSHA256)
			}
			if v.StoredHex != "" && hex.EncodeToString(stored) != v.StoredHex {
				t.Fatalf("stored hex differs from the vector")
			}
			got, sum, err := DecryptSingle(ok, stored)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) || hex.EncodeToString(sum) != v.MD5Hex {
				t.Fatalf("decrypted %d bytes (md5 %x), want %d bytes (md5 %s)", len(got), sum, len(plain), v.MD5Hex)
			}
			// The decoder must reject the vector under another name and when altered.
			if _, _, _, _, err := OpenEnvelope(v.Envelope, unhex(t, v.DK), v.Bucket, v.Key+"x"); err == nil {
				t.Error("envelope opened under another object name")
			}
			bad := bytes.Clone(stored)
			bad[len(bad)/2] ^= 1
			if _, _, err := DecryptSingle(ok, bad); err == nil {
				t.Error("tampered stored bytes decrypted")
			}
			if _, _, err := DecryptSingle(ok, append(bytes.Clone(stored), 0)); err == nil {
				t.Error("extended stored bytes decrypted")
			}
		})
	}
}

func TestMultipartVectors(t *testing.T) {
	_, multis := loadVectors(t)
	for _, v := range multis {
		t.Run(v.Name, func(t *testing.T) {
			if got := specSealEnvelope(t, v.envVec); got != v.Envelope {
				t.Errorf("envelope: spec encryptor %s\nvector %s", got, v.Envelope)
			}
			ok, _, _, kind, err := OpenEnvelope(v.Envelope, unhex(t, v.DK), v.Bucket, v.Key)
			if err != nil || kind != 1 {
				t.Fatalf("open: kind %d, %v", kind, err)
			}
			upriv, err := ecdh.X25519().NewPrivateKey(hkdf32(ok, nil, "s3seal/1 upload x25519"))
			if err != nil {
				t.Fatal(err)
			}
			upub := upriv.PublicKey().Bytes()
			if hex.EncodeToString(upub) != v.UPub || v.UploadIDSuffix != ".s1"+base64.RawURLEncoding.EncodeToString(upub) || len(v.UploadIDSuffix) != 46 {
				t.Fatalf("UPub %x / upload id suffix %q do not follow the spec", upub, v.UploadIDSuffix)
			}
			var stored, plain []byte
			for _, p := range v.Parts {
				eph, err := ecdh.X25519().NewPrivateKey(unhex(t, p.EphPriv))
				if err != nil {
					t.Fatal(err)
				}
				ephPub := eph.PublicKey().Bytes()
				pub, _ := ecdh.X25519().NewPublicKey(upub)
				shared, err := eph.ECDH(pub)
				if err != nil {
					t.Fatal(err)
				}
				header := append(partInfo(1, uint32(p.Number), uint64(p.PlainSize)), ephPub...)
				if hex.EncodeToString(header) != p.Header || hex.EncodeToString(ephPub) != p.EphPub {
					t.Fatalf("part %d header: spec %x, vector %s", p.Number, header, p.Header)
				}
				pk := hkdf32(shared, append(bytes.Clone(ephPub), upub...), "s3seal/1 part"+string(header[:16]))
				if hex.EncodeToString(pk) != p.PK {
					t.Errorf("part %d PK: spec %x, vector %s", p.Number, pk, p.PK)
				}
				pp := plainAt(p.PlainOffset, p.PlainSize)
				part := append(header, specEncryptStream(pk, pp)...)
				if sha(part) != p.StoredSHA256 || int64(len(part)) != p.StoredSize {
					t.Fatalf("part %d stored bytes differ from the vector", p.Number)
				}
				stored = append(stored, part...)
				plain = append(plain, pp...)
			}
			if sha(stored) != v.StoredSHA256 || int64(len(stored)) != v.StoredSize {
				t.Fatal("object stored bytes differ from the vector")
			}
			got, err := DecryptMultipart(ok, stored)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("decrypted %d bytes, want %d", len(got), len(plain))
			}
			// Reordered parts and a cut inside the last part must fail.
			first := v.Parts[0].StoredSize
			swapped := append(bytes.Clone(stored[first:]), stored[:first]...)
			if _, err := DecryptMultipart(ok, swapped); err == nil {
				t.Error("reordered parts decrypted")
			}
			if _, err := DecryptMultipart(ok, stored[:len(stored)-1]); err == nil {
				t.Error("truncated object decrypted")
			}
		})
	}
}
