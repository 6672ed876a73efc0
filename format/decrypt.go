package format

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
)

// Stream is one decryptable stream: a single-part object, or one part of a multipart object
// (without its 48-byte header). It is safe for concurrent use.
type Stream struct {
	aead  cipher.AEAD
	plain int64
	nseg  int64
	part  int               // 0 for a single-part object
	ck    ChecksumAlgorithm // sealed in the trailer (single-part objects only)
}

// SingleStream returns the stream of a single-part object with plainSize plaintext bytes
// (DecryptedSize of the stored size) and no checksum: SingleStreamOf(plainSize, ChecksumNone).
func (k *ObjectKey) SingleStream(plainSize int64) (*Stream, error) {
	return k.SingleStreamOf(plainSize, ChecksumNone)
}

// SingleStreamOf returns the stream of a single-part object with plainSize plaintext bytes
// (DecryptedSizeOf the stored size and a) whose trailer seals a checksum of algorithm a (from
// MetaChecksum, ParseChecksumMeta; FORMAT.md 3.3). The algorithm is part of the stream's key,
// so a wrong a fails every segment and the trailer. An invalid size or an unknown algorithm
// wraps ErrMalformed.
func (k *ObjectKey) SingleStreamOf(plainSize int64, a ChecksumAlgorithm) (*Stream, error) {
	if k == nil {
		return nil, errf(ErrMalformed, "stream: nil object key")
	}
	if plainSize < 0 || plainSize > MaxPlainSize {
		return nil, errf(ErrMalformed, "stream: invalid plaintext size %d", plainSize)
	}
	if !validChecksum(a) {
		return nil, errf(ErrMalformed, "stream: unknown checksum algorithm %d", a)
	}
	return &Stream{aead: newAEAD(k.singleStreamKey(plainSize, a)), plain: plainSize, nseg: numSegments(plainSize), ck: a}, nil
}

// ParsePartHeader parses a 48-byte part header and returns its part number and plaintext size.
// Errors wrap ErrMalformed or ErrVersion.
func ParsePartHeader(header []byte) (part int, plainSize int64, err error) {
	if len(header) != PartHeaderSize {
		return 0, 0, errf(ErrMalformed, "part header: %d bytes, want %d", len(header), PartHeaderSize)
	}
	if header[0] != Version && header[0] != Version2 && header[0] != Version3 {
		return 0, 0, errf(ErrVersion, "part header: version %d", header[0])
	}
	switch header[1] {
	case kindMultipart:
	case kindSingle:
		return 0, 0, errf(ErrMalformed, "part header: kind 0 (single-part) in a part header")
	default:
		return 0, 0, errf(ErrVersion, "part header: kind %d", header[1])
	}
	if header[2] != 0 || header[3] != 0 {
		return 0, 0, errf(ErrMalformed, "part header: reserved bytes not zero")
	}
	n := binary.BigEndian.Uint32(header[4:8])
	if n < 1 || n > MaxPartNumber {
		return 0, 0, errf(ErrMalformed, "part header: part number %d outside 1..%d", n, MaxPartNumber)
	}
	p := binary.BigEndian.Uint64(header[8:16])
	if p > MaxPlainSize {
		return 0, 0, errf(ErrMalformed, "part header: plaintext size %d too large", p)
	}
	return int(n), int64(p), nil
}

// PartStream returns the stream of the part whose 48-byte header is given. wantPart is the part
// number the caller expects (from the backend's part listing); 0 accepts any. A mismatch
// wraps ErrAuth. A key opened from an envelope accepts only part headers of that envelope's
// format version (a format-2 part presented as format 1, or the reverse, wraps ErrAuth).
func (k *ObjectKey) PartStream(header []byte, wantPart int) (*Stream, error) {
	if k == nil {
		return nil, errf(ErrMalformed, "stream: nil object key")
	}
	part, plain, err := ParsePartHeader(header)
	if err != nil {
		return nil, err
	}
	if wantPart != 0 && part != wantPart {
		return nil, errf(ErrAuth, "part header: part number %d where part %d was expected", part, wantPart)
	}
	if k.version != 0 && header[0] != k.version {
		return nil, errf(ErrAuth, "part %d header: format version %d in an object of format %d", part, header[0], k.version)
	}
	var pi [partInfoSize]byte
	copy(pi[:], header)
	var pk []byte
	if header[0] == Version2 || header[0] == Version3 {
		pk = k.partKeyV2(pi, header[partInfoSize:])
	} else if pk, err = k.partKeyV1(pi, header[partInfoSize:]); err != nil {
		return nil, err
	}
	return &Stream{aead: newAEAD(pk), plain: plain, nseg: numSegments(plain), part: part}, nil
}

// partKeyV1 is the format-1 part key: HKDF(X25519(UPriv, EphPub), EphPub ‖ UPub, "s3seal/1
// part" ‖ PartInfo, 32).
func (k *ObjectKey) partKeyV1(pi [partInfoSize]byte, ephPub []byte) ([]byte, error) {
	priv, err := k.uploadPrivateKey()
	if err != nil {
		return nil, err
	}
	pub, err := ecdh.X25519().NewPublicKey(ephPub)
	if err != nil {
		return nil, errf(ErrMalformed, "part header: ephemeral public key: %v", err)
	}
	shared, err := priv.ECDH(pub)
	if err != nil {
		return nil, errf(ErrAuth, "part header: ephemeral public key: %v", err)
	}
	defer clear(shared)
	return multipartKey(shared, ephPub, priv.PublicKey().Bytes(), pi), nil
}

// PlainSize returns the stream's plaintext size.
func (s *Stream) PlainSize() int64 { return s.plain }

// StoredSize returns the stream's stored size, without a part header.
func (s *Stream) StoredSize() int64 { return segmentsSize(s.plain) + s.TrailerSize() }

// TrailerOffset returns the stored offset of the trailer within the stream.
func (s *Stream) TrailerOffset() int64 { return segmentsSize(s.plain) }

// TrailerSize returns the size of the stream's trailer: TrailerSize, plus the checksum's size
// for a single-part object that seals one.
func (s *Stream) TrailerSize() int64 { return trailerSizeOf(s.ck) }

// Checksum returns the algorithm of the checksum the stream's trailer seals (ChecksumNone for
// none, and for every part).
func (s *Stream) Checksum() ChecksumAlgorithm { return s.ck }

func (s *Stream) where() string {
	if s.part == 0 {
		return "stream"
	}
	return "part " + itoa(int64(s.part))
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// OpenTrailer opens the trailer (exactly TrailerSize() bytes) and returns the MD5 it holds, or
// nil if the writer stored zeros. A wrong length wraps ErrMalformed, a trailer that does not
// open ErrAuth.
func (s *Stream) OpenTrailer(b []byte) ([]byte, error) {
	sum, _, err := s.OpenTrailerChecksum(b)
	return sum, err
}

// OpenTrailerChecksum opens the trailer (exactly TrailerSize() bytes) and returns the MD5 it
// holds (nil if the writer stored zeros) and the checksum of the stream's algorithm (its
// Size() bytes; nil for none). Errors as OpenTrailer's.
func (s *Stream) OpenTrailerChecksum(b []byte) (md5Sum, sum []byte, err error) {
	if t := s.TrailerSize(); int64(len(b)) != t {
		return nil, nil, errf(ErrMalformed, "%s trailer: %d bytes, want %d", s.where(), len(b), t)
	}
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[:8], uint64(s.nseg))
	binary.BigEndian.PutUint32(nonce[8:], flagTrailer)
	pt, err := s.aead.Open(make([]byte, 0, len(b)-TagSize), nonce[:], b, nil)
	if err != nil {
		return nil, nil, errf(ErrAuth, "%s trailer", s.where())
	}
	if s.ck != ChecksumNone {
		sum = pt[md5.Size:]
	}
	md5Sum = pt[:md5.Size:md5.Size]
	if [md5.Size]byte(md5Sum) == [md5.Size]byte{} {
		md5Sum = nil
	}
	return md5Sum, sum, nil
}

// Span returns which stored bytes of the stream (offsets relative to the stream start) are
// needed to decrypt the plaintext range [off, off+length): only the covering segments, never
// the trailer. An empty range needs no bytes.
func (s *Stream) Span(off, length int64) (storedOff, storedLen int64, err error) {
	return StreamSpan(s.plain, off, length)
}

// StreamSpan is Stream.Span for a stream of plainSize plaintext bytes, without a key: the span
// depends on the size only (for a part, offsets are relative to the end of its header).
func StreamSpan(plainSize, off, length int64) (storedOff, storedLen int64, err error) {
	if off < 0 || length < 0 || off > plainSize || length > plainSize-off {
		return 0, 0, errf(ErrRange, "range off=%d length=%d outside %d plaintext bytes", off, length, plainSize)
	}
	if length == 0 {
		return 0, 0, nil
	}
	first, last := off>>segShift, (off+length-1)>>segShift
	storedOff = first * storedSegment
	end := min((last+1)*storedSegment, segmentsSize(plainSize)) // the trailer is not needed
	return storedOff, end - storedOff, nil
}

// DecryptRange returns a reader of the plaintext [off, off+length). src must yield exactly the
// stored bytes given by Span(off, length). Every segment is authenticated before any of its
// bytes are returned.
func (s *Stream) DecryptRange(src io.Reader, off, length int64) io.Reader {
	if _, _, err := s.Span(off, length); err != nil {
		return &DecryptReader{err: err}
	}
	if length == 0 {
		return &DecryptReader{err: io.EOF}
	}
	return &DecryptReader{
		s:      s,
		src:    src,
		seg:    off >> segShift,
		last:   (off + length - 1) >> segShift,
		skip:   int(off & (SegmentSize - 1)),
		remain: length,
		buf:    segmentBuffer(s.plain, 0),
	}
}

// DecryptAll returns a reader of the whole plaintext. src must yield the whole stored stream
// (for a part, everything after the header), trailer included (TrailerSize() bytes). The
// reader verifies every segment, the final flag, the trailer, and that src ends right after
// the trailer, before it returns io.EOF.
func (s *Stream) DecryptAll(src io.Reader) *DecryptReader {
	return &DecryptReader{
		s:       s,
		src:     src,
		last:    s.nseg - 1,
		remain:  s.plain,
		trailer: true,
		buf:     segmentBuffer(s.plain, s.TrailerSize()),
	}
}

// DecryptReader reads decrypted plaintext; see Stream.DecryptAll and Stream.DecryptRange.
// After an error every further Read returns the same error.
type DecryptReader struct {
	s       *Stream
	src     io.Reader
	seg     int64 // next segment to read
	last    int64 // last segment to read
	skip    int   // plaintext bytes to drop from the first segment
	remain  int64 // plaintext bytes still to return
	trailer bool  // read and verify the trailer and the end of src
	md5     []byte
	cksum   []byte // the checksum the trailer seals, or nil
	nonce   [12]byte
	buf     []byte
	out     []byte
	err     error
}

// MD5 returns the MD5 from the trailer once Read has returned io.EOF after DecryptAll, or nil
// if the trailer held zeros.
func (d *DecryptReader) MD5() []byte {
	if d.err != io.EOF || d.md5 == nil {
		return nil
	}
	return append([]byte(nil), d.md5...)
}

// Checksum returns the checksum sealed in the trailer (of the stream's algorithm, its Size()
// bytes) once Read or WriteTo has returned io.EOF after DecryptAll, or nil before then, after
// DecryptRange, or for a stream without a checksum. It is authenticated with the trailer: the
// value the writer computed of this plaintext, to return as S3's checksum of the object.
func (d *DecryptReader) Checksum() []byte {
	if d.err != io.EOF || d.cksum == nil {
		return nil
	}
	return append([]byte(nil), d.cksum...)
}

// Read implements io.Reader.
func (d *DecryptReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		d.err = d.next()
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// WriteTo implements io.WriterTo, saving io.Copy a buffer copy.
func (d *DecryptReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		for len(d.out) == 0 {
			if d.err == io.EOF {
				return total, nil
			} else if d.err != nil {
				return total, d.err
			}
			d.err = d.next()
		}
		n, err := w.Write(d.out)
		total += int64(n)
		d.out = d.out[n:]
		if err != nil {
			return total, err
		}
		if len(d.out) > 0 {
			return total, io.ErrShortWrite
		}
	}
}

func (d *DecryptReader) setNonce(i int64, flag uint32) {
	binary.BigEndian.PutUint64(d.nonce[:8], uint64(i))
	binary.BigEndian.PutUint32(d.nonce[8:], flag)
}

// readFull reads len(b) stored bytes of segment seg (-1: the trailer); a short source is a
// truncated stream. The message is only built on failure: this runs once per segment.
func (d *DecryptReader) readFull(b []byte, seg int64) error {
	_, err := io.ReadFull(d.src, b)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		what := "trailer"
		if seg >= 0 {
			what = "segment " + itoa(seg)
		}
		return errf(ErrAuth, "%s %s: stored data truncated", d.s.where(), what)
	}
	return err
}

func (d *DecryptReader) next() error {
	s := d.s
	if d.seg <= d.last {
		m := SegmentSize
		flag := uint32(flagMore)
		if d.seg == s.nseg-1 {
			m = int(s.plain - d.seg*SegmentSize)
			flag = flagFinal
		}
		c := d.buf[:m+TagSize]
		if err := d.readFull(c, d.seg); err != nil {
			return err
		}
		d.setNonce(d.seg, flag)
		pt, err := s.aead.Open(c[:0], d.nonce[:], c, nil)
		if err != nil {
			return errf(ErrAuth, "%s segment %d", s.where(), d.seg)
		}
		d.seg++
		pt = pt[d.skip:]
		d.skip = 0
		if int64(len(pt)) > d.remain {
			pt = pt[:d.remain]
		}
		d.remain -= int64(len(pt))
		d.out = pt
		return nil
	}
	if !d.trailer {
		return io.EOF
	}
	d.trailer = false
	t := d.buf[:s.TrailerSize()]
	if err := d.readFull(t, -1); err != nil {
		return err
	}
	sum, ck, err := s.OpenTrailerChecksum(t)
	if err != nil {
		return err
	}
	d.md5, d.cksum = sum, ck
	var one [1]byte
	for empty := 0; ; {
		n, err := d.src.Read(one[:])
		switch {
		case n > 0:
			return errf(ErrAuth, "%s: stored data continues after the trailer", s.where())
		case err == io.EOF:
			return io.EOF
		case err != nil:
			return err
		}
		if empty++; empty >= maxEmptyReads {
			return io.ErrNoProgress
		}
	}
}
