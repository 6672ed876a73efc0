package format

import "strings"

// SameKeyID reports whether two key ids (the envelope's key id, a configured or requested
// key) name the same key: equal, or a KMS key ARN and the bare key id it ends with. Empty ids
// name no key.
func SameKeyID(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return a == b || strings.HasSuffix(a, ":key/"+b) || strings.HasSuffix(b, ":key/"+a)
}
