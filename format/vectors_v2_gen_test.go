package format

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"io"
	"testing"
)

// PartV2Vector is one part of a format-2 multipart vector.
type PartV2Vector struct {
	Number       int    `json:"number"`
	PartSalt     string `json:"part_salt"`
	PlainOffset  int64  `json:"plain_offset"`
	PlainSize    int64  `json:"plain_size"`
	ComputeMD5   bool   `json:"compute_md5"`
	Header       string `json:"header"`
	PK           string `json:"pk"`
	StoredSize   int64  `json:"stored_size"`
	StoredSHA256 string `json:"stored_sha256"`
	MD5          string `json:"md5"` // "" when the part's MD5 was not computed
	// Checksum is the part's plaintext checksum of its upload's algorithm (format 3 uploads
	// created with a checksum, FORMAT.md 3.6.6; absent for the others).
	Checksum string `json:"checksum,omitempty"`
}

// MultipartV2Vector is a format-2 multipart object (docs/FORMAT.md 3.5): its envelope (version
// 2), upload id, parts and part manifest.
type MultipartV2Vector struct {
	Name string `json:"name"`
	EnvelopeVector
	BackendUploadID string         `json:"backend_upload_id"`
	Context         string         `json:"ctx"`
	UploadID        string         `json:"upload_id"`
	UploadIDSuffix  string         `json:"upload_id_suffix"`
	Parts           []PartV2Vector `json:"parts"`
	StoredSize      int64          `json:"stored_size"`
	StoredSHA256    string         `json:"stored_sha256"`
	PlainMD5        string         `json:"plain_md5"` // MD5 of the whole plaintext
	ETagMD5         string         `json:"etag_md5"`  // 32 zeros when no MD5s were computed
	ETag            string         `json:"etag"`      // "<etag_md5>-K", "" without MD5s
	ManifestNonce   string         `json:"manifest_nonce"`
	MK              string         `json:"mk"`
	PartsDigest     string         `json:"parts_digest"`
	ManifestBody    string         `json:"manifest_body"`
	Manifest        string         `json:"manifest"`
	// PartRecord is the upload record of the first part (FORMAT.md 3.5.3), for vectors with MD5s.
	PartRecord  *PartRecordVector `json:"part_record,omitempty"`
	IDRecordKey string            `json:"id_record_key"`
}

// PartRecordVector is the upload record of one part (docs/FORMAT.md 3.5.3): inputs (part
// number, backend ETag, nonce, the part's MD5), intermediate values (RK, AAD) and the record's
// key name.
type PartRecordVector struct {
	Part        int    `json:"part"`
	BackendETag string `json:"backend_etag"`
	Nonce       string `json:"nonce"`
	MD5         string `json:"md5"`
	RK          string `json:"rk"`
	AAD         string `json:"aad"`
	Key         string `json:"key"`
}

func genMultipartV2(t *testing.T, name string, numbers []int, sizes []int64, computeMD5 bool, ctx string) MultipartV2Vector {
	env, ok := genEnvelopeOfVersion(t, name, KindMultipart, Version2)
	e, err := DecodeEnvelope(env.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	backend := "vector-upload-" + name
	id := UploadID{Backend: backend, Envelope: e, Context: ctx}.String()
	v := MultipartV2Vector{Name: name, EnvelopeVector: env, BackendUploadID: backend, Context: ctx, UploadID: id, UploadIDSuffix: id[len(backend):]}
	var all, plainAll, md5s []byte
	var off int64
	var storedSizes []int64
	for i, n := range numbers {
		pv := PartV2Vector{Number: n, PartSalt: hexs(vectorBytes(name + " salt " + itoa(int64(n)))), PlainOffset: off, PlainSize: sizes[i], ComputeMD5: computeMD5}
		plain := VectorPlain(off, sizes[i])
		r, err := ok.newPartEncryptReaderV2(hexReader(pv.PartSalt), bytes.NewReader(plain), n, sizes[i], EncryptOptions{ComputeMD5: computeMD5})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		header := stored[:PartHeaderSize]
		pv.Header = hexs(header)
		pv.PK = hexs(ok.partKeyV2([partInfoSize]byte(header[:partInfoSize]), header[partInfoSize:]))
		pv.StoredSize, pv.StoredSHA256 = int64(len(stored)), sha(stored)
		if computeMD5 {
			sum := md5.Sum(plain)
			pv.MD5 = hexs(sum[:])
			md5s = append(md5s, sum[:]...)
		}
		v.Parts = append(v.Parts, pv)
		all = append(all, stored...)
		plainAll = append(plainAll, plain...)
		storedSizes = append(storedSizes, int64(len(stored)))
		off += sizes[i]
	}
	v.StoredSize, v.StoredSHA256 = int64(len(all)), sha(all)
	sum := md5.Sum(plainAll)
	v.PlainMD5 = hexs(sum[:])

	l, err := NewLayout(numbers, storedSizes)
	if err != nil {
		t.Fatal(err)
	}
	for i := range l {
		salt, _ := hex.DecodeString(v.Parts[i].PartSalt)
		copy(l[i].ID[:], salt)
	}
	var etag []byte
	v.ETagMD5 = hexs(make([]byte, 16))
	if computeMD5 {
		s := md5.Sum(md5s)
		etag = s[:]
		v.ETagMD5 = hexs(etag)
		v.ETag = v.ETagMD5 + "-" + itoa(int64(len(numbers)))
	}
	v.ManifestNonce = hexs(vectorBytes(name + " manifest nonce")[:nonceSize])
	v.Manifest, err = ok.sealManifest(hexReader(v.ManifestNonce), l, etag)
	if err != nil {
		t.Fatal(err)
	}
	v.MK = hexs(deriveKey(ok.k[:], nil, []byte(infoManifestV2)))
	d := layoutDigest(l)
	v.PartsDigest = hexs(d[:])
	// The body, as the manifest's AEAD opens it (an intermediate value of the vector).
	raw, _ := base64.StdEncoding.DecodeString(v.Manifest)
	body, err := ok.manifestAEAD().Open(nil, raw[1:1+nonceSize], raw[1+nonceSize:], []byte(infoManifestV2))
	if err != nil {
		t.Fatal(err)
	}
	v.ManifestBody = hexs(body)
	idKey, fits := IDRecordKey(UploadID{Backend: backend, Envelope: e, Context: ctx})
	if !fits {
		t.Fatal("id record too long")
	}
	v.IDRecordKey = idKey
	if computeMD5 {
		p := v.Parts[0]
		sum, _ := hex.DecodeString(p.MD5)
		etag := hexs(vectorBytes(name + " backend etag")[:16])
		rv := &PartRecordVector{Part: p.Number, BackendETag: etag, Nonce: hexs(vectorBytes(name + " record nonce")[:nonceSize]), MD5: p.MD5}
		rv.RK = hexs(deriveKey(ok.k[:], nil, []byte(infoPartETag)))
		rv.AAD = hexs(partRecordAAD(infoPartETag, env.Bucket, env.Key, backend, p.Number, etag))
		rv.Key, fits, err = ok.partRecordKey(hexReader(rv.Nonce), env.Bucket, env.Key, backend, p.Number, `"`+etag+`"`, PartFacts{MD5: sum})
		if err != nil || !fits {
			t.Fatal(err)
		}
		v.PartRecord = rv
	}
	return v
}
