package format

import (
	"crypto/rand"
	"io"
)

// Format 2 and 3 multipart parts (docs/FORMAT.md 3.5, 3.6). A part is keyed from the object key
// itself and a random per-part salt carried in the part header:
//
//	Header = PartInfo(version 2 or 3, kind 1, part number, p) ‖ PartSalt      (16 + 32 bytes)
//	PK     = HKDF(OK, PartSalt, "s3seal/2 part" ‖ PartInfo, 32)
//
// Only a holder of OK (a gateway that can unwrap the envelope, or the SSE-C key holder) can
// produce a part that verifies; the upload id carries the sealed envelope, not a public key.

// partKeyV2 derives the format-2 part key from the part's PartInfo and salt.
func (k *ObjectKey) partKeyV2(pi [partInfoSize]byte, salt []byte) []byte {
	return deriveKey(k.k[:], salt, append([]byte(infoPartV2), pi[:]...))
}

// NewPartEncryptReader returns a reader of the stored bytes of part partNumber (its 48-byte
// header first) holding the size plaintext bytes read from src, encrypted under a part key
// derived from k and a fresh random salt (so a retried part never reuses a key). k must be a
// key of a format-3 object (opened from a format-3 envelope, or new: format 3), or of a
// format-2 object (the tests' vectors); its header carries that version.
func (k *ObjectKey) NewPartEncryptReader(src io.Reader, partNumber int, size int64, o EncryptOptions) (*EncryptReader, error) {
	return k.newPartEncryptReaderV2(rand.Reader, src, partNumber, size, o)
}

func (k *ObjectKey) newPartEncryptReaderV2(rnd, src io.Reader, partNumber int, size int64, o EncryptOptions) (*EncryptReader, error) {
	if k == nil {
		return nil, errf(ErrMalformed, "encrypt: nil object key")
	}
	ver := byte(Version3) // a new key makes a format-3 object
	switch k.version {
	case 0, Version3:
	case Version2:
		ver = Version2
	default:
		return nil, errf(ErrVersion, "encrypt: salted part under a key of format %d", k.version)
	}
	if partNumber < 1 || partNumber > MaxPartNumber {
		return nil, errf(ErrMalformed, "encrypt: part number %d outside 1..%d", partNumber, MaxPartNumber)
	}
	if size < 0 || size > MaxPlainSize {
		return nil, errf(ErrSize, "encrypt: invalid plaintext size %d", size)
	}
	var salt [partSaltSize]byte
	if _, err := io.ReadFull(rnd, salt[:]); err != nil {
		return nil, err
	}
	pi := partInfo(ver, kindMultipart, partNumber, size)
	r := newEncryptReader(src, k.partKeyV2(pi, salt[:]), size, o)
	r.stored = PartEncryptedSize(size)
	r.out = append(append(r.buf[:0], pi[:]...), salt[:]...)
	r.header = append([]byte(nil), r.out...)
	return r, nil
}

// partSaltSize is the size of a format-2 part salt (the last 32 bytes of the part header).
const partSaltSize = PartHeaderSize - partInfoSize
