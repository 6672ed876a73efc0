package proxy

import (
	"errors"
	"fmt"
	"io"
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
func (g *Gateway) discoverLayout(q *request, o *storedObject, key *format.ObjectKey) (format.Layout, error) {
	size1, count, err := g.headPart(q, o, 1)
	if err != nil {
		return nil, err
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
			return nil, err
		}
		l, err := g.checkBoundaries(q, o, key, sizes)
		if !errors.Is(err, errLayoutMismatch) {
			return l, err
		}
	}
	sizes, err := g.walkHeaders(q, o)
	if err != nil {
		return nil, err
	}
	l, err := g.checkBoundaries(q, o, key, sizes)
	if errors.Is(err, errLayoutMismatch) {
		return nil, fmt.Errorf("%w: %v", format.ErrAuth, err)
	}
	return l, err
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
func (g *Gateway) checkBoundaries(q *request, o *storedObject, key *format.ObjectKey, sizes []int64) (format.Layout, error) {
	var total int64
	for _, s := range sizes {
		if s < format.PartEncryptedSize(0) {
			return nil, errLayoutMismatch
		}
		total += s
	}
	if total != o.storedSize || len(sizes) > format.MaxPartNumber {
		return nil, errLayoutMismatch
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
		return nil, err
	}
	numbers := make([]int, k)
	for i := 0; i < k; i++ {
		hdr := bounds[i]
		if i > 0 {
			hdr = hdr[format.TrailerSize:]
		}
		n, plain, err := format.ParsePartHeader(hdr)
		if err != nil {
			return nil, err
		}
		if format.PartEncryptedSize(plain) != sizes[i] {
			return nil, errLayoutMismatch
		}
		if i > 0 && n <= numbers[i-1] {
			return nil, fmt.Errorf("%w: part number %d after %d", format.ErrAuth, n, numbers[i-1])
		}
		numbers[i] = n
		if key == nil {
			continue
		}
		s, err := key.PartStream(hdr, n)
		if err != nil {
			return nil, err
		}
		if _, err := s.OpenTrailer(bounds[i+1][:format.TrailerSize]); err != nil {
			return nil, err
		}
	}
	return format.NewLayout(numbers, sizes)
}

// multipartFacts resolves the facts of a multipart object: plaintext size from its checked
// layout, and the backend ETag (FORMAT.md section 5). The object key is opened (checking the
// envelope's binding to this bucket and key) and returned, unless it is an SSE-C object read
// without its key (then nil).
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
	l, err := g.discoverLayout(q, o, key)
	if err != nil {
		if key != nil {
			key.Zero()
		}
		return objectFacts{}, nil, err
	}
	f := objectFacts{encrypted: true, plainSize: l.PlainSize(), etag: o.backendETag, layout: l}
	if o.backendETag != "" {
		g.objects.Add(factsKey(q.bucket, q.key, o.backendETag), f)
	}
	return f, key, nil
}
