package tools

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/s3path"
)

// Backend is the part of the S3 API the tools use. *s3.Client implements it.
type Backend interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPartCopy(ctx context.Context, in *s3.UploadPartCopyInput, optFns ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	GetObjectTagging(ctx context.Context, in *s3.GetObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error)
}

// KeySource is a key provider: keys.KMS and keys.LocalFile implement it (and cache.Source is
// the same method set). Providers that also implement cache.KeyIDSource report the key a data
// key was made under (a KMS key ARN for an alias), which is what envelopes record.
type KeySource interface {
	GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (plaintext, wrapped []byte, err error)
	Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error)
}

// MaxCopySize is S3's limit for one CopyObject and one UploadPartCopy: 5 GiB.
const MaxCopySize = 5 << 30

// The gateway's metadata names (format's) as the SDK's metadata maps name them: lower case,
// without the x-amz-meta- prefix.
var (
	metaEnvelope = sdkMetaName(format.MetaEnvelope)
	metaReserved = sdkMetaName(format.MetaPrefix)
	metaContext  = sdkMetaName(format.MetaContext)
	metaManifest = sdkMetaName(format.MetaManifest)
	metaChecksum = sdkMetaName(format.MetaChecksum)
)

// sdkMetaName is a canonical x-amz-meta-* header name as an SDK metadata map key.
func sdkMetaName(header string) string {
	return strings.ToLower(strings.TrimPrefix(header, "X-Amz-Meta-"))
}

// ParseS3URI splits "s3://bucket/key" into bucket and key (the key may be empty, or a prefix).
func ParseS3URI(s string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3://bucket/key URI", s)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q names no bucket", s)
	}
	if !validBucket(bucket) {
		return "", "", fmt.Errorf("%q: invalid bucket name %q", s, bucket)
	}
	return bucket, key, nil
}

// validBucket accepts the characters S3 bucket names may contain (3-63 of a-z, 0-9, '.', '-',
// and '_' for legacy buckets and S3-compatible servers).
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// copySource is the x-amz-copy-source value for bucket/key.
func copySource(bucket, key string) *string {
	return aws.String(bucket + "/" + s3path.Escape(key))
}

// envelopeOf returns the envelope metadata value of a HEAD or GET answer ("" if none).
func envelopeOf(meta map[string]string) string { return metaValue(meta, metaEnvelope) }

// clientEncrypted reports metadata of an object that the AWS S3 Encryption Client wrote.
func clientEncrypted(meta map[string]string) bool {
	for k := range meta {
		switch strings.ToLower(k) {
		case "x-amz-key", "x-amz-key-v2", "x-amz-cek-alg", "x-amz-wrap-alg":
			return true
		}
	}
	return false
}

// replaceEnvelope returns meta with the envelope env in place of the old one; the gateway's
// other metadata (SSE mode, client encryption context, part manifest, checksum algorithm)
// stays. The checksum algorithm must: it is in the stream key of the bytes the copy keeps
// (FORMAT.md 3.3), so an object that lost it would no longer decrypt.
func replaceEnvelope(meta map[string]string, env string) map[string]string {
	out := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		if !strings.EqualFold(k, metaEnvelope) {
			out[k] = v
		}
	}
	out[metaEnvelope] = env
	return out
}

// withEnvelope returns meta without any reserved s3seal name, plus the envelope env.
func withEnvelope(meta map[string]string, env string) map[string]string {
	out := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		if !strings.HasPrefix(strings.ToLower(k), metaReserved) {
			out[k] = v
		}
	}
	out[metaEnvelope] = env
	return out
}

// objectHeaders are the descriptive headers of a stored object that a metadata-replacing copy
// must carry over (S3 resets them otherwise).
type objectHeaders struct {
	cacheControl, contentDisposition, contentEncoding, contentLanguage, contentType string
	expires                                                                         *time.Time
	websiteRedirect, storageClass, sse, sseKMSKeyID                                 string
	bucketKey                                                                       *bool
	lockMode, legalHold                                                             string
	retainUntil                                                                     *time.Time
	tagCount                                                                        int32
}

func headersOf(h *s3.HeadObjectOutput) objectHeaders {
	o := objectHeaders{
		cacheControl:       aws.ToString(h.CacheControl),
		contentDisposition: aws.ToString(h.ContentDisposition),
		contentEncoding:    aws.ToString(h.ContentEncoding),
		contentLanguage:    aws.ToString(h.ContentLanguage),
		contentType:        aws.ToString(h.ContentType),
		websiteRedirect:    aws.ToString(h.WebsiteRedirectLocation),
		storageClass:       string(h.StorageClass),
		sse:                string(h.ServerSideEncryption),
		sseKMSKeyID:        aws.ToString(h.SSEKMSKeyId),
		bucketKey:          h.BucketKeyEnabled,
		lockMode:           string(h.ObjectLockMode),
		legalHold:          string(h.ObjectLockLegalHoldStatus),
		retainUntil:        h.ObjectLockRetainUntilDate,
		tagCount:           aws.ToInt32(h.TagCount),
	}
	if s := aws.ToString(h.ExpiresString); s != "" {
		if t, err := http.ParseTime(s); err == nil {
			o.expires = &t
		}
	}
	return o
}

// optional turns "" into nil.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// errPrecondition reports an object that changed while a tool was working on it.
var errPrecondition = errors.New("the object changed while it was being processed (rerun to pick it up)")

// isPrecondition reports a 412 from the backend.
func isPrecondition(err error) bool {
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed
}

// isNotFound reports a 404 from the backend.
func isNotFound(err error) bool {
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}
