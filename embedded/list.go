package embedded

import (
	"bytes"
	"strings"

	"github.com/johannesboyne/gofakes3"
	bolt "go.etcd.io/bbolt"
)

// ListBucket walks the bucket's records in key order (bbolt sorts keys bytewise, which is
// S3's UTF-8 binary order) from the prefix or the marker, groups keys by delimiter and stops
// after page.MaxKeys entries (0: no limit). A common prefix counts as one entry, and the
// keys below it are skipped with one Seek.
func (b *backend) ListBucket(bucket string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	var p gofakes3.Prefix
	if prefix != nil {
		p = *prefix
	}
	if !p.HasPrefix {
		p.Prefix = ""
	}
	if !p.HasDelimiter {
		p.Delimiter = ""
	}
	out := gofakes3.NewObjectList()
	err := b.db.View(func(tx *bolt.Tx) error {
		objs := tx.Bucket(rootObjects).Bucket([]byte(bucket))
		if objs == nil {
			return gofakes3.BucketNotFound(bucket)
		}
		c := objs.Cursor()
		start := p.Prefix
		if page.HasMarker && page.Marker > start {
			start = page.Marker
		}
		var n int64
		last := ""
		for k, v := c.Seek([]byte(start)); k != nil && bytes.HasPrefix(k, []byte(p.Prefix)); {
			key := string(k)
			name, isPrefix := key, false
			if p.Delimiter != "" {
				if i := strings.Index(key[len(p.Prefix):], p.Delimiter); i >= 0 {
					name, isPrefix = key[:len(p.Prefix)+i+len(p.Delimiter)], true
				}
			}
			if page.HasMarker && name <= page.Marker {
				k, v = skip(c, name, isPrefix)
				continue
			}
			if page.MaxKeys > 0 && n == page.MaxKeys {
				out.IsTruncated = true
				out.NextMarker = last
				return nil
			}
			if isPrefix {
				out.AddPrefix(name)
			} else {
				var rec objectRec
				if err := jsonInto(v, &rec); err != nil {
					return err
				}
				out.Add(&gofakes3.Content{
					Key: key, LastModified: gofakes3.NewContentTime(rec.Modified), ETag: rec.etag(),
					Size: rec.Size, StorageClass: gofakes3.StorageStandard,
				})
			}
			n++
			last = name
			k, v = skip(c, name, isPrefix)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// skip moves the cursor past name: to the next key, or for a common prefix past every key
// starting with it (0xff never occurs in UTF-8, so prefix+"\xff" sorts after all of them).
func skip(c *bolt.Cursor, name string, isPrefix bool) ([]byte, []byte) {
	if isPrefix {
		return c.Seek([]byte(name + "\xff"))
	}
	return c.Next()
}
