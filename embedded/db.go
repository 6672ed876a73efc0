package embedded

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	bolt "go.etcd.io/bbolt"
)

// The on-disk store: metadata in one bbolt database, bodies in immutable files named by a
// random id. Nothing on disk is named after a key, so any S3 key can be stored.
//
//	meta.db        bbolt: bucket list, object records, multipart uploads in progress
//	bodies/<id>    object bodies and multipart parts, written once, never changed
//	tmp/           bodies being received; emptied at every Start
//
// A body is written to tmp/, fsynced and renamed into bodies/ before the record naming it
// is committed in one bbolt transaction, so a reader finds the old record and the old body or
// the new record and the new body, never a mix. A body no record names any more is removed
// after the transaction; bodyMu makes that wait for readers that have looked up the old
// record but not yet opened its file (an open file stays readable after the unlink).

var (
	rootMeta    = []byte("meta")    // schemaKey -> schemaVersion, migratedKey -> time
	rootBuckets = []byte("buckets") // bucket name -> bucketRec
	rootObjects = []byte("objects") // nested bucket per S3 bucket: key -> objectRec
	rootUploads = []byte("uploads") // upload id -> uploadRec

	schemaKey     = []byte("schema")
	migratedKey   = []byte("migrated-s3afero")
	schemaVersion = []byte("1")
)

type bucketRec struct {
	Created time.Time `json:"created"`
}

type tag struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// objectRec is one stored object.
type objectRec struct {
	Body     string            `json:"body"` // file name under bodies/
	Size     int64             `json:"size"`
	MD5      []byte            `json:"md5"`             // of the whole body
	ETag     string            `json:"etag,omitempty"`  // multipart ETag ("<hex>-N"), quoted; empty: the MD5
	Parts    []int64           `json:"parts,omitempty"` // part sizes of a multipart object
	Meta     map[string]string `json:"meta,omitempty"`  // user metadata and standard headers
	Modified time.Time         `json:"modified"`
	Tags     []tag             `json:"tags,omitempty"`
}

func (o *objectRec) etag() string {
	if o.ETag != "" {
		return o.ETag
	}
	return gofakes3.FormatETag(o.MD5)
}

type partRec struct {
	Body     string    `json:"body"`
	Size     int64     `json:"size"`
	MD5      []byte    `json:"md5"`
	Modified time.Time `json:"modified"`
}

type uploadRec struct {
	Bucket    string            `json:"bucket"`
	Key       string            `json:"key"`
	Meta      map[string]string `json:"meta,omitempty"`
	Tags      []tag             `json:"tags,omitempty"`
	Initiated time.Time         `json:"initiated"`
	Parts     map[int]partRec   `json:"parts,omitempty"`
}

// files manages the body files.
type files struct {
	bodies, tmp string
	mu          sync.RWMutex // readers: look up and open; writer: unlink
}

func newID() string {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	return hex.EncodeToString(raw[:])
}

// validID: ids come from the database, which the store alone writes; checked anyway so a
// damaged record can never name a file outside bodies/.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func (f *files) path(id string) string { return filepath.Join(f.bodies, id) }

// write receives exactly size bytes from r into a new body file and returns its id and MD5.
// The file is fsynced and in bodies/ when write returns; on any error nothing is left.
func (f *files) write(r io.Reader, size int64) (string, []byte, error) {
	tmp, err := os.CreateTemp(f.tmp, "body-*")
	if err != nil {
		return "", nil, storageErr(err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	sum, err := copyExactly(tmp, r, size)
	if err != nil {
		err = storageErr(err)
		if gofakes3.HasErrorCode(err, errStorageFull) {
			// Read the rest of the body, so that the client, still sending, gets the answer
			// rather than a connection closed under it.
			_, _ = io.Copy(io.Discard, io.LimitReader(r, size))
		}
		return "", nil, err
	}
	if err := tmp.Sync(); err != nil {
		return "", nil, storageErr(err)
	}
	if err := tmp.Close(); err != nil {
		return "", nil, storageErr(err)
	}
	id := newID()
	if err := os.Rename(tmp.Name(), f.path(id)); err != nil {
		return "", nil, storageErr(err)
	}
	ok = true
	if err := syncDir(f.bodies); err != nil {
		_ = os.Remove(f.path(id)) // not yet named by any record
		return "", nil, storageErr(err)
	}
	return id, sum, nil
}

// link gives the body of the record lookup returns a second name (for CopyObject), falling
// back to a copy. Like open, it holds the read lock, so the body cannot go meanwhile.
func (f *files) link(lookup func() (string, int64, error)) (string, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, size, err := lookup()
	if err != nil {
		return "", err
	}
	if !validID(id) {
		return "", fmt.Errorf("embedded: damaged record: body id %q", id)
	}
	nid := newID()
	if err := os.Link(f.path(id), f.path(nid)); err == nil {
		if err := syncDir(f.bodies); err != nil {
			_ = os.Remove(f.path(nid))
			return "", storageErr(err)
		}
		return nid, nil
	}
	src, err := os.Open(f.path(id))
	if err != nil {
		return "", err
	}
	defer src.Close()
	nid, _, err = f.write(src, size)
	return nid, err
}

// open opens the body of the record lookup returns, under the read lock, so that the body
// cannot be unlinked between the lookup and the open.
func (f *files) open(lookup func() (string, error)) (*os.File, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, err := lookup()
	if err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, fmt.Errorf("embedded: damaged record: body id %q", id)
	}
	return os.Open(f.path(id))
}

// remove unlinks bodies no record names any more.
func (f *files) remove(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if validID(id) {
			_ = os.Remove(f.path(id))
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// errStorageFull is what the store answers when the file system is full. S3 has no such
// code; this is MinIO's (507 Insufficient Storage), which S3-compatible clients know. The
// HTTP layer sets the 507 status (gofakes3 would answer 500 for a code it does not know).
const errStorageFull gofakes3.ErrorCode = "XMinioStorageFull"

const storageFullMsg = "The embedded store's file system is full; delete objects or give the data dir more space."

// storageErr turns "no space" (and "quota exceeded") into errStorageFull.
func storageErr(err error) error {
	if err != nil && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		return gofakes3.ErrorMessage(errStorageFull, storageFullMsg)
	}
	return err
}

// openDB opens meta.db and creates the root buckets.
func openDB(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("embedded: opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{rootMeta, rootBuckets, rootObjects, rootUploads} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		m := tx.Bucket(rootMeta)
		if v := m.Get(schemaKey); v != nil && string(v) != string(schemaVersion) {
			return fmt.Errorf("embedded: %s has schema %q, this version reads %q only", path, v, schemaVersion)
		}
		return m.Put(schemaKey, schemaVersion)
	})
	if err != nil {
		_ = db.Close()
		return nil, storageErr(err)
	}
	return db, nil
}

func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("embedded: damaged record: %w", err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// sweep removes what a crash can leave behind: body files no record names (written but never
// committed, or replaced but not yet unlinked). It runs at Start, before anything is served.
func sweep(db *bolt.DB, f *files) error {
	used := map[string]bool{}
	err := db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(rootObjects).ForEachBucket(func(name []byte) error {
			return tx.Bucket(rootObjects).Bucket(name).ForEach(func(_, v []byte) error {
				var o objectRec
				if err := json.Unmarshal(v, &o); err != nil {
					return fmt.Errorf("embedded: damaged object record in bucket %q: %w", name, err)
				}
				used[o.Body] = true
				return nil
			})
		})
		if err != nil {
			return err
		}
		return tx.Bucket(rootUploads).ForEach(func(_, v []byte) error {
			var u uploadRec
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("embedded: damaged upload record: %w", err)
			}
			for _, p := range u.Parts {
				used[p.Body] = true
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(f.bodies)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !used[e.Name()] && validID(e.Name()) {
			_ = os.Remove(f.path(e.Name()))
		}
	}
	return nil
}

func jsonInto(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("embedded: damaged record: %w", err)
	}
	return nil
}
