package proxy

import (
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/s3ec"
	"github.com/s3seal/s3seal/s3err"
)

// objectFacts is what clients see of one stored object version. Cached by (bucket, key,
// backend ETag): a backend ETag identifies immutable stored content.
type objectFacts struct {
	encrypted bool
	plainSize int64
	etag      string        // quoted, as sent to clients
	layout    format.Layout // multipart objects only
}

// factsCache keeps the facts of the last version seen of each object: (bucket, key) → its
// backend ETag and facts. An overwrite replaces its key's entry, so the cache holds one entry
// per object however often objects change; keyed by version, it filled up with the facts of
// every version ever seen (a 30-minute load test grew the gateway's RSS from 25 to 90 MiB on
// 512 keys). Reading two versions of one object in turn only costs a re-read of the facts.
type factsCache struct {
	lru *lru.Cache[string, factsEntry]
}

type factsEntry struct {
	backendETag string
	facts       objectFacts
}

func newFactsCache(entries int) (*factsCache, error) {
	c, err := lru.New[string, factsEntry](entries)
	if err != nil {
		return nil, err
	}
	return &factsCache{lru: c}, nil
}

func factsCacheKey(bucket, key string) string { return bucket + "\x00" + key }

// Get returns the facts of bucket/key if the cached ones are of the version backendETag.
func (c *factsCache) Get(bucket, key, backendETag string) (objectFacts, bool) {
	if backendETag == "" {
		return objectFacts{}, false
	}
	e, ok := c.lru.Get(factsCacheKey(bucket, key))
	if !ok || e.backendETag != backendETag {
		return objectFacts{}, false
	}
	return e.facts, true
}

// Add records the facts of the version backendETag of bucket/key (nothing without an ETag).
func (c *factsCache) Add(bucket, key, backendETag string, f objectFacts) {
	if backendETag != "" {
		c.lru.Add(factsCacheKey(bucket, key), factsEntry{backendETag: backendETag, facts: f})
	}
}

// storedObject is a backend object as described by a HEAD or GET response.
type storedObject struct {
	header      http.Header
	storedSize  int64
	backendETag string
	env         *format.Envelope // nil: not written by the gateway
	s3ec        *s3ec.Object     // written by the AWS S3 Encryption Client (v2)
	versionID   string           // read exactly this version ("": the one the request names)
}

// query selects exactly the stored version o on the backend.
func (o *storedObject) query(q *request) url.Values {
	if o.versionID != "" {
		return url.Values{"versionId": {o.versionID}}
	}
	return objectQuery(q.r)
}

// parseStored reads sizes, ETag and envelope from a 2xx backend response.
func parseStored(resp *http.Response) (*storedObject, error) {
	o := &storedObject{header: resp.Header, backendETag: resp.Header.Get("Etag"), storedSize: -1}
	if cr := resp.Header.Get("Content-Range"); resp.StatusCode == http.StatusPartialContent && cr != "" {
		i := strings.LastIndexByte(cr, '/')
		if i < 0 {
			return nil, fmt.Errorf("backend Content-Range %q", cr)
		}
		n, err := strconv.ParseInt(cr[i+1:], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("backend Content-Range %q", cr)
		}
		o.storedSize = n
	} else {
		o.storedSize = resp.ContentLength
		if o.storedSize < 0 {
			n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("backend response without a length")
			}
			o.storedSize = n
		}
	}
	if v := resp.Header.Get(format.MetaEnvelope); v != "" {
		env, err := format.DecodeEnvelope(v)
		if err != nil {
			return nil, err
		}
		o.env = env
		return o, nil
	}
	return o, nil // S3 Encryption Client metadata: detectS3EC, for the buckets that read it
}

// objectQuery is the part of a client's object request query that selects the stored object
// (version) on the backend.
func objectQuery(r *http.Request) url.Values {
	q := url.Values{}
	if v := r.URL.Query().Get("versionId"); v != "" {
		q.Set("versionId", v)
	}
	return q
}

// stat learns what the client must see of the object q addresses, in one backend request
// where possible: a GET of its last 32 stored bytes returns the metadata, the stored size and
// the sealed trailer (ETag). It returns the opened object key for encrypted objects (caller
// zeroes it).
func (g *Gateway) stat(q *request) (*storedObject, objectFacts, *format.ObjectKey, error) {
	t := target{q.bucket, q.key, objectQuery(q.r)}
	if g.cfg.ETag == ETagPlaintext {
		h := http.Header{}
		h.Set("Range", fmt.Sprintf("bytes=-%d", format.TrailerSize))
		resp, err := g.backend.send(q.ctx(), http.MethodGet, t, h, nil, 0, "")
		if err != nil {
			return nil, objectFacts{}, nil, err
		}
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable { // 416: empty object, HEAD below
			defer resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				return nil, objectFacts{}, nil, g.backendError(q, resp, t)
			}
			o, err := parseStored(resp)
			if err != nil {
				return nil, objectFacts{}, nil, err
			}
			tail, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return nil, objectFacts{}, nil, err
			}
			if len(tail) > format.TrailerSize {
				tail = tail[len(tail)-format.TrailerSize:]
			}
			f, key, err := g.resolve(q, o, tail)
			return o, f, key, err
		}
		resp.Body.Close()
	}
	resp, err := g.backend.send(q.ctx(), http.MethodHead, t, nil, nil, 0, "")
	if err != nil {
		return nil, objectFacts{}, nil, err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, objectFacts{}, nil, g.backendError(q, resp, t)
	}
	o, err := parseStored(resp)
	if err != nil {
		return nil, objectFacts{}, nil, err
	}
	f, key, err := g.resolve(q, o, nil)
	return o, f, key, err
}

// resolve computes the client's view of o: plaintext size and ETag, from the cache or from
// the trailer (tail = the last 32 stored bytes if the caller has them; otherwise they are
// fetched). When it had to open the object key it returns it (caller zeroes it); on a cache
// hit the key is nil and a caller that needs it opens it with openKey.
func (g *Gateway) resolve(q *request, o *storedObject, tail []byte) (objectFacts, *format.ObjectKey, error) {
	if err := g.detectS3EC(q, o); err != nil {
		return objectFacts{}, nil, err
	}
	if o.s3ec != nil {
		f, err := g.s3ecFacts(q, o)
		return f, nil, err
	}
	if o.env == nil {
		if e := g.checkPlaintext(q); e != nil {
			return objectFacts{}, nil, e
		}
		g.obs.Unencrypted(q.op)
		return objectFacts{encrypted: false, plainSize: o.storedSize, etag: o.backendETag}, nil, nil
	}
	if f, ok := g.objects.Get(q.bucket, q.key, o.backendETag); ok && o.backendETag != "" {
		return f, nil, nil
	}
	if o.env.Kind == format.KindMultipart {
		return g.multipartFacts(q, o)
	}
	if o.env.Wrap == format.WrapCustomerKey {
		// As on S3, an SSE-C object's ETag is not the MD5 of its plaintext: the backend's,
		// so that listings and HEAD need no customer key.
		plain, err := format.DecryptedSize(o.storedSize)
		if err != nil {
			return objectFacts{}, nil, err
		}
		f := objectFacts{encrypted: true, plainSize: plain, etag: o.backendETag}
		if o.backendETag != "" {
			g.objects.Add(q.bucket, q.key, o.backendETag, f)
		}
		return f, nil, nil
	}
	key, err := g.openKey(q, o)
	if err != nil {
		return objectFacts{}, nil, err
	}
	f, err := g.singleFacts(q, o, key, tail)
	if err != nil {
		key.Zero()
		return objectFacts{}, nil, err
	}
	return f, key, nil
}

// singleFacts resolves a single-part object's facts given its opened key.
func (g *Gateway) singleFacts(q *request, o *storedObject, key *format.ObjectKey, tail []byte) (objectFacts, error) {
	plain, err := format.DecryptedSize(o.storedSize)
	if err != nil {
		return objectFacts{}, err
	}
	f := objectFacts{encrypted: true, plainSize: plain, etag: o.backendETag}
	if g.cfg.ETag == ETagPlaintext {
		stream, err := key.SingleStream(plain)
		if err != nil {
			return objectFacts{}, err
		}
		if len(tail) != format.TrailerSize {
			if tail, err = g.fetchTail(q, o); err != nil {
				return objectFacts{}, err
			}
		}
		sum, err := stream.OpenTrailer(tail)
		if err != nil {
			return objectFacts{}, err
		}
		if sum != nil {
			f.etag = `"` + hex.EncodeToString(sum) + `"`
		}
	}
	g.objects.Add(q.bucket, q.key, o.backendETag, f)
	return f, nil
}

// fetchTail reads the last 32 stored bytes of exactly the object version o describes.
func (g *Gateway) fetchTail(q *request, o *storedObject) ([]byte, error) {
	t := target{q.bucket, q.key, o.query(q)}
	h := http.Header{}
	h.Set("Range", fmt.Sprintf("bytes=%d-%d", o.storedSize-format.TrailerSize, o.storedSize-1))
	if o.backendETag != "" {
		h.Set("If-Match", o.backendETag)
	}
	resp, err := g.backend.send(q.ctx(), http.MethodGet, t, h, nil, 0, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, g.backendError(q, resp, t)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, format.TrailerSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) != format.TrailerSize {
		return nil, fmt.Errorf("%w: trailer read returned %d bytes", format.ErrAuth, len(b))
	}
	return b, nil
}

// checkConditions evaluates If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since
// against the client-visible ETag, with S3's precedence rules. It returns nil to proceed.
func checkConditions(r *http.Request, etag string, lastModified string) *s3err.Error {
	mod, modErr := http.ParseTime(lastModified)
	if im := r.Header.Get("If-Match"); im != "" {
		if !etagMatches(im, etag) {
			return s3err.New("PreconditionFailed", "")
		}
	} else if ius := r.Header.Get("If-Unmodified-Since"); ius != "" && modErr == nil {
		if t, err := http.ParseTime(ius); err == nil && mod.After(t) {
			return s3err.New("PreconditionFailed", "")
		}
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if etagMatches(inm, etag) {
			return s3err.New("NotModified", "")
		}
	} else if ims := r.Header.Get("If-Modified-Since"); ims != "" && modErr == nil {
		if t, err := http.ParseTime(ims); err == nil && !mod.After(t) && !t.After(time.Now()) {
			return s3err.New("NotModified", "")
		}
	}
	return nil
}

// etagMatches reports whether an If-Match/If-None-Match list contains etag (or "*").
func etagMatches(list, etag string) bool {
	want := strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	for _, c := range strings.Split(list, ",") {
		c = strings.TrimSpace(c)
		if c == "*" {
			return true
		}
		if strings.Trim(strings.TrimPrefix(c, "W/"), `"`) == want {
			return true
		}
	}
	return false
}

// rangeNumber parses a byte position of a Range header: 1*DIGIT (RFC 9110 14.1.1; no sign, no
// white space). A value beyond int64 saturates to MaxInt64, which is beyond every object, so a
// huge last-pos or suffix-length means "to the end" and a huge first-pos is unsatisfiable.
func rangeNumber(s string) (int64, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return math.MaxInt64, true // only a range error is left: too many digits
	}
	return n, true
}

// byteRange is a resolved plaintext range.
type byteRange struct{ off, length int64 }

// parseRange resolves a Range header against size as S3 does: nil for no (or an ignored,
// syntactically invalid) range; InvalidRange (416) when unsatisfiable.
func parseRange(h string, size int64) (*byteRange, *s3err.Error) {
	if h == "" {
		return nil, nil
	}
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return nil, nil // S3 ignores what it cannot parse, and multiple ranges
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return nil, nil
	}
	invalid := s3err.New("InvalidRange", "")
	switch {
	case first == "" && last == "":
		return nil, nil
	case first == "": // suffix
		n, ok := rangeNumber(last)
		if !ok {
			return nil, nil
		}
		if n == 0 || size == 0 {
			return nil, invalid
		}
		n = min(n, size)
		return &byteRange{size - n, n}, nil
	default:
		a, ok := rangeNumber(first)
		if !ok {
			return nil, nil
		}
		b := size - 1
		if last != "" {
			if b, ok = rangeNumber(last); !ok || b < a {
				return nil, nil
			}
		}
		if a >= size {
			return nil, invalid
		}
		b = min(b, size-1)
		return &byteRange{a, b - a + 1}, nil
	}
}
