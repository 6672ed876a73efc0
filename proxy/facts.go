package proxy

import (
	"crypto/sha256"
	"encoding/binary"
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

// objectFacts is what clients see of one stored object version. Cached with the identity of
// the version they describe (factsID).
type objectFacts struct {
	encrypted bool
	plainSize int64
	etag      string        // quoted, as sent to clients
	layout    format.Layout // multipart objects only
	// customerKey: an SSE-C object. Its ETag (plaintext multipart ETag) and attributes are for
	// readers with its key; listings and other keyless views show the backend's ETag.
	customerKey bool
	// unverified: size and layout as the backend describes them, not checked with the object
	// key (an SSE-C object read without its key). Never served to a reader with the key.
	unverified bool
	// checksum is the object's S3 checksum of the plaintext, sealed with it (none when the
	// client sent none).
	checksum objectChecksum
}

// factsCache keeps the facts of the last version seen of each object: (bucket, key) → the
// identity of that version (factsID) and its facts. An overwrite replaces its key's entry, so
// the cache holds one entry per object however often objects change; keyed by version, it
// filled up with the facts of every version ever seen (a 30-minute load test grew the gateway's
// RSS from 25 to 90 MiB on 512 keys). Reading two versions of one object in turn only costs a
// re-read of the facts.
//
// A backend ETag alone does not identify a version: the backend chooses it, and may answer
// with an older version's bytes and metadata under the newest version's ETag. Facts are served
// only for a response of the same ETag, stored size, version id and gateway metadata (envelope,
// manifest, context: metaDigest), so a different envelope never reuses facts. Listings, which
// carry no metadata, match on ETag, stored size and (when both are known) version id: what a
// listing shows is the backend's word in any case.
type factsCache struct {
	lru *lru.Cache[string, factsEntry]
}

// factsID identifies the stored version that cached facts describe.
type factsID struct {
	backendETag string
	storedSize  int64
	versionID   string   // the backend's x-amz-version-id ("" for none and for "null")
	meta        [32]byte // metaDigest of the version's metadata
}

// factsEntry is a cached version's identity and facts.
type factsEntry struct {
	id    factsID
	facts objectFacts
}

// metaNames are the metadata headers facts are derived from: the gateway's and the S3
// Encryption Client's.
var metaNames = append([]string{format.MetaEnvelope, format.MetaManifest, format.MetaSSE, format.MetaContext, format.MetaChecksum},
	s3ecMetaNames...)

// metaDigest is the SHA-256 of the metadata in h that facts are derived from (metaNames, each
// name with all its values, length-prefixed).
func metaDigest(h http.Header) [32]byte {
	d := sha256.New()
	lp := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		d.Write(n[:])
		d.Write([]byte(s))
	}
	for _, name := range metaNames {
		vs := h.Values(name)
		lp(name)
		lp(strconv.Itoa(len(vs)))
		for _, v := range vs {
			lp(v)
		}
	}
	var sum [32]byte
	d.Sum(sum[:0])
	return sum
}

// versionOf is a backend version id as facts are keyed by it ("null" is no version).
func versionOf(v string) string {
	if v == "null" {
		return ""
	}
	return v
}

// storedID is the identity of the version a backend response describes.
func storedID(o *storedObject) factsID {
	return factsID{backendETag: o.backendETag, storedSize: o.storedSize,
		versionID: versionOf(o.header.Get("X-Amz-Version-Id")), meta: metaDigest(o.header)}
}

func newFactsCache(entries int) (*factsCache, error) {
	c, err := lru.New[string, factsEntry](entries)
	if err != nil {
		return nil, err
	}
	return &factsCache{lru: c}, nil
}

func factsCacheKey(bucket, key string) string { return bucket + "\x00" + key }

// Get returns the cached facts of bucket/key if they are of exactly the version id (nothing
// for a version without an ETag).
func (c *factsCache) Get(bucket, key string, id factsID) (objectFacts, bool) {
	if id.backendETag == "" {
		return objectFacts{}, false
	}
	e, ok := c.lru.Get(factsCacheKey(bucket, key))
	if !ok || e.id != id {
		return objectFacts{}, false
	}
	return e.facts, true
}

// listedVersion is what a listing entry says of an object version.
type listedVersion struct {
	backendETag string
	storedSize  int64
	versionID   string // "" when the listing does not say (ListObjects)
}

// Listed returns the cached facts of bucket/key if they are of a version with the ETag and
// stored size of the listing entry l (and its version id, when both are known).
func (c *factsCache) Listed(bucket, key string, l listedVersion) (objectFacts, bool) {
	if l.backendETag == "" {
		return objectFacts{}, false
	}
	e, ok := c.lru.Get(factsCacheKey(bucket, key))
	v := versionOf(l.versionID)
	if !ok || e.id.backendETag != l.backendETag || e.id.storedSize != l.storedSize ||
		(v != "" && e.id.versionID != "" && v != e.id.versionID) {
		return objectFacts{}, false
	}
	return e.facts, true
}

// AddVersion records the facts of the version id of bucket/key (nothing without an ETag).
func (c *factsCache) AddVersion(bucket, key string, id factsID, f objectFacts) {
	if id.backendETag != "" {
		c.lru.Add(factsCacheKey(bucket, key), factsEntry{id: id, facts: f})
	}
}

// writtenVersion is a version the gateway has just written: the backend's answer (ETag and
// version id), the stored size and the metadata the gateway sent with it.
type writtenVersion struct {
	backendETag string
	storedSize  int64
	versionID   string
	meta        http.Header
}

// cacheWritten caches the facts f of a version the gateway wrote, keyed as a later read's
// answer identifies it (storedID: ETag, stored size, version id and the digest of the
// metadata), so the first read after a write needs no facts read. The facts come from what
// the gateway itself encrypted, so they are verified; whether they are an SSE-C object's
// (keylessView) is read from the envelope in meta. Without an envelope there, the key's entry
// is dropped instead.
func (g *Gateway) cacheWritten(q *request, v writtenVersion, f objectFacts) {
	env, err := format.DecodeEnvelope(v.meta.Get(format.MetaEnvelope))
	if err != nil || v.backendETag == "" || v.storedSize < 0 {
		g.objects.lru.Remove(factsCacheKey(q.bucket, q.key))
		return
	}
	f.customerKey, f.unverified = env.Wrap == format.WrapCustomerKey, false
	id := factsID{backendETag: v.backendETag, storedSize: v.storedSize, versionID: versionOf(v.versionID), meta: metaDigest(v.meta)}
	g.objects.AddVersion(q.bucket, q.key, id, f)
}

// storedObject is a backend object as described by a HEAD or GET response.
type storedObject struct {
	header      http.Header
	storedSize  int64
	backendETag string
	env         *format.Envelope // nil: not written by the gateway
	s3ec        *s3ec.Object     // written by the AWS S3 Encryption Client (v2)
	versionID   string           // read exactly this version ("": the one the request names)
	written     http.Header      // the headers the gateway wrote this version with (Complete's manifest copy)
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
// where possible: a GET of its last format.MaxTrailerSize stored bytes returns the metadata,
// the stored size and the sealed trailer (ETag, checksum), whatever the trailer's length. It
// returns the opened object key for encrypted objects (caller zeroes it).
func (g *Gateway) stat(q *request) (*storedObject, objectFacts, *format.ObjectKey, error) {
	t := target{q.bucket, q.key, objectQuery(q.r)}
	if g.cfg.ETag == ETagPlaintext {
		h := http.Header{}
		h.Set("Range", fmt.Sprintf("bytes=-%d", format.MaxTrailerSize))
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
			if len(tail) > format.MaxTrailerSize {
				tail = tail[len(tail)-format.MaxTrailerSize:]
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
// the trailer (tail = the last stored bytes, up to format.MaxTrailerSize, if the caller has
// them; otherwise they are fetched). When it had to open the object key it returns it (caller zeroes it); on a cache
// hit the key is nil and a caller that needs it opens it with openKey.
//
// An SSE-C object read with a key presented gets facts checked with that key (a wrong key is
// AccessDenied here): its size authenticated by the trailer or the layout, never the size the
// backend claims. Read without a key, it gets the keyless view: the backend's ETag and the
// size the backend describes (unverified), which only listings and conditions see (HEAD, GET
// and GetObjectAttributes then refuse the request).
func (g *Gateway) resolve(q *request, o *storedObject, tail []byte) (objectFacts, *format.ObjectKey, error) {
	if err := g.detectS3EC(q, o); err != nil {
		return objectFacts{}, nil, err
	}
	id := storedID(o)
	if o.s3ec != nil {
		f, err := g.s3ecFacts(q, o)
		if err == nil {
			g.objects.AddVersion(q.bucket, q.key, id, f)
		}
		return f, nil, err
	}
	if o.env == nil {
		if e := g.checkPlaintext(q); e != nil {
			return objectFacts{}, nil, e
		}
		g.obs.Unencrypted(q.op)
		return objectFacts{encrypted: false, plainSize: o.storedSize, etag: o.backendETag}, nil, nil
	}
	ck, e := g.readCustomerKey(q)
	if e != nil {
		return objectFacts{}, nil, e
	}
	ssec := o.env.Wrap == format.WrapCustomerKey
	keyless := ssec && ck == nil
	if f, ok := g.objects.Get(q.bucket, q.key, id); ok && (keyless || !f.unverified) {
		return keylessView(f, o, keyless), nil, nil
	}
	var f objectFacts
	var key *format.ObjectKey
	var err error
	switch {
	case o.env.Kind == format.KindMultipart:
		f, key, err = g.multipartFacts(q, o)
	case keyless:
		var plain int64
		var a format.ChecksumAlgorithm
		if a, err = singleAlgorithm(o); err == nil {
			plain, err = format.DecryptedSizeOf(o.storedSize, a)
		}
		f = objectFacts{encrypted: true, plainSize: plain, etag: o.backendETag}
	default:
		if key, err = g.openKey(q, o); err == nil {
			f, err = g.singleFacts(q, o, key, tail)
		}
	}
	if err != nil {
		key.Zero()
		return objectFacts{}, nil, err
	}
	f.customerKey, f.unverified = ssec, key == nil
	g.objects.AddVersion(q.bucket, q.key, id, f)
	return keylessView(f, o, keyless), key, nil
}

// keylessView is what a reader without the key sees of facts f of o: for an SSE-C object, the
// backend's ETag instead of a plaintext one.
func keylessView(f objectFacts, o *storedObject, keyless bool) objectFacts {
	if keyless && f.customerKey {
		f.etag = o.backendETag
	}
	return f
}

// singleFacts resolves a single-part object's facts given its opened key. The trailer is
// opened (which authenticates the stored size: the part key depends on the plaintext size)
// when ETags are plaintext MD5s, always for SSE-C objects, whose ETag is the backend's, and
// for objects that seal a checksum (FORMAT.md 3.3).
func (g *Gateway) singleFacts(q *request, o *storedObject, key *format.ObjectKey, tail []byte) (objectFacts, error) {
	a, err := singleAlgorithm(o)
	if err != nil {
		return objectFacts{}, err
	}
	plain, err := format.DecryptedSizeOf(o.storedSize, a)
	if err != nil {
		return objectFacts{}, err
	}
	f := objectFacts{encrypted: true, plainSize: plain, etag: o.backendETag}
	ssec := o.env.Wrap == format.WrapCustomerKey
	if g.cfg.ETag != ETagPlaintext && !ssec && a == format.ChecksumNone {
		return f, nil
	}
	stream, err := key.SingleStreamOf(plain, a)
	if err != nil {
		return objectFacts{}, err
	}
	n := stream.TrailerSize()
	if int64(len(tail)) >= n {
		tail = tail[int64(len(tail))-n:]
	} else if tail, err = g.fetchTail(q, o, n); err != nil {
		return objectFacts{}, err
	}
	md5Sum, sum, err := stream.OpenTrailerChecksum(tail)
	if err != nil {
		return objectFacts{}, err
	}
	if md5Sum != nil && !ssec && g.cfg.ETag == ETagPlaintext {
		f.etag = `"` + hex.EncodeToString(md5Sum) + `"`
	}
	if a != format.ChecksumNone {
		f.checksum = objectChecksum{kind: format.ChecksumKind{Algorithm: a, FullObject: true}, value: sum}
	}
	return f, nil
}

// fetchTail reads the last n stored bytes (the trailer) of exactly the object version o
// describes.
func (g *Gateway) fetchTail(q *request, o *storedObject, n int64) ([]byte, error) {
	t := target{q.bucket, q.key, o.query(q)}
	h := http.Header{}
	h.Set("Range", fmt.Sprintf("bytes=%d-%d", o.storedSize-n, o.storedSize-1))
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
	b, err := io.ReadAll(io.LimitReader(resp.Body, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != n {
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

// decimalLess reports whether the decimal digit string x is a smaller number than y, exactly
// (rangeNumber saturates numbers beyond int64, so two such numbers compare equal there).
func decimalLess(x, y string) bool {
	x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
	if len(x) != len(y) {
		return len(x) < len(y)
	}
	return x < y
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
			if b, ok = rangeNumber(last); !ok || decimalLess(last, first) {
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
