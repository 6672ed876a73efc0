package embedded

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// Multipart uploads on disk. Without a gofakes3.MultipartBackend, gofakes3 keeps every part
// in memory until Complete and then builds the whole object in memory once more; aws-cli
// uploading a 10 GB file would need 20 GB of RAM. Here each part is spooled to
// <dir>/tmp/mpu-<id>/, its length checked, and Complete streams the part files into the
// object. Upload state (ids, part ETags) is in memory: uploads in progress do not survive a
// restart (Start empties <dir>/tmp).

var _ gofakes3.MultipartBackend = (*backend)(nil)

type upload struct {
	id         gofakes3.UploadID
	bucket     string
	key        string
	meta       map[string]string
	initiated  time.Time
	dir        string
	parts      map[int]part
	completing bool
}

type part struct {
	size     int64
	md5      []byte
	modified time.Time
}

func (p part) etag() string { return gofakes3.FormatETag(p.md5) }

func partFile(dir string, n int) string { return filepath.Join(dir, fmt.Sprintf("part-%05d", n)) }

func (b *backend) CreateMultipartUpload(bucket, key string, meta map[string]string) (gofakes3.UploadID, error) {
	if !validKey(key) {
		return "", invalidKey(key)
	}
	meta = storableMeta(meta)
	if err := checkMetaSize(meta); err != nil {
		return "", err
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	id := gofakes3.UploadID(hex.EncodeToString(raw[:]))
	dir := filepath.Join(b.tmpDir, "mpu-"+string(id))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	b.mpMu.Lock()
	defer b.mpMu.Unlock()
	b.uploads[id] = &upload{
		id: id, bucket: bucket, key: key, meta: meta, initiated: b.now(), dir: dir, parts: map[int]part{},
	}
	return id, nil
}

// lookupLocked finds an upload that is not being completed; b.mpMu must be held.
func (b *backend) lookupLocked(bucket, key string, id gofakes3.UploadID) (*upload, error) {
	u, ok := b.uploads[id]
	if !ok || u.bucket != bucket || u.key != key || u.completing {
		return nil, gofakes3.ErrNoSuchUpload
	}
	return u, nil
}

// UploadPart spools the part next to the others and checks its length; a short body leaves
// no part (and an earlier upload of the same part number in place).
func (b *backend) UploadPart(bucket, key string, id gofakes3.UploadID, n int, contentLength int64, input io.Reader) (string, error) {
	if n < 1 || n > gofakes3.MaxUploadPartNumber {
		return "", gofakes3.ErrInvalidPart
	}
	b.mpMu.Lock()
	u, err := b.lookupLocked(bucket, key, id)
	b.mpMu.Unlock()
	if err != nil {
		return "", err
	}
	if contentLength < 0 {
		return "", gofakes3.ErrMissingContentLength
	}
	f, sum, err := b.spool(u.dir, input, contentLength) // in the upload's dir: Rename stays on one device
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_ = f.Close()
	defer os.Remove(tmp)

	b.mpMu.Lock()
	defer b.mpMu.Unlock()
	if _, err := b.lookupLocked(bucket, key, id); err != nil {
		return "", err // aborted or completed meanwhile
	}
	if err := os.Rename(tmp, partFile(u.dir, n)); err != nil {
		return "", err
	}
	p := part{size: contentLength, md5: sum, modified: b.now()}
	u.parts[n] = p
	return p.etag(), nil
}

func (b *backend) ListParts(bucket, key string, id gofakes3.UploadID, marker int, limit int64) (*gofakes3.ListMultipartUploadPartsResult, error) {
	b.mpMu.Lock()
	defer b.mpMu.Unlock()
	u, err := b.lookupLocked(bucket, key, id)
	if err != nil {
		return nil, err
	}
	res := &gofakes3.ListMultipartUploadPartsResult{
		Bucket: bucket, Key: key, UploadID: id, MaxParts: limit, PartNumberMarker: marker,
		StorageClass: "STANDARD",
	}
	nums := make([]int, 0, len(u.parts))
	for n := range u.parts {
		if n > marker {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	for i, n := range nums {
		if limit > 0 && int64(i) >= limit {
			res.IsTruncated = true
			res.NextPartNumberMarker = nums[i-1]
			break
		}
		p := u.parts[n]
		res.Parts = append(res.Parts, gofakes3.ListMultipartUploadPartItem{
			PartNumber: n, ETag: p.etag(), Size: p.size, LastModified: gofakes3.NewContentTime(p.modified),
		})
	}
	return res, nil
}

func (b *backend) ListMultipartUploads(bucket string, marker *gofakes3.UploadListMarker, prefix gofakes3.Prefix, limit int64) (*gofakes3.ListMultipartUploadsResult, error) {
	b.mpMu.Lock()
	var list []*upload
	for _, u := range b.uploads {
		if u.bucket == bucket && !u.completing {
			list = append(list, u)
		}
	}
	b.mpMu.Unlock()
	sort.Slice(list, func(i, j int) bool {
		if list[i].key != list[j].key {
			return list[i].key < list[j].key
		}
		if !list[i].initiated.Equal(list[j].initiated) {
			return list[i].initiated.Before(list[j].initiated)
		}
		return list[i].id < list[j].id
	})
	res := &gofakes3.ListMultipartUploadsResult{
		Bucket: bucket, MaxUploads: limit, Delimiter: prefix.Delimiter, Prefix: prefix.Prefix,
	}
	if marker != nil {
		res.KeyMarker, res.UploadIDMarker = marker.Object, marker.UploadID
		start := sort.Search(len(list), func(i int) bool { return list[i].key >= marker.Object })
		if marker.UploadID == "" {
			for start < len(list) && list[start].key == marker.Object {
				start++
			}
		} else {
			for i := start; i < len(list) && list[i].key == marker.Object; i++ {
				if list[i].id == marker.UploadID {
					start = i + 1
					break
				}
			}
		}
		list = list[start:]
	}
	seen := map[string]bool{}
	var count int64
	var match gofakes3.PrefixMatch
	for i, u := range list {
		if !prefix.Match(u.key, &match) {
			continue
		}
		if limit > 0 && count >= limit {
			res.IsTruncated = true
			res.NextKeyMarker, res.NextUploadIDMarker = list[i-1].key, list[i-1].id
			break
		}
		if match.CommonPrefix {
			if !seen[match.MatchedPart] {
				seen[match.MatchedPart] = true
				res.CommonPrefixes = append(res.CommonPrefixes, match.AsCommonPrefix())
				count++
			}
			continue
		}
		res.Uploads = append(res.Uploads, gofakes3.ListMultipartUploadItem{
			Key: u.key, UploadID: u.id, StorageClass: "STANDARD", Initiated: gofakes3.NewContentTime(u.initiated),
		})
		count++
	}
	return res, nil
}

func (b *backend) AbortMultipartUpload(bucket, key string, id gofakes3.UploadID) error {
	b.mpMu.Lock()
	u, err := b.lookupLocked(bucket, key, id)
	if err == nil {
		delete(b.uploads, id)
	}
	b.mpMu.Unlock()
	if err != nil {
		return err
	}
	return os.RemoveAll(u.dir)
}

// CompleteMultipartUpload checks the part list (ascending, every part uploaded with that
// ETag), then streams the part files into the object. The object keeps the part sizes and
// the multipart ETag in internal metadata, so that GET/HEAD with partNumber and the ETag
// behave like S3's.
func (b *backend) CompleteMultipartUpload(bucket, key string, id gofakes3.UploadID, in *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	b.mpMu.Lock()
	u, err := b.lookupLocked(bucket, key, id)
	if err != nil {
		b.mpMu.Unlock()
		return "", "", err
	}
	if len(in.Parts) == 0 {
		b.mpMu.Unlock()
		return "", "", gofakes3.ErrorMessage(gofakes3.ErrMalformedXML, "no parts given")
	}
	parts := make([]part, len(in.Parts))
	for i, cp := range in.Parts {
		if i > 0 && cp.PartNumber <= in.Parts[i-1].PartNumber {
			b.mpMu.Unlock()
			return "", "", gofakes3.ErrInvalidPartOrder
		}
		p, ok := u.parts[cp.PartNumber]
		if !ok || strings.Trim(cp.ETag, `"`) != hex.EncodeToString(p.md5) {
			b.mpMu.Unlock()
			return "", "", gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d was not uploaded with that ETag", cp.PartNumber)
		}
		parts[i] = p
	}
	u.completing = true // keeps UploadPart, Abort and a second Complete away from the files
	b.mpMu.Unlock()

	etag, err := b.assemble(u, in.Parts, parts)

	b.mpMu.Lock()
	defer b.mpMu.Unlock()
	if err != nil {
		u.completing = false
		return "", "", err
	}
	delete(b.uploads, id)
	_ = os.RemoveAll(u.dir)
	return "", etag, nil
}

func (b *backend) assemble(u *upload, list []gofakes3.CompletedPart, parts []part) (string, error) {
	var (
		readers = make([]io.Reader, 0, len(parts))
		sizes   = make([]string, 0, len(parts))
		total   int64
		sums    = md5.New()
	)
	for i, cp := range list {
		f, err := os.Open(partFile(u.dir, cp.PartNumber))
		if err != nil {
			return "", err
		}
		defer f.Close()
		readers = append(readers, f)
		sizes = append(sizes, strconv.FormatInt(parts[i].size, 10))
		total += parts[i].size
		sums.Write(parts[i].md5)
	}
	etag := fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(sums.Sum(nil)), len(parts))
	meta := make(map[string]string, len(u.meta)+2)
	for k, v := range u.meta {
		meta[k] = v
	}
	meta[metaParts] = strings.Join(sizes, ",")
	meta[metaETag] = etag
	if _, err := b.commit(u.bucket, u.key, meta, io.MultiReader(readers...), total, nil); err != nil {
		return "", err
	}
	return etag, nil
}

// parseParts reads metaParts back: the part sizes, which must add up to the object's size.
// Anything else (absent, malformed, not matching) means "not a multipart object".
func parseParts(v string, size int64) ([]int64, bool) {
	if v == "" || len(v) > 10000*21 {
		return nil, false
	}
	var sizes []int64
	var total int64
	for s := range strings.SplitSeq(v, ",") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > size-total || len(sizes) == gofakes3.MaxUploadPartNumber {
			return nil, false
		}
		sizes = append(sizes, n)
		total += n
	}
	if total != size {
		return nil, false
	}
	return sizes, true
}

// partLayout returns the part sizes of a stored object; a single-part object has one part.
func (b *backend) partLayout(bucket, key string) (sizes []int64, multipart bool, err error) {
	if !validKey(key) {
		return nil, false, gofakes3.KeyNotFound(key)
	}
	obj, err := b.Backend.HeadObject(bucket, key)
	if err != nil {
		return nil, false, notFound(err, key)
	}
	_ = obj.Contents.Close()
	if sizes, ok := parseParts(obj.Metadata[metaParts], obj.Size); ok {
		return sizes, true, nil
	}
	return []int64{obj.Size}, false, nil
}
