package embedded

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/johannesboyne/gofakes3"
	bolt "go.etcd.io/bbolt"
)

// Metadata names. gofakes3 hands the backend every X-Amz-* request header plus a few standard
// ones; only these survive into the stored object (see storableMeta).
const (
	userMetaPrefix = "X-Amz-Meta-"
	lastModified   = "Last-Modified"
	hdrTagging     = "X-Amz-Tagging"
	// hdrTaggingDirective on CopyObject: COPY (default) keeps the source's tags, REPLACE
	// takes x-amz-tagging.
	hdrTaggingDirective = "X-Amz-Tagging-Directive"
	hdrTagCount         = "X-Amz-Tagging-Count"

	// metaETag is set by this package only, on objects handed to gofakes3: the multipart ETag
	// ("<hex>-N"), which the HTTP layer turns into the ETag header. It is not an X-Amz-* name,
	// so gofakes3 never copies it from a request. metaParts is where the s3afero layout of
	// earlier versions kept the part sizes (read by the migration only).
	metaETag  = "X-S3seal-Etag"
	metaParts = "X-S3seal-Parts"

	// Set by the HTTP layer on CopyObject requests: the request's own metadata names, so that
	// CopyObject can tell them from the source's (gofakes3 merges both into one map).
	hdrCopyKeys  = "X-Amz-S3seal-Internal-Copy-Keys"
	hdrDirective = "X-Amz-Metadata-Directive"

	// maxUserMeta is S3's limit on user metadata: the bytes of every name (without the
	// x-amz-meta- prefix) and value.
	maxUserMeta = 2048
	// maxAllMeta is handed to gofakes3, which counts every X-Amz-* header of the request
	// (signature date, payload hash, checksums, ...); S3 limits the whole header block to 8 KB.
	maxAllMeta = 8192

	// maxKeyLen is S3's limit on key length, in bytes of UTF-8.
	maxKeyLen = gofakes3.KeySizeLimit
)

// backend is the gofakes3.Backend (and MultipartBackend) over bbolt metadata and body files
// named by id (db.go). Beyond what S3 semantics need, it makes sure that:
//   - an upload whose body ends early leaves no object and does not touch an existing one;
//   - an overwrite replaces the metadata, and stores only object metadata, not the request's
//     protocol headers;
//   - listings are sorted and paginated, and delimiters grouped, like S3 does;
//   - multipart uploads are kept on disk and in the database, and survive a restart.
type backend struct {
	db    *bolt.DB
	files *files
	log   *slog.Logger
	now   func() time.Time
}

// checkKey refuses keys S3 refuses: longer than 1,024 bytes (KeyTooLongError) or not UTF-8.
func checkKey(key string) error {
	if len(key) > maxKeyLen {
		return gofakes3.ResourceError(gofakes3.ErrKeyTooLong, key)
	}
	if key == "" || !utf8.ValidString(key) {
		return gofakes3.ErrorMessage(gofakes3.ErrInvalidArgument, "Object keys must be 1 to 1024 bytes of UTF-8")
	}
	return nil
}

// standardMeta lists the non-user headers gofakes3 captures that are part of an object.
func isStandardMeta(k string) bool {
	return k == "Content-Type" || k == "Content-Disposition" || k == "Content-Encoding"
}

// storableMeta keeps user metadata and the standard object headers, and drops everything
// else gofakes3 captured (x-amz-date, x-amz-content-sha256, checksums, copy headers, ...).
func storableMeta(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		if strings.HasPrefix(k, userMetaPrefix) || isStandardMeta(k) {
			out[k] = v
		}
	}
	return out
}

func userMetaSize(meta map[string]string) int {
	n := 0
	for k, v := range meta {
		if strings.HasPrefix(k, userMetaPrefix) {
			n += len(k) - len(userMetaPrefix) + len(v)
		}
	}
	return n
}

func checkMetaSize(meta map[string]string) error {
	if n := userMetaSize(meta); n > maxUserMeta {
		return gofakes3.ErrorMessagef(gofakes3.ErrMetadataTooLarge,
			"user metadata is %d bytes, the limit is %d", n, maxUserMeta)
	}
	return nil
}

// copyExactly copies r to w, which must be exactly size bytes, and returns their MD5.
func copyExactly(w io.Writer, r io.Reader, size int64) ([]byte, error) {
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, size+1))
	if err != nil {
		var code gofakes3.Error
		if errors.As(err, &code) {
			return nil, err // BadDigest from gofakes3's Content-MD5 check
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, gofakes3.ErrIncompleteBody
		}
		return nil, err
	}
	if n != size {
		return nil, gofakes3.ErrorMessagef(gofakes3.ErrIncompleteBody, "body is %d bytes, Content-Length said %d", n, size)
	}
	return h.Sum(nil), nil
}

// parseTagging reads an x-amz-tagging header ("k1=v1&k2=v2") and checks S3's tag limits.
func parseTagging(v string) ([]tag, error) {
	if v == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(v)
	if err != nil {
		return nil, gofakes3.ErrorMessage(gofakes3.ErrInvalidArgument, "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
	}
	tags := make([]tag, 0, len(q))
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, gofakes3.ErrorMessage(gofakes3.ErrInvalidArgument, "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
		}
		tags = append(tags, tag{Key: k, Value: vs[0]})
	}
	return tags, checkTags(tags)
}

// checkTags checks S3's limits on an object's tag set and sorts it by key.
func checkTags(tags []tag) error {
	if len(tags) > 10 {
		return gofakes3.ErrorMessage("BadRequest", "Object tags cannot be greater than 10")
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if t.Key == "" || utf8.RuneCountInString(t.Key) > 128 || !utf8.ValidString(t.Key) {
			return gofakes3.ErrorMessage("InvalidTag", "The TagKey you have provided is invalid")
		}
		if utf8.RuneCountInString(t.Value) > 256 || !utf8.ValidString(t.Value) {
			return gofakes3.ErrorMessage("InvalidTag", "The TagValue you have provided is invalid")
		}
		if seen[t.Key] {
			return gofakes3.ErrorMessage("InvalidTag", "Cannot provide multiple Tags with the same key")
		}
		seen[t.Key] = true
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	return nil
}

func (b *backend) ListBuckets() ([]gofakes3.BucketInfo, error) {
	var out []gofakes3.BucketInfo
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(rootBuckets).ForEach(func(k, v []byte) error {
			var rec bucketRec
			_, err := getJSON(tx.Bucket(rootBuckets), k, &rec)
			out = append(out, gofakes3.BucketInfo{Name: string(k), CreationDate: gofakes3.NewContentTime(rec.Created)})
			return err
		})
	})
	return out, err
}

func (b *backend) CreateBucket(name string) error {
	return storageErr(b.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(rootBuckets).Get([]byte(name)) != nil {
			return gofakes3.ResourceError(gofakes3.ErrBucketAlreadyExists, name)
		}
		if _, err := tx.Bucket(rootObjects).CreateBucketIfNotExists([]byte(name)); err != nil {
			return err
		}
		return putJSON(tx.Bucket(rootBuckets), []byte(name), bucketRec{Created: b.now()})
	}))
}

func (b *backend) BucketExists(name string) (bool, error) {
	var ok bool
	err := b.db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(rootBuckets).Get([]byte(name)) != nil
		return nil
	})
	return ok, err
}

func (b *backend) DeleteBucket(name string) error { return b.deleteBucket(name, false) }

func (b *backend) ForceDeleteBucket(name string) error { return b.deleteBucket(name, true) }

// deleteBucket removes a bucket, which must be empty unless force is set, and the uploads in
// progress into it.
func (b *backend) deleteBucket(name string, force bool) error {
	var unused []string
	err := b.db.Update(func(tx *bolt.Tx) error {
		objs := tx.Bucket(rootObjects).Bucket([]byte(name))
		if objs == nil {
			return gofakes3.BucketNotFound(name)
		}
		if k, _ := objs.Cursor().First(); k != nil && !force {
			return gofakes3.ResourceError(gofakes3.ErrBucketNotEmpty, name)
		}
		err := objs.ForEach(func(_, v []byte) error {
			var o objectRec
			if err := jsonInto(v, &o); err != nil {
				return err
			}
			unused = append(unused, o.Body)
			return nil
		})
		if err != nil {
			return err
		}
		ids, err := deleteUploads(tx, func(u *uploadRec) bool { return u.Bucket == name })
		if err != nil {
			return err
		}
		unused = append(unused, ids...)
		if err := tx.Bucket(rootObjects).DeleteBucket([]byte(name)); err != nil {
			return err
		}
		return tx.Bucket(rootBuckets).Delete([]byte(name))
	})
	if err != nil {
		return storageErr(err)
	}
	b.files.remove(unused...)
	return nil
}

// lookup reads the record of key in a read transaction.
func lookup(tx *bolt.Tx, bucket, key string, rec *objectRec) error {
	objs := tx.Bucket(rootObjects).Bucket([]byte(bucket))
	if objs == nil {
		return gofakes3.BucketNotFound(bucket)
	}
	found, err := getJSON(objs, []byte(key), rec)
	if err != nil {
		return err
	}
	if !found {
		return gofakes3.KeyNotFound(key)
	}
	return nil
}

func (b *backend) record(bucket, key string) (*objectRec, error) {
	var rec objectRec
	if checkKey(key) != nil {
		return nil, gofakes3.KeyNotFound(key)
	}
	err := b.db.View(func(tx *bolt.Tx) error { return lookup(tx, bucket, key, &rec) })
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// object is the gofakes3 view of a record, without its contents.
func object(key string, rec *objectRec) *gofakes3.Object {
	meta := make(map[string]string, len(rec.Meta)+3)
	for k, v := range rec.Meta {
		meta[k] = v
	}
	meta[lastModified] = rec.Modified.UTC().Format(http.TimeFormat)
	if rec.ETag != "" {
		meta[metaETag] = rec.ETag
	}
	if len(rec.Tags) > 0 {
		meta[hdrTagCount] = strconv.Itoa(len(rec.Tags))
	}
	return &gofakes3.Object{Name: key, Metadata: meta, Size: rec.Size, Hash: rec.MD5}
}

func (b *backend) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	rec, err := b.record(bucket, key)
	if err != nil {
		return nil, err
	}
	obj := object(key, rec)
	obj.Contents = io.NopCloser(strings.NewReader(""))
	return obj, nil
}

// currentETag is the ETag a GET of bucket/key would answer now ("" when there is no object).
func (b *backend) currentETag(bucket, key string) string {
	obj, err := b.HeadObject(bucket, key)
	if err != nil {
		return ""
	}
	if e := obj.Metadata[metaETag]; e != "" {
		return e
	}
	return `"` + hex.EncodeToString(obj.Hash) + `"`
}

type sectionFile struct {
	io.Reader
	f *os.File
}

func (s sectionFile) Close() error { return s.f.Close() }

func (b *backend) GetObject(bucket, key string, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	if checkKey(key) != nil {
		return nil, gofakes3.KeyNotFound(key)
	}
	var rec objectRec
	f, err := b.files.open(func() (string, error) {
		err := b.db.View(func(tx *bolt.Tx) error { return lookup(tx, bucket, key, &rec) })
		return rec.Body, err
	})
	if err != nil {
		return nil, err
	}
	obj := object(key, &rec)
	obj.Range, err = rng.Range(rec.Size)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	obj.Contents = f
	if obj.Range != nil {
		obj.Contents = sectionFile{Reader: io.NewSectionReader(f, obj.Range.Start, obj.Range.Length), f: f}
	}
	return obj, nil
}

func (b *backend) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64,
	cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	if err := checkKey(key); err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	tags, err := parseTagging(meta[hdrTagging])
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	meta = storableMeta(meta)
	if err := checkMetaSize(meta); err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	if ok, err := b.BucketExists(bucket); err != nil || !ok {
		return gofakes3.PutObjectResult{}, errors.Join(err, gofakes3.BucketNotFound(bucket))
	}
	id, sum, err := b.files.write(input, size)
	if err != nil {
		b.log.Debug("embedded: upload body refused", "err", err)
		return gofakes3.PutObjectResult{}, err
	}
	rec := &objectRec{Body: id, Size: size, MD5: sum, Meta: meta, Modified: b.now(), Tags: tags}
	return gofakes3.PutObjectResult{}, b.commit(bucket, key, rec, cond)
}

// commit publishes rec, whose body is in place, as the object key in one transaction, and
// then removes the body it replaces. If the transaction fails, rec's body is removed and the
// old object stays as it was.
func (b *backend) commit(bucket, key string, rec *objectRec, cond *gofakes3.PutConditions) error {
	return b.commitTx(bucket, key, rec, func(tx *bolt.Tx, old *objectRec) ([]string, error) {
		return nil, checkConditions(cond, old)
	})
}

// commitTx is commit with more to do in the same transaction: also runs before the record is
// written, gets the record replaced (nil if none), and returns more bodies to remove after
// the commit.
func (b *backend) commitTx(bucket, key string, rec *objectRec,
	also func(tx *bolt.Tx, old *objectRec) ([]string, error)) error {
	var unused []string
	err := b.db.Update(func(tx *bolt.Tx) error {
		objs := tx.Bucket(rootObjects).Bucket([]byte(bucket))
		if objs == nil {
			return gofakes3.BucketNotFound(bucket)
		}
		var prev objectRec
		found, err := getJSON(objs, []byte(key), &prev)
		if err != nil {
			return err
		}
		old := &prev
		if !found {
			old = nil
		}
		more, err := also(tx, old)
		if err != nil {
			return err
		}
		if err := putJSON(objs, []byte(key), rec); err != nil {
			return err
		}
		if old != nil {
			unused = append(unused, old.Body)
		}
		unused = append(unused, more...)
		return nil
	})
	if err != nil {
		b.files.remove(rec.Body)
		b.log.Debug("embedded: storing object failed", "bucket", bucket, "err", err)
		return storageErr(err)
	}
	b.files.remove(unused...)
	return nil
}

// checkConditions is S3's If-Match / If-None-Match on PUT, against the stored ETag.
func checkConditions(cond *gofakes3.PutConditions, old *objectRec) error {
	if cond == nil {
		return nil
	}
	if cond.IfNoneMatch != nil && *cond.IfNoneMatch == "*" && old != nil {
		return gofakes3.ErrorMessage(gofakes3.ErrPreconditionFailed, "The object already exists")
	}
	if cond.IfMatch != nil {
		if old == nil {
			return gofakes3.ErrorMessage(gofakes3.ErrPreconditionFailed, "The object does not exist")
		}
		if strings.Trim(*cond.IfMatch, `"`) != strings.Trim(old.etag(), `"`) {
			return gofakes3.ErrorMessage(gofakes3.ErrPreconditionFailed, "The ETag does not match")
		}
	}
	return nil
}

func (b *backend) DeleteObject(bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	var gone string
	err := b.db.Update(func(tx *bolt.Tx) error {
		objs := tx.Bucket(rootObjects).Bucket([]byte(bucket))
		if objs == nil {
			return gofakes3.BucketNotFound(bucket)
		}
		var rec objectRec
		found, err := getJSON(objs, []byte(key), &rec)
		if err != nil || !found {
			return err // S3 answers a delete of a missing key with success
		}
		gone = rec.Body
		return objs.Delete([]byte(key))
	})
	if err != nil {
		return gofakes3.ObjectDeleteResult{}, storageErr(err)
	}
	if gone != "" {
		b.files.remove(gone)
	}
	return gofakes3.ObjectDeleteResult{}, nil
}

func (b *backend) DeleteMulti(bucket string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	var out gofakes3.MultiDeleteResult
	if ok, err := b.BucketExists(bucket); err != nil {
		return out, err
	} else if !ok {
		return out, gofakes3.BucketNotFound(bucket)
	}
	for _, key := range keys {
		if _, err := b.DeleteObject(bucket, key); err != nil {
			b.log.Warn("embedded: delete failed", "bucket", bucket, "err", err)
			out.Error = append(out.Error, gofakes3.ErrorResult{
				Code: gofakes3.ErrInternal, Message: gofakes3.ErrInternal.Message(), Key: key,
			})
			continue
		}
		out.Deleted = append(out.Deleted, gofakes3.ObjectID{Key: key})
	}
	return out, nil
}

// CopyObject gets the merged metadata of gofakes3 (request headers over the source's). With
// the REPLACE directive only the request's own metadata is kept (the HTTP layer lists its
// names in hdrCopyKeys); otherwise the source's stored metadata is copied, as S3 does. The
// body is shared by a hard link (bodies never change), or copied where links fail. Tags are
// copied, or with x-amz-tagging-directive REPLACE taken from x-amz-tagging, as in S3.
func (b *backend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	var res gofakes3.CopyObjectResult
	if err := checkKey(dstKey); err != nil {
		return res, err
	}
	replace := strings.EqualFold(meta[hdrDirective], "REPLACE")
	if srcBucket == dstBucket && srcKey == dstKey && !replace {
		return res, gofakes3.ErrorMessage(gofakes3.ErrInvalidArgument,
			"This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.")
	}
	var src objectRec
	id, err := b.files.link(func() (string, int64, error) {
		err := b.db.View(func(tx *bolt.Tx) error { return lookup(tx, srcBucket, srcKey, &src) })
		return src.Body, src.Size, err
	})
	if err != nil {
		return res, err
	}
	newMeta := storableMeta(src.Meta)
	if replace {
		newMeta = map[string]string{}
		for name := range strings.SplitSeq(meta[hdrCopyKeys], ",") {
			if v, ok := meta[name]; ok && name != "" {
				newMeta[name] = v
			}
		}
		newMeta = storableMeta(newMeta)
	}
	if err := checkMetaSize(newMeta); err != nil {
		b.files.remove(id)
		return res, err
	}
	tags := src.Tags
	if strings.EqualFold(meta[hdrTaggingDirective], "REPLACE") {
		if tags, err = parseTagging(meta[hdrTagging]); err != nil {
			b.files.remove(id)
			return res, err
		}
	}
	now := b.now()
	rec := &objectRec{Body: id, Size: src.Size, MD5: src.MD5, Meta: newMeta, Modified: now, Tags: tags}
	if err := b.commit(dstBucket, dstKey, rec, nil); err != nil {
		return res, err
	}
	return gofakes3.CopyObjectResult{ETag: gofakes3.FormatETag(src.MD5), LastModified: gofakes3.NewContentTime(now)}, nil
}
