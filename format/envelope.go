package format

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"io"
)

// Kind is the envelope's object kind.
type Kind uint8

// Object kinds.
const (
	KindSingle    Kind = kindSingle
	KindMultipart Kind = kindMultipart
)

// Wrap says where the key-encryption key DK of an envelope comes from.
type Wrap uint8

// Wrap values.
const (
	// WrapProvider: DK is a data key from the key provider; KeyID and WrappedKey locate it.
	WrapProvider Wrap = 1
	// WrapCustomerKey: DK is the SSE-C customer key; KeyID and WrappedKey are empty.
	WrapCustomerKey Wrap = 2
)

const (
	saltSize     = 32
	commitSize   = 32
	sealedOKSize = KeySize + TagSize
	envAADLabel  = "s3seal/1 envelope"
	// envFixedSize is version, kind, wrap, seg_shift, two length fields, ES, KC and sealed OK.
	envFixedSize = 4 + 2 + 2 + saltSize + commitSize + sealedOKSize
)

// Envelope is the object metadata that carries the sealed object key (docs/FORMAT.md 4).
// Changing any field after decoding makes Open fail.
type Envelope struct {
	version    byte
	Kind       Kind
	Wrap       Wrap
	KeyID      string
	WrappedKey []byte

	salt   [saltSize]byte
	commit [commitSize]byte
	sealed [sealedOKSize]byte
}

// SealParams describes the envelope to write.
type SealParams struct {
	Kind       Kind
	Wrap       Wrap
	KeyID      string
	WrappedKey []byte
	Bucket     string
	Object     string
}

// EncryptionContext returns the key-provider encryption context for a bucket's data keys.
func EncryptionContext(bucket string) map[string]string {
	return map[string]string{"gateway": "s3seal", "bucket": bucket}
}

// SealEnvelope seals ok under kek (the data key DK, or the SSE-C customer key) for the object
// p.Bucket/p.Object. A fresh envelope salt ES is drawn on every call.
func SealEnvelope(ok *ObjectKey, kek []byte, p SealParams) (*Envelope, error) {
	return sealEnvelope(rand.Reader, ok, kek, p)
}

func sealEnvelope(rnd io.Reader, ok *ObjectKey, kek []byte, p SealParams) (*Envelope, error) {
	if ok == nil {
		return nil, errf(ErrMalformed, "envelope: nil object key")
	}
	if len(kek) != KeySize {
		return nil, errf(ErrMalformed, "envelope: key-encryption key has %d bytes, want %d", len(kek), KeySize)
	}
	e := &Envelope{version: envelopeVersion(ok, p.Kind), Kind: p.Kind, Wrap: p.Wrap, KeyID: p.KeyID, WrappedKey: append([]byte(nil), p.WrappedKey...)}
	if err := e.check(); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(rnd, e.salt[:]); err != nil {
		return nil, err
	}
	kc := deriveKey(ok.k[:], nil, []byte(infoCommit))
	copy(e.commit[:], kc)
	wk := deriveKey(kek, e.salt[:], []byte(infoWrap))
	aead := newAEAD(wk)
	var nonce [12]byte
	aead.Seal(e.sealed[:0], nonce[:], ok.k[:], e.aad(p.Bucket, p.Object))
	return e, nil
}

// envelopeVersion is the format version of a new envelope around ok: the version of the
// envelope ok was opened from (a copy or rewrap keeps the data, so it keeps the version), else
// format 2 for a new multipart object and format 1 for a new single-part object.
func envelopeVersion(ok *ObjectKey, kind Kind) byte {
	switch {
	case ok.version != 0:
		return ok.version
	case kind == KindMultipart:
		return Version3
	default:
		return Version
	}
}

// Version returns the envelope's format version (1, 2 or 3).
func (e *Envelope) Version() int { return int(e.version) }

// check validates the public fields.
func (e *Envelope) check() error {
	if e.Kind != KindSingle && e.Kind != KindMultipart {
		return errf(ErrVersion, "envelope: unknown kind %d", e.Kind)
	}
	switch {
	case e.version == Version:
	case (e.version == Version2 || e.version == Version3) && e.Kind == KindMultipart:
	default:
		return errf(ErrVersion, "envelope: version %d with kind %d", e.version, e.Kind)
	}
	switch e.Wrap {
	case WrapProvider:
	case WrapCustomerKey:
		if e.KeyID != "" || len(e.WrappedKey) != 0 {
			return errf(ErrMalformed, "envelope: customer-key envelope with a key id or wrapped key")
		}
	default:
		return errf(ErrVersion, "envelope: unknown wrap %d", e.Wrap)
	}
	if len(e.KeyID) > 0xffff {
		return errf(ErrMalformed, "envelope: key id longer than 65535 bytes")
	}
	if len(e.WrappedKey) > 0xffff {
		return errf(ErrMalformed, "envelope: wrapped key longer than 65535 bytes")
	}
	return nil
}

// header encodes every envelope byte before the sealed OK.
func (e *Envelope) header() []byte {
	b := make([]byte, 0, envFixedSize+len(e.KeyID)+len(e.WrappedKey))
	b = append(b, e.version, byte(e.Kind), byte(e.Wrap), segShift)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.KeyID)))
	b = append(b, e.KeyID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.WrappedKey)))
	b = append(b, e.WrappedKey...)
	b = append(b, e.salt[:]...)
	b = append(b, e.commit[:]...)
	return b
}

func appendLP(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// aad is "s3seal/1 envelope" ‖ header ‖ lp(bucket) ‖ lp(object).
func (e *Envelope) aad(bucket, object string) []byte {
	b := append([]byte(envAADLabel), e.header()...)
	b = appendLP(b, bucket)
	return appendLP(b, object)
}

// Open unseals the object key with kek for the object bucket/object and checks the key
// commitment in constant time. Any mismatch returns an error wrapping ErrAuth.
func (e *Envelope) Open(kek []byte, bucket, object string) (*ObjectKey, error) {
	if len(kek) != KeySize {
		return nil, errf(ErrAuth, "envelope: key-encryption key has %d bytes, want %d", len(kek), KeySize)
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	wk := deriveKey(kek, e.salt[:], []byte(infoWrap))
	aead := newAEAD(wk)
	var nonce [12]byte
	ok := &ObjectKey{version: e.version}
	if _, err := aead.Open(ok.k[:0], nonce[:], e.sealed[:], e.aad(bucket, object)); err != nil {
		return nil, errf(ErrAuth, "envelope: sealed object key does not open (wrong key, bucket or object name, or tampered envelope)")
	}
	kc := deriveKey(ok.k[:], nil, []byte(infoCommit))
	defer clear(kc)
	if subtle.ConstantTimeCompare(kc, e.commit[:]) != 1 {
		ok.Zero()
		return nil, errf(ErrAuth, "envelope: key commitment mismatch")
	}
	return ok, nil
}

// Encode returns the envelope as standard padded base64, the value of MetaEnvelope.
func (e *Envelope) Encode() string {
	return base64.StdEncoding.EncodeToString(e.bytes())
}

// bytes is the binary envelope.
func (e *Envelope) bytes() []byte { return append(e.header(), e.sealed[:]...) }

// DecodeEnvelope parses the value of MetaEnvelope. Errors wrap ErrMalformed (bad base64, wrong
// length, trailing bytes) or ErrVersion (unknown version, kind, wrap or seg_shift).
func DecodeEnvelope(s string) (*Envelope, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	// The decoder skips CR and LF; only the canonical encoding is accepted.
	if err != nil || base64.StdEncoding.EncodeToString(b) != s {
		return nil, errf(ErrMalformed, "envelope: invalid or non-canonical base64")
	}
	return parseEnvelope(b)
}

// parseEnvelope parses a binary envelope.
func parseEnvelope(b []byte) (*Envelope, error) {
	if len(b) < envFixedSize {
		return nil, errf(ErrMalformed, "envelope: %d bytes, at least %d needed", len(b), envFixedSize)
	}
	if b[0] != Version && b[0] != Version2 && b[0] != Version3 {
		return nil, errf(ErrVersion, "envelope: version %d", b[0])
	}
	if b[3] != segShift {
		return nil, errf(ErrVersion, "envelope: seg_shift %d", b[3])
	}
	e := &Envelope{version: b[0], Kind: Kind(b[1]), Wrap: Wrap(b[2])}
	rest := b[4:]
	keyID, rest, okID := cutLen16(rest)
	wrapped, rest, okWrapped := cutLen16(rest)
	switch {
	case !okID:
		return nil, errf(ErrMalformed, "envelope: key id field truncated")
	case !okWrapped:
		return nil, errf(ErrMalformed, "envelope: wrapped key field truncated")
	case len(rest) != saltSize+commitSize+sealedOKSize:
		return nil, errf(ErrMalformed, "envelope: %d bytes after the wrapped key, want %d", len(rest), saltSize+commitSize+sealedOKSize)
	}
	e.KeyID = string(keyID)
	if len(wrapped) > 0 {
		e.WrappedKey = append([]byte(nil), wrapped...)
	}
	copy(e.salt[:], rest)
	copy(e.commit[:], rest[saltSize:])
	copy(e.sealed[:], rest[saltSize+commitSize:])
	if err := e.check(); err != nil {
		return nil, err
	}
	return e, nil
}

// cutLen16 splits be16(len) ‖ field off b.
func cutLen16(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}
