package format

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// The key-provider encryption context of a data key (docs/FORMAT.md 3 and 4) is the gateway's
// own, EncryptionContext(bucket) = {"gateway": "s3seal", "bucket": <bucket>}, plus an SSE-KMS
// client's own context, kept beside the envelope as x-amz-meta-s3seal-ctx. The one rule, applied
// here for the gateway and the tools alike: the reserved keys ("gateway", "bucket", in any
// letter case) can never be set or overridden by the extra context. There is no precedence
// between the two: an extra context that names a reserved key is refused wherever it comes
// from (the client's request, stored metadata, or a caller of KMSContext).
//
// Letter case: KMS compares context keys exactly, so "Bucket" would not replace "bucket"; it is
// refused all the same, so that no audit trail shows two "bucket"s and no KMS-compatible server
// that folds case can be made to see the wrong one.

// ReservedContextKeyError is an extra encryption context that names a reserved key. It wraps
// ErrMalformed for a client's context (the gateway answers 400 InvalidArgument) and ErrAuth for
// stored metadata (which the gateway never writes so: altered in the backend).
type ReservedContextKeyError struct {
	Key    string // the key as given
	Stored bool   // from x-amz-meta-s3seal-ctx rather than the client's request
}

func (e *ReservedContextKeyError) Error() string {
	if e.Stored {
		return fmt.Sprintf("%v: the stored encryption context (x-amz-meta-s3seal-ctx) names the reserved key %q", ErrAuth, e.Key)
	}
	return fmt.Sprintf("%v: the encryption context names the reserved key %q", ErrMalformed, e.Key)
}

// Unwrap returns ErrAuth for stored metadata, ErrMalformed otherwise.
func (e *ReservedContextKeyError) Unwrap() error {
	if e.Stored {
		return ErrAuth
	}
	return ErrMalformed
}

// reservedContextKey returns the first key of extra (in sorted order, so the error is
// deterministic) that is reserved, and whether there is one.
func reservedContextKey(extra map[string]string) (string, bool) {
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		for r := range EncryptionContext("") {
			if strings.EqualFold(k, r) {
				return k, true
			}
		}
	}
	return "", false
}

// KMSContext returns the key-provider encryption context of a data key of bucket: the gateway's
// own (EncryptionContext) plus extra, a client's SSE-KMS context (nil if none). An extra that
// names a reserved key gives a *ReservedContextKeyError and no context. The map returned is new.
func KMSContext(bucket string, extra map[string]string) (map[string]string, error) {
	if k, ok := reservedContextKey(extra); ok {
		return nil, &ReservedContextKeyError{Key: k}
	}
	c := EncryptionContext(bucket)
	maps.Copy(c, extra)
	return c, nil
}

// ParseClientContext decodes a client's x-amz-server-side-encryption-context header: base64 of
// a JSON object of strings, in UTF-8, that names no reserved key. Errors wrap ErrMalformed; a
// reserved key gives a *ReservedContextKeyError.
func ParseClientContext(v string) (map[string]string, error) {
	m, err := decodeContext(v)
	if err != nil {
		return nil, errf(ErrMalformed, "encryption context: %v", err)
	}
	if k, ok := reservedContextKey(m); ok {
		return nil, &ReservedContextKeyError{Key: k}
	}
	return m, nil
}

// DecodeStoredContext decodes the value of x-amz-meta-s3seal-ctx; "" is no context (nil). A
// value that does not decode wraps ErrMalformed; one that names a reserved key gives a
// *ReservedContextKeyError that wraps ErrAuth (the gateway never stores one).
func DecodeStoredContext(v string) (map[string]string, error) {
	if v == "" {
		return nil, nil
	}
	m, err := decodeContext(v)
	if err != nil {
		return nil, errf(ErrMalformed, "stored encryption context (x-amz-meta-s3seal-ctx): %v", err)
	}
	if k, ok := reservedContextKey(m); ok {
		return nil, &ReservedContextKeyError{Key: k, Stored: true}
	}
	return m, nil
}

// EncodeStoredContext returns the x-amz-meta-s3seal-ctx value for extra ("" if extra is empty:
// then nothing is stored).
func EncodeStoredContext(extra map[string]string) string {
	if len(extra) == 0 {
		return ""
	}
	b, _ := json.Marshal(extra) // a map of strings always marshals
	return base64.StdEncoding.EncodeToString(b)
}

// decodeContext decodes base64 of a JSON object of strings. Invalid UTF-8 is refused rather
// than decoded: the JSON decoder would replace it with U+FFFD, so the context used would not be
// the one given.
func decodeContext(v string) (map[string]string, error) {
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, errors.New("not base64")
	}
	if !utf8.Valid(raw) {
		return nil, errors.New("not valid UTF-8")
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errors.New("not a JSON object of strings")
	}
	return m, nil
}
