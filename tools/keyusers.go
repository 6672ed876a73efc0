package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/s3seal/s3seal/format"
)

// VersionBackend is what FindKeyUsers needs of the backend: every version of every object, and
// the multipart uploads in progress.
type VersionBackend interface {
	ListBuckets(ctx context.Context, in *s3.ListBucketsInput, optFns ...func(*s3.Options)) (*s3.ListBucketsOutput, error)
	ListObjectVersions(ctx context.Context, in *s3.ListObjectVersionsInput, optFns ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error)
	ListMultipartUploads(ctx context.Context, in *s3.ListMultipartUploadsInput, optFns ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// KeyUsersOptions configure FindKeyUsers.
type KeyUsersOptions struct {
	// Buckets to scan; empty = every bucket of the backend.
	Buckets []string
	// KeyIDs are the ids under which envelopes may record the key version looked for (with
	// keys.providers, the routed id and, for the default provider, the bare one).
	KeyIDs []string
	// Max is how many users are named in the result (all are counted); default 20.
	Max int
	// Concurrency of the HEAD requests; default 8.
	Concurrency int
}

// KeyUsers is what FindKeyUsers found.
type KeyUsers struct {
	// Objects names up to Max object versions whose envelope names the key
	// ("bucket/key" or "bucket/key?versionId=v").
	Objects []string
	// Count is the number of such object versions.
	Count int64
	// Uploads names up to Max multipart uploads in progress ("bucket/key uploadId=..."): their
	// envelopes are not visible in a listing, so each one may need the key.
	Uploads []string
	// UploadCount is the number of uploads in progress.
	UploadCount int64
	// Scanned is the number of object versions read.
	Scanned int64
}

// FindKeyUsers reads the envelope of every version of every object (HEAD of each version;
// delete markers are skipped) in the buckets and reports those under o.KeyIDs, and every
// multipart upload in progress. It is what `gateway keys retire` checks before a key version
// is destroyed: an object still under it would be lost.
func FindKeyUsers(ctx context.Context, b VersionBackend, o KeyUsersOptions) (KeyUsers, error) {
	if len(o.KeyIDs) == 0 {
		return KeyUsers{}, errors.New("no key id")
	}
	if o.Max <= 0 {
		o.Max = 20
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	buckets := o.Buckets
	if len(buckets) == 0 {
		out, err := b.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			return KeyUsers{}, fmt.Errorf("listing buckets: %w", err)
		}
		for _, bk := range out.Buckets {
			buckets = append(buckets, aws.ToString(bk.Name))
		}
	}
	var (
		mu sync.Mutex
		u  KeyUsers
	)
	found := func(name string) {
		mu.Lock()
		defer mu.Unlock()
		u.Count++
		if len(u.Objects) < o.Max {
			u.Objects = append(u.Objects, name)
		}
	}
	for _, bucket := range buckets {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(o.Concurrency)
		in := &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)}
		for {
			page, err := b.ListObjectVersions(ctx, in)
			if err != nil {
				_ = g.Wait()
				return u, fmt.Errorf("listing versions of %s: %w", bucket, err)
			}
			for _, v := range page.Versions {
				key, version := aws.ToString(v.Key), aws.ToString(v.VersionId)
				if format.IsReserved(key) {
					continue // the gateway's upload records (FORMAT.md 3.5.3): no envelope
				}
				u.Scanned++
				g.Go(func() error {
					head := &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
					name := bucket + "/" + key
					if version != "" {
						head.VersionId = aws.String(version)
						name += "?versionId=" + version
					}
					out, err := b.HeadObject(gctx, head)
					if isNotFound(err) {
						return nil // deleted since it was listed
					}
					if err != nil {
						return fmt.Errorf("%s: %w", name, err)
					}
					value := envelopeOf(out.Metadata)
					if value == "" {
						return nil
					}
					env, err := format.DecodeEnvelope(value)
					if err != nil {
						return fmt.Errorf("%s: envelope: %w", name, err)
					}
					if env.Wrap == format.WrapProvider && slices.ContainsFunc(o.KeyIDs, func(id string) bool { return format.SameKeyID(env.KeyID, id) }) {
						found(name)
					}
					return nil
				})
			}
			if !aws.ToBool(page.IsTruncated) {
				break
			}
			in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
		}
		if err := g.Wait(); err != nil {
			return u, err
		}
		if err := listUploads(ctx, b, bucket, o.Max, &u); err != nil {
			return u, err
		}
	}
	return u, nil
}

func listUploads(ctx context.Context, b VersionBackend, bucket string, max int, u *KeyUsers) error {
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)}
	for {
		page, err := b.ListMultipartUploads(ctx, in)
		if err != nil {
			return fmt.Errorf("listing multipart uploads of %s: %w", bucket, err)
		}
		for _, up := range page.Uploads {
			u.UploadCount++
			if len(u.Uploads) < max {
				u.Uploads = append(u.Uploads, bucket+"/"+aws.ToString(up.Key)+" uploadId="+aws.ToString(up.UploadId))
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}
