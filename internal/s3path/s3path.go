// Package s3path escapes object keys the way S3 canonicalizes request paths and copy sources:
// every byte except RFC 3986's unreserved characters and '/' is percent-encoded. Both the
// gateway (backend requests, Location and copy-source headers) and the offline tools (copy
// sources) need exactly this rule, so it has one home; net/url's escapers keep characters
// (such as '+', '!' or '*') that S3 signs escaped.
package s3path

import "strings"

// Escape percent-encodes key for a URL path or an x-amz-copy-source value.
func Escape(key string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '.', c == '~', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}
