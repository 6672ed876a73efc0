// Package specdecode is a second, independent reader of the s3seal object format, written only
// from docs/FORMAT.md and importing nothing from this repository. Tests decode the gateway's
// output (and the known-answer vectors) with it to catch places where the implementation in
// package format and the written specification disagree. It is hand-written because the format
// is s3seal's own; it favours being obviously per-spec over speed: everything is in memory.
package specdecode

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// S is the segment size (section 1).
const S = 65536

func hkdf32(ikm, salt []byte, info string) []byte {
	k, err := hkdf.Key(sha256.New, ikm, salt, info, 32)
	if err != nil {
		panic(err)
	}
	return k
}

func gcm(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return a
}

func nonce(i uint64, flag uint32) []byte {
	n := binary.BigEndian.AppendUint64(nil, i)
	return binary.BigEndian.AppendUint32(n, flag)
}

func lp(s string) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...) }

// Envelope is an opened envelope (section 4).
type Envelope struct {
	Version, Kind, Wrap int
	KeyID               string
	Wrapped             []byte
	OK                  []byte
}

// envelopeFields is a parsed, not yet opened envelope.
type envelopeFields struct {
	version, kind, wrap byte
	keyID, wrapped      []byte
	es, kc, sealed      []byte
	head                []byte // all bytes before sealed OK
}

// parseEnvelope parses the binary envelope of section 4 without opening it.
func parseEnvelope(b []byte) (*envelopeFields, error) {
	if len(b) < 4 || b[0] < 1 || b[0] > 3 || b[1] > 1 || (b[2] != 1 && b[2] != 2) || b[3] != 16 {
		return nil, errors.New("envelope: bad version, kind, wrap or seg_shift")
	}
	if b[0] != 1 && b[1] != 1 {
		return nil, fmt.Errorf("envelope: version %d is for multipart objects only", b[0])
	}
	pos := 4
	field := func() ([]byte, error) {
		if len(b) < pos+2 {
			return nil, errors.New("envelope: truncated")
		}
		n := int(binary.BigEndian.Uint16(b[pos:]))
		if len(b) < pos+2+n {
			return nil, errors.New("envelope: truncated")
		}
		pos += 2 + n
		return b[pos-n : pos], nil
	}
	id, err := field()
	if err != nil {
		return nil, err
	}
	wrapped, err := field()
	if err != nil {
		return nil, err
	}
	if len(b) != pos+32+32+48 {
		return nil, errors.New("envelope: wrong length")
	}
	if b[2] == 2 && (len(id) != 0 || len(wrapped) != 0) {
		return nil, errors.New("envelope: SSE-C envelope with a key id or wrapped key")
	}
	return &envelopeFields{version: b[0], kind: b[1], wrap: b[2], keyID: id, wrapped: wrapped,
		es: b[pos : pos+32], kc: b[pos+32 : pos+64], sealed: b[pos+64:], head: b[:pos+64]}, nil
}

// Open parses the base64 envelope (section 4), opens the sealed OK with dk for the object
// bucket/key and checks the key commitment.
func Open(envB64 string, dk []byte, bucket, key string) (*Envelope, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(envB64)
	if err != nil {
		return nil, err
	}
	if base64.StdEncoding.EncodeToString(b) != envB64 {
		return nil, errors.New("envelope: non-canonical base64")
	}
	f, err := parseEnvelope(b)
	if err != nil {
		return nil, err
	}
	aad := append([]byte("s3seal/1 envelope"), f.head...)
	aad = append(append(aad, lp(bucket)...), lp(key)...)
	wk := hkdf32(dk, f.es, "s3seal/1 wrap")
	ok, err := gcm(wk).Open(nil, make([]byte, 12), f.sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("envelope: sealed OK: %w", err)
	}
	if subtle.ConstantTimeCompare(hkdf32(ok, nil, "s3seal/1 commit"), f.kc) != 1 {
		return nil, errors.New("envelope: key commitment mismatch")
	}
	return &Envelope{Version: int(f.version), Kind: int(f.kind), Wrap: int(f.wrap), KeyID: string(f.keyID),
		Wrapped: bytes.Clone(f.wrapped), OK: ok}, nil
}

// OpenEnvelope is Open returning the fields one by one (without the version: a caller that
// reads multipart objects needs Open, to choose between DecryptMultipart, DecryptMultipartV2
// and DecryptMultipartV3).
func OpenEnvelope(envB64 string, dk []byte, bucket, key string) (ok []byte, keyID string, wrapped []byte, kind int, err error) {
	e, err := Open(envB64, dk, bucket, key)
	if err != nil {
		return nil, "", nil, 0, err
	}
	return e.OK, e.KeyID, e.Wrapped, e.Kind, nil
}

func partInfo(kind byte, part uint32, p uint64) []byte {
	b := []byte{1, kind, 0, 0}
	b = binary.BigEndian.AppendUint32(b, part)
	return binary.BigEndian.AppendUint64(b, p)
}

// decryptStream decrypts Seg_0 … Seg_{n-1} ‖ Trailer of p plaintext bytes (section 3.2); data
// must be exactly that long.
func decryptStream(pk []byte, p uint64, data []byte) (plain, md5 []byte, err error) {
	plain, md5, _, err = decryptStreamChecksum(pk, p, data, 0)
	return plain, md5, err
}

// decryptStreamChecksum is decryptStream for a stream whose trailer seals MD5 ‖ C, C of ckSize
// bytes (0: the trailer of section 3.2); it returns C too (nil for ckSize 0).
func decryptStreamChecksum(pk []byte, p uint64, data []byte, ckSize int) (plain, md5, ck []byte, err error) {
	n := max(1, (p+S-1)/S)
	if uint64(len(data)) != p+16*n+32+uint64(ckSize) {
		return nil, nil, nil, errors.New("stream: wrong length")
	}
	a := gcm(pk)
	for i := uint64(0); i < n; i++ {
		size, final := uint64(S), uint32(0)
		if i == n-1 {
			size, final = p-i*S, 1
		}
		seg := data[:size+16]
		data = data[size+16:]
		pt, err := a.Open(nil, nonce(i, final), seg, nil)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("segment %d: %w", i, err)
		}
		plain = append(plain, pt...)
	}
	t, err := a.Open(nil, nonce(n, 2), data, nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("trailer: %w", err)
	}
	md5 = t[:16]
	if ckSize > 0 {
		ck = t[16:]
	}
	if bytes.Equal(md5, make([]byte, 16)) {
		md5 = nil
	}
	return plain, md5, ck, nil
}

// DecryptSingle decrypts a single-part object (section 3.3). md5 is nil if the trailer holds
// zeros.
func DecryptSingle(ok, stored []byte) (plain []byte, md5 []byte, err error) {
	plain, md5, _, err = DecryptSingleChecksum(ok, stored, 0)
	return plain, md5, err
}

// DecryptSingleChecksum decrypts a single-part object that seals a checksum of algorithm number
// alg (x-amz-meta-s3seal-ck, ChecksumOfMeta; 0 for none, then it is DecryptSingle): the
// algorithm's number is byte 2 of the object's PartInfo, the trailer seals MD5 ‖ C (32 + the
// algorithm's size bytes), and the stored size is that of the segments and that trailer. It
// returns C, after checking that it is the algorithm's checksum of the plaintext.
func DecryptSingleChecksum(ok, stored []byte, alg byte) (plain, md5, ck []byte, err error) {
	size := ChecksumSize(alg)
	if alg != 0 && size == 0 {
		return nil, nil, nil, fmt.Errorf("single: unknown checksum algorithm %d", alg)
	}
	e := int64(len(stored)) - 32 - int64(size)
	if e < 16 {
		return nil, nil, nil, errors.New("single: stored size too small")
	}
	q, r := e/(S+16), e%(S+16)
	var p int64
	switch {
	case r == 0 && q >= 1:
		p = q * S
	case r == 16 && q == 0:
		p = 0
	case r >= 17:
		p = q*S + r - 16
	default:
		return nil, nil, nil, errors.New("single: invalid stored size")
	}
	pi := partInfo(0, 0, uint64(p))
	pi[2] = alg
	pk := hkdf32(ok, nil, "s3seal/1 part"+string(pi))
	plain, md5, ck, err = decryptStreamChecksum(pk, uint64(p), stored, size)
	if err != nil || alg == 0 {
		return plain, md5, ck, err
	}
	if want, _ := Checksum(alg, plain); !bytes.Equal(want, ck) {
		return nil, nil, nil, fmt.Errorf("single: the trailer's %s is not the plaintext's", ChecksumName(alg))
	}
	return plain, md5, ck, nil
}

// DecryptMultipart walks the part headers of a format-1 multipart object (section 3.4, envelope
// version 1) and returns the concatenated plaintext. Part numbers must strictly increase, and
// every header must be of version 1.
func DecryptMultipart(ok, stored []byte) (plain []byte, err error) {
	upriv, err := ecdh.X25519().NewPrivateKey(hkdf32(ok, nil, "s3seal/1 upload x25519"))
	if err != nil {
		return nil, err
	}
	upub := upriv.PublicKey().Bytes()
	last := uint32(0)
	for len(stored) > 0 {
		if len(stored) < 48 {
			return nil, errors.New("multipart: truncated part header")
		}
		h := stored[:48]
		num, p := binary.BigEndian.Uint32(h[4:8]), binary.BigEndian.Uint64(h[8:16])
		if h[0] != 1 || h[1] != 1 || h[2] != 0 || h[3] != 0 || num <= last || num > 10000 {
			return nil, fmt.Errorf("multipart: bad header after part %d", last)
		}
		last = num
		n := max(1, (p+S-1)/S)
		size := p + 16*n + 32
		if p > 1<<48 || uint64(len(stored)-48) < size {
			return nil, fmt.Errorf("part %d: truncated", num)
		}
		ephPub, err := ecdh.X25519().NewPublicKey(h[16:48])
		if err != nil {
			return nil, err
		}
		shared, err := upriv.ECDH(ephPub)
		if err != nil {
			return nil, err
		}
		pk := hkdf32(shared, append(bytes.Clone(h[16:48]), upub...), "s3seal/1 part"+string(h[:16]))
		pt, _, err := decryptStream(pk, p, stored[48:48+size])
		if err != nil {
			return nil, fmt.Errorf("part %d: %w", num, err)
		}
		plain = append(plain, pt...)
		stored = stored[48+size:]
	}
	if last == 0 {
		return nil, errors.New("multipart: no parts")
	}
	return plain, nil
}
