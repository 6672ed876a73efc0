package format

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"io"
	"strings"
)

// HKDF info strings (docs/FORMAT.md section 2).
const (
	infoWrap   = "s3seal/1 wrap"
	infoCommit = "s3seal/1 commit"
	infoPart   = "s3seal/1 part"
	infoUpload = "s3seal/1 upload x25519"
	// Version 2 (multipart objects written since format 2).
	infoPartV2     = "s3seal/2 part"
	infoManifestV2 = "s3seal/2 manifest"

	kindSingle    = 0
	kindMultipart = 1
	partInfoSize  = 16
	uploadIDTag   = ".s1"
	// uploadIDSuffixLen is len(".s1") + 43 base64url characters of a 32-byte UPub.
	uploadIDSuffixLen = 3 + 43
)

// ObjectKey is the random per-object key OK. Call Zero when done with it.
type ObjectKey struct {
	k [KeySize]byte
	// version is the format version of the envelope the key was opened from (0 for a key
	// drawn by NewObjectKey): part headers must carry that version (no downgrade), and new
	// envelopes sealed around the key keep it, so a copy or rewrap stays readable.
	version byte
}

// NewObjectKey draws a fresh random object key.
func NewObjectKey() (*ObjectKey, error) { return newObjectKey(rand.Reader) }

func newObjectKey(rnd io.Reader) (*ObjectKey, error) {
	ok := new(ObjectKey)
	if _, err := io.ReadFull(rnd, ok.k[:]); err != nil {
		return nil, err
	}
	return ok, nil
}

// Zero overwrites the key material.
func (k *ObjectKey) Zero() {
	if k != nil {
		clear(k.k[:])
	}
}

// UploadPublicKey returns UPub = X25519(UPriv, 9) with UPriv = HKDF(OK, -, "s3seal/1 upload
// x25519", 32): the public key part encryption agrees on.
func (k *ObjectKey) UploadPublicKey() ([]byte, error) {
	priv, err := k.uploadPrivateKey()
	if err != nil {
		return nil, err
	}
	return priv.PublicKey().Bytes(), nil
}

func (k *ObjectKey) uploadPrivateKey() (*ecdh.PrivateKey, error) {
	upriv := deriveKey(k.k[:], nil, []byte(infoUpload))
	defer clear(upriv)
	priv, err := ecdh.X25519().NewPrivateKey(upriv)
	if err != nil {
		return nil, errf(ErrMalformed, "upload private key: %v", err)
	}
	return priv, nil
}

// deriveKey is HKDF-SHA256(ikm, salt, info) with a 32-byte output.
func deriveKey(ikm, salt, info []byte) []byte {
	out, err := hkdf.Key(sha256.New, ikm, salt, string(info), KeySize)
	if err != nil {
		// Only possible for output lengths above 255*32 bytes.
		panic("s3seal/format: hkdf: " + err.Error())
	}
	return out
}

// newAEAD builds AES-256-GCM under key and zeroes key.
func newAEAD(key []byte) cipher.AEAD {
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("s3seal/format: aes: " + err.Error()) // key is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("s3seal/format: gcm: " + err.Error())
	}
	return aead
}

// partInfo encodes the 16-byte PartInfo (docs/FORMAT.md 3.1) of format version ver.
func partInfo(ver byte, kind byte, part int, plain int64) [partInfoSize]byte {
	var b [partInfoSize]byte
	b[0] = ver
	b[1] = kind
	binary.BigEndian.PutUint32(b[4:8], uint32(part))
	binary.BigEndian.PutUint64(b[8:16], uint64(plain))
	return b
}

func partInfoLabel(pi [partInfoSize]byte) []byte {
	return append([]byte(infoPart), pi[:]...)
}

// singlePartKey is PK = HKDF(OK, -, "s3seal/1 part" ‖ PartInfo(0, 0, p), 32).
func (k *ObjectKey) singlePartKey(plain int64) []byte {
	return deriveKey(k.k[:], nil, partInfoLabel(partInfo(Version, kindSingle, 0, plain)))
}

// multipartKey is PK = HKDF(shared, EphPub ‖ UPub, "s3seal/1 part" ‖ PartInfo, 32).
func multipartKey(shared, ephPub, upub []byte, pi [partInfoSize]byte) []byte {
	salt := make([]byte, 0, 64)
	salt = append(append(salt, ephPub...), upub...)
	return deriveKey(shared, salt, partInfoLabel(pi))
}

// EncodeUploadID (format 1, kept to read and test format-1 uploads) appends ".s1" and the unpadded base64url form of upub to the backend's upload
// id (docs/FORMAT.md 3.4).
func EncodeUploadID(backendID string, upub []byte) string {
	return backendID + uploadIDTag + base64.RawURLEncoding.EncodeToString(upub)
}

// DecodeUploadID splits an upload id made by EncodeUploadID. It returns an error wrapping
// ErrMalformed if the suffix is missing or invalid or the backend id is empty.
func DecodeUploadID(id string) (backendID string, upub []byte, err error) {
	if len(id) <= uploadIDSuffixLen {
		return "", nil, errf(ErrMalformed, "upload id: too short for the s3seal suffix")
	}
	cut := len(id) - uploadIDSuffixLen
	if !strings.HasPrefix(id[cut:], uploadIDTag) {
		return "", nil, errf(ErrMalformed, "upload id: no %q suffix", uploadIDTag)
	}
	upub, err = base64.RawURLEncoding.Strict().DecodeString(id[cut+len(uploadIDTag):])
	if err != nil || len(upub) != KeySize {
		return "", nil, errf(ErrMalformed, "upload id: invalid upload public key")
	}
	return id[:cut], upub, nil
}
