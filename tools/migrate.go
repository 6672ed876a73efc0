package tools

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/format"
)

// MigrateOptions configure Migrate.
type MigrateOptions struct {
	RunOptions
	// Keys makes the data keys of the encrypted objects and unwraps them again to verify.
	Keys KeySource
	// KeyID is the key new objects are encrypted under ("" = the provider's default key).
	KeyID string
	// ComputeMD5 seals the plaintext MD5 into the object (configuration encryption.etag:
	// plaintext), so clients see the same ETag as before for single-part objects.
	ComputeMD5 bool
}

// TempMarker is in the name of the temporary objects of a migration: "<key>.s3seal-migrate-"
// followed by 16 hex digits. Such objects are never migrated themselves.
const TempMarker = ".s3seal-migrate-"

// maxKeyLen is S3's object key limit in bytes.
const maxKeyLen = 1024

func migrateLabels() [numOutcomes]string {
	return [numOutcomes]string{
		Done: "migrated", Skipped: "already-encrypted", Foreign: "client-encrypted", TooLarge: "too-large", Failed: "failed",
	}
}

// isTemp reports a migration's temporary object name.
func isTemp(key string) bool {
	i := strings.LastIndex(key, TempMarker)
	if i < 0 || len(key)-i-len(TempMarker) != 16 {
		return false
	}
	_, err := hex.DecodeString(key[i+len(TempMarker):])
	return err == nil
}

// Migrate encrypts the objects under o.Prefix that have no envelope, in place. For each one it
// streams the plaintext from the backend through the encryption into a temporary object next
// to it, reads that back through the decryption and compares its SHA-256 with the source's,
// checks that the original is still the version it read, copies the temporary object onto the
// original (server-side, with the original's user metadata and content headers and an envelope
// for the original name, on the condition that the original's ETag is unchanged), verifies the
// result the same way, and only then deletes the temporary object. On any failure the original
// is left as it was (or, if only the final verification fails, the verified temporary copy is
// kept and named in the error). Objects written by the AWS S3 Encryption Client and objects
// whose encrypted form would exceed the 5 GiB copy limit are left alone and counted.
func Migrate(ctx context.Context, b Backend, o MigrateOptions) (Summary, []string, error) {
	labels := migrateLabels()
	if o.DryRun {
		labels[Done] = "would-migrate"
	}
	t := newTally(labels)
	if o.Keys == nil {
		return t.summary(""), nil, errors.New("migrate: no key provider")
	}
	m := &migrator{b: b, o: o, ring: newKeyring(o.Keys, o.Keys), lim: &limiter{max: o.Limit}}
	defer m.ring.close()
	stop, err := walk(ctx, b, o.RunOptions, "migrate", t, m.lim, m.skip, m.one)
	return t.summary(stop), m.leftovers, err
}

type migrator struct {
	b    Backend
	o    MigrateOptions
	ring *keyring
	lim  *limiter

	mu        sync.Mutex
	leftovers []string // temporary objects of an earlier, interrupted run
}

// skip excludes (and remembers) temporary objects.
func (m *migrator) skip(key string) bool {
	if !isTemp(key) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leftovers = append(m.leftovers, key)
	return true
}

// errTooLarge describes an object above the copy limit.
type errTooLarge struct{ size int64 }

func (e errTooLarge) Error() string {
	return fmt.Sprintf("%d bytes: encrypted it would exceed the %d-byte copy limit; not migrated (copy it through the gateway instead)", e.size, int64(MaxCopySize))
}

// one migrates one object.
func (m *migrator) one(ctx context.Context, it item) (Outcome, error) {
	bucket := m.o.Bucket
	head, err := m.b.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(it.key)})
	if isNotFound(err) {
		return Skipped, nil
	}
	if err != nil {
		return Failed, err
	}
	if envelopeOf(head.Metadata) != "" {
		return Skipped, nil
	}
	if clientEncrypted(head.Metadata) {
		return Foreign, nil
	}
	size := aws.ToInt64(head.ContentLength)
	if es := format.EncryptedSize(size); es < 0 || es > MaxCopySize {
		return TooLarge, errTooLarge{size}
	}
	if len(it.key)+len(TempMarker)+16 > maxKeyLen {
		return Failed, fmt.Errorf("key too long for a temporary name next to it (%d bytes)", len(it.key))
	}
	if !m.lim.claim() {
		return Failed, errLimit
	}
	if m.o.DryRun {
		return Done, nil
	}
	if err := m.migrate(ctx, it.key, head); err != nil {
		return Failed, err
	}
	return Done, nil
}

// migrate runs the copy-verify-replace-verify-delete sequence for one object.
func (m *migrator) migrate(ctx context.Context, key string, head *s3.HeadObjectOutput) (err error) {
	bucket := m.o.Bucket
	size, etag := aws.ToInt64(head.ContentLength), aws.ToString(head.ETag)
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	tmp := key + TempMarker + hex.EncodeToString(suffix[:])
	okey, err := format.NewObjectKey()
	if err != nil {
		return err
	}
	defer okey.Zero()
	envs, err := m.ring.sealFor(ctx, okey, format.KindSingle, m.o.KeyID, bucket, nil, size, tmp, key)
	if err != nil {
		return err
	}

	// 1. Stream the plaintext into the encrypted temporary object.
	tmpETag, sum, err := m.upload(ctx, key, etag, tmp, envs[0].env, okey, size)
	keepTmp := false
	defer func() {
		if !keepTmp {
			_, _ = m.b.DeleteObject(context.WithoutCancel(ctx), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(tmp)})
		}
	}()
	if err != nil {
		return err
	}
	// 2. Read it back.
	if err := m.verify(ctx, tmp, envs[0].env, size, sum); err != nil {
		return fmt.Errorf("the encrypted copy did not verify, original left unchanged: %w", err)
	}
	// 3. The original must still be what was read.
	now, err := m.b.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	if aws.ToString(now.ETag) != etag || envelopeOf(now.Metadata) != "" {
		return errPrecondition
	}
	// 4. Replace it with the encrypted copy (server-side), under an envelope for its own name.
	c := metaCopy{
		bucket: bucket, key: key, srcKey: tmp, srcETag: tmpETag, dstETag: etag,
		size: format.EncryptedSize(size), kind: format.KindSingle,
		meta: withEnvelope(head.Metadata, envs[1].env), hdr: headersOf(head),
	}
	if err := c.run(ctx, m.b); err != nil {
		if isPrecondition(err) {
			return errPrecondition
		}
		return fmt.Errorf("replacing the original with its encrypted copy: %w", err)
	}
	// 5. Verify the result before the temporary copy goes.
	if err := m.verify(ctx, key, envs[1].env, size, sum); err != nil {
		keepTmp = true
		return fmt.Errorf("replaced, but the result does not verify (%w); the verified encrypted copy is kept as %q (envelope bound to that name)", err, tmp)
	}
	return nil
}

// upload streams bucket/key (while its ETag is etag) through the encryption into tmp and
// returns tmp's ETag and the SHA-256 of the plaintext read.
func (m *migrator) upload(ctx context.Context, key, etag, tmp, env string, okey *format.ObjectKey, size int64) (string, []byte, error) {
	bucket := m.o.Bucket
	get, err := m.b.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), IfMatch: optional(etag)})
	if err != nil {
		if isPrecondition(err) {
			return "", nil, errPrecondition
		}
		return "", nil, fmt.Errorf("reading the original: %w", err)
	}
	defer get.Body.Close()
	if n := aws.ToInt64(get.ContentLength); n != size {
		return "", nil, fmt.Errorf("the original has %d bytes, %d were expected: %w", n, size, errPrecondition)
	}
	h := sha256.New()
	// No additional checksum (EncryptOptions.Checksum): the stored size is EncryptedSize(size),
	// as the size checks and the copy assume, and the object has no x-amz-meta-s3seal-ck.
	enc, err := format.NewEncryptReader(io.TeeReader(get.Body, h), okey, size, format.EncryptOptions{ComputeMD5: m.o.ComputeMD5})
	if err != nil {
		return "", nil, err
	}
	put, err := m.b.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(tmp), Body: enc, ContentLength: aws.Int64(enc.Size()),
		Metadata: map[string]string{metaEnvelope: env},
	}, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	if err != nil {
		return "", nil, fmt.Errorf("writing the encrypted copy: %w", err)
	}
	if enc.MD5() == nil && m.o.ComputeMD5 {
		return "", nil, errors.New("the encrypted copy was not written completely")
	}
	return aws.ToString(put.ETag), h.Sum(nil), nil
}

// verify reads bucket/key, checks that it carries env and the encrypted size of size bytes,
// opens env through the key provider and checks that the decrypted data has SHA-256 sum.
func (m *migrator) verify(ctx context.Context, key, env string, size int64, sum []byte) error {
	bucket := m.o.Bucket
	get, err := m.b.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	defer get.Body.Close()
	if envelopeOf(get.Metadata) != env {
		return errors.New("it does not carry the envelope just written")
	}
	// Read as any single-part object is, with the checksum algorithm of its metadata (in its
	// stream key; FORMAT.md 3.3). Migrate writes none, and drops a stray one of the original
	// with the other reserved names (withEnvelope), so this is ChecksumNone unless the object
	// changed, and then the size check or the decryption fails.
	ck, err := format.ParseChecksumMeta(metaValue(get.Metadata, metaChecksum))
	if err != nil {
		return err
	}
	if n, want := aws.ToInt64(get.ContentLength), format.EncryptedSizeOf(size, ck); n != want {
		return fmt.Errorf("it has %d stored bytes, %d expected", n, want)
	}
	e, err := format.DecodeEnvelope(env)
	if err != nil {
		return err
	}
	okey, err := m.ring.openEnvelope(ctx, e, bucket, key, nil)
	if err != nil {
		return err
	}
	defer okey.Zero()
	st, err := okey.SingleStreamOf(size, ck)
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, st.DecryptAll(get.Body)); err != nil {
		return err
	}
	if !sameSum(h, sum) {
		return errors.New("its decrypted content differs from the original")
	}
	return nil
}

func sameSum(h hash.Hash, sum []byte) bool {
	return subtle.ConstantTimeCompare(h.Sum(nil), sum) == 1
}
