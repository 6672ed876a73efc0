package format

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"io"
	"testing"
)

// MultipartV3Vector is a format-3 multipart object (docs/FORMAT.md 3.6): its envelope
// (version 3), upload id, parts (headers of version 3), tail and the record of its first part.
type MultipartV3Vector struct {
	Name string `json:"name"`
	EnvelopeVector
	BackendUploadID string         `json:"backend_upload_id"`
	Context         string         `json:"ctx"`
	UploadID        string         `json:"upload_id"`
	UploadIDSuffix  string         `json:"upload_id_suffix"`
	Parts           []PartV2Vector `json:"parts"`
	PlainMD5        string         `json:"plain_md5"` // MD5 of the whole plaintext
	ETagMD5         string         `json:"etag_md5"`  // 32 zeros when no MD5s were computed
	ETag            string         `json:"etag"`      // "<etag_md5>-K", "" without MD5s
	ManifestNonce   string         `json:"manifest_nonce"`
	MK3             string         `json:"mk3"`
	PartsDigest     string         `json:"parts_digest"`
	ManifestBody    string         `json:"manifest_body"`
	Tail            string         `json:"tail"`
	// StoredSize and StoredSHA256 are of the whole stored object: the parts, then the tail.
	StoredSize   int64  `json:"stored_size"`
	StoredHex    string `json:"stored_hex,omitempty"`
	StoredSHA256 string `json:"stored_sha256"`
	// PartRecord is the part record of the first part (FORMAT.md 3.6.2).
	PartRecord  *PartRecordV3Vector `json:"part_record"`
	IDRecordKey string              `json:"id_record_key"`
	// The checksum of an upload created with one (FORMAT.md 3.6.6), absent for the others:
	// its kind (CK, the byte in the upload id and the tail), the algorithm's and the type's
	// names, the object's checksum (hex; the tail's extension is CK ‖ it) and that checksum
	// as S3 shows it (base64, "-K" for COMPOSITE). Each part has its checksum, and the part
	// record seals the first part's.
	ChecksumKind      int    `json:"checksum_kind,omitempty"`
	ChecksumAlgorithm string `json:"checksum_algorithm,omitempty"`
	ChecksumType      string `json:"checksum_type,omitempty"`
	Checksum          string `json:"checksum,omitempty"`
	ChecksumS3        string `json:"checksum_s3,omitempty"`
}

// PartRecordV3Vector is the format-3 record of one part: inputs (part number, backend ETag,
// nonce; the part's MD5, salt and size are the part's), intermediate values (RK3, the sealed
// plaintext, AAD) and the record's key name.
type PartRecordV3Vector struct {
	Part        int    `json:"part"`
	BackendETag string `json:"backend_etag"`
	Nonce       string `json:"nonce"`
	RK3         string `json:"rk3"`
	Facts       string `json:"facts"` // MD5(16) ‖ PartSalt(32) ‖ be64(plain size) [‖ alg(1) ‖ checksum]
	AAD         string `json:"aad"`
	Key         string `json:"key"`
}

func genMultipartV3(t *testing.T, name string, numbers []int, sizes []int64, computeMD5 bool, ctx string) MultipartV3Vector {
	return genMultipartV3Checksum(t, name, numbers, sizes, computeMD5, ctx, ChecksumKind{})
}

// genMultipartV3Checksum is genMultipartV3 for an upload created with checksum kind ck (none:
// the vector genMultipartV3 makes, byte for byte).
func genMultipartV3Checksum(t *testing.T, name string, numbers []int, sizes []int64, computeMD5 bool, ctx string, ck ChecksumKind) MultipartV3Vector {
	env, ok := genEnvelopeOfVersion(t, name, KindMultipart, Version3)
	e, err := DecodeEnvelope(env.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	backend := "vector-upload-" + name
	id := UploadID{Backend: backend, Envelope: e, Context: ctx, Checksum: ck}.String()
	v := MultipartV3Vector{Name: name, EnvelopeVector: env, BackendUploadID: backend, Context: ctx, UploadID: id, UploadIDSuffix: id[len(backend):]}
	var all, plainAll, md5s []byte
	var off int64
	var facts []ManifestPart
	var headers, sums [][]byte
	for i, n := range numbers {
		pv := PartV2Vector{Number: n, PartSalt: hexs(vectorBytes(name + " salt " + itoa(int64(n)))), PlainOffset: off, PlainSize: sizes[i], ComputeMD5: computeMD5}
		plain := VectorPlain(off, sizes[i])
		if ck.Algorithm != ChecksumNone {
			h := ck.Algorithm.New()
			h.Write(plain)
			sums = append(sums, h.Sum(nil))
			pv.Checksum = hexs(sums[i])
		}
		r, err := ok.newPartEncryptReaderV2(hexReader(pv.PartSalt), bytes.NewReader(plain), n, sizes[i], EncryptOptions{ComputeMD5: computeMD5})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		header := stored[:PartHeaderSize]
		if header[0] != Version3 {
			t.Fatalf("part header of version %d", header[0])
		}
		pv.Header = hexs(header)
		pv.PK = hexs(ok.partKeyV2([partInfoSize]byte(header[:partInfoSize]), header[partInfoSize:]))
		pv.StoredSize, pv.StoredSHA256 = int64(len(stored)), sha(stored)
		f := ManifestPart{Number: n, PlainSize: sizes[i]}
		copy(f.Salt[:], header[partInfoSize:])
		if computeMD5 {
			sum := md5.Sum(plain)
			pv.MD5 = hexs(sum[:])
			md5s = append(md5s, sum[:]...)
			f.MD5 = sum[:]
		}
		facts = append(facts, f)
		headers = append(headers, header)
		v.Parts = append(v.Parts, pv)
		all = append(all, stored...)
		plainAll = append(plainAll, plain...)
		off += sizes[i]
	}
	sum := md5.Sum(plainAll)
	v.PlainMD5 = hexs(sum[:])
	v.ETagMD5 = hexs(make([]byte, 16))
	if computeMD5 {
		s := md5.Sum(md5s)
		v.ETagMD5 = hexs(s[:])
		v.ETag = v.ETagMD5 + "-" + itoa(int64(len(numbers)))
	}
	v.ManifestNonce = hexs(vectorBytes(name + " manifest nonce")[:nonceSize])
	var oc ObjectChecksum
	if ck.Algorithm != ChecksumNone {
		oc = vectorObjectChecksum(ck, sums, plainAll)
		v.ChecksumKind, v.ChecksumAlgorithm, v.ChecksumType = int(ck.byteForm()), ck.Algorithm.String(), ck.Type()
		v.Checksum, v.ChecksumS3 = hexs(oc.Value), oc.String(len(numbers))
	}
	tail, etag, err := ok.sealTail(hexReader(v.ManifestNonce), facts, oc)
	if err != nil {
		t.Fatal(err)
	}
	if hexs(etag) != v.ETagMD5 && (etag != nil || computeMD5) {
		t.Fatalf("SealTail's ETag MD5 %x, the vector's %s", etag, v.ETagMD5)
	}
	v.Tail = hexs(tail)
	v.MK3 = hexs(deriveKey(ok.k[:], nil, []byte(infoManifestV3)))
	d := headersDigest3(headers)
	v.PartsDigest = hexs(d[:])
	// The body, as the tail's AEAD opens it (an intermediate value of the vector).
	sealed := tail[:len(tail)-int(TailFooterSize)]
	body, err := ok.tailAEAD().Open(nil, sealed[:nonceSize], sealed[nonceSize:], []byte(infoManifestV3))
	if err != nil {
		t.Fatal(err)
	}
	v.ManifestBody = hexs(body)
	all = append(all, tail...)
	v.StoredSize, v.StoredSHA256 = int64(len(all)), sha(all)
	if len(all) <= 256 {
		v.StoredHex = hexs(all)
	}
	idKey, fits := IDRecordKey(UploadID{Backend: backend, Envelope: e, Context: ctx, Checksum: ck})
	if !fits {
		t.Fatal("id record too long")
	}
	v.IDRecordKey = idKey

	f := facts[0]
	betag := hexs(vectorBytes(name + " backend etag")[:16])
	rv := &PartRecordV3Vector{Part: f.Number, BackendETag: betag, Nonce: hexs(vectorBytes(name + " record nonce")[:nonceSize])}
	rv.RK3 = hexs(deriveKey(ok.k[:], nil, []byte(infoPartRecordV3)))
	var md [16]byte
	copy(md[:], f.MD5)
	facts0 := binary.BigEndian.AppendUint64(append(md[:], f.Salt[:]...), uint64(f.PlainSize))
	pf := PartFacts{MD5: f.MD5, PlainSize: f.PlainSize, Salt: f.Salt}
	if ck.Algorithm != ChecksumNone {
		pf.Checksum = PartChecksum{Algorithm: ck.Algorithm, Value: sums[0]}
		facts0 = append(append(facts0, byte(ck.Algorithm)), sums[0]...)
	}
	rv.Facts = hexs(facts0)
	rv.AAD = hexs(partRecordAAD(infoPartRecordV3, env.Bucket, env.Key, backend, f.Number, betag))
	rv.Key, fits, err = ok.partRecordKey(hexReader(rv.Nonce), env.Bucket, env.Key, backend, f.Number, `"`+betag+`"`, pf)
	if err != nil || !fits {
		t.Fatal(err)
	}
	v.PartRecord = rv
	return v
}

// vectorObjectChecksum is the object checksum of FORMAT.md 3.6.6, computed from its definition:
// for COMPOSITE the algorithm's hash of the parts' checksums sums concatenated, for
// FULL_OBJECT the CRC of the whole plaintext (not combined from the parts').
func vectorObjectChecksum(ck ChecksumKind, sums [][]byte, plain []byte) ObjectChecksum {
	h := ck.Algorithm.New()
	if ck.FullObject {
		h.Write(plain)
	} else {
		h.Write(bytes.Join(sums, nil))
	}
	return ObjectChecksum{Kind: ck, Value: h.Sum(nil)}
}
