package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/s3seal/s3seal/format"
)

// Reading multipart objects: the readers. Layout discovery is in mplayout.go.

// headPart asks the backend for part n (1-based position) of the stored object o: its stored
// size and the part count.
func (g *Gateway) headPart(q *request, o *storedObject, n int) (size int64, count int, err error) {
	v := o.query(q)
	v.Set("partNumber", strconv.Itoa(n))
	t := target{q.bucket, q.key, v}
	h := http.Header{}
	if o.backendETag != "" {
		h.Set("If-Match", o.backendETag)
	}
	resp, err := g.backend.send(q.ctx(), http.MethodHead, t, h, nil, 0, "")
	if err != nil {
		return 0, 0, err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return 0, 0, g.backendError(q, resp, t)
	}
	if err := sameObject(o, resp); err != nil {
		return 0, 0, err
	}
	// Both numbers come from the backend and size allocations and requests: bounded by S3's
	// limits (10,000 parts; a part no larger than the object).
	count = 1
	if c := resp.Header.Get("X-Amz-Mp-Parts-Count"); c != "" {
		if count, err = strconv.Atoi(c); err != nil || count < 1 || count > format.MaxPartNumber {
			return 0, 0, fmt.Errorf("%w: backend x-amz-mp-parts-count %q", format.ErrAuth, c)
		}
	}
	if resp.ContentLength < 0 || (o.storedSize >= 0 && resp.ContentLength > o.storedSize) {
		return 0, 0, fmt.Errorf("%w: backend part %d of %d bytes in an object of %d", format.ErrAuth, n, resp.ContentLength, o.storedSize)
	}
	return resp.ContentLength, count, nil
}

// readStored reads the stored bytes [off, off+n) of o (exactly that version).
func (g *Gateway) readStored(q *request, o *storedObject, off, n int64) (io.ReadCloser, error) {
	t := target{q.bucket, q.key, o.query(q)}
	h := http.Header{}
	h.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	if o.backendETag != "" {
		h.Set("If-Match", o.backendETag)
	}
	resp, err := g.backend.send(q.ctx(), http.MethodGet, t, h, nil, 0, "")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusPartialContent && resp.StatusCode != http.StatusOK {
		return nil, g.backendError(q, resp, t)
	}
	if err := sameObject(o, resp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(countingReader{resp.Body, &q.storedIn}, n), resp.Body}, nil
}

// partsReader decrypts a whole multipart object from its full stored stream, part by part,
// checking every part header against the layout and that part numbers increase.
type partsReader struct {
	src    io.Reader
	key    *format.ObjectKey
	layout format.Layout
	tail   int64 // bytes after the last part (a format-3 object's tail)
	i      int
	cur    io.Reader
	err    error
}

func (r *partsReader) Read(p []byte) (int, error) {
	for {
		if r.err != nil {
			return 0, r.err
		}
		if r.cur != nil {
			n, err := r.cur.Read(p)
			if err == io.EOF {
				r.cur = nil
				r.i++
				if n > 0 {
					return n, nil
				}
				continue
			}
			if err != nil {
				r.err = err
			}
			return n, err
		}
		if r.i == len(r.layout) {
			// Nothing may follow the last part but the tail (format 3), checked with the
			// layout: its bytes are skipped, their number must be the tail's.
			if n, _ := io.CopyN(io.Discard, r.src, r.tail); n != r.tail {
				r.err = fmt.Errorf("%w: %d bytes of the tail after the last part, want %d", format.ErrAuth, n, r.tail)
				continue
			}
			var one [1]byte
			if n, _ := io.ReadFull(r.src, one[:]); n > 0 {
				r.err = fmt.Errorf("%w: data after the last part", format.ErrAuth)
				continue
			}
			return 0, io.EOF
		}
		r.err = r.openPart()
	}
}

func (r *partsReader) openPart() error {
	part := r.layout[r.i]
	hdr := make([]byte, format.PartHeaderSize)
	if _, err := io.ReadFull(r.src, hdr); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%w: part %d header: %v", format.ErrAuth, r.i+1, err)
	}
	s, err := partStream(r.key, hdr, part)
	if err != nil {
		return err
	}
	r.cur = s.DecryptAll(io.LimitReader(r.src, part.StoredSize-format.PartHeaderSize))
	return nil
}

// partStream opens a part's stream from its header and checks it against the layout: the part
// number, the plaintext size and (once the layout was checked) the header's salt must be the
// layout's (whose numbers strictly increase), so a part swapped with another, or from another
// place, or an older upload of the same part, is refused before any byte.
func partStream(key *format.ObjectKey, hdr []byte, part format.PartLayout) (*format.Stream, error) {
	s, err := key.PartStream(hdr, part.Number)
	if err != nil {
		return nil, err
	}
	if part.ID != ([32]byte{}) && !bytes.Equal(hdr[format.PartHeaderSize-32:], part.ID[:]) {
		return nil, fmt.Errorf("%w: part %d is not the part the layout check saw", format.ErrAuth, part.Number)
	}
	if _, plain, _ := format.ParsePartHeader(hdr); plain != part.PlainSize {
		return nil, fmt.Errorf("%w: part at %d holds %d bytes, the layout says %d", format.ErrAuth, part.StoredOffset, plain, part.PlainSize)
	}
	return s, nil
}

// rangeReader returns the plaintext [off, off+length) of an encrypted object, reading only
// the covering segments (and, for multipart objects, each covered part's header), one backend
// request per part at a time.
func (g *Gateway) rangeReader(q *request, o *storedObject, f objectFacts, key *format.ObjectKey, off, length int64) (io.ReadCloser, error) {
	if o.s3ec != nil {
		return g.s3ecReader(q, o, off, length)
	}
	if f.layout == nil {
		stream, err := singleStream(key, o, f)
		if err != nil {
			return nil, err
		}
		soff, slen, err := stream.Span(off, length)
		if err != nil {
			return nil, err
		}
		rc, err := g.readStored(q, o, soff, slen)
		if err != nil {
			return nil, err
		}
		return readCloser{stream.DecryptRange(rc, off, length), rc}, nil
	}
	pr := &partRangeReader{g: g, q: q, o: o, key: key, layout: f.layout, ranges: f.layout.Locate(off, length)}
	return pr, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// partRangeReader serves a plaintext range of a multipart object part by part.
type partRangeReader struct {
	g      *Gateway
	q      *request
	o      *storedObject
	key    *format.ObjectKey
	layout format.Layout
	ranges []format.PartRange
	cur    io.Reader
	body   io.Closer
	err    error
}

func (r *partRangeReader) Read(p []byte) (int, error) {
	for {
		if r.err != nil {
			return 0, r.err
		}
		if r.cur == nil {
			if len(r.ranges) == 0 {
				return 0, io.EOF
			}
			r.err = r.open(r.ranges[0])
			r.ranges = r.ranges[1:]
			continue
		}
		n, err := r.cur.Read(p)
		if err == io.EOF {
			r.closeBody()
			r.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			r.err = err
		}
		return n, err
	}
}

// open fetches the header and covering segments of one part range. When the segments start
// near the header, both come in one backend request.
func (r *partRangeReader) open(pr format.PartRange) error {
	part := r.layout[pr.Index]
	// The span only depends on the part's plaintext size, known from the layout.
	soff, slen, err := format.StreamSpan(part.PlainSize, pr.Off, pr.Length)
	if err != nil {
		return err
	}
	const joinGap = 256 << 10
	base := part.StoredOffset + format.PartHeaderSize
	var hdr []byte
	var rc io.ReadCloser
	if soff <= joinGap {
		rc, err = r.g.readStored(r.q, r.o, part.StoredOffset, format.PartHeaderSize+soff+slen)
		if err != nil {
			return err
		}
		hdr = make([]byte, format.PartHeaderSize+soff)
		if _, err := io.ReadFull(rc, hdr); err != nil {
			rc.Close()
			return fmt.Errorf("%w: part header: %v", format.ErrAuth, err)
		}
		hdr = hdr[:format.PartHeaderSize]
	} else {
		h, err := r.g.readStored(r.q, r.o, part.StoredOffset, format.PartHeaderSize)
		if err != nil {
			return err
		}
		hdr, err = io.ReadAll(h)
		h.Close()
		if err != nil {
			return err
		}
		if rc, err = r.g.readStored(r.q, r.o, base+soff, slen); err != nil {
			return err
		}
	}
	s, err := partStream(r.key, hdr, part)
	if err != nil {
		rc.Close()
		return err
	}
	r.cur, r.body = s.DecryptRange(rc, pr.Off, pr.Length), rc
	return nil
}

func (r *partRangeReader) closeBody() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
}

// Close releases the backend response in use.
func (r *partRangeReader) Close() error {
	r.closeBody()
	return nil
}
