package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/format"
)

// DecryptInput is one stored object to recover.
type DecryptInput struct {
	// Bucket and Key are the object's name in the backend: the envelope is bound to them.
	Bucket, Key string
	// Envelope is the value of the x-amz-meta-s3seal-env metadata.
	Envelope string
	// Context is the value of x-amz-meta-s3seal-ctx (an SSE-KMS object's client encryption
	// context), "" if the object has none.
	Context string
	// Manifest is the value of x-amz-meta-s3seal-parts (a format-2 multipart object's part
	// manifest, required for such objects; FORMAT.md 3.5.2). A format-3 object keeps its
	// manifest in its tail and has none (a value given for one is not used).
	Manifest string
	// Checksum is the value of x-amz-meta-s3seal-ck: the algorithm of the checksum a
	// single-part object seals in its trailer (S3's upper-case name, format.ParseChecksumMeta),
	// "" if it seals none. It is in the object's stream key, so a single-part object written
	// with a checksum decrypts only with it. Not used for multipart objects.
	Checksum string
	// Stored yields the stored bytes from the first one.
	Stored io.Reader
	// StoredSize is their number (required for single-part and format-3 multipart objects;
	// -1 = unknown).
	StoredSize int64
	// At reads stored bytes at an offset. A format-3 multipart object needs it: its tail, at
	// the end, is read first, and its part headers are checked against the tail before any
	// byte is written (FORMAT.md 3.6.5). Nil: Stored, if it is an io.ReaderAt (a file).
	At io.ReaderAt
}

// ErrNotEncrypted is returned for an object without an s3seal envelope.
var ErrNotEncrypted = errors.New("the object has no x-amz-meta-s3seal-env metadata: it was not encrypted by s3seal, and its stored bytes are its content")

// Decrypt writes the plaintext of the stored object in to w, authenticating everything on the
// way (docs/FORMAT.md): the envelope for in.Bucket/in.Key, every segment, each stream's final
// segment and trailer, and the end of the data. A multipart object of format 1 or 2 is decrypted
// by walking its part headers, one of format 3 by the layout of its tail, so no part list from
// the backend is needed. Each segment is verified before any of its bytes reach w; when an
// error is returned, w may hold a verified prefix of the object.
func Decrypt(ctx context.Context, keys KeySource, in DecryptInput, w io.Writer) (int64, error) {
	if in.Envelope == "" {
		return 0, ErrNotEncrypted
	}
	env, err := format.DecodeEnvelope(in.Envelope)
	if err != nil {
		return 0, fmt.Errorf("envelope: %w", err)
	}
	ck := format.ChecksumNone
	if env.Kind == format.KindSingle {
		if ck, err = format.ParseChecksumMeta(in.Checksum); err != nil {
			return 0, err
		}
	}
	extra, err := format.DecodeStoredContext(in.Context)
	if err != nil {
		return 0, err
	}
	ring := newKeyring(keys, nil)
	defer ring.close()
	okey, err := ring.openEnvelope(ctx, env, in.Bucket, in.Key, extra)
	if err != nil {
		return 0, err
	}
	defer okey.Zero()
	if env.Kind == format.KindSingle {
		return decryptSingle(okey, ck, in, w)
	}
	return decryptParts(okey, env, in, w)
}

// decryptSingle decrypts a single-part object whose trailer seals a checksum of algorithm ck
// (none: the trailer holds the MD5 only). The algorithm is in the stream key and its size in
// the stored size, so a wrong one fails the size check or the first segment, before any byte
// is written; the error then says where the algorithm comes from.
func decryptSingle(okey *format.ObjectKey, ck format.ChecksumAlgorithm, in DecryptInput, w io.Writer) (int64, error) {
	hint := func(err error) error {
		if in.Checksum == "" {
			return fmt.Errorf("%w (read without a checksum algorithm: an object written with an additional checksum also needs its x-amz-meta-%s metadata)", err, metaChecksum)
		}
		return fmt.Errorf("%w (read with checksum algorithm %s, from x-amz-meta-%s: it must be the one the object was written with)", err, in.Checksum, metaChecksum)
	}
	plain, err := format.DecryptedSizeOf(in.StoredSize, ck)
	if in.StoredSize < 0 || err != nil {
		return 0, hint(fmt.Errorf("stored size %d is not that of a single-part s3seal object (truncated or extended?)", in.StoredSize))
	}
	st, err := okey.SingleStreamOf(plain, ck)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(w, st.DecryptAll(in.Stored))
	if errors.Is(err, format.ErrAuth) {
		err = hint(err)
	}
	return n, err
}

// decryptParts walks the parts of a multipart object: header, segments, trailer, next header.
// For a format-2 object the part manifest must open and name exactly the parts walked; it can
// only be checked once every header was seen, so a mismatch fails the decryption at the end
// (the command's output file is then not kept).
func decryptParts(okey *format.ObjectKey, env *format.Envelope, in DecryptInput, w io.Writer) (int64, error) {
	if env.Version() == format.Version3 {
		return decryptTail(okey, in, w)
	}
	var manifest *format.Manifest
	if env.Version() == format.Version2 {
		if in.Manifest == "" {
			return 0, fmt.Errorf("%w: format-2 multipart object without its part manifest (x-amz-meta-s3seal-parts)", format.ErrAuth)
		}
		m, err := okey.OpenManifest(in.Manifest)
		if err != nil {
			return 0, fmt.Errorf("part manifest: %w", err)
		}
		manifest = m
	}
	var written, consumed int64
	var headers [][]byte
	prev := 0
	for {
		var hdr [format.PartHeaderSize]byte
		n, err := io.ReadFull(in.Stored, hdr[:])
		if errors.Is(err, io.EOF) && prev > 0 {
			break
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return written, fmt.Errorf("%w: stored data ends inside a part header (at byte %d, %d header bytes)", format.ErrAuth, consumed, n)
		}
		if err != nil {
			return written, err
		}
		st, err := okey.PartStream(hdr[:], 0)
		if err != nil {
			return written, fmt.Errorf("part header at byte %d: %w", consumed, err)
		}
		part, _, _ := format.ParsePartHeader(hdr[:])
		if part <= prev || len(headers) == format.MaxPartNumber {
			return written, fmt.Errorf("%w: part %d follows part %d (parts reordered)", format.ErrAuth, part, prev)
		}
		prev = part
		k, err := io.Copy(w, st.DecryptAll(io.LimitReader(in.Stored, st.StoredSize())))
		written += k
		if err != nil {
			return written, fmt.Errorf("part %d: %w", part, err)
		}
		consumed += format.PartHeaderSize + st.StoredSize()
		headers = append(headers, bytes.Clone(hdr[:]))
	}
	if in.StoredSize >= 0 && consumed != in.StoredSize {
		return written, fmt.Errorf("%w: parts cover %d of %d stored bytes", format.ErrAuth, consumed, in.StoredSize)
	}
	if manifest != nil {
		l, err := format.LayoutOfHeaders(headers)
		if err != nil {
			return written, err
		}
		if err := manifest.Check(l); err != nil {
			return written, err
		}
	}
	return written, nil
}

// decryptTail decrypts a format-3 multipart object (FORMAT.md 3.6.5): Part_1 ‖ … ‖ Part_K ‖
// Tail. Before any byte is written it reads the tail from the end of the object (in.At), opens
// it, takes the layout from it and checks the part headers found at the layout's offsets
// against the tail's digest; then it decrypts the parts from in.Stored, each header the one
// checked, and checks that the stream ends with the same tail.
func decryptTail(okey *format.ObjectKey, in DecryptInput, w io.Writer) (int64, error) {
	at := in.At
	if at == nil {
		at, _ = in.Stored.(io.ReaderAt)
	}
	size := in.StoredSize
	if at == nil || size < 0 {
		return 0, errors.New("a format-3 multipart object is read from its end first (its tail): its stored size and random access to its bytes are needed")
	}
	readAt := func(off, n int64) ([]byte, error) {
		b := make([]byte, n)
		k, err := at.ReadAt(b, off)
		if int64(k) == n {
			return b, nil
		}
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: %d stored bytes at %d, %d expected (truncated?)", format.ErrAuth, k, off, n)
		}
		return nil, err
	}
	n := min(size, format.TailReadSize)
	end, err := readAt(size-n, n)
	if err != nil {
		return 0, err
	}
	tl, err := format.TailLength(end, size)
	if err != nil {
		return 0, err
	}
	tailBytes := end[n-min(n, tl):]
	if tl > n {
		if tailBytes, err = readAt(size-tl, tl); err != nil {
			return 0, err
		}
	}
	tail, err := okey.OpenTail(tailBytes, size)
	if err != nil {
		return 0, fmt.Errorf("tail: %w", err)
	}
	l, err := format.NewLayout(tail.Layout())
	if err != nil {
		return 0, err
	}
	headers := make([][]byte, len(l))
	streams := make([]*format.Stream, len(l))
	for i, p := range l {
		if headers[i], err = readAt(p.StoredOffset, format.PartHeaderSize); err != nil {
			return 0, err
		}
		if streams[i], err = okey.PartStream(headers[i], p.Number); err != nil {
			return 0, fmt.Errorf("part header at byte %d: %w", p.StoredOffset, err)
		}
		if streams[i].PlainSize() != p.PlainSize {
			return 0, fmt.Errorf("%w: part %d of %d bytes, the tail says %d", format.ErrAuth, p.Number, streams[i].PlainSize(), p.PlainSize)
		}
	}
	hl, err := format.LayoutOfHeaders(headers)
	if err != nil {
		return 0, err
	}
	if err := tail.Check(hl); err != nil {
		return 0, err
	}
	var written int64
	for i, p := range l {
		var hdr [format.PartHeaderSize]byte
		if _, err := io.ReadFull(in.Stored, hdr[:]); err != nil {
			return written, fmt.Errorf("%w: stored data ends inside the header of part %d: %v", format.ErrAuth, p.Number, err)
		}
		if !bytes.Equal(hdr[:], headers[i]) {
			return written, fmt.Errorf("%w: the header of part %d differs from the one checked (the object changed?)", format.ErrAuth, p.Number)
		}
		k, err := io.Copy(w, streams[i].DecryptAll(io.LimitReader(in.Stored, streams[i].StoredSize())))
		written += k
		if err != nil {
			return written, fmt.Errorf("part %d: %w", p.Number, err)
		}
	}
	rest, err := io.ReadAll(io.LimitReader(in.Stored, tail.Size+1))
	if err != nil {
		return written, err
	}
	if !bytes.Equal(rest, tailBytes) {
		return written, fmt.Errorf("%w: the stored data does not end with the tail read first (%d bytes after the parts)", format.ErrAuth, len(rest))
	}
	return written, nil
}

// DecryptObject recovers bucket/key from the backend directly (no gateway needed). A format-3
// multipart object's tail and part headers are read with ranged GETs of the same version (the
// ETag of the first answer) before its data.
func DecryptObject(ctx context.Context, b Backend, keys KeySource, bucket, key string, w io.Writer) (int64, error) {
	out, err := b.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return 0, fmt.Errorf("reading s3://%s/%s from the backend: %w", bucket, key, err)
	}
	defer out.Body.Close()
	size := int64(-1)
	if out.ContentLength != nil {
		size = *out.ContentLength
	}
	return Decrypt(ctx, keys, DecryptInput{
		Bucket: bucket, Key: key, Envelope: envelopeOf(out.Metadata), Context: metaValue(out.Metadata, metaContext),
		Manifest: metaValue(out.Metadata, metaManifest), Checksum: metaValue(out.Metadata, metaChecksum),
		Stored: out.Body, StoredSize: size,
		At: backendReaderAt{ctx: ctx, b: b, bucket: bucket, key: key, etag: aws.ToString(out.ETag), versionID: aws.ToString(out.VersionId)},
	}, w)
}

// backendReaderAt reads ranges of one stored object version from the backend.
type backendReaderAt struct {
	ctx                          context.Context
	b                            Backend
	bucket, key, etag, versionID string
}

func (r backendReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	in := &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(r.key), IfMatch: optional(r.etag),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))}
	if r.versionID != "" && r.versionID != "null" {
		in.VersionId = aws.String(r.versionID)
	}
	out, err := r.b.GetObject(r.ctx, in)
	if err != nil {
		return 0, fmt.Errorf("reading bytes %d-%d of s3://%s/%s: %w", off, off+int64(len(p))-1, r.bucket, r.key, err)
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// metaValue returns the value of the metadata name (SDK form: lower case, no prefix) in meta.
func metaValue(meta map[string]string, name string) string {
	for k, v := range meta {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Metadata is what the tools need of an object's saved metadata.
type Metadata struct {
	Envelope string // x-amz-meta-s3seal-env
	Context  string // x-amz-meta-s3seal-ctx ("" if none)
	Manifest string // x-amz-meta-s3seal-parts ("" if none)
	Checksum string // x-amz-meta-s3seal-ck ("" if none)
}

// ParseMetadataFile finds the gateway's metadata in a saved metadata file. Accepted forms:
//
//   - the JSON that `aws s3api head-object` (or boto3's head_object) prints: {"Metadata":
//     {"s3seal-env": "...", "s3seal-ctx": "..."}, ...};
//   - any JSON object holding "s3seal-env" or "x-amz-meta-s3seal-env" (any case) at the top or
//     in a nested object (e.g. `mc stat --json`), as a string or a one-string list (and
//     s3seal-ctx, s3seal-parts and s3seal-ck the same way);
//   - response headers as text, one "Name: value" per line (`curl -I`);
//   - the envelope value alone.
//
// A file that is not valid UTF-8 is refused. All these forms are text (JSON must be UTF-8, RFC
// 8259 8.1; S3 returns user metadata as US-ASCII header values, RFC 2047-encoded if need be),
// and the gateway's own values are base64, so invalid UTF-8 means a damaged file or one saved in
// another encoding. Parsing it anyway would not be safe: the JSON decoder silently replaces
// each invalid byte with U+FFFD, so the name matched or the value returned would no longer be
// the one in the file. Refusing it with the offset of the first bad byte tells the operator
// what to fix instead of failing later with a misleading "envelope does not open".
func ParseMetadataFile(data []byte) (Metadata, error) {
	if !utf8.Valid(data) {
		return Metadata{}, fmt.Errorf("metadata file: not valid UTF-8 text (first invalid byte at offset %d): the file is damaged or in another encoding; save the metadata again as UTF-8", invalidUTF8Offset(data))
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err == nil {
		env, err := jsonValue(doc, metaEnvelope)
		if err != nil {
			return Metadata{}, err
		}
		if env == "" {
			return Metadata{}, errors.New("metadata file: JSON without s3seal-env metadata")
		}
		c, err := jsonValue(doc, metaContext)
		if err != nil {
			return Metadata{}, err
		}
		parts, err := jsonValue(doc, metaManifest)
		if err != nil {
			return Metadata{}, err
		}
		ck, err := jsonValue(doc, metaChecksum)
		return Metadata{Envelope: env, Context: c, Manifest: parts, Checksum: ck}, err
	}
	var m Metadata
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		switch name = strings.TrimSpace(name); {
		case !ok:
		case strings.EqualFold(name, "x-amz-meta-"+metaEnvelope):
			m.Envelope = strings.TrimSpace(value)
		case strings.EqualFold(name, "x-amz-meta-"+metaContext):
			m.Context = strings.TrimSpace(value)
		case strings.EqualFold(name, "x-amz-meta-"+metaManifest):
			m.Manifest = strings.TrimSpace(value)
		case strings.EqualFold(name, "x-amz-meta-"+metaChecksum):
			m.Checksum = strings.TrimSpace(value)
		}
	}
	if m.Envelope != "" {
		return m, nil
	}
	v := strings.TrimSpace(string(data))
	if _, err := format.DecodeEnvelope(v); err == nil {
		return Metadata{Envelope: v}, nil
	}
	return Metadata{}, errors.New("metadata file: no x-amz-meta-s3seal-env found (see docs/RECOVERY.md for the accepted forms)")
}

// invalidUTF8Offset is the offset of the first byte of data that is not part of valid UTF-8.
func invalidUTF8Offset(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// jsonValue returns the one value of the metadata name in a JSON document ("" if absent).
func jsonValue(doc any, name string) (string, error) {
	found := map[string]bool{}
	findJSON(doc, name, 0, found)
	if len(found) > 1 {
		return "", fmt.Errorf("metadata file: several different %s values", name)
	}
	for v := range found {
		return v, nil
	}
	return "", nil
}

// findJSON collects the values of the metadata name in v (nested at most 4 objects deep).
func findJSON(v any, name string, depth int, found map[string]bool) {
	m, ok := v.(map[string]any)
	if !ok || depth > 4 {
		return
	}
	for k, val := range m {
		switch lk := strings.ToLower(k); {
		case lk == name || lk == "x-amz-meta-"+name:
			switch s := val.(type) {
			case string:
				found[s] = true
			case []any:
				if len(s) == 1 {
					if str, ok := s[0].(string); ok {
						found[str] = true
					}
				}
			}
		default:
			findJSON(val, name, depth+1, found)
		}
	}
}

// WriteFile writes what fill produces to a temporary file next to path and renames it to path
// only when fill succeeded, so a failed recovery never leaves a complete-looking output file.
func WriteFile(path string, fill func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = fill(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
