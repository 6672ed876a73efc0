// Package keys holds the gateway's key providers: the places a data key (DK) comes from and is
// unwrapped by (docs/FORMAT.md, sections 2 and 7).
//
//   - KMS talks to AWS KMS, or to any server that speaks its API (moto_server, local-kms), through
//     the official aws-sdk-go-v2 client (github.com/aws/aws-sdk-go-v2/service/kms): request
//     signing, retries with exponential backoff, credential discovery and endpoint handling are
//     all the SDK's. This package only chooses the options and maps KMS error codes onto the
//     sentinel errors below.
//   - LocalFile is the local key file: a small YAML file of named 32-byte key-encryption keys
//     (KEKs), used by the zero-config embedded mode and by on-premises deployments without a
//     KMS. Its wrap format (FORMAT.md section 7: AES-256-GCM with a random nonce and the
//     encryption context in the additional data) is the one piece of cryptography written here,
//     because no library defines it; it is built from crypto/aes and crypto/cipher.
//
// Both providers have the same method set (GenerateDataKey, Decrypt, Ping, DefaultKeyID, and
// GenerateDataKeyID, which also reports the key actually used). Consumers declare the interface
// they need themselves; this package exports none.
//
// Errors are classified with errors.Is against ErrKeyNotFound, ErrKeyDisabled, ErrAccessDenied,
// ErrInvalidCiphertext and ErrUnavailable. Error messages carry the provider's message and the
// key id, never key bytes.
package keys

import "errors"

// Sentinel errors. Provider errors wrap one of these (with %w) when the cause is known.
var (
	// ErrKeyNotFound: the key id, ARN, alias or local key name does not exist.
	ErrKeyNotFound = errors.New("keys: key not found")
	// ErrKeyDisabled: the key exists but cannot be used (disabled, pending deletion, pending
	// import, unavailable custom key store).
	ErrKeyDisabled = errors.New("keys: key disabled or not usable")
	// ErrAccessDenied: the caller's credentials are not allowed to use the key, or are invalid.
	ErrAccessDenied = errors.New("keys: access denied")
	// ErrInvalidCiphertext: the wrapped key does not open: wrong encryption context, wrong key,
	// or corrupted bytes.
	ErrInvalidCiphertext = errors.New("keys: invalid ciphertext")
	// ErrUnavailable: the provider could not be reached or kept refusing (network errors,
	// throttling, server errors, timeouts) after the retries.
	ErrUnavailable = errors.New("keys: key provider unavailable")
	// ErrClosed: the LocalFile was closed and its keys zeroed.
	ErrClosed = errors.New("keys: key file closed")
)

// DataKeySize is the size in bytes of every data key: an AES-256 key.
const DataKeySize = 32
