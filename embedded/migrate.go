package embedded

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	bolt "go.etcd.io/bbolt"
)

// Migration of data dirs written by earlier versions, which stored objects with gofakes3's
// s3afero backend: files named by key under objects/buckets/<bucket>/<key> and JSON metadata
// under objects/metadata. At Start, before anything is served, every object of that tree is
// read back through s3afero itself, its file hard-linked into bodies/ (no copy, no extra
// space) and its MD5 computed from the bytes; all records are then committed in one
// transaction together with the "migrated" mark, and only after that commit is the old tree
// removed. A crash before the commit leaves the old tree as it was (the next Start migrates
// again, the links left over are swept); a crash after it leaves a tree the next Start
// removes. A migration that fails stops Start with an error saying what to do: nothing is
// ever silently left behind or ignored. Multipart uploads in progress were never kept by
// those versions, so there are none to migrate.

type migrated struct {
	bucket  string
	created time.Time
	keys    []string
	recs    []*objectRec
}

// migrate moves the s3afero tree at old into the store, if there is one.
func migrate(b *backend, old string) error {
	if _, err := os.Stat(filepath.Join(old, "buckets")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	done := false
	if err := b.db.View(func(tx *bolt.Tx) error {
		done = tx.Bucket(rootMeta).Get(migratedKey) != nil
		return nil
	}); err != nil {
		return err
	}
	if done { // committed, but the old tree was not yet removed
		return os.RemoveAll(old)
	}
	var linked []string
	buckets, err := readOld(b, old, &linked)
	if err == nil {
		err = b.db.Update(func(tx *bolt.Tx) error { return commitMigration(tx, buckets, b.now()) })
	}
	if err != nil {
		b.files.remove(linked...)
		return fmt.Errorf("embedded: moving the objects of an earlier version's data dir (%s) into the new layout failed, nothing was changed: %w; "+
			"fix the cause (for example free some space) and start again, or move %s away to start with an empty store", old, storageErr(err), old)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("embedded: the objects of %s were moved into the new layout, but removing the old tree failed: %w; remove it by hand", old, err)
	}
	n := 0
	for _, m := range buckets {
		n += len(m.keys)
	}
	b.log.Info("embedded: data dir of an earlier version migrated", "buckets", len(buckets), "objects", n)
	return nil
}

// readOld reads every object of the old tree and links its file into bodies/; linked gets
// the new body ids, for the clean-up if the migration fails.
func readOld(b *backend, old string, linked *[]string) ([]*migrated, error) {
	fs, err := s3afero.FsPath(old, 0)
	if err != nil {
		return nil, err
	}
	inner, err := s3afero.MultiBucket(fs)
	if err != nil {
		return nil, err
	}
	infos, err := inner.ListBuckets()
	if err != nil {
		return nil, err
	}
	var out []*migrated
	for _, info := range infos {
		m := &migrated{bucket: info.Name, created: info.CreationDate.Time}
		list, err := inner.ListBucket(info.Name, nil, gofakes3.ListBucketPage{})
		if err != nil {
			return nil, fmt.Errorf("listing bucket %q: %w", info.Name, err)
		}
		for _, c := range list.Contents {
			rec, err := readOldObject(b, inner, filepath.Join(old, "buckets", info.Name, filepath.FromSlash(c.Key)), info.Name, c)
			if err != nil {
				return nil, fmt.Errorf("object %q of bucket %q: %w", c.Key, info.Name, err)
			}
			*linked = append(*linked, rec.Body)
			m.keys = append(m.keys, c.Key)
			m.recs = append(m.recs, rec)
		}
		out = append(out, m)
	}
	return out, nil
}

func readOldObject(b *backend, inner *s3afero.MultiBucketBackend, file, bucket string, c *gofakes3.Content) (*objectRec, error) {
	obj, err := inner.HeadObject(bucket, c.Key)
	if err != nil {
		return nil, err
	}
	_ = obj.Contents.Close()
	id := newID()
	if err := os.Link(file, b.files.path(id)); err != nil {
		return nil, err
	}
	f, err := os.Open(b.files.path(id))
	if err != nil {
		b.files.remove(id)
		return nil, err
	}
	defer f.Close()
	sum, err := copyExactly(io.Discard, f, obj.Size)
	if err != nil {
		b.files.remove(id)
		return nil, err
	}
	rec := &objectRec{Body: id, Size: obj.Size, MD5: sum, Meta: storableMeta(obj.Metadata), Modified: c.LastModified.Time}
	if t, err := time.Parse(http.TimeFormat, obj.Metadata[lastModified]); err == nil {
		rec.Modified = t
	}
	if sizes, ok := parseParts(obj.Metadata[metaParts], obj.Size); ok {
		rec.Parts, rec.ETag = sizes, obj.Metadata[metaETag]
	}
	return rec, nil
}

func commitMigration(tx *bolt.Tx, buckets []*migrated, now time.Time) error {
	for _, m := range buckets {
		created := m.created
		if created.IsZero() {
			created = now
		}
		if tx.Bucket(rootBuckets).Get([]byte(m.bucket)) == nil {
			if err := putJSON(tx.Bucket(rootBuckets), []byte(m.bucket), bucketRec{Created: created}); err != nil {
				return err
			}
		}
		objs, err := tx.Bucket(rootObjects).CreateBucketIfNotExists([]byte(m.bucket))
		if err != nil {
			return err
		}
		for i, key := range m.keys {
			if objs.Get([]byte(key)) != nil {
				return fmt.Errorf("object %q of bucket %q exists in both layouts", key, m.bucket)
			}
			if err := putJSON(objs, []byte(key), m.recs[i]); err != nil {
				return err
			}
		}
	}
	return tx.Bucket(rootMeta).Put(migratedKey, []byte(now.UTC().Format(time.RFC3339)))
}
