package format

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
)

// Format-2 and format-3 upload ids (docs/FORMAT.md 3.5.1, 3.6). The gateway answers
// CreateMultipartUpload with
//
//	<backend upload id> ".s3" base64url-unpadded( be16(len(env)) ‖ env ‖ [checksum] ‖ ctx )
//
// (".s2" for a format-2 envelope, which gateways no longer make: such ids are still parsed, so
// that their uploads can be listed and aborted), where env is the binary envelope the upload's
// object will carry and ctx the
// value of x-amz-meta-s3seal-ctx, if any (the client's SSE-KMS encryption context, needed to
// unwrap the data key). The id holds no secret: opening the envelope needs the data key from
// the key provider (or the SSE-C key), which is what keeps a part forger without gateway key
// material out. A gateway serving UploadPart opens it like any stored envelope, with the
// bucket and key the request names, so no gateway state and only a cached key-provider call
// are needed per part. A format-3 id of an upload started with a checksum algorithm
// (x-amz-checksum-algorithm) carries it as one byte (ChecksumKind's byte form, never printable
// ASCII, so never the start of ctx) before ctx.

const (
	uploadIDTagV2 = ".s2"
	uploadIDTagV3 = ".s3"
)

// uploadIDTag is the tag of an upload id whose envelope has version ver.
func uploadIDTagOf(ver byte) string {
	if ver == Version2 {
		return uploadIDTagV2
	}
	return uploadIDTagV3
}

// UploadID is a decoded format-2 upload id.
type UploadID struct {
	Backend  string    // the backend's upload id
	Envelope *Envelope // the upload's envelope
	Context  string    // the stored encryption-context metadata value ("" for none)
	// Checksum is the upload's checksum algorithm and type (format 3 only).
	Checksum ChecksumKind
}

// String encodes the upload id.
func (u UploadID) String() string {
	env := u.Envelope.bytes()
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(env)+len(u.Context)), uint16(len(env)))
	b = append(b, env...)
	if c := u.Checksum.byteForm(); c != 0 && u.Envelope.version == Version3 {
		b = append(b, c)
	}
	b = append(b, u.Context...)
	return u.Backend + uploadIDTagOf(u.Envelope.version) + base64.RawURLEncoding.EncodeToString(b)
}

// ParseUploadID decodes an upload id given by a client. A format-2 id yields its backend id,
// envelope and context. A format-1 id (".s1" and an upload public key) yields only its backend
// id, with an error wrapping ErrVersion: good to abort or list, not to upload to. Anything else
// is an error wrapping ErrMalformed, with the whole id as the backend id.
func ParseUploadID(id string) (UploadID, error) {
	if b, _, err := DecodeUploadID(id); err == nil {
		return UploadID{Backend: b}, errf(ErrVersion, "upload id of format 1: the upload was started by an older gateway; start it again")
	}
	// base64url has no '.', so the tag is the last '.' of the id.
	cut := strings.LastIndexByte(id, '.')
	if cut <= 0 || len(id)-cut < len(uploadIDTagV3) {
		return UploadID{Backend: id}, errf(ErrMalformed, "upload id: no s3seal suffix")
	}
	tag := id[cut : cut+len(uploadIDTagV3)]
	if tag != uploadIDTagV2 && tag != uploadIDTagV3 {
		return UploadID{Backend: id}, errf(ErrMalformed, "upload id: no s3seal suffix")
	}
	// The decoder skips CR and LF; only the canonical encoding is accepted.
	enc := id[cut+len(tag):]
	raw, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil || len(raw) < 2 || base64.RawURLEncoding.EncodeToString(raw) != enc {
		return UploadID{Backend: id}, errf(ErrMalformed, "upload id: invalid suffix")
	}
	n := int(binary.BigEndian.Uint16(raw))
	if len(raw) < 2+n {
		return UploadID{Backend: id}, errf(ErrMalformed, "upload id: envelope truncated")
	}
	env, err := parseEnvelope(raw[2 : 2+n])
	if err != nil {
		return UploadID{Backend: id}, err
	}
	if tag != uploadIDTagOf(env.version) || env.Kind != KindMultipart || env.version == Version {
		return UploadID{Backend: id}, errf(ErrVersion, "upload id: envelope of format %d, kind %d", env.version, env.Kind)
	}
	ctx := raw[2+n:]
	var ck ChecksumKind
	if len(ctx) > 0 && (ctx[0] < 0x21 || ctx[0] > 0x7e) && env.version == Version3 {
		var ok bool
		if ck, ok = checksumKindOf(ctx[0]); !ok || ck.Algorithm == ChecksumNone {
			return UploadID{Backend: id}, errf(ErrMalformed, "upload id: invalid checksum kind %#x", ctx[0])
		}
		ctx = ctx[1:]
	}
	for _, c := range ctx {
		if c < 0x21 || c > 0x7e {
			return UploadID{Backend: id}, errf(ErrMalformed, "upload id: context is not printable ASCII")
		}
	}
	return UploadID{Backend: id[:cut], Envelope: env, Context: string(ctx), Checksum: ck}, nil
}
