// Package format implements version 1 of the s3seal encrypted object format described in
// docs/FORMAT.md: the envelope stored in the object's user metadata, the segmented AES-256-GCM
// data stream with its sealed MD5 trailer, the multipart part headers, and the size and range
// arithmetic the gateway needs to serve listings and ranged reads without decrypting.
//
// The format is s3seal's own (key commitment, a sealed per-object key that survives rewraps,
// parts keyed through an X25519 agreement so that any gateway process can encrypt any part
// without shared state), so no existing library implements it; it is hand-written here on top of
// the standard library's primitives only (crypto/aes, crypto/cipher, crypto/hkdf, crypto/ecdh,
// crypto/md5). The shape of the API follows minio/sio: small io.Reader based encrypt and decrypt
// readers, pure size functions, and typed errors.
//
// Every error returned by this package wraps one of ErrAuth, ErrMalformed, ErrVersion, ErrSize or
// ErrRange (test with errors.Is) and names the segment or field concerned, except errors coming
// from a caller-supplied io.Reader or io.Writer, which are returned unchanged.
//
// Decryption never releases a byte of a segment before that segment's tag has been verified.
package format
