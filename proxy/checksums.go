package proxy

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/checksum"
	"github.com/s3seal/s3seal/s3err"
)

// S3's additional checksums of the plaintext (FORMAT.md 3.3, 3.6.6). The client's checksums
// are verified on the way in (package sigv4) and never sent to the backend, which sees only
// ciphertext; the gateway computes its own of the plaintext while it encrypts, seals it with
// the object (a single-part object's trailer) or the part (its upload record), builds S3's
// COMPOSITE or FULL_OBJECT checksum of a multipart object at Complete and seals it in the
// tail, and answers with them where S3 does: UploadPart, ListParts, Complete, GET and HEAD with
// x-amz-checksum-mode: ENABLED, GetObjectAttributes.

// objectChecksum is an object's checksum as clients see it: the algorithm, S3's type, the
// value, and for a COMPOSITE one the number of parts it was made of.
type objectChecksum struct {
	kind  format.ChecksumKind
	value []byte
	parts int
}

// String is the value as S3 shows it: base64, and "-" and the part count for COMPOSITE.
func (c objectChecksum) String() string {
	return format.ObjectChecksum{Kind: c.kind, Value: c.value}.String(c.parts)
}

// ok reports whether there is a checksum.
func (c objectChecksum) ok() bool { return c.kind.Algorithm != format.ChecksumNone }

// lowerName is an algorithm's name as S3 writes it in its messages (crc32, sha256).
func lowerName(a checksum.Algorithm) string { return strings.ToLower(a.String()) }

// uploadChecksumKind reads CreateMultipartUpload's x-amz-checksum-algorithm and
// x-amz-checksum-type as S3 does: a type needs an algorithm, an unknown value of either is
// InvalidRequest, and a combination S3 does not offer (FULL_OBJECT but for the CRCs, COMPOSITE
// CRC64NVME) too. Without a type the algorithm's default: FULL_OBJECT for CRC64NVME, else
// COMPOSITE.
func uploadChecksumKind(h http.Header) (format.ChecksumKind, error) {
	alg, typ := h.Get("X-Amz-Checksum-Algorithm"), h.Get("X-Amz-Checksum-Type")
	if alg == "" {
		if typ != "" {
			return format.ChecksumKind{}, s3err.New("InvalidRequest", "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.")
		}
		return format.ChecksumKind{}, nil
	}
	a, ok := checksum.Named(alg)
	if !ok {
		return format.ChecksumKind{}, s3err.New("InvalidRequest", checksum.Unsupported)
	}
	k := format.ChecksumKind{Algorithm: a, FullObject: a == checksum.CRC64NVME}
	switch strings.ToUpper(typ) {
	case "":
	case "FULL_OBJECT":
		k.FullObject = true
	case "COMPOSITE":
		k.FullObject = false
	default:
		return format.ChecksumKind{}, s3err.New("InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
	}
	if !k.Valid() {
		return format.ChecksumKind{}, s3err.Newf("InvalidRequest", "The %s checksum type cannot be used with the %s checksum algorithm.", k.Type(), lowerName(a))
	}
	return k, nil
}

// setUploadChecksumHeaders sets the response headers of an upload's checksum kind k
// (CreateMultipartUpload), as S3 does.
func setUploadChecksumHeaders(w http.Header, k format.ChecksumKind) {
	if k.Algorithm != format.ChecksumNone {
		w.Set("X-Amz-Checksum-Algorithm", k.Algorithm.String())
		w.Set("X-Amz-Checksum-Type", k.Type())
	}
}

// partChecksumAlgorithm is the algorithm the gateway computes for a part of an upload of kind k
// whose request declares algorithm sent (None: no checksum sent): the upload's. A part with a
// checksum of another algorithm is refused, as is a part without one in a COMPOSITE upload
// (its checksum is made of the parts'); a FULL_OBJECT upload's part without one gets the
// gateway's, as S3 computes it.
func partChecksumAlgorithm(k format.ChecksumKind, sent checksum.Algorithm) (checksum.Algorithm, error) {
	if k.Algorithm == format.ChecksumNone {
		return checksum.None, nil
	}
	if sent == checksum.None && !k.FullObject || sent != checksum.None && sent != k.Algorithm {
		actual := "null"
		if sent != checksum.None {
			actual = lowerName(sent)
		}
		return checksum.None, s3err.Newf("InvalidRequest", "Checksum Type mismatch occurred, expected checksum Type: %s, actual checksum Type: %s", lowerName(k.Algorithm), actual)
	}
	return k.Algorithm, nil
}

// setChecksumHeaders sets the response headers of checksum c: x-amz-checksum-<algorithm> and,
// when withType, x-amz-checksum-type.
func setChecksumHeaders(w http.Header, c objectChecksum, withType bool) {
	if !c.ok() {
		return
	}
	w.Set(http.CanonicalHeaderKey(c.kind.Algorithm.Header()), c.String())
	if withType {
		w.Set("X-Amz-Checksum-Type", c.kind.Type())
	}
}

// checksumModeEnabled reports whether a GET or HEAD asks for the object's checksum
// (x-amz-checksum-mode: ENABLED).
func checksumModeEnabled(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED")
}

// partChecksums are the checksum elements of a CompletedPart (and of Complete's answer), one
// per algorithm, by their S3 element names.
type partChecksums struct {
	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
	ChecksumSHA512    string `xml:"ChecksumSHA512,omitempty"`
	ChecksumMD5       string `xml:"ChecksumMD5,omitempty"`
	ChecksumXXHASH64  string `xml:"ChecksumXXHASH64,omitempty"`
	ChecksumXXHASH3   string `xml:"ChecksumXXHASH3,omitempty"`
	ChecksumXXHASH128 string `xml:"ChecksumXXHASH128,omitempty"`
}

// field returns a pointer to the element of algorithm a.
func (p *partChecksums) field(a checksum.Algorithm) *string {
	switch a {
	case checksum.CRC32:
		return &p.ChecksumCRC32
	case checksum.CRC32C:
		return &p.ChecksumCRC32C
	case checksum.CRC64NVME:
		return &p.ChecksumCRC64NVME
	case checksum.SHA1:
		return &p.ChecksumSHA1
	case checksum.SHA256:
		return &p.ChecksumSHA256
	case checksum.SHA512:
		return &p.ChecksumSHA512
	case checksum.MD5:
		return &p.ChecksumMD5
	case checksum.XXHASH64:
		return &p.ChecksumXXHASH64
	case checksum.XXHASH3:
		return &p.ChecksumXXHASH3
	case checksum.XXHASH128:
		return &p.ChecksumXXHASH128
	}
	return nil
}

// checksumElement is the XML element name of algorithm a's checksum (ChecksumCRC32, ...).
func checksumElement(a checksum.Algorithm) string { return "Checksum" + a.String() }

// set returns p with the element of algorithm a set to v.
func (p partChecksums) set(a checksum.Algorithm, v string) partChecksums {
	if f := p.field(a); f != nil {
		*f = v
	}
	return p
}

// sent returns the algorithms whose elements are present, in S3's order.
func (p *partChecksums) sent() []checksum.Algorithm {
	var out []checksum.Algorithm
	for a := checksum.CRC32; a.Known(); a++ {
		if *p.field(a) != "" {
			out = append(out, a)
		}
	}
	return out
}

// checkCompletedPart checks a CompletedPart's checksum elements c against the checksum the
// gateway sealed in the part's record, for an upload of kind k, as S3 checks them: a COMPOSITE
// upload needs the upload's checksum on every part, a FULL_OBJECT one takes parts without;
// another algorithm's is BadDigest, a value that is not base64 of the algorithm's size
// InvalidArgument, a value that differs from the record's InvalidPart (the part the client
// means is not the one stored).
func checkCompletedPart(k format.ChecksumKind, number int, c partChecksums, rec format.PartChecksum) error {
	sent := c.sent()
	if k.Algorithm == format.ChecksumNone {
		return nil // S3 ignores part checksums of an upload without an algorithm
	}
	if len(sent) > 1 {
		return s3err.Newf("InvalidArgument", "Invalid checksum provided for part %d: more than one algorithm.", number)
	}
	if len(sent) == 0 {
		if k.FullObject {
			return nil
		}
		return s3err.Newf("InvalidRequest", "The upload was created using a %s checksum. The complete request must include the checksum for each part. It was missing for part %d in the request.", lowerName(k.Algorithm), number)
	}
	if sent[0] != k.Algorithm {
		return s3err.Newf("BadDigest", "The %s you specified for part %d did not match what we received.", lowerName(sent[0]), number)
	}
	v := *c.field(sent[0])
	b, err := base64.StdEncoding.Strict().DecodeString(v)
	if err != nil || len(b) != k.Algorithm.Size() {
		return s3err.Newf("InvalidArgument", "Invalid checksum provided for part %d.", number)
	}
	if rec.Algorithm != k.Algorithm || subtle.ConstantTimeCompare(b, rec.Value) != 1 {
		return invalidPart()
	}
	return nil
}

// uploadChecksum computes the object checksum of an upload of kind k from its parts' record
// checksums and plaintext sizes (in part order): COMPOSITE, the algorithm's hash of the
// parts' digests one after the other; FULL_OBJECT, the CRC of the whole plaintext, combined
// from the parts' CRCs. A part whose record has no checksum of the upload's algorithm was sent
// with an id of another checksum kind (the kind byte is the client's to keep, not sealed; a
// backend cannot make a record): InvalidPart, as for any part that is not the one the upload
// expects.
func uploadChecksum(k format.ChecksumKind, parts []storedPart) (objectChecksum, error) {
	if k.Algorithm == format.ChecksumNone {
		return objectChecksum{}, nil
	}
	sums := make([][]byte, len(parts))
	lens := make([]int64, len(parts))
	for i, p := range parts {
		if p.facts.Checksum.Algorithm != k.Algorithm {
			return objectChecksum{}, invalidPart()
		}
		sums[i], lens[i] = p.facts.Checksum.Value, p.facts.PlainSize
	}
	c := objectChecksum{kind: k, parts: len(parts)}
	if k.FullObject {
		v, err := checksum.CombineAll(k.Algorithm, sums, lens)
		if err != nil {
			return objectChecksum{}, err
		}
		c.value = v
		return c, nil
	}
	h := k.Algorithm.New()
	for _, s := range sums {
		h.Write(s)
	}
	c.value = h.Sum(nil)
	return c, nil
}

// finalChecksum reads the whole-object checksum header a CompleteMultipartUpload may carry
// (x-amz-checksum-<algorithm>; at most one) and checks it against c, the computed one, for an
// upload with a checksum: another algorithm, or a value (or a COMPOSITE value's "-K" part
// count) that differs, is BadDigest; a value that is not base64 of the algorithm's size, or
// whose suffix is not "-" and a positive decimal, is InvalidRequest. Without an upload checksum
// S3 ignores the value.
func finalChecksum(h http.Header, c objectChecksum) error {
	var found []checksum.Algorithm
	for name := range h {
		if a, ok := checksum.ByHeader(name); ok {
			found = append(found, a)
		}
	}
	if len(found) > 1 {
		return s3err.New("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
	}
	if len(found) == 0 {
		return nil
	}
	a := found[0]
	invalid := s3err.Newf("InvalidRequest", "Value for %s header is invalid.", a.Header())
	v, parts := h.Get(a.Header()), 0
	if i := strings.IndexByte(v, '-'); i >= 0 {
		n, err := strconv.Atoi(v[i+1:])
		if err != nil || n < 1 || strings.Trim(v[i+1:], "0123456789") != "" || c.ok() && c.kind.FullObject {
			return invalid
		}
		v, parts = v[:i], n
	}
	b, err := base64.StdEncoding.Strict().DecodeString(v)
	if err != nil || len(b) != a.Size() {
		return invalid
	}
	if !c.ok() {
		return nil
	}
	if a != c.kind.Algorithm || !bytes.Equal(b, c.value) || parts != 0 && parts != c.parts {
		return s3err.Newf("BadDigest", "The %s you specified did not match the calculated checksum.", lowerName(a))
	}
	return nil
}

// completeChecksumType checks Complete's x-amz-checksum-type against the upload's kind k: an
// unknown value is InvalidRequest, and one that is not the upload's too (S3's message).
func completeChecksumType(h http.Header, k format.ChecksumKind) error {
	t := h.Get("X-Amz-Checksum-Type")
	if t == "" {
		return nil
	}
	t = strings.ToUpper(t)
	if t != "FULL_OBJECT" && t != "COMPOSITE" {
		return s3err.New("InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
	}
	if k.Algorithm != format.ChecksumNone && t != k.Type() {
		return s3err.Newf("InvalidRequest", "The upload was created using the %s checksum mode. The complete request must use the same checksum mode.", k.Type())
	}
	return nil
}

// singleAlgorithm is the checksum algorithm a single-part object o seals (format.MetaChecksum;
// none when absent). The value needs no authentication of its own: the algorithm is in the
// object's stream key, so a changed value fails every segment (FORMAT.md 3.3).
func singleAlgorithm(o *storedObject) (checksum.Algorithm, error) {
	return format.ParseChecksumMeta(o.header.Get(format.MetaChecksum))
}

// singleStream is the stream of single-part object o with facts f under key.
func singleStream(key *format.ObjectKey, o *storedObject, f objectFacts) (*format.Stream, error) {
	a, err := singleAlgorithm(o)
	if err != nil {
		return nil, err
	}
	return key.SingleStreamOf(f.plainSize, a)
}

// copyChecksum is the checksum algorithm a copy seals with its new object: the one the copy
// request names (x-amz-checksum-algorithm, validated by copyChecksumHeader), else a single-part
// source's, as S3 keeps a copied object's checksum.
func copyChecksum(r *http.Request, f objectFacts) checksum.Algorithm {
	if a, ok := checksum.Named(r.Header.Get("X-Amz-Checksum-Algorithm")); ok {
		return a
	}
	if f.layout == nil && f.checksum.ok() {
		return f.checksum.kind.Algorithm
	}
	return checksum.None
}

// copyChecksumHeader validates a copy request's x-amz-checksum-algorithm.
func copyChecksumHeader(r *http.Request) error {
	if v := r.Header.Get("X-Amz-Checksum-Algorithm"); v != "" {
		if _, ok := checksum.Named(v); !ok {
			return s3err.New("InvalidRequest", checksum.Unsupported)
		}
	}
	return nil
}

// keptChecksum is the checksum algorithm a server-side copy of an object with facts f keeps:
// a single-part object's (its bytes seal it); a multipart object keeps its tail, and with it
// its checksum, but takes no new one.
func keptChecksum(f objectFacts) checksum.Algorithm {
	if f.layout == nil && f.checksum.ok() {
		return f.checksum.kind.Algorithm
	}
	return checksum.None
}
