package format_test

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"testing"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/specdecode"
)

// TestVectorsMultipartV2 re-encrypts every format-2 multipart vector from its inputs with
// package format (parts with the recorded salts, the manifest with the recorded nonce, the
// upload id) and compares with the recorded outputs, then decrypts it with format and with the
// independent decoder.
func TestVectorsMultipartV2(t *testing.T) {
	vs := loadVectorFile(t).MultipartV2
	if len(vs) < 2 {
		t.Fatalf("%d format-2 multipart vectors", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			if v.Version != 2 || v.Kind != 1 {
				t.Fatalf("vector envelope of version %d, kind %d", v.Version, v.Kind)
			}
			k := checkEnvelopeVector(t, v.EnvelopeVector)
			env, err := format.DecodeEnvelope(v.Envelope)
			if err != nil || env.Version() != 2 {
				t.Fatalf("envelope version %v: %v", env, err)
			}
			id := format.UploadID{Backend: v.BackendUploadID, Envelope: env, Context: v.Context}.String()
			if id != v.UploadID || v.BackendUploadID+v.UploadIDSuffix != v.UploadID {
				t.Fatalf("upload id %s\nvector    %s", id, v.UploadID)
			}
			u, err := format.ParseUploadID(v.UploadID)
			if err != nil || u.Backend != v.BackendUploadID || u.Context != v.Context || u.Envelope.Encode() != v.Envelope {
				t.Fatalf("ParseUploadID: %+v, %v", u, err)
			}

			var stored, plain, md5s []byte
			var parts [][]byte
			for _, p := range v.Parts {
				pp := format.VectorPlain(p.PlainOffset, p.PlainSize)
				r, err := format.NewPartEncryptReaderV2WithRand(k, bytes.NewReader(unhex(t, p.PartSalt)), bytes.NewReader(pp), p.Number, p.PlainSize, format.EncryptOptions{ComputeMD5: p.ComputeMD5})
				if err != nil {
					t.Fatal(err)
				}
				part, err := io.ReadAll(r)
				if err != nil || hex.EncodeToString(part[:48]) != p.Header || shaHex(part) != p.StoredSHA256 || int64(len(part)) != p.StoredSize {
					t.Fatalf("part %d differs from the vector (%v)", p.Number, err)
				}
				if got := hex.EncodeToString(r.MD5()); got != p.MD5 {
					t.Fatalf("part %d MD5 %q, vector %q", p.Number, got, p.MD5)
				}
				if p.ComputeMD5 {
					if sum := md5.Sum(pp); hex.EncodeToString(sum[:]) != p.MD5 {
						t.Fatalf("part %d: vector MD5 %s is not the plaintext's", p.Number, p.MD5)
					}
				}
				parts = append(parts, part)
				stored = append(stored, part...)
				plain = append(plain, pp...)
				md5s = append(md5s, r.MD5()...)
			}
			if shaHex(stored) != v.StoredSHA256 || int64(len(stored)) != v.StoredSize {
				t.Fatal("object differs from the vector")
			}
			if sum := md5.Sum(plain); hex.EncodeToString(sum[:]) != v.PlainMD5 {
				t.Fatalf("plaintext MD5 %x, vector %s", sum, v.PlainMD5)
			}

			l, err := layoutOf(t, k, parts)
			if err != nil {
				t.Fatal(err)
			}
			var etag []byte
			if v.ETag != "" {
				s := md5.Sum(md5s)
				etag = s[:]
				if want := fmt.Sprintf("%x-%d", etag, len(v.Parts)); v.ETag != want || v.ETagMD5 != hex.EncodeToString(etag) {
					t.Fatalf("vector ETag %s, the MD5 of the parts' MD5s gives %s", v.ETag, want)
				}
			} else if v.ETagMD5 != hex.EncodeToString(make([]byte, 16)) {
				t.Fatalf("vector without ETag has ETag MD5 %s", v.ETagMD5)
			}
			man, err := format.SealManifestWithRand(k, bytes.NewReader(unhex(t, v.ManifestNonce)), l, etag)
			if err != nil || man != v.Manifest {
				t.Fatalf("manifest %s\nvector   %s (%v)", man, v.Manifest, err)
			}
			m, err := k.OpenManifest(v.Manifest)
			if err != nil || m.Parts != len(v.Parts) || !bytes.Equal(m.ETagMD5, etag) {
				t.Fatalf("OpenManifest: %+v, %v", m, err)
			}
			if err := m.Check(l); err != nil {
				t.Fatal(err)
			}
			numbers, sizes := m.Layout()
			for i, p := range v.Parts {
				if i >= len(numbers) || numbers[i] != p.Number || sizes[i] != p.StoredSize {
					t.Fatalf("manifest layout %v %v, vector part %d of %d stored bytes", numbers, sizes, p.Number, p.StoredSize)
				}
			}
			if len(numbers) != len(v.Parts) {
				t.Fatalf("manifest lists %d parts", len(numbers))
			}
			got, err := readObject(k, object{plain, stored, numbers, sizes}, 0, int64(len(plain)))
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("format decrypt: %v", err)
			}

			// The independent decoder.
			got, sm, err := specdecode.DecryptMultipartV2(unhex(t, v.OK), stored, v.Manifest)
			if err != nil || !bytes.Equal(got, plain) || sm.ETag() != v.ETag || hex.EncodeToString(sm.D) != v.PartsDigest {
				t.Fatalf("specdecode: %v", err)
			}
			su, err := specdecode.ParseUploadID(v.UploadID)
			if err != nil || su.Backend != v.BackendUploadID || su.Ctx != v.Context || base64.StdEncoding.EncodeToString(su.Envelope) != v.Envelope {
				t.Fatalf("specdecode.ParseUploadID: %+v, %v", su, err)
			}
		})
	}
}

// TestSpecDecodeReadsFormatV2Objects: format-2 objects written by format's writers with fresh
// keys, and their manifests, decode with the independent decoder; rearranged ones do not.
func TestSpecDecodeReadsFormatV2Objects(t *testing.T) {
	r := rng(t)
	for range 6 {
		var numbers []int
		var sizes []int64
		for i := range 1 + r.IntN(4) {
			numbers = append(numbers, 2*i+1+r.IntN(2))
			sizes = append(sizes, r.Int64N(2*S+10))
		}
		o := newV2Object(t, numbers, sizes)
		l, err := layoutOf(t, o.key, o.parts)
		if err != nil {
			t.Fatal(err)
		}
		etag := md5.Sum(bytes.Join(o.md5s, nil))
		man, err := o.key.SealManifest(l, etag[:])
		if err != nil {
			t.Fatal(err)
		}
		ok := format.ObjectKeyBytes(o.key)
		got, m, err := specdecode.DecryptMultipartV2(ok, bytes.Join(o.parts, nil), man)
		if err != nil || !bytes.Equal(got, o.plain) || m.ETag() != fmt.Sprintf("%x-%d", etag, len(numbers)) {
			t.Fatalf("specdecode of parts %v sizes %v: %v", numbers, sizes, err)
		}
		if len(o.parts) > 1 {
			if _, _, err := specdecode.DecryptMultipartV2(ok, bytes.Join(o.parts[1:], nil), man); err == nil {
				t.Fatal("specdecode read the object without its first part")
			}
		}
		if _, err := specdecode.DecryptMultipart(ok, bytes.Join(o.parts, nil)); err == nil {
			t.Fatal("specdecode read a format-2 object as format 1")
		}
	}
}
