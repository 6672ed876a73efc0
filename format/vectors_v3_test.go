package format_test

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/checksum"
	"github.com/s3seal/s3seal/internal/specdecode"
)

// TestVectorsMultipartV3 re-encrypts every format-3 multipart vector from its inputs with
// package format (parts with the recorded salts, the tail with the recorded nonce, the upload
// id, the first part's record with its nonce) and compares with the recorded outputs, then
// reads it with format (the reader's steps) and with the independent decoder. For an upload
// created with a checksum, the parts' checksums and the object's are computed again from the
// plaintext (FORMAT.md 3.6.6) and found in the id, the record and the tail.
func TestVectorsMultipartV3(t *testing.T) {
	vs := loadVectorFile(t).MultipartV3
	if len(vs) < 2 {
		t.Fatalf("%d format-3 multipart vectors", len(vs))
	}
	kinds := map[int]bool{}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			if v.Version != 3 || v.Kind != 1 {
				t.Fatalf("vector envelope of version %d, kind %d", v.Version, v.Kind)
			}
			k := checkEnvelopeVector(t, v.EnvelopeVector)
			env, err := format.DecodeEnvelope(v.Envelope)
			if err != nil || env.Version() != 3 {
				t.Fatalf("envelope version %v: %v", env, err)
			}
			ck, valid := format.ChecksumKindOf(byte(v.ChecksumKind))
			if !valid || v.ChecksumKind > 0xff || int(format.ChecksumKindByte(ck)) != v.ChecksumKind || ck.Algorithm.String() != v.ChecksumAlgorithm || ck.Type() != v.ChecksumType {
				t.Fatalf("vector checksum kind %#x (%s %s) reads as %+v, %v", v.ChecksumKind, v.ChecksumAlgorithm, v.ChecksumType, ck, valid)
			}
			kinds[v.ChecksumKind] = true
			id := format.UploadID{Backend: v.BackendUploadID, Envelope: env, Context: v.Context, Checksum: ck}.String()
			if id != v.UploadID || v.BackendUploadID+v.UploadIDSuffix != v.UploadID || !strings.HasPrefix(v.UploadIDSuffix, ".s3") {
				t.Fatalf("upload id %s\nvector    %s", id, v.UploadID)
			}
			u, err := format.ParseUploadID(v.UploadID)
			if err != nil || u.Backend != v.BackendUploadID || u.Context != v.Context || u.Envelope.Encode() != v.Envelope || u.Checksum != ck {
				t.Fatalf("ParseUploadID: %+v, %v", u, err)
			}

			var stored, plain, md5s []byte
			var facts []format.ManifestPart
			var sums [][]byte
			for _, p := range v.Parts {
				pp := format.VectorPlain(p.PlainOffset, p.PlainSize)
				r, err := format.NewPartEncryptReaderV2WithRand(k, bytes.NewReader(unhex(t, p.PartSalt)), bytes.NewReader(pp), p.Number, p.PlainSize, format.EncryptOptions{ComputeMD5: p.ComputeMD5})
				if err != nil {
					t.Fatal(err)
				}
				part, err := io.ReadAll(r)
				if err != nil || hex.EncodeToString(part[:48]) != p.Header || hex.EncodeToString(r.PartHeader()) != p.Header || shaHex(part) != p.StoredSHA256 || int64(len(part)) != p.StoredSize {
					t.Fatalf("part %d differs from the vector (%v)", p.Number, err)
				}
				if part[0] != 3 {
					t.Fatalf("part %d: header of version %d", p.Number, part[0])
				}
				if got := hex.EncodeToString(r.MD5()); got != p.MD5 {
					t.Fatalf("part %d MD5 %q, vector %q", p.Number, got, p.MD5)
				}
				if sum := plainChecksum(ck.Algorithm, pp); hex.EncodeToString(sum) != p.Checksum {
					t.Fatalf("part %d checksum %x, vector %q", p.Number, sum, p.Checksum)
				} else if sum != nil {
					sums = append(sums, sum)
				}
				f := format.ManifestPart{Number: p.Number, PlainSize: p.PlainSize, MD5: r.MD5()}
				copy(f.Salt[:], unhex(t, p.PartSalt))
				facts = append(facts, f)
				stored = append(stored, part...)
				plain = append(plain, pp...)
				md5s = append(md5s, r.MD5()...)
			}
			if sum := md5.Sum(plain); hex.EncodeToString(sum[:]) != v.PlainMD5 {
				t.Fatalf("plaintext MD5 %x, vector %s", sum, v.PlainMD5)
			}
			var oc format.ObjectChecksum
			if ck.Algorithm != format.ChecksumNone {
				oc = format.ObjectChecksum{Kind: ck, Value: plainChecksum(ck.Algorithm, plain)}
				if !ck.FullObject {
					oc.Value = plainChecksum(ck.Algorithm, bytes.Join(sums, nil))
				}
				if hex.EncodeToString(oc.Value) != v.Checksum || oc.String(len(v.Parts)) != v.ChecksumS3 {
					t.Fatalf("object checksum %x (%s), vector %s (%s)", oc.Value, oc.String(len(v.Parts)), v.Checksum, v.ChecksumS3)
				}
				if ck.FullObject { // as the gateway computes it at Complete: the parts' CRCs combined
					var lens []int64
					for _, p := range v.Parts {
						lens = append(lens, p.PlainSize)
					}
					if c, err := checksum.CombineAll(ck.Algorithm, sums, lens); err != nil || hex.EncodeToString(c) != v.Checksum {
						t.Fatalf("CombineAll of the parts' CRCs %x, %v; vector %s", c, err, v.Checksum)
					}
				}
			} else if v.Checksum != "" || v.ChecksumS3 != "" {
				t.Fatalf("vector without a checksum kind has checksum %q", v.Checksum)
			}
			tail, etag, err := format.SealTailChecksumWithRand(k, bytes.NewReader(unhex(t, v.ManifestNonce)), facts, oc)
			if err != nil || hex.EncodeToString(tail) != v.Tail {
				t.Fatalf("tail %x\nvector %s (%v)", tail, v.Tail, err)
			}
			if v.ETag != "" {
				s := md5.Sum(md5s)
				if want := fmt.Sprintf("%x-%d", s, len(v.Parts)); v.ETag != want || v.ETagMD5 != hex.EncodeToString(s[:]) || !bytes.Equal(etag, s[:]) {
					t.Fatalf("vector ETag %s, the MD5 of the parts' MD5s gives %s (SealTail %x)", v.ETag, want, etag)
				}
			} else if v.ETagMD5 != hex.EncodeToString(make([]byte, 16)) || etag != nil {
				t.Fatalf("vector without ETag has ETag MD5 %s (SealTail %x)", v.ETagMD5, etag)
			}
			stored = append(stored, tail...)
			if shaHex(stored) != v.StoredSHA256 || int64(len(stored)) != v.StoredSize || (v.StoredHex != "" && hex.EncodeToString(stored) != v.StoredHex) {
				t.Fatal("object differs from the vector")
			}
			// The footer and the body as the vector lists them.
			if binary.BigEndian.Uint32(tail[len(tail)-12:]) != uint32(len(tail)-12) || string(tail[len(tail)-8:]) != "s3seal/3" ||
				len(v.ManifestBody)/2+12+16+12 != len(tail) || !strings.Contains(v.ManifestBody, v.PartsDigest) {
				t.Fatalf("tail of %d bytes, body of %d", len(tail), len(v.ManifestBody)/2)
			}
			got, tl, err := readV3(k, stored)
			if err != nil || !bytes.Equal(got, plain) || tl.Parts != len(v.Parts) || !bytes.Equal(tl.ETagMD5, etag) {
				t.Fatalf("format read: %v", err)
			}
			if tl.Checksum.Kind != ck || !bytes.Equal(tl.Checksum.Value, oc.Value) || (ck.Algorithm != format.ChecksumNone && tl.Checksum.String(tl.Parts) != v.ChecksumS3) {
				t.Fatalf("tail checksum %+v, vector %#x %s", tl.Checksum, v.ChecksumKind, v.Checksum)
			}

			// The first part's record.
			pr := v.PartRecord
			f := facts[0]
			pf := format.PartFacts{MD5: f.MD5, PlainSize: f.PlainSize, Salt: f.Salt}
			if sums != nil {
				pf.Checksum = format.PartChecksum{Algorithm: ck.Algorithm, Value: sums[0]}
			}
			name, fits, err := format.PartRecordKeyWithRand(k, bytes.NewReader(unhex(t, pr.Nonce)), v.Bucket, v.Key, v.BackendUploadID, pr.Part, `"`+pr.BackendETag+`"`, pf)
			if err != nil || !fits || name != pr.Key || pr.Part != v.Parts[0].Number {
				t.Fatalf("part record %q\nvector      %q (%v)", name, pr.Key, err)
			}
			r, err := format.ParseUploadRecord(v.BackendUploadID, pr.Key)
			if err != nil || r.Part != pr.Part || r.ETag != pr.BackendETag {
				t.Fatalf("part record parsed as %+v, %v", r, err)
			}
			of, err := k.OpenPartRecord(v.Bucket, v.Key, v.BackendUploadID, r)
			if err != nil || !bytes.Equal(of.MD5, f.MD5) || of.Salt != f.Salt || of.PlainSize != f.PlainSize ||
				of.Checksum.Algorithm != pf.Checksum.Algorithm || !bytes.Equal(of.Checksum.Value, pf.Checksum.Value) {
				t.Fatalf("part record opens to %+v, %v", of, err)
			}
			if idKey, ok := format.IDRecordKey(u); !ok || idKey != v.IDRecordKey {
				t.Fatalf("id record %q, vector %q", idKey, v.IDRecordKey)
			}

			// The independent decoder.
			sp, st, err := specdecode.DecryptMultipartV3(unhex(t, v.OK), stored)
			if err != nil || !bytes.Equal(sp, plain) || st.ETag() != v.ETag || hex.EncodeToString(st.D) != v.PartsDigest || st.Size != int64(len(tail)) ||
				int(st.Checksum) != v.ChecksumKind || !bytes.Equal(st.ChecksumValue, oc.Value) {
				t.Fatalf("specdecode: %v", err)
			}
			su, err := specdecode.ParseUploadID(v.UploadID)
			if err != nil || su.Backend != v.BackendUploadID || su.Version != 3 || su.Ctx != v.Context || base64.StdEncoding.EncodeToString(su.Envelope) != v.Envelope || int(su.Checksum) != v.ChecksumKind {
				t.Fatalf("specdecode.ParseUploadID: %+v, %v", su, err)
			}
			rec, err := specdecode.OpenPartRecordV3(unhex(t, v.OK), v.Bucket, v.Key, v.BackendUploadID, pr.Key)
			if err != nil || !bytes.Equal(rec.Header(), unhex(t, v.Parts[0].Header)) || !bytes.Equal(rec.MD5, f.MD5) ||
				rec.ChecksumAlg != byte(pf.Checksum.Algorithm) || !bytes.Equal(rec.Checksum, pf.Checksum.Value) {
				t.Fatalf("specdecode.OpenPartRecordV3: %+v, %v", rec, err)
			}
		})
	}
	// The cases FORMAT.md 9 lists: none, COMPOSITE SHA256 and CRC32 and SHA512, FULL_OBJECT
	// CRC64NVME and CRC32C.
	for _, b := range []int{0, 0x05, 0x01, 0x06, 0x83, 0x82} {
		if !kinds[b] {
			t.Errorf("no vector of checksum kind %#x", b)
		}
	}
}

// TestSpecDecodeReadsFormatV3Objects: format-3 objects written by format's writers with fresh
// keys decode with the independent decoder; rearranged ones do not, nor as format 2.
func TestSpecDecodeReadsFormatV3Objects(t *testing.T) {
	r := rng(t)
	for range 6 {
		var numbers []int
		var sizes []int64
		for i := range 1 + r.IntN(4) {
			numbers = append(numbers, 2*i+1+r.IntN(2))
			sizes = append(sizes, r.Int64N(2*S+10))
		}
		withMD5 := r.IntN(2) == 0
		o := newV3Object(t, numbers, sizes, withMD5)
		ok := format.ObjectKeyBytes(o.key)
		got, st, err := specdecode.DecryptMultipartV3(ok, o.stored())
		if err != nil || !bytes.Equal(got, o.plain) || !bytes.Equal(st.ETagMD5, o.etagMD5) || st.K != len(numbers) {
			t.Fatalf("specdecode of parts %v sizes %v: %v", numbers, sizes, err)
		}
		if len(o.parts) > 1 {
			if _, _, err := specdecode.DecryptMultipartV3(ok, append(bytes.Join(o.parts[1:], nil), o.tail...)); err == nil {
				t.Fatal("specdecode read the object without its first part")
			}
		}
		if _, _, err := specdecode.DecryptMultipartV2(ok, bytes.Join(o.parts, nil), "x"); err == nil {
			t.Fatal("specdecode read a format-3 object as format 2")
		}
		e, err := specdecode.Open(o.env.Encode(), o.kek, "b", "o")
		if err != nil || e.Version != 3 {
			t.Fatalf("specdecode.Open: %+v, %v", e, err)
		}
		if d, err := specdecode.Decrypt(e, o.stored(), ""); err != nil || !bytes.Equal(d, o.plain) {
			t.Fatalf("specdecode.Decrypt: %v", err)
		}
		if _, err := specdecode.Decrypt(e, o.stored(), "AAAA"); err == nil {
			t.Fatal("specdecode.Decrypt read a format-3 object with manifest metadata")
		}
	}
}
