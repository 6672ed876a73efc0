package sigv4

import "github.com/s3seal/s3seal/internal/checksum"

// ChecksumAlgorithm returns the additional checksum algorithm the request
// declared (an x-amz-checksum-* header or x-amz-trailer), known before the
// body is read: checksum.None when it declared none or its integrity headers
// were refused.
func (p *Payload) ChecksumAlgorithm() checksum.Algorithm {
	if p.err != nil || !p.integrity.hasChecksum {
		return checksum.None
	}
	a, _ := checksum.Named(p.integrity.checksum.name)
	return a
}
