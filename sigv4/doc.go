// Package sigv4 verifies the signatures and payload integrity of requests that
// S3 clients send to the gateway.
//
// The gateway sits between clients' credentials and the bucket, so it must
// authenticate exactly as strictly as S3 itself: AWS Signature Version 4 in the
// Authorization header or in a presigned query string, optionally the legacy
// Signature Version 2 (header and query), and every payload integrity promise a
// client makes — the signed SHA-256 of the payload, the chained signatures of an
// aws-chunked body and its trailer, the trailing or header checksums (CRC32,
// CRC32C, CRC64NVME, SHA-1, SHA-256, SHA-512, MD5, XXHASH64, XXHASH3,
// XXHASH128; the xxHashes from cespare/xxhash and zeebo/xxh3) and Content-MD5.
//
// # Why this is hand-written
//
// The AWS SDKs only sign. aws-sdk-go-v2/aws/signer/v4 computes a signature for
// a request it builds itself; it cannot check a signature it did not make, it
// has no notion of verifying a chain of aws-chunked chunk signatures while the
// body streams, of checking a signed trailer, of presign expiry rules, of
// SigV2, or of the exact S3 error codes a server must answer with. A server has
// to canonicalize the request as S3 does (not as the SDK's client-side helpers
// do: S3 decodes the path and query and re-encodes them once), refuse anything
// malformed with a typed error, and never hand out a byte of a signed chunk
// before that chunk's signature is verified. The code follows the style of the
// SDK signer: each SigV4 step (canonical request, string to sign, signing key,
// signature) is a small named function, and the tests reproduce AWS's
// published worked examples byte for byte.
//
// # Use
//
//	v := sigv4.NewVerifier(sigv4.Config{Region: "us-east-1", Secrets: store})
//	auth, err := v.Authenticate(r) // headers, query, clock, scope; no body read
//	if err != nil { ... }          // err is a *sigv4.Error with the S3 code
//	body := auth.Body(r.Body, r.Header)
//	n, err := io.Copy(dst, body)   // any failure is a *sigv4.Error, never io.EOF
//
// Bytes of a plain signed payload (x-amz-content-sha256 = hex digest) or of an
// unsigned aws-chunked body are necessarily handed out before the whole-payload
// digest or trailer checksum can be checked at the end: the caller must treat a
// non-EOF error from Read as "discard everything", never commit a partial
// upload, and always read to io.EOF so the final checks run.
package sigv4
