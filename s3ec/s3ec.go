// Package s3ec reads objects written by the AWS S3 Encryption Client in its v2 format, so that
// teams that used the SDK's client-side encryption can switch to the gateway without rewriting
// their data.
//
// The format (from the S3 Encryption Client's documentation): user metadata x-amz-key-v2 (the
// KMS CiphertextBlob of the data key), x-amz-iv (12 bytes), x-amz-cek-alg "AES/GCM/NoPadding",
// x-amz-wrap-alg "kms+context", x-amz-tag-len "128", x-amz-matdesc (a JSON object: the KMS
// encryption context, including "aws:x-amz-cek-alg") and x-amz-unencrypted-content-length. The
// body is AES-256-GCM over the whole object, the 16-byte tag appended. Instruction-file
// metadata (a separate KEY.instruction object) is not supported.
//
// GCM's tag covers the whole object, so nothing may be released before all of it was read, and
// what is released must come from the very bytes that were verified: Open reads the stored
// object once, copies its ciphertext to a Spool (a local temporary file, never plaintext) while
// hashing it with GHASH (hand-written in ghash.go: the standard library offers GCM only as a
// one-shot AEAD), checks the tag, and only then returns a reader that decrypts the requested
// range from the spool (AES-CTR with GCM's counter layout). Reading the backend a second time
// would let a backend that answers honestly once and differently the next time slip altered
// bytes past the check; this package has no API that decrypts bytes it did not verify. Verify
// checks an object without keeping anything.
package s3ec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Metadata names, without the "x-amz-meta-" prefix S3 adds to user metadata.
const (
	MetaKey       = "x-amz-key-v2"
	MetaIV        = "x-amz-iv"
	MetaCEKAlg    = "x-amz-cek-alg"
	MetaWrapAlg   = "x-amz-wrap-alg"
	MetaMatDesc   = "x-amz-matdesc"
	MetaTagLen    = "x-amz-tag-len"
	MetaPlainSize = "x-amz-unencrypted-content-length"
)

// TagSize is the GCM tag appended to the body.
const TagSize = 16

// Errors.
var (
	// ErrAuth: the object does not authenticate (tampered, truncated, wrong key).
	ErrAuth = errors.New("s3ec: authentication failed")
	// ErrUnsupported: metadata of a variant this package does not read.
	ErrUnsupported = errors.New("s3ec: unsupported encryption client format")
	// ErrMalformed: metadata that cannot be parsed.
	ErrMalformed = errors.New("s3ec: malformed metadata")
)

// Object is what the metadata of an S3EC v2 object says.
type Object struct {
	WrappedKey []byte            // KMS CiphertextBlob of the data key
	IV         []byte            // 12 bytes
	Context    map[string]string // KMS encryption context (x-amz-matdesc)
	PlainSize  int64             // -1 if the metadata does not say
}

// Parse reads the metadata with get (a lookup of user metadata by name as above). It returns
// (nil, nil) when the object carries no S3EC v2 metadata.
func Parse(get func(name string) string) (*Object, error) {
	key := get(MetaKey)
	if key == "" {
		return nil, nil
	}
	if a := get(MetaCEKAlg); a != "AES/GCM/NoPadding" {
		return nil, fmt.Errorf("%w: content cipher %q", ErrUnsupported, a)
	}
	if w := get(MetaWrapAlg); w != "kms+context" {
		return nil, fmt.Errorf("%w: key wrapping %q", ErrUnsupported, w)
	}
	if t := get(MetaTagLen); t != "" && t != "128" {
		return nil, fmt.Errorf("%w: tag length %q", ErrUnsupported, t)
	}
	o := &Object{PlainSize: -1}
	var err error
	if o.WrappedKey, err = base64.StdEncoding.DecodeString(key); err != nil || len(o.WrappedKey) == 0 {
		return nil, fmt.Errorf("%w: %s is not base64", ErrMalformed, MetaKey)
	}
	if o.IV, err = base64.StdEncoding.DecodeString(get(MetaIV)); err != nil || len(o.IV) != 12 {
		return nil, fmt.Errorf("%w: %s must be 12 bytes of base64", ErrMalformed, MetaIV)
	}
	if err := json.Unmarshal([]byte(get(MetaMatDesc)), &o.Context); err != nil {
		return nil, fmt.Errorf("%w: %s is not a JSON object of strings", ErrMalformed, MetaMatDesc)
	}
	if o.Context["aws:x-amz-cek-alg"] != "AES/GCM/NoPadding" {
		return nil, fmt.Errorf("%w: %s lacks aws:x-amz-cek-alg", ErrMalformed, MetaMatDesc)
	}
	if s := get(MetaPlainSize); s != "" {
		if o.PlainSize, err = strconv.ParseInt(s, 10, 64); err != nil || o.PlainSize < 0 {
			return nil, fmt.Errorf("%w: %s %q", ErrMalformed, MetaPlainSize, s)
		}
	}
	return o, nil
}

// PlainSizeOf returns the plaintext size of an object stored in storedSize bytes.
func (o *Object) PlainSizeOf(storedSize int64) (int64, error) {
	if storedSize < TagSize {
		return 0, fmt.Errorf("%w: %d stored bytes cannot hold the tag", ErrAuth, storedSize)
	}
	p := storedSize - TagSize
	if o.PlainSize >= 0 && o.PlainSize != p {
		return 0, fmt.Errorf("%w: %d stored bytes, metadata says %d plaintext bytes", ErrAuth, storedSize, o.PlainSize)
	}
	return p, nil
}

func (o *Object) block(dataKey []byte) (cipher.Block, error) {
	if len(dataKey) != 32 {
		return nil, fmt.Errorf("%w: data key of %d bytes", ErrMalformed, len(dataKey))
	}
	return aes.NewCipher(dataKey)
}

// counter returns GCM's counter block for keystream block i of the body (J0 + 1 + i).
func (o *Object) counter(i uint32) []byte {
	c := make([]byte, 16)
	copy(c, o.IV)
	binary.BigEndian.PutUint32(c[12:], 2+i)
	return c
}

// Spool holds an object's ciphertext between verification and decryption: Open writes it once,
// in order, then reads back the requested range. It must return exactly the bytes written (a
// local temporary file; the backend is the adversary, the local disk is not).
type Spool interface {
	io.Writer
	io.ReaderAt
}

// Verify reads the whole stored object (ciphertext followed by the tag) from src and checks
// the tag. It never returns plaintext and keeps nothing.
func (o *Object) Verify(dataKey []byte, src io.Reader, storedSize int64) error {
	return o.verify(dataKey, src, storedSize, io.Discard)
}

// Open reads the whole stored object (ciphertext followed by the tag) from src exactly once,
// writing the ciphertext to spool while it computes the tag, and checks the tag. Only if the
// object authenticates does it return a reader of the plaintext [off, off+n), decrypted from
// spool; otherwise it returns an error wrapping ErrAuth (or the spool's error) and no reader.
// dataKey may be zeroed once Open returns.
func (o *Object) Open(dataKey []byte, src io.Reader, storedSize int64, spool Spool, off, n int64) (io.Reader, error) {
	plain, err := o.PlainSizeOf(storedSize)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 || off > plain || n > plain-off {
		return nil, fmt.Errorf("s3ec: range [%d, +%d) outside a %d-byte object", off, n, plain)
	}
	if err := o.verify(dataKey, src, storedSize, spool); err != nil {
		return nil, err
	}
	b, err := o.block(dataKey)
	if err != nil {
		return nil, err
	}
	stream := cipher.NewCTR(b, o.counter(uint32(off/16)))
	if skip := off % 16; skip > 0 {
		var discard [16]byte
		stream.XORKeyStream(discard[:skip], discard[:skip])
	}
	return cipher.StreamReader{S: stream, R: io.NewSectionReader(spool, off, n)}, nil
}

// spoolError marks a failure to write the spool, so that it is not reported as tampering.
type spoolError struct{ err error }

func (e spoolError) Error() string { return "s3ec: spool: " + e.err.Error() }
func (e spoolError) Unwrap() error { return e.err }

// verify reads the stored object from src, copies the ciphertext to dst and checks the tag.
func (o *Object) verify(dataKey []byte, src io.Reader, storedSize int64, dst io.Writer) error {
	plain, err := o.PlainSizeOf(storedSize)
	if err != nil {
		return err
	}
	if plain > (1<<32-2)*16 {
		return fmt.Errorf("%w: object larger than GCM allows", ErrUnsupported)
	}
	b, err := o.block(dataKey)
	if err != nil {
		return err
	}
	var h, j0 [16]byte
	b.Encrypt(h[:], h[:])
	copy(j0[:], o.IV)
	j0[15] = 1
	b.Encrypt(j0[:], j0[:])
	g := newGHASH(h[:])
	buf := make([]byte, 64<<10)
	left := plain
	for left > 0 {
		n, err := io.ReadFull(src, buf[:min(int64(len(buf)), left)])
		g.Write(buf[:n])
		if _, werr := dst.Write(buf[:n]); werr != nil {
			return spoolError{werr}
		}
		left -= int64(n)
		if err != nil {
			return fmt.Errorf("%w: object ends %d bytes early: %v", ErrAuth, left, err)
		}
	}
	var tag [TagSize]byte
	if _, err := io.ReadFull(src, tag[:]); err != nil {
		return fmt.Errorf("%w: tag missing: %v", ErrAuth, err)
	}
	if n, _ := src.Read(buf[:1]); n > 0 {
		return fmt.Errorf("%w: data after the tag", ErrAuth)
	}
	sum := g.sum()
	for i := range sum {
		sum[i] ^= j0[i]
	}
	if subtle.ConstantTimeCompare(sum[:], tag[:]) != 1 {
		return fmt.Errorf("%w: GCM tag mismatch", ErrAuth)
	}
	return nil
}
