package format

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"hash"
	"io"
)

// flag words of the segment nonce (docs/FORMAT.md 3.2).
const (
	flagMore    = 0
	flagFinal   = 1
	flagTrailer = 2

	// maxEmptyReads bounds how often a source may return (0, nil) in a row.
	maxEmptyReads = 100
)

// EncryptOptions configure an EncryptReader.
type EncryptOptions struct {
	// ComputeMD5 seals the plaintext's MD5 into the trailer; false stores 16 zero bytes.
	ComputeMD5 bool
	// Checksum is S3's additional checksum algorithm of the plaintext (ChecksumNone: none).
	// A single-part object (NewEncryptReader) records it in its PartInfo and seals the digest
	// in its trailer after the MD5 (FORMAT.md 3.3): its stored size is EncryptedSizeOf and it
	// is read with ObjectKey.SingleStreamOf. A part (the part encrypt readers) only computes
	// it: its layout is unchanged. EncryptReader.Checksum returns the digest.
	Checksum ChecksumAlgorithm
}

// EncryptReader reads the stored bytes of one stream: the part header (parts only), the
// segments and the trailer. It reads exactly the declared plaintext size from its source and
// emits the final segment and the trailer only after the source returned io.EOF exactly there,
// so an aborted or over-long body never yields a complete stored stream.
type EncryptReader struct {
	src    io.Reader
	aead   cipher.AEAD
	plain  int64 // declared plaintext size
	stored int64
	nseg   int64
	seg    int64 // next segment to produce; nseg means the trailer, nseg+1 done
	srcEOF bool  // the source returned io.EOF
	md5    hash.Hash
	ck     hash.Hash // the checksum's, or nil
	hash   hash.Hash // what the plaintext is written to: md5, ck, both (teeHash) or nil
	pipe   *md5Pipe  // runs hash beside sealing (streams of more than one segment), else nil
	sum    []byte
	cksum  []byte // the checksum's digest, once the trailer is produced
	sealCk bool   // the trailer seals cksum after the MD5 (single-part objects)
	nonce  [12]byte
	buf    []byte // one stored segment
	out    []byte // pending output
	err    error  // sticky; io.EOF once done
	bad    error  // invalid options: returned before any byte (a part's header included)
	header []byte // a salted part's header (formats 2 and 3), else nil
}

// NewEncryptReader returns a reader of the stored bytes of a single-part object holding the
// size plaintext bytes read from src, encrypted under k.
func NewEncryptReader(src io.Reader, k *ObjectKey, size int64, o EncryptOptions) (*EncryptReader, error) {
	if k == nil {
		return nil, errf(ErrMalformed, "encrypt: nil object key")
	}
	if size < 0 || size > MaxPlainSize {
		return nil, errf(ErrSize, "encrypt: invalid plaintext size %d", size)
	}
	if !validChecksum(o.Checksum) {
		return nil, errf(ErrMalformed, "encrypt: unknown checksum algorithm %d", o.Checksum)
	}
	r := newStreamEncryptReader(src, k.singleStreamKey(size, o.Checksum), size, o, o.Checksum != ChecksumNone)
	r.stored = EncryptedSizeOf(size, o.Checksum)
	return r, nil
}

// NewPartEncryptReader writes a part of format 1 (FORMAT.md 3.4.1), kept to produce format-1
// objects in tests: new uploads write format 2 (ObjectKey.NewPartEncryptReader). It returns a
// reader of the stored bytes of multipart part partNumber (its 48-byte header first) holding
// the size plaintext bytes read from src. upub is the upload public key from the upload id; a
// fresh ephemeral key is drawn for every call, so a retried part is encrypted under a new part
// key.
func NewPartEncryptReader(src io.Reader, upub []byte, partNumber int, size int64, o EncryptOptions) (*EncryptReader, error) {
	return newPartEncryptReader(rand.Reader, src, upub, partNumber, size, o)
}

func newPartEncryptReader(rnd io.Reader, src io.Reader, upub []byte, partNumber int, size int64, o EncryptOptions) (*EncryptReader, error) {
	if partNumber < 1 || partNumber > MaxPartNumber {
		return nil, errf(ErrMalformed, "encrypt: part number %d outside 1..%d", partNumber, MaxPartNumber)
	}
	if size < 0 || size > MaxPlainSize {
		return nil, errf(ErrSize, "encrypt: invalid plaintext size %d", size)
	}
	pub, err := ecdh.X25519().NewPublicKey(upub)
	if err != nil {
		return nil, errf(ErrMalformed, "encrypt: upload public key: %v", err)
	}
	var ephBytes [KeySize]byte
	defer clear(ephBytes[:])
	if _, err := io.ReadFull(rnd, ephBytes[:]); err != nil {
		return nil, err
	}
	eph, err := ecdh.X25519().NewPrivateKey(ephBytes[:])
	if err != nil {
		return nil, errf(ErrMalformed, "encrypt: ephemeral key: %v", err)
	}
	shared, err := eph.ECDH(pub)
	if err != nil {
		return nil, errf(ErrMalformed, "encrypt: upload public key: %v", err)
	}
	defer clear(shared)
	ephPub := eph.PublicKey().Bytes()
	pi := partInfo(Version, kindMultipart, partNumber, size)
	r := newEncryptReader(src, multipartKey(shared, ephPub, upub, pi), size, o)
	r.stored = PartEncryptedSize(size)
	// The header goes out first; buf is free until the first segment is produced.
	r.out = append(append(r.buf[:0], pi[:]...), ephPub...)
	return r, nil
}

// newEncryptReader returns the reader of a part's segments and trailer (the caller sets the
// stored size and the header): o.Checksum is computed, not sealed. An unknown algorithm fails
// the first Read (ErrMalformed).
func newEncryptReader(src io.Reader, pk []byte, size int64, o EncryptOptions) *EncryptReader {
	r := newStreamEncryptReader(src, pk, size, o, false)
	if !validChecksum(o.Checksum) {
		r.bad = errf(ErrMalformed, "encrypt: unknown checksum algorithm %d", o.Checksum)
		r.err = r.bad
	}
	return r
}

// newStreamEncryptReader returns the reader of a stream's segments and trailer; sealCk seals
// the digest of o.Checksum (a known algorithm) in the trailer.
func newStreamEncryptReader(src io.Reader, pk []byte, size int64, o EncryptOptions, sealCk bool) *EncryptReader {
	trailer := int64(TrailerSize)
	if sealCk {
		trailer = trailerSizeOf(o.Checksum)
	}
	r := &EncryptReader{
		src:    src,
		aead:   newAEAD(pk),
		plain:  size,
		nseg:   numSegments(size),
		buf:    segmentBuffer(size, trailer),
		sealCk: sealCk,
	}
	if o.ComputeMD5 {
		r.md5 = md5.New()
		r.hash = r.md5
	}
	if r.ck = o.Checksum.New(); r.ck != nil {
		r.hash = r.ck
		if r.md5 != nil {
			r.hash = teeHash{r.md5, r.ck}
		}
	}
	if r.hash != nil && r.nseg > 1 {
		r.pipe = newMD5Pipe(r.hash)
	}
	return r
}

// teeHash writes to two hashes; only Write is used (by md5Pipe and in line), the digests are
// read from each hash.
type teeHash [2]hash.Hash

func (t teeHash) Write(p []byte) (int, error) {
	t[0].Write(p)
	return t[1].Write(p)
}

func (t teeHash) Sum(b []byte) []byte { return t[1].Sum(t[0].Sum(b)) }
func (t teeHash) Reset()              { t[0].Reset(); t[1].Reset() }
func (t teeHash) Size() int           { return t[0].Size() + t[1].Size() }
func (t teeHash) BlockSize() int      { return t[0].BlockSize() }

// PartHeader returns the 48-byte header of a salted part (formats 2 and 3: PartInfo and the
// part salt), or nil for other streams.
func (r *EncryptReader) PartHeader() []byte { return append([]byte(nil), r.header...) }

// Size returns the stored size: the Content-Length of the backend request.
func (r *EncryptReader) Size() int64 { return r.stored }

// Checksum returns the digest of EncryptOptions.Checksum of the plaintext (as hash.Sum gives
// it, the algorithm's Size() bytes) once the whole plaintext has been read (the source
// returned io.EOF after exactly the declared size) and the trailer made, or nil before then
// or if there is none. Like MD5 it does not wait for the reader's own io.EOF: an HTTP client
// that sends the stored bytes stops reading at their Content-Length.
func (r *EncryptReader) Checksum() []byte {
	if r.cksum == nil {
		return nil
	}
	return append([]byte(nil), r.cksum...)
}

// MD5 returns the plaintext's MD5 once Read has returned io.EOF, or nil if it was not computed.
func (r *EncryptReader) MD5() []byte {
	if r.sum == nil {
		return nil
	}
	return append([]byte(nil), r.sum...)
}

// Read implements io.Reader.
func (r *EncryptReader) Read(p []byte) (int, error) {
	if r.bad != nil {
		return 0, r.bad
	}
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.next()
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// WriteTo implements io.WriterTo, saving io.Copy a buffer copy.
func (r *EncryptReader) WriteTo(w io.Writer) (int64, error) {
	if r.bad != nil {
		return 0, r.bad
	}
	var total int64
	for {
		for len(r.out) == 0 {
			if r.err == io.EOF {
				return total, nil
			} else if r.err != nil {
				return total, r.err
			}
			r.err = r.next()
		}
		n, err := w.Write(r.out)
		total += int64(n)
		r.out = r.out[n:]
		if err != nil {
			return total, err
		}
		if len(r.out) > 0 {
			return total, io.ErrShortWrite
		}
	}
}

func (r *EncryptReader) setNonce(i int64, flag uint32) {
	binary.BigEndian.PutUint64(r.nonce[:8], uint64(i))
	binary.BigEndian.PutUint32(r.nonce[8:], flag)
}

// next produces the next segment or the trailer into r.out.
func (r *EncryptReader) next() error {
	switch {
	case r.seg < r.nseg:
		final := r.seg == r.nseg-1
		m := SegmentSize
		if final {
			m = int(r.plain - r.seg*SegmentSize)
		}
		pt := r.buf[:m] // sealed in place, unless the pipe still reads it
		if r.pipe != nil {
			pt = r.pipe.plain()[:m]
		}
		if err := r.fill(pt); err != nil {
			return err
		}
		flag := uint32(flagMore)
		if final {
			if err := r.expectEOF(); err != nil {
				return err
			}
			flag = flagFinal
		}
		switch {
		case r.pipe != nil:
			r.pipe.hash(pt)
		case r.hash != nil:
			r.hash.Write(pt)
		}
		r.setNonce(r.seg, flag)
		r.out = r.aead.Seal(r.buf[:0], r.nonce[:], pt, nil)
		r.seg++
		return nil
	case r.seg == r.nseg:
		if r.pipe != nil {
			r.pipe.sum() // waits until the last segment is hashed; the digests are read below
		}
		if r.md5 != nil {
			r.sum = r.md5.Sum(nil)
		}
		if r.ck != nil {
			r.cksum = r.ck.Sum(nil)
		}
		// Trailer plaintext: MD5 (or 16 zero bytes) ‖ the checksum, if sealed.
		var sum [md5.Size + maxChecksumSize]byte
		copy(sum[:], r.sum)
		n := md5.Size
		if r.sealCk {
			n += copy(sum[n:], r.cksum)
		}
		r.setNonce(r.nseg, flagTrailer)
		r.out = r.aead.Seal(r.buf[:0], r.nonce[:], sum[:n], nil)
		r.seg++
		return nil
	default:
		return io.EOF
	}
}

// fill reads exactly len(b) bytes from the source.
func (r *EncryptReader) fill(b []byte) error {
	got, empty := 0, 0
	for got < len(b) {
		if r.srcEOF {
			done := r.seg*SegmentSize + int64(got)
			return errf(ErrSize, "encrypt: source ended after %d of %d declared bytes (segment %d): %w", done, r.plain, r.seg, io.ErrUnexpectedEOF)
		}
		n, err := r.src.Read(b[got:])
		got += n
		switch {
		case err == io.EOF:
			r.srcEOF = true
		case err != nil:
			return err
		case n == 0:
			if empty++; empty >= maxEmptyReads {
				return io.ErrNoProgress
			}
			continue
		}
		empty = 0
	}
	return nil
}

// expectEOF checks that the source is at its end after the declared size.
func (r *EncryptReader) expectEOF() error {
	var one [1]byte
	for empty := 0; !r.srcEOF; {
		n, err := r.src.Read(one[:])
		if n > 0 {
			return errf(ErrSize, "encrypt: source longer than the declared %d bytes", r.plain)
		}
		switch {
		case err == io.EOF:
			r.srcEOF = true
		case err != nil:
			return err
		default:
			if empty++; empty >= maxEmptyReads {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}
