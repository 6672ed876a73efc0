package embedded

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
	bolt "go.etcd.io/bbolt"
)

// Multipart uploads on disk. Without a gofakes3.MultipartBackend, gofakes3 keeps every part
// in memory until Complete and then builds the whole object in memory once more; aws-cli
// uploading a 10 GB file would need 20 GB of RAM. Here each part is a body file like an
// object's, fsynced, and named in the upload's record in the database, so an upload in
// progress survives a restart. Complete streams the part files into the object's body.

var _ gofakes3.MultipartBackend = (*backend)(nil)

// upload is an entry of ListMultipartUploads.
type upload struct {
	id        gofakes3.UploadID
	key       string
	initiated time.Time
}

func partETag(p partRec) string { return gofakes3.FormatETag(p.MD5) }

func (b *backend) CreateMultipartUpload(bucket, key string, meta map[string]string) (gofakes3.UploadID, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	tags, err := parseTagging(meta[hdrTagging])
	if err != nil {
		return "", err
	}
	meta = storableMeta(meta)
	if err := checkMetaSize(meta); err != nil {
		return "", err
	}
	id := newID()
	rec := uploadRec{Bucket: bucket, Key: key, Meta: meta, Tags: tags, Initiated: b.now(), Parts: map[int]partRec{}}
	err = b.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(rootBuckets).Get([]byte(bucket)) == nil {
			return gofakes3.BucketNotFound(bucket)
		}
		return putJSON(tx.Bucket(rootUploads), []byte(id), rec)
	})
	if err != nil {
		return "", storageErr(err)
	}
	return gofakes3.UploadID(id), nil
}

// getUpload reads upload id of bucket/key in tx.
func getUpload(tx *bolt.Tx, bucket, key string, id gofakes3.UploadID, u *uploadRec) error {
	found, err := getJSON(tx.Bucket(rootUploads), []byte(id), u)
	if err != nil {
		return err
	}
	if !found || u.Bucket != bucket || u.Key != key {
		return gofakes3.ErrNoSuchUpload
	}
	if u.Parts == nil {
		u.Parts = map[int]partRec{}
	}
	return nil
}

func (b *backend) viewUpload(bucket, key string, id gofakes3.UploadID) (*uploadRec, error) {
	var u uploadRec
	err := b.db.View(func(tx *bolt.Tx) error { return getUpload(tx, bucket, key, id, &u) })
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// UploadPart stores the part as a body file and names it in the upload's record; a short
// body leaves no part (and an earlier upload of the same part number in place).
func (b *backend) UploadPart(bucket, key string, id gofakes3.UploadID, n int, contentLength int64, input io.Reader) (string, error) {
	if n < 1 || n > gofakes3.MaxUploadPartNumber {
		return "", gofakes3.ErrInvalidPart
	}
	if _, err := b.viewUpload(bucket, key, id); err != nil {
		return "", err
	}
	if contentLength < 0 {
		return "", gofakes3.ErrMissingContentLength
	}
	body, sum, err := b.files.write(input, contentLength)
	if err != nil {
		return "", err
	}
	p := partRec{Body: body, Size: contentLength, MD5: sum, Modified: b.now()}
	if err := b.storePart(bucket, key, id, n, p); err != nil {
		return "", err
	}
	return partETag(p), nil
}

// storePart names the body file of p as part n of the upload, replacing (and removing) an
// earlier body of that part number. On an error the body of p is removed.
func (b *backend) storePart(bucket, key string, id gofakes3.UploadID, n int, p partRec) error {
	var old string
	err := b.db.Update(func(tx *bolt.Tx) error {
		var u uploadRec
		if err := getUpload(tx, bucket, key, id, &u); err != nil {
			return err // aborted or completed meanwhile
		}
		old = u.Parts[n].Body
		u.Parts[n] = p
		return putJSON(tx.Bucket(rootUploads), []byte(id), u)
	})
	if err != nil {
		b.files.remove(p.Body)
		return storageErr(err)
	}
	if old != "" {
		b.files.remove(old)
	}
	return nil
}

func (b *backend) ListParts(bucket, key string, id gofakes3.UploadID, marker int, limit int64) (*gofakes3.ListMultipartUploadPartsResult, error) {
	u, err := b.viewUpload(bucket, key, id)
	if err != nil {
		return nil, err
	}
	res := &gofakes3.ListMultipartUploadPartsResult{
		Bucket: bucket, Key: key, UploadID: id, MaxParts: limit, PartNumberMarker: marker,
		StorageClass: "STANDARD",
	}
	nums := make([]int, 0, len(u.Parts))
	for n := range u.Parts {
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
		p := u.Parts[n]
		res.Parts = append(res.Parts, gofakes3.ListMultipartUploadPartItem{
			PartNumber: n, ETag: partETag(p), Size: p.Size, LastModified: gofakes3.NewContentTime(p.Modified),
		})
	}
	return res, nil
}

func (b *backend) ListMultipartUploads(bucket string, marker *gofakes3.UploadListMarker, prefix gofakes3.Prefix, limit int64) (*gofakes3.ListMultipartUploadsResult, error) {
	var list []*upload
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(rootUploads).ForEach(func(k, v []byte) error {
			var u uploadRec
			if err := jsonInto(v, &u); err != nil {
				return err
			}
			if u.Bucket == bucket {
				list = append(list, &upload{id: gofakes3.UploadID(k), key: u.Key, initiated: u.Initiated})
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
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

// deleteUploads deletes, in tx, the uploads match selects, and returns their part bodies.
func deleteUploads(tx *bolt.Tx, match func(*uploadRec) bool) ([]string, error) {
	var ids []string
	var keys [][]byte
	err := tx.Bucket(rootUploads).ForEach(func(k, v []byte) error {
		var u uploadRec
		if err := jsonInto(v, &u); err != nil {
			return err
		}
		if match(&u) {
			keys = append(keys, append([]byte(nil), k...))
			for _, p := range u.Parts {
				ids = append(ids, p.Body)
			}
		}
		return nil
	})
	for _, k := range keys {
		err = errors.Join(err, tx.Bucket(rootUploads).Delete(k))
	}
	return ids, err
}

func (b *backend) AbortMultipartUpload(bucket, key string, id gofakes3.UploadID) error {
	var parts []string
	err := b.db.Update(func(tx *bolt.Tx) error {
		var u uploadRec
		if err := getUpload(tx, bucket, key, id, &u); err != nil {
			return err
		}
		for _, p := range u.Parts {
			parts = append(parts, p.Body)
		}
		return tx.Bucket(rootUploads).Delete([]byte(id))
	})
	if err != nil {
		return storageErr(err)
	}
	b.files.remove(parts...)
	return nil
}

// CompleteMultipartUpload checks the part list (ascending, every part uploaded with that
// ETag), streams the part files into a new body, and then, in one transaction, publishes the
// object and ends the upload, provided nobody changed the upload meanwhile. The object keeps
// the part sizes and the multipart ETag, so that GET/HEAD with partNumber and the ETag behave
// like S3's.
func (b *backend) CompleteMultipartUpload(bucket, key string, id gofakes3.UploadID, in *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	u, err := b.viewUpload(bucket, key, id)
	if err != nil {
		return "", "", err
	}
	if len(in.Parts) == 0 {
		return "", "", gofakes3.ErrorMessage(gofakes3.ErrMalformedXML, "no parts given")
	}
	parts := make([]partRec, len(in.Parts))
	for i, cp := range in.Parts {
		if i > 0 && cp.PartNumber <= in.Parts[i-1].PartNumber {
			return "", "", gofakes3.ErrInvalidPartOrder
		}
		p, ok := u.Parts[cp.PartNumber]
		if !ok || strings.Trim(cp.ETag, `"`) != hex.EncodeToString(p.MD5) {
			return "", "", gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d was not uploaded with that ETag", cp.PartNumber)
		}
		parts[i] = p
	}
	rec, err := b.assemble(u, parts)
	if err != nil {
		return "", "", err
	}
	err = b.commitTx(bucket, key, rec, func(tx *bolt.Tx, _ *objectRec) ([]string, error) {
		var now uploadRec
		if err := getUpload(tx, bucket, key, id, &now); err != nil {
			return nil, err // aborted or completed meanwhile
		}
		var unused []string
		for n, p := range now.Parts {
			if u.Parts[n].Body != p.Body {
				return nil, gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d was uploaded again during Complete", n)
			}
			unused = append(unused, p.Body)
		}
		return unused, tx.Bucket(rootUploads).Delete([]byte(id))
	})
	if err != nil {
		return "", "", err
	}
	return "", rec.ETag, nil
}

// assemble writes the concatenation of parts into a new body file and returns the record of
// the object it makes.
func (b *backend) assemble(u *uploadRec, parts []partRec) (*objectRec, error) {
	var (
		readers = make([]io.Reader, 0, len(parts))
		sizes   = make([]int64, 0, len(parts))
		total   int64
		sums    = md5.New()
	)
	for _, p := range parts {
		f, err := b.files.open(func() (string, error) { return p.Body, nil })
		if err != nil {
			return nil, err
		}
		defer f.Close()
		readers = append(readers, f)
		sizes = append(sizes, p.Size)
		total += p.Size
		sums.Write(p.MD5)
	}
	body, sum, err := b.files.write(io.MultiReader(readers...), total)
	if err != nil {
		return nil, err
	}
	return &objectRec{
		Body: body, Size: total, MD5: sum, Meta: u.Meta, Tags: u.Tags, Modified: b.now(), Parts: sizes,
		ETag: fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(sums.Sum(nil)), len(parts)),
	}, nil
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
	rec, err := b.record(bucket, key)
	if err != nil {
		return nil, false, err
	}
	if len(rec.Parts) > 0 {
		return rec.Parts, true, nil
	}
	return []int64{rec.Size}, false, nil
}
