package embedded

import (
	"crypto/md5"
	"errors"
	"io"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/spf13/afero"
)

// Metadata names. gofakes3 hands the backend every X-Amz-* request header plus a few standard
// ones; only these survive into the stored object (see storableMeta).
const (
	userMetaPrefix = "X-Amz-Meta-"
	lastModified   = "Last-Modified"

	// Internal metadata written by this package only. They are not X-Amz-* names, so gofakes3
	// never copies them from a request, and they are removed before anything is returned.
	metaParts = "X-S3seal-Parts" // comma-separated stored sizes of the parts of a multipart object
	metaETag  = "X-S3seal-Etag"  // the multipart ETag ("<hex>-N"); the HTTP layer turns it into ETag

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

	// maxKeyLen: s3afero keeps an object's metadata in one file named after the whole key plus
	// a 33-byte hash suffix, so a key longer than NAME_MAX-33 could be written but never read.
	maxKeyLen = 255 - 33
)

// standardMeta lists the non-user headers gofakes3 captures that are part of an object.
func isStandardMeta(k string) bool {
	return k == "Content-Type" || k == "Content-Disposition" || k == "Content-Encoding" || k == lastModified
}

// backend wraps the s3afero backend. It fixes what the gateway cannot live with:
//   - PutObject and CopyObject spool the body to a temp file and check its length before the
//     stored object is touched, so a cut-off upload leaves nothing behind;
//   - an overwrite replaces the metadata (s3afero merges the old object's into it);
//   - only object metadata is stored, not the request's protocol headers;
//   - keys that do not map one-to-one onto file names are refused;
//   - listings are sorted and paginated, and delimiters grouped, like S3 does;
//   - multipart uploads are kept on disk, not in memory (multipart.go).
type backend struct {
	gofakes3.Backend // the s3afero MultiBucketBackend

	fs     afero.Fs // the same file system s3afero works in
	tmpDir string
	log    *slog.Logger
	now    func() time.Time

	// commitMu orders every change of stored objects made through this wrapper: the
	// delete-then-put pair of an overwrite, and the pruning of empty directories.
	commitMu sync.Mutex

	mpMu    sync.Mutex
	uploads map[gofakes3.UploadID]*upload
}

func newBackend(inner gofakes3.Backend, fs afero.Fs, tmpDir string, log *slog.Logger) *backend {
	return &backend{
		Backend: inner,
		fs:      fs,
		tmpDir:  tmpDir,
		log:     log,
		now:     time.Now,
		uploads: map[gofakes3.UploadID]*upload{},
	}
}

// validKey reports whether an object key can be stored as a file under exactly its own name:
// no empty, "." or ".." segments (they would be cleaned into another key, or out of the
// bucket), no trailing slash, no NUL, and short enough for s3afero's metadata file name.
func validKey(key string) bool {
	if key == "" || len(key) > maxKeyLen || strings.IndexByte(key, 0) >= 0 {
		return false
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func invalidKey(key string) error {
	return gofakes3.ErrorMessagef(gofakes3.ErrInvalidArgument,
		"object key not supported by the embedded store (empty, '.' or '..' segments, trailing slash, or longer than %d bytes)", maxKeyLen)
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

func (b *backend) BucketExists(name string) (bool, error) {
	if gofakes3.ValidateBucketName(name) != nil {
		return false, nil
	}
	return b.Backend.BucketExists(name)
}

// spool copies exactly size bytes from r into a new temp file in dir, positioned at its start, and
// returns it with the MD5 of the bytes. A body that ends early (or runs long) is
// IncompleteBody; errors of gofakes3's readers (BadDigest) are passed on.
func (b *backend) spool(dir string, r io.Reader, size int64) (*os.File, []byte, error) {
	f, err := os.CreateTemp(dir, "spool-*")
	if err != nil {
		return nil, nil, err
	}
	sum, err := copyExactly(f, r, size)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		discard(f)
		b.log.Debug("embedded: upload body refused", "err", err)
		return nil, nil, err
	}
	return f, sum, nil
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

func discard(f *os.File) {
	_ = f.Close()
	_ = os.Remove(f.Name())
}

func (b *backend) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64,
	cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	if !validKey(key) {
		return gofakes3.PutObjectResult{}, invalidKey(key)
	}
	meta = storableMeta(meta)
	if err := checkMetaSize(meta); err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	f, _, err := b.spool(b.tmpDir, input, size)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	defer discard(f)
	return b.commit(bucket, key, meta, f, size, cond)
}

// commit stores a complete, length-checked body. s3afero would merge the metadata of an
// object it overwrites into the new one, and truncates the file that concurrent GETs may be
// reading; deleting the old object first avoids both (readers keep the old inode).
func (b *backend) commit(bucket, key string, meta map[string]string, body io.Reader, size int64,
	cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()

	old, err := b.Backend.HeadObject(bucket, key)
	err = notFound(err, key)
	exists := err == nil
	if err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey) {
		return gofakes3.PutObjectResult{}, err
	}
	if exists {
		_ = old.Contents.Close()
	}
	if cond != nil {
		info := &gofakes3.ConditionalObjectInfo{Exists: exists}
		if exists {
			info.Hash = old.Hash
		}
		if err := gofakes3.CheckPutConditions(cond, info); err != nil {
			return gofakes3.PutObjectResult{}, err
		}
	}
	if err := b.checkNoConflictLocked(bucket, key); err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	if exists {
		if _, err := b.Backend.DeleteObject(bucket, key); err != nil {
			return gofakes3.PutObjectResult{}, err
		}
	}
	res, err := b.Backend.PutObject(bucket, key, meta, body, size, nil)
	if err != nil {
		b.log.Warn("embedded: storing object failed", "bucket", bucket, "err", err)
		b.pruneLocked(bucket, key)
	}
	return res, err
}

// checkNoConflictLocked refuses key when the file layout cannot hold it next to the objects
// there: an object named like one of its parent directories ("a" when storing "a/b"), or keys
// below it ("a/b" when storing "a"). S3 holds both; storing one here would need the other's
// file or directory removed, so the request fails instead (400, nothing changes).
func (b *backend) checkNoConflictLocked(bucket, key string) error {
	for dir := path.Dir(key); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if fi, err := b.fs.Stat(path.Join("buckets", bucket, dir)); err == nil && !fi.IsDir() {
			return gofakes3.ErrorMessagef(gofakes3.ErrInvalidArgument,
				"the embedded store cannot hold %q: an object %q exists and keys cannot extend an object's name with '/'", key, dir)
		}
	}
	if fi, err := b.fs.Stat(path.Join("buckets", bucket, key)); err == nil && fi.IsDir() {
		return gofakes3.ErrorMessagef(gofakes3.ErrInvalidArgument,
			"the embedded store cannot hold %q: objects with keys starting %q exist", key, key+"/")
	}
	return nil
}

// pruneLocked removes the directories left empty by deleting key, up to the bucket, so that
// they neither show up as common prefixes nor keep the bucket from being deleted. Only
// directories: after a failed store of "a/b", "a" may be an object.
func (b *backend) pruneLocked(bucket, key string) {
	for dir := path.Dir(key); dir != "." && dir != "/"; dir = path.Dir(dir) {
		p := path.Join("buckets", bucket, dir)
		if fi, err := b.fs.Stat(p); err != nil || !fi.IsDir() || b.fs.Remove(p) != nil {
			return // not empty, or gone: either way the parents stay
		}
	}
}

// notFound turns "a parent of this key is an object, not a directory" into NoSuchKey.
func notFound(err error, key string) error {
	if errors.Is(err, syscall.ENOTDIR) {
		return gofakes3.KeyNotFound(key)
	}
	return err
}

func (b *backend) DeleteObject(bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	if !validKey(key) {
		// It cannot exist; S3 answers a delete of a missing key with success.
		if ok, err := b.BucketExists(bucket); err != nil || !ok {
			return gofakes3.ObjectDeleteResult{}, gofakes3.BucketNotFound(bucket)
		}
		return gofakes3.ObjectDeleteResult{}, nil
	}
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	res, err := b.Backend.DeleteObject(bucket, key)
	if errors.Is(err, syscall.ENOTDIR) {
		return res, nil // a parent is an object: this key cannot exist
	}
	if err == nil {
		b.pruneLocked(bucket, key)
	}
	return res, err
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

// publicObject removes the internal metadata that must not become response headers, except
// metaETag, which the HTTP layer consumes.
func publicObject(obj *gofakes3.Object) *gofakes3.Object {
	meta := make(map[string]string, len(obj.Metadata))
	for k, v := range obj.Metadata {
		if k != metaParts {
			meta[k] = v
		}
	}
	obj.Metadata = meta
	return obj
}

func (b *backend) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	if !validKey(key) {
		return nil, gofakes3.KeyNotFound(key)
	}
	obj, err := b.Backend.HeadObject(bucket, key)
	if err != nil {
		return nil, notFound(err, key)
	}
	return publicObject(obj), nil
}

func (b *backend) GetObject(bucket, key string, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	if !validKey(key) {
		return nil, gofakes3.KeyNotFound(key)
	}
	obj, err := b.Backend.GetObject(bucket, key, rng)
	if err != nil {
		return nil, notFound(err, key)
	}
	return publicObject(obj), nil
}

// CopyObject gets the merged metadata of gofakes3 (request headers over the source's). With
// the REPLACE directive only the request's own metadata is kept (the HTTP layer lists its
// names in hdrCopyKeys); otherwise the source's stored metadata is copied, as S3 does. The
// source is spooled before the destination is touched, so copying an object onto itself
// works (s3afero alone would truncate the file it is reading).
func (b *backend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	var res gofakes3.CopyObjectResult
	if !validKey(srcKey) {
		return res, gofakes3.KeyNotFound(srcKey)
	}
	if !validKey(dstKey) {
		return res, invalidKey(dstKey)
	}
	replace := strings.EqualFold(meta[hdrDirective], "REPLACE")
	if srcBucket == dstBucket && srcKey == dstKey && !replace {
		return res, gofakes3.ErrorMessage(gofakes3.ErrInvalidArgument,
			"This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.")
	}
	src, err := b.Backend.GetObject(srcBucket, srcKey, nil)
	if err != nil {
		return res, err
	}
	var newMeta map[string]string
	if replace {
		newMeta = map[string]string{}
		for name := range strings.SplitSeq(meta[hdrCopyKeys], ",") {
			if v, ok := meta[name]; ok && name != "" {
				newMeta[name] = v
			}
		}
		newMeta = storableMeta(newMeta)
	} else {
		newMeta = storableMeta(src.Metadata) // drops metaParts/metaETag: a copy is single-part, as in S3
	}
	newMeta[lastModified] = meta[lastModified]
	if err := checkMetaSize(newMeta); err != nil {
		_ = src.Contents.Close()
		return res, err
	}
	f, sum, err := b.spool(b.tmpDir, src.Contents, src.Size)
	_ = src.Contents.Close()
	if err != nil {
		return res, err // not wrapped: gofakes3 renders only its own error types
	}
	defer discard(f)
	if _, err := b.commit(dstBucket, dstKey, newMeta, f, src.Size, nil); err != nil {
		return res, err
	}
	return gofakes3.CopyObjectResult{ETag: gofakes3.FormatETag(sum), LastModified: gofakes3.NewContentTime(b.now())}, nil
}

// ListBucket lists the whole bucket from s3afero without a delimiter (its directory-walking
// path for "/" delimiters gets nested common prefixes wrong and reports a missing prefix
// directory as NoSuchBucket), then groups, sorts and pages the result itself.
func (b *backend) ListBucket(bucket string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	var p gofakes3.Prefix
	if prefix != nil {
		p = *prefix
	}
	all, err := b.Backend.ListBucket(bucket, &gofakes3.Prefix{HasPrefix: p.HasPrefix, Prefix: p.Prefix}, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, err
	}
	type entry struct {
		name    string
		content *gofakes3.Content
	}
	var entries []entry
	seen := map[string]bool{}
	for _, c := range all.Contents {
		if p.HasPrefix && !strings.HasPrefix(c.Key, p.Prefix) {
			continue
		}
		if p.HasDelimiter {
			rest := c.Key[len(p.Prefix):]
			if i := strings.Index(rest, p.Delimiter); i >= 0 {
				cp := p.Prefix + rest[:i+len(p.Delimiter)]
				if !seen[cp] {
					seen[cp] = true
					entries = append(entries, entry{name: cp})
				}
				continue
			}
		}
		entries = append(entries, entry{name: c.Key, content: c})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	if page.HasMarker {
		i := sort.Search(len(entries), func(i int) bool { return entries[i].name > page.Marker })
		entries = entries[i:]
	}
	out := gofakes3.NewObjectList()
	if page.MaxKeys > 0 && int64(len(entries)) > page.MaxKeys {
		entries = entries[:page.MaxKeys]
		out.IsTruncated = true
		out.NextMarker = entries[len(entries)-1].name
	}
	for _, e := range entries {
		if e.content == nil {
			out.AddPrefix(e.name)
			continue
		}
		if obj, err := b.Backend.HeadObject(bucket, e.content.Key); err == nil {
			if etag := obj.Metadata[metaETag]; etag != "" {
				e.content.ETag = etag
			}
			_ = obj.Contents.Close()
		}
		out.Add(e.content)
	}
	return out, nil
}
