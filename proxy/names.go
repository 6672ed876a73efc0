package proxy

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/s3seal/s3seal/s3err"
)

// Names. The gateway signs every backend request with its own key, so the bucket and key of a
// backend request must name an S3 bucket and object and nothing else the backend serves on
// the same port: MinIO's admin API lives under /minio/admin/..., Ceph RGW's under
// /<rgw_admin_entry>/... (default "admin"). A bucket name is checked against S3's rules
// before anything else is done with a request, and the names a backend keeps for itself
// (Config.ReservedBuckets) are refused like any invalid name.

// DefaultReservedBuckets are the bucket names refused when Config.ReservedBuckets is nil:
// MinIO's API prefix ("minio": admin, health, metrics, STS-adjacent routes) and Ceph RGW's
// default admin entry ("admin").
var DefaultReservedBuckets = []string{"minio", "admin"}

// maxKeyBytes is S3's limit on an object key (UTF-8 bytes).
const maxKeyBytes = 1024

// bucketNamePrefixes and bucketNameSuffixes are the prefixes and suffixes S3 reserves
// (general purpose bucket naming rules): no bucket may carry them.
var (
	bucketNamePrefixes = []string{"xn--", "sthree-", "amzn-s3-demo-"}
	bucketNameSuffixes = []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"}
)

// validBucketName reports whether name follows S3's naming rules for general purpose buckets:
// 3 to 63 characters of lower-case letters, digits, '.' and '-', beginning and ending with a
// letter or digit, no two adjacent periods, not formatted as an IP address, none of S3's
// reserved prefixes and suffixes.
func validBucketName(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '.' || c == '-':
			if i == 0 || i == len(name)-1 {
				return false
			}
		default:
			return false
		}
	}
	if strings.Contains(name, "..") {
		return false
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return false
	}
	for _, p := range bucketNamePrefixes {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	for _, s := range bucketNameSuffixes {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
}

// bucketNames decides which bucket names the gateway lets through to its backend.
type bucketNames struct {
	reserved map[string]bool
}

// newBucketNames returns the checker for reserved (nil = DefaultReservedBuckets).
func newBucketNames(reserved []string) bucketNames {
	if reserved == nil {
		reserved = DefaultReservedBuckets
	}
	m := make(map[string]bool, len(reserved))
	for _, b := range reserved {
		m[b] = true
	}
	return bucketNames{reserved: m}
}

// check returns InvalidBucketName for a name S3 refuses or the backend keeps for itself.
func (n bucketNames) check(name string) *s3err.Error {
	if !validBucketName(name) {
		return s3err.New("InvalidBucketName", "The specified bucket is not valid.")
	}
	if n.reserved[name] {
		return s3err.New("InvalidBucketName", "The specified bucket name is reserved by the storage backend.")
	}
	return nil
}

// checkKey refuses object keys S3 refuses: longer than 1,024 bytes or not UTF-8.
func checkKey(key string) *s3err.Error {
	if len(key) > maxKeyBytes {
		return s3err.New("KeyTooLongError", "Your key is too long")
	}
	if !utf8.ValidString(key) {
		return s3err.New("InvalidArgument", "Object keys must be UTF-8.")
	}
	return nil
}
