package format_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"testing"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/specdecode"
)

func loadVectorFile(t *testing.T) format.VectorFile {
	b, err := os.ReadFile(format.VectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var f format.VectorFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Single) < 4 || len(f.Multipart) < 1 {
		t.Fatalf("vector file has %d single and %d multipart cases", len(f.Single), len(f.Multipart))
	}
	return f
}

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func shaHex(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// checkEnvelopeVector re-seals the vector's envelope with its ES, opens it with format and
// specdecode, and returns the object key.
func checkEnvelopeVector(t *testing.T, v format.EnvelopeVector) *format.ObjectKey {
	ver := max(v.Version, 1)
	ok, err := format.NewObjectKeyOfVersion(bytes.NewReader(unhex(t, v.OK)), ver)
	if err != nil {
		t.Fatal(err)
	}
	e, err := format.SealEnvelopeWithRand(bytes.NewReader(unhex(t, v.ES)), ok, unhex(t, v.DK), format.SealParams{
		Kind: format.Kind(v.Kind), Wrap: format.Wrap(v.Wrap), KeyID: v.KeyID, WrappedKey: unhex(t, v.WrappedKey), Bucket: v.Bucket, Object: v.Key})
	if err != nil {
		t.Fatal(err)
	}
	if e.Encode() != v.Envelope {
		t.Fatalf("envelope %s\nvector   %s", e.Encode(), v.Envelope)
	}
	d, err := format.DecodeEnvelope(v.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	k, err := d.Open(unhex(t, v.DK), v.Bucket, v.Key)
	if err != nil || hex.EncodeToString(format.ObjectKeyBytes(k)) != v.OK {
		t.Fatalf("format opened the envelope to %v", err)
	}
	sok, keyID, wrapped, kind, err := specdecode.OpenEnvelope(v.Envelope, unhex(t, v.DK), v.Bucket, v.Key)
	if err != nil || hex.EncodeToString(sok) != v.OK || keyID != v.KeyID || hex.EncodeToString(wrapped) != v.WrappedKey || kind != v.Kind {
		t.Fatalf("specdecode opened the envelope to %x %q %x %d, %v", sok, keyID, wrapped, kind, err)
	}
	return k
}

func TestVectorsSingle(t *testing.T) {
	for _, v := range loadVectorFile(t).Single {
		t.Run(v.Name, func(t *testing.T) {
			k := checkEnvelopeVector(t, v.EnvelopeVector)
			plain := format.VectorPlain(0, v.PlainSize)
			stored := encryptSingle(t, k, plain, format.EncryptOptions{ComputeMD5: v.ComputeMD5})
			if shaHex(stored) != v.StoredSHA256 || int64(len(stored)) != v.StoredSize {
				t.Fatalf("stored bytes differ from the vector")
			}
			if v.StoredHex != "" && hex.EncodeToString(stored) != v.StoredHex {
				t.Fatalf("stored hex differs from the vector")
			}
			got, sum, err := decryptSingle(k, stored)
			if err != nil || !bytes.Equal(got, plain) || hex.EncodeToString(sum) != v.MD5 {
				t.Fatalf("format decrypt: %v", err)
			}
			got, sum, err = specdecode.DecryptSingle(unhex(t, v.OK), stored)
			if err != nil || !bytes.Equal(got, plain) || hex.EncodeToString(sum) != v.MD5 {
				t.Fatalf("specdecode decrypt: %v", err)
			}
		})
	}
}

func TestVectorsMultipart(t *testing.T) {
	for _, v := range loadVectorFile(t).Multipart {
		t.Run(v.Name, func(t *testing.T) {
			k := checkEnvelopeVector(t, v.EnvelopeVector)
			upub, _ := k.UploadPublicKey()
			if hex.EncodeToString(upub) != v.UPub || format.EncodeUploadID("", upub) != v.UploadIDSuffix {
				t.Fatalf("UPub %x", upub)
			}
			var stored, plain []byte
			var numbers []int
			var sizes []int64
			for _, p := range v.Parts {
				pp := format.VectorPlain(p.PlainOffset, p.PlainSize)
				r, err := format.NewPartEncryptReaderWithRand(bytes.NewReader(unhex(t, p.EphPriv)), bytes.NewReader(pp), upub, p.Number, p.PlainSize, format.EncryptOptions{ComputeMD5: p.ComputeMD5})
				if err != nil {
					t.Fatal(err)
				}
				part, err := io.ReadAll(r)
				if err != nil || hex.EncodeToString(part[:48]) != p.Header || shaHex(part) != p.StoredSHA256 || hex.EncodeToString(r.MD5()) != p.MD5 {
					t.Fatalf("part %d differs from the vector (%v)", p.Number, err)
				}
				stored = append(stored, part...)
				plain = append(plain, pp...)
				numbers = append(numbers, p.Number)
				sizes = append(sizes, int64(len(part)))
			}
			if shaHex(stored) != v.StoredSHA256 {
				t.Fatal("object differs from the vector")
			}
			got, err := readObject(k, object{plain, stored, numbers, sizes}, 0, int64(len(plain)))
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("format decrypt: %v", err)
			}
			got, err = specdecode.DecryptMultipart(unhex(t, v.OK), stored)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("specdecode decrypt: %v", err)
			}
		})
	}
}

// TestSpecDecodeReadsRandomObjects: objects written by format's writers with fresh keys decode
// with the independent decoder, and damaged ones do not.
func TestSpecDecodeReadsRandomObjects(t *testing.T) {
	r := rng(t)
	for range 8 {
		ok, dk := newKey(t), randomBytes(t, 32)
		bucket, key := "b"+hex.EncodeToString(randomBytes(t, 3)), "k/"+hex.EncodeToString(randomBytes(t, 5))
		e, err := format.SealEnvelope(ok, dk, format.SealParams{Kind: format.KindSingle, Wrap: format.WrapProvider, KeyID: "kid", WrappedKey: randomBytes(t, 140), Bucket: bucket, Object: key})
		if err != nil {
			t.Fatal(err)
		}
		okBytes, keyID, _, kind, err := specdecode.OpenEnvelope(e.Encode(), dk, bucket, key)
		if err != nil || keyID != "kid" || kind != 0 || !bytes.Equal(okBytes, format.ObjectKeyBytes(ok)) {
			t.Fatalf("specdecode envelope: %v", err)
		}
		if _, _, _, _, err := specdecode.OpenEnvelope(e.Encode(), dk, bucket, key+"/"); err == nil {
			t.Fatal("specdecode opened an envelope under another name")
		}
		plain := randomBytes(t, r.Int64N(4*S))
		stored := encryptSingle(t, ok, plain, format.EncryptOptions{ComputeMD5: r.IntN(2) == 0})
		got, _, err := specdecode.DecryptSingle(okBytes, stored)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("specdecode single of %d bytes: %v", len(plain), err)
		}
		stored[r.IntN(len(stored))] ^= 4
		if _, _, err := specdecode.DecryptSingle(okBytes, stored); err == nil {
			t.Fatal("specdecode accepted a damaged object")
		}

		nparts := 1 + r.IntN(3)
		var nums []int
		var psizes []int64
		for i := range nparts {
			nums = append(nums, 2*i+1+r.IntN(2))
			psizes = append(psizes, r.Int64N(2*S+10))
		}
		o := buildObject(t, ok, nums, psizes)
		got, err = specdecode.DecryptMultipart(okBytes, o.stored)
		if err != nil || !bytes.Equal(got, o.plain) {
			t.Fatalf("specdecode multipart %v: %v", psizes, err)
		}
	}
}
