package proxy

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/s3seal/s3seal/format"
)

// The layout of a multipart object. The stored object is the concatenation of self-describing
// parts (FORMAT.md 3.4); the gateway needs the part boundaries to know the plaintext size and to
// map ranges. It asks the backend for the part sizes (HEAD with partNumber; parts are assumed to
// be of equal size but the last, as every S3 client makes them, and otherwise asked one by one),
// then reads every part boundary at once -- each read is the end of one part and the start of the
// next: the trailer of part i and the header of part i+1 -- and checks it: the header's size must
// match, part numbers must increase, and, when the object key is at hand, every part's trailer
// must open under the key its header implies (which authenticates the header and the size).
// Objects whose backend parts are not the format's parts (a server-side copy makes one backend
// part of many) are walked header by header first. Layouts are cached with the object's facts.

// errLayoutMismatch: the assumed part sizes are not the stored ones.
var errLayoutMismatch = errors.New("part sizes differ from the assumed layout")

// discoverLayout learns and checks the layout of the multipart object o (key may be nil, for an
// SSE-C object read without its key: then trailers are not checked).
func (g *Gateway) discoverLayout(q *request, o *storedObject, key *format.ObjectKey) (checkedLayout, error) {
	size1, count, err := g.headPart(q, o, 1)
	if err != nil {
		return checkedLayout{}, err
	}
	if count > 1 {
		sizes := make([]int64, count)
		last := o.storedSize - int64(count-1)*size1
		if _, err := format.PartDecryptedSize(last); err == nil && last <= size1 {
			for i := range sizes {
				sizes[i] = size1
			}
			sizes[count-1] = last
		} else if err := g.headAllParts(q, o, sizes); err != nil {
			return checkedLayout{}, err
		}
		l, err := g.checkBoundaries(q, o, key, sizes)
		if !errors.Is(err, errLayoutMismatch) {
			return l, err
		}
	}
	sizes, err := g.walkHeaders(q, o)
	if err != nil {
		return checkedLayout{}, err
	}
	return g.checkLayout(q, o, key, sizes)
}

// checkLayout is checkBoundaries for sizes that must be the stored ones.
func (g *Gateway) checkLayout(q *request, o *storedObject, key *format.ObjectKey, sizes []int64) (checkedLayout, error) {
	l, err := g.checkBoundaries(q, o, key, sizes)
	if errors.Is(err, errLayoutMismatch) {
		return checkedLayout{}, fmt.Errorf("%w: %v", format.ErrAuth, err)
	}
	return l, err
}

// checkedLayout is a layout whose part boundaries were read: every part's header ID is set
// and, when the object key was at hand, its trailer opened (md5s holds the parts' sealed
// plaintext MD5s, nil entries where the writer stored none).
type checkedLayout struct {
	layout format.Layout
	md5s   [][]byte
}

// headAllParts fills sizes with the stored size of every part, asking the backend for each.
func (g *Gateway) headAllParts(q *request, o *storedObject, sizes []int64) error {
	errs := make([]error, len(sizes))
	g.parallel(len(sizes), func(i int) { sizes[i], _, errs[i] = g.headPart(q, o, i+1) })
	return errors.Join(errs...)
}

// parallel runs f(0..n-1), listConcurrency at a time.
func (g *Gateway) parallel(n int, f func(i int)) {
	sem := make(chan struct{}, listConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}(i)
	}
	wg.Wait()
}

// walkHeaders reads the part sizes from the part headers themselves, one small read per part.
func (g *Gateway) walkHeaders(q *request, o *storedObject) ([]int64, error) {
	var sizes []int64
	for off := int64(0); off < o.storedSize; {
		if len(sizes) >= format.MaxPartNumber {
			return nil, fmt.Errorf("%w: more than %d parts", format.ErrAuth, format.MaxPartNumber)
		}
		if o.storedSize-off < format.PartHeaderSize {
			return nil, fmt.Errorf("%w: %d stray bytes after the last part", format.ErrAuth, o.storedSize-off)
		}
		hdr, err := g.readSmallStored(q, o, off, format.PartHeaderSize)
		if err != nil {
			return nil, err
		}
		_, plain, err := format.ParsePartHeader(hdr)
		if err != nil {
			return nil, err
		}
		sizes = append(sizes, format.PartEncryptedSize(plain))
		off += format.PartEncryptedSize(plain)
	}
	return sizes, nil
}

// readSmallStored reads a few stored bytes of o.
func (g *Gateway) readSmallStored(q *request, o *storedObject, off, n int64) ([]byte, error) {
	rc, err := g.readStored(q, o, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err == nil && int64(len(b)) != n {
		err = fmt.Errorf("%w: %d of %d bytes at %d", format.ErrAuth, len(b), n, off)
	}
	return b, err
}

// checkBoundaries reads the header and trailer of every part of o assuming the stored part
// sizes, and returns the layout if they agree (errLayoutMismatch if the sizes are not the
// stored ones; format.ErrAuth if the parts are out of order or do not authenticate).
func (g *Gateway) checkBoundaries(q *request, o *storedObject, key *format.ObjectKey, sizes []int64) (checkedLayout, error) {
	var total int64
	for _, s := range sizes {
		if s < format.PartEncryptedSize(0) {
			return checkedLayout{}, errLayoutMismatch
		}
		total += s
	}
	if total != o.storedSize || len(sizes) > format.MaxPartNumber {
		return checkedLayout{}, errLayoutMismatch
	}
	// Boundary i (0..K): the trailer of part i-1 (if any) followed by the header of part i (if any).
	k := len(sizes)
	bounds := make([][]byte, k+1)
	errs := make([]error, k+1)
	starts := make([]int64, k+1)
	for i := 1; i <= k; i++ {
		starts[i] = starts[i-1] + sizes[i-1]
	}
	g.parallel(k+1, func(i int) {
		off, n := starts[i], int64(0)
		if i > 0 {
			off -= format.TrailerSize
			n += format.TrailerSize
		}
		if i < k {
			n += format.PartHeaderSize
		}
		bounds[i], errs[i] = g.readSmallStored(q, o, off, n)
	})
	if err := errors.Join(errs...); err != nil {
		return checkedLayout{}, err
	}
	numbers := make([]int, k)
	headers := make([][]byte, k)
	md5s := make([][]byte, k)
	for i := 0; i < k; i++ {
		hdr := bounds[i]
		if i > 0 {
			hdr = hdr[format.TrailerSize:]
		}
		headers[i] = hdr
		n, plain, err := format.ParsePartHeader(hdr)
		if err != nil {
			return checkedLayout{}, err
		}
		if format.PartEncryptedSize(plain) != sizes[i] {
			return checkedLayout{}, errLayoutMismatch
		}
		if i > 0 && n <= numbers[i-1] {
			return checkedLayout{}, fmt.Errorf("%w: part number %d after %d", format.ErrAuth, n, numbers[i-1])
		}
		numbers[i] = n
		if key == nil {
			continue
		}
		s, err := key.PartStream(hdr, n)
		if err != nil {
			return checkedLayout{}, err
		}
		if md5s[i], err = s.OpenTrailer(bounds[i+1][:format.TrailerSize]); err != nil {
			return checkedLayout{}, err
		}
	}
	l, err := format.LayoutOfHeaders(headers) // the sizes were checked against the headers above
	if err != nil {
		return checkedLayout{}, err
	}
	return checkedLayout{layout: l, md5s: md5s}, nil
}

// multipartFacts resolves the facts of a multipart object: plaintext size from its checked
// layout, and the ETag (FORMAT.md section 5). The object key is opened (checking the envelope's
// binding to this bucket and key) and returned, unless it is an SSE-C object read without its
// key (then nil: the layout is learned but not authenticated, and not cached).
func (g *Gateway) multipartFacts(q *request, o *storedObject) (objectFacts, *format.ObjectKey, error) {
	var key *format.ObjectKey
	ck, e := g.readCustomerKey(q)
	if e != nil {
		return objectFacts{}, nil, e
	}
	if o.env.Wrap == format.WrapProvider || ck != nil {
		k, err := g.openKey(q, o)
		if err != nil {
			return objectFacts{}, nil, err
		}
		key = k
	}
	f, err := g.checkMultipart(q, o, key)
	if err != nil {
		key.Zero()
		return objectFacts{}, nil, err
	}
	return f, key, nil
}

// checkMultipart learns and checks the layout of a multipart object. A format-2 object must
// carry a part manifest that opens under its key and names exactly the parts found (FORMAT.md
// 3.5.2): dropped, added, reordered or replaced parts are refused before any byte is served.
func (g *Gateway) checkMultipart(q *request, o *storedObject, key *format.ObjectKey) (objectFacts, error) {
	if o.env.Version() == format.Version3 && key == nil {
		return g.keylessTail(q, o)
	}
	if o.env.Version() == format.Version || key == nil {
		cl, err := g.discoverLayout(q, o, key)
		if err != nil {
			return objectFacts{}, err
		}
		return objectFacts{encrypted: true, plainSize: cl.layout.PlainSize(), etag: o.backendETag, layout: cl.layout}, nil
	}
	if o.env.Version() == format.Version3 {
		return g.checkTail(q, o, key)
	}
	v := o.header.Get(format.MetaManifest)
	if v == "" {
		return objectFacts{}, fmt.Errorf("%w: format-2 multipart object without its part manifest", format.ErrAuth)
	}
	m, err := key.OpenManifest(v)
	if err != nil {
		return objectFacts{}, err
	}
	var cl checkedLayout
	if _, sizes := m.Layout(); sizes != nil {
		cl, err = g.checkLayout(q, o, key, sizes)
	} else {
		cl, err = g.discoverLayout(q, o, key)
	}
	if err != nil {
		return objectFacts{}, err
	}
	if err := m.Check(cl.layout); err != nil {
		return objectFacts{}, err
	}
	f := objectFacts{encrypted: true, plainSize: cl.layout.PlainSize(), etag: o.backendETag, layout: cl.layout}
	if m.ETagMD5 != nil && g.cfg.ETag == ETagPlaintext {
		f.etag = multipartETag(m.ETagMD5, m.Parts)
	}
	return f, nil
}

// checkTail checks a format-3 multipart object (FORMAT.md 3.6): its tail, read with one
// request from the object's end, must open under its key and list a layout that, with the
// tail, makes the stored size; every part boundary is then read and checked, and the part
// headers must be the ones the tail's digest covers.
func (g *Gateway) checkTail(q *request, o *storedObject, key *format.ObjectKey) (objectFacts, error) {
	n := min(o.storedSize, format.TailReadSize)
	end, err := g.readSmallStored(q, o, o.storedSize-n, n)
	if err != nil {
		return objectFacts{}, err
	}
	size, err := format.TailLength(end, o.storedSize)
	if err != nil {
		return objectFacts{}, err
	}
	var tail []byte
	if size <= n {
		tail = end[n-size:]
	} else if tail, err = g.readSmallStored(q, o, o.storedSize-size, size); err != nil {
		return objectFacts{}, err
	}
	t, err := key.OpenTail(tail, o.storedSize)
	if err != nil {
		return objectFacts{}, err
	}
	parts := *o
	parts.storedSize -= t.Size
	_, sizes := t.Layout()
	cl, err := g.checkLayout(q, &parts, key, sizes)
	if err != nil {
		return objectFacts{}, err
	}
	if err := t.Check(cl.layout); err != nil {
		return objectFacts{}, err
	}
	f := objectFacts{encrypted: true, plainSize: cl.layout.PlainSize(), etag: o.backendETag, layout: cl.layout,
		checksum: objectChecksum{kind: t.Checksum.Kind, value: t.Checksum.Value, parts: t.Parts}}
	if t.ETagMD5 != nil && g.cfg.ETag == ETagPlaintext {
		f.etag = multipartETag(t.ETagMD5, t.Parts)
	}
	return f, nil
}

// keylessTail learns the layout of a format-3 SSE-C object read without its key: the tail's
// length from its footer (which is not sealed), then the part headers one by one. Nothing is
// authenticated (the keyless view: listings and conditions only, FORMAT.md 5).
func (g *Gateway) keylessTail(q *request, o *storedObject) (objectFacts, error) {
	n := min(o.storedSize, format.TailFooterSize)
	end, err := g.readSmallStored(q, o, o.storedSize-n, n)
	if err != nil {
		return objectFacts{}, err
	}
	size, err := format.TailLength(end, o.storedSize)
	if err != nil {
		return objectFacts{}, err
	}
	parts := *o
	parts.storedSize -= size
	sizes, err := g.walkHeaders(q, &parts)
	if err != nil {
		return objectFacts{}, err
	}
	cl, err := g.checkLayout(q, &parts, nil, sizes)
	if err != nil {
		return objectFacts{}, err
	}
	return objectFacts{encrypted: true, plainSize: cl.layout.PlainSize(), etag: o.backendETag, layout: cl.layout}, nil
}

// multipartETag is S3's ETag of a multipart object: the hex MD5 of the parts' MD5s and "-K".
func multipartETag(md5OfMD5s []byte, parts int) string {
	return `"` + hex.EncodeToString(md5OfMD5s) + "-" + strconv.Itoa(parts) + `"`
}
