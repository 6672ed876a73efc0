package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/s3seal/s3seal/format"
)

// Reading multipart objects. The stored object is the concatenation of self-describing parts
// (FORMAT.md 3.4); the gateway needs the part boundaries (the layout) to know the plaintext
// size and to map ranges. It asks the backend (HEAD with partNumber), assumes equal part sizes
// as every S3 client makes them, checks that against the total, and otherwise asks for every
// part; objects whose backend parts do not match (server-side copies of multipart objects) are
// walked header by header. Layouts are cached with the object's facts.

// headPart asks the backend for part n (1-based position) of the stored object o: its stored
// size and the part count.
func (g *Gateway) headPart(q *request, o *storedObject, n int) (size int64, count int, err error) {
	v := objectQuery(q.r)
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
	count = 1
	if c := resp.Header.Get("X-Amz-Mp-Parts-Count"); c != "" {
		if count, err = strconv.Atoi(c); err != nil || count < 1 {
			return 0, 0, fmt.Errorf("backend x-amz-mp-parts-count %q", c)
		}
	}
	return resp.ContentLength, count, nil
}

// discoverLayout learns the layout of the multipart object o.
func (g *Gateway) discoverLayout(q *request, o *storedObject) (format.Layout, error) {
	size1, count, err := g.headPart(q, o, 1)
	if err != nil {
		return nil, err
	}
	if count == 1 {
		// One backend part: a one-part upload, or a server-side copy that joined many parts
		// into one backend object. Only the headers can tell.
		return g.walkHeaders(q, o)
	}
	positions := make([]int, count)
	for i := range positions {
		positions[i] = i + 1
	}
	sizes := make([]int64, count)
	last := o.storedSize - int64(count-1)*size1
	if _, err := format.PartDecryptedSize(last); err == nil && last <= size1 {
		for i := range sizes {
			sizes[i] = size1
		}
		sizes[count-1] = last
	} else if err := g.headAllParts(q, o, sizes); err != nil {
		return nil, err
	}
	l, err := format.NewLayout(positions, sizes)
	if err == nil && l.StoredSize() == o.storedSize {
		return l, nil
	}
	// The backend's parts are not the format's parts (e.g. a server-side copy made one backend
	// part of many): read the part headers instead.
	return g.walkHeaders(q, o)
}

// headAllParts fills sizes with the stored size of every part, asking the backend for each.
func (g *Gateway) headAllParts(q *request, o *storedObject, sizes []int64) error {
	sem := make(chan struct{}, listConcurrency)
	var wg sync.WaitGroup
	errs := make([]error, len(sizes))
	for i := range sizes {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			sizes[i], _, errs[i] = g.headPart(q, o, i+1)
		}(i)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readStored reads the stored bytes [off, off+n) of o (exactly that version).
func (g *Gateway) readStored(q *request, o *storedObject, off, n int64) (io.ReadCloser, error) {
	t := target{q.bucket, q.key, objectQuery(q.r)}
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
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(countingReader{resp.Body, &q.storedIn}, n), resp.Body}, nil
}

// walkHeaders reads the layout from the part headers themselves, one small read per part.
func (g *Gateway) walkHeaders(q *request, o *storedObject) (format.Layout, error) {
	var numbers []int
	var sizes []int64
	for off := int64(0); off < o.storedSize; {
		if len(numbers) >= format.MaxPartNumber {
			return nil, fmt.Errorf("%w: more than %d parts", format.ErrMalformed, format.MaxPartNumber)
		}
		if o.storedSize-off < format.PartHeaderSize {
			return nil, fmt.Errorf("%w: %d stray bytes after the last part", format.ErrAuth, o.storedSize-off)
		}
		rc, err := g.readStored(q, o, off, format.PartHeaderSize)
		if err != nil {
			return nil, err
		}
		hdr, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		n, plain, err := format.ParsePartHeader(hdr)
		if err != nil {
			return nil, err
		}
		numbers = append(numbers, n)
		sizes = append(sizes, format.PartEncryptedSize(plain))
		off += format.PartEncryptedSize(plain)
	}
	l, err := format.NewLayout(numbers, sizes)
	if err != nil {
		return nil, err
	}
	if l.StoredSize() != o.storedSize {
		return nil, fmt.Errorf("%w: parts end at %d, object has %d bytes", format.ErrAuth, l.StoredSize(), o.storedSize)
	}
	return l, nil
}

// multipartFacts resolves the facts of a multipart object: plaintext size from the layout,
// and the backend ETag (FORMAT.md section 5).
func (g *Gateway) multipartFacts(q *request, o *storedObject) (objectFacts, error) {
	l, err := g.discoverLayout(q, o)
	if err != nil {
		return objectFacts{}, err
	}
	f := objectFacts{encrypted: true, plainSize: l.PlainSize(), etag: o.backendETag, layout: l}
	if o.backendETag != "" {
		g.objects.Add(factsKey(q.bucket, q.key, o.backendETag), f)
	}
	return f, nil
}

// partsReader decrypts a whole multipart object from its full stored stream, part by part,
// checking every part header against the layout and that part numbers increase.
type partsReader struct {
	src    io.Reader
	key    *format.ObjectKey
	layout format.Layout
	i      int
	prev   int
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
			// Nothing may follow the last part.
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
	s, err := partStream(r.key, hdr, part, r.prev)
	if err != nil {
		return err
	}
	r.prev, _, _ = format.ParsePartHeader(hdr)
	r.cur = s.DecryptAll(io.LimitReader(r.src, part.StoredSize-format.PartHeaderSize))
	return nil
}

// partStream opens a part's stream from its header and checks it against the layout: the
// plaintext size must match, and the part number must exceed the previous part's (prev; 0 for
// none known).
func partStream(key *format.ObjectKey, hdr []byte, part format.PartLayout, prev int) (*format.Stream, error) {
	s, err := key.PartStream(hdr, 0)
	if err != nil {
		return nil, err
	}
	n, plain, _ := format.ParsePartHeader(hdr)
	if plain != part.PlainSize {
		return nil, fmt.Errorf("%w: part at %d holds %d bytes, the layout says %d", format.ErrAuth, part.StoredOffset, plain, part.PlainSize)
	}
	if n <= prev {
		return nil, fmt.Errorf("%w: part number %d after %d", format.ErrAuth, n, prev)
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
		stream, err := key.SingleStream(f.plainSize)
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
	s, err := partStream(r.key, hdr, part, 0)
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
