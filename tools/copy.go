package tools

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/format"
)

// metaCopy is a server-side copy of srcKey onto bucket/key that replaces the metadata: the
// stored bytes are the source's, as they are.
type metaCopy struct {
	bucket, key string
	srcKey      string // the source object (key itself for a rewrap)
	srcETag     string // the copy happens only while the source has this ETag
	dstETag     string // and (where the backend supports it) while the destination has this one
	size        int64  // stored size of the source
	kind        format.Kind
	version     int               // the envelope's format version (a format-3 multipart object ends with its tail)
	meta        map[string]string // the complete new user metadata
	hdr         objectHeaders
	threshold   int64 // sources larger than this are copied part by part
}

// run does the copy: one CopyObject up to the threshold, else a multipart upload whose parts
// are UploadPartCopy ranges of the source (the source's own parts for a multipart object, so
// that every part still starts with its part header).
func (c metaCopy) run(ctx context.Context, b Backend) error {
	threshold := c.threshold
	if threshold <= 0 || threshold > MaxCopySize {
		threshold = MaxCopySize
	}
	// A copy onto itself keeps the object's tags; a copy from another object or a new
	// multipart upload must be given them.
	tags := ""
	if c.hdr.tagCount > 0 && (c.srcKey != c.key || c.size > threshold) {
		var err error
		if tags, err = c.tagging(ctx, b); err != nil {
			return fmt.Errorf("reading the object's tags: %w", err)
		}
	}
	if c.size <= threshold {
		in := c.copyInput()
		if tags != "" {
			in.TaggingDirective = types.TaggingDirectiveReplace
			in.Tagging = aws.String(tags)
		}
		_, err := b.CopyObject(ctx, in)
		return err
	}
	ranges, err := c.partRanges(ctx, b)
	if err != nil {
		return err
	}
	return c.multipart(ctx, b, ranges, tags)
}

// tagging returns the tags of the object the copy replaces (bucket/key) in the form of the
// x-amz-tagging header.
func (c metaCopy) tagging(ctx context.Context, b Backend) (string, error) {
	out, err := b.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(c.bucket), Key: aws.String(c.key)})
	if err != nil {
		return "", err
	}
	parts := make([]string, 0, len(out.TagSet))
	for _, t := range out.TagSet {
		parts = append(parts, queryEscape(aws.ToString(t.Key))+"="+queryEscape(aws.ToString(t.Value)))
	}
	return strings.Join(parts, "&"), nil
}

// queryEscape is URL query escaping with %20 for spaces.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func (c metaCopy) copyInput() *s3.CopyObjectInput {
	h := c.hdr
	in := &s3.CopyObjectInput{
		Bucket:                    aws.String(c.bucket),
		Key:                       aws.String(c.key),
		CopySource:                copySource(c.bucket, c.srcKey),
		CopySourceIfMatch:         optional(c.srcETag),
		IfMatch:                   optional(c.dstETag),
		MetadataDirective:         types.MetadataDirectiveReplace,
		Metadata:                  c.meta,
		CacheControl:              optional(h.cacheControl),
		ContentDisposition:        optional(h.contentDisposition),
		ContentEncoding:           optional(h.contentEncoding),
		ContentLanguage:           optional(h.contentLanguage),
		ContentType:               optional(h.contentType),
		Expires:                   h.expires,
		WebsiteRedirectLocation:   optional(h.websiteRedirect),
		StorageClass:              types.StorageClass(h.storageClass),
		ServerSideEncryption:      types.ServerSideEncryption(h.sse),
		SSEKMSKeyId:               optional(h.sseKMSKeyID),
		BucketKeyEnabled:          h.bucketKey,
		ObjectLockMode:            types.ObjectLockMode(h.lockMode),
		ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatus(h.legalHold),
		ObjectLockRetainUntilDate: h.retainUntil,
	}
	return in
}

// byteRange is a range of stored bytes.
type byteRange struct{ off, n int64 }

// partRanges returns the part ranges of the copy: the backend's parts of a multipart object,
// or the part headers' boundaries when the backend keeps it as one part (after an earlier
// copy), or equal ranges for a single-part object.
func (c metaCopy) partRanges(ctx context.Context, b Backend) ([]byteRange, error) {
	if c.kind == format.KindSingle {
		return equalRanges(c.size), nil
	}
	h1, err := b.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(c.bucket), Key: aws.String(c.srcKey), PartNumber: aws.Int32(1), IfMatch: optional(c.srcETag),
	})
	if err != nil {
		return nil, err
	}
	n := int(aws.ToInt32(h1.PartsCount))
	if n <= 1 {
		return c.headerRanges(ctx, b)
	}
	ranges := []byteRange{{0, aws.ToInt64(h1.ContentLength)}}
	off := ranges[0].n
	for i := 2; i <= n; i++ {
		h, err := b.HeadObject(ctx, &s3.HeadObjectInput{
			Bucket: aws.String(c.bucket), Key: aws.String(c.srcKey), PartNumber: aws.Int32(int32(i)), IfMatch: optional(c.srcETag),
		})
		if err != nil {
			return nil, err
		}
		ranges = append(ranges, byteRange{off, aws.ToInt64(h.ContentLength)})
		off += aws.ToInt64(h.ContentLength)
	}
	if off != c.size {
		return nil, fmt.Errorf("the backend's %d parts add up to %d bytes, the object has %d", n, off, c.size)
	}
	return ranges, nil
}

// headerRanges finds the parts of a multipart object from its part headers (ranged GETs). A
// format-3 object's tail (FORMAT.md 3.6), found from the footer at its end, goes with its last
// part, as in the upload the gateway completed (every range but the last one stays a part of at
// least 5 MiB).
func (c metaCopy) headerRanges(ctx context.Context, b Backend) ([]byteRange, error) {
	var ranges []byteRange
	end, tail := c.size, int64(0)
	if c.version == format.Version3 {
		n := min(c.size, format.TailReadSize)
		last, err := c.readRange(ctx, b, c.size-n, n)
		if err != nil {
			return nil, err
		}
		if tail, err = format.TailLength(last, c.size); err != nil {
			return nil, err
		}
		end -= tail
	}
	for off := int64(0); off < end; {
		if len(ranges) == format.MaxPartNumber {
			return nil, fmt.Errorf("more than %d parts", format.MaxPartNumber)
		}
		hdr, err := c.readRange(ctx, b, off, format.PartHeaderSize)
		if err != nil {
			return nil, err
		}
		_, plain, err := format.ParsePartHeader(hdr)
		if err != nil {
			return nil, fmt.Errorf("part header at offset %d: %w", off, err)
		}
		n := format.PartEncryptedSize(plain)
		ranges = append(ranges, byteRange{off, n})
		off += n
	}
	if tail > 0 {
		if len(ranges) == 0 || ranges[len(ranges)-1].off+ranges[len(ranges)-1].n != end {
			return nil, fmt.Errorf("%w: the part headers do not end where the tail starts (byte %d)", format.ErrAuth, end)
		}
		ranges[len(ranges)-1].n += tail
	}
	return ranges, nil
}

// readRange reads n bytes of the source at off (at most n: fewer when the object is shorter).
func (c metaCopy) readRange(ctx context.Context, b Backend, off, n int64) ([]byte, error) {
	out, err := b.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(c.bucket), Key: aws.String(c.srcKey), IfMatch: optional(c.srcETag),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
	})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(io.LimitReader(out.Body, n))
}

// equalRanges cuts size bytes into at most 10,000 ranges of at least 512 MiB (but at most 5 GiB).
func equalRanges(size int64) []byteRange {
	part := max(int64(512<<20), (size+format.MaxPartNumber-1)/format.MaxPartNumber)
	part = min(part, MaxCopySize)
	var out []byteRange
	for off := int64(0); off < size; off += part {
		out = append(out, byteRange{off, min(part, size-off)})
	}
	return out
}

// multipart copies the ranges as the parts of a new upload onto bucket/key.
func (c metaCopy) multipart(ctx context.Context, b Backend, ranges []byteRange, tags string) (err error) {
	in := c.copyInput()
	up, err := b.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: in.Bucket, Key: in.Key, Metadata: in.Metadata,
		CacheControl: in.CacheControl, ContentDisposition: in.ContentDisposition,
		ContentEncoding: in.ContentEncoding, ContentLanguage: in.ContentLanguage,
		ContentType: in.ContentType, Expires: in.Expires,
		WebsiteRedirectLocation: in.WebsiteRedirectLocation, StorageClass: in.StorageClass,
		ServerSideEncryption: in.ServerSideEncryption, SSEKMSKeyId: in.SSEKMSKeyId,
		BucketKeyEnabled: in.BucketKeyEnabled, ObjectLockMode: in.ObjectLockMode,
		ObjectLockLegalHoldStatus: in.ObjectLockLegalHoldStatus,
		ObjectLockRetainUntilDate: in.ObjectLockRetainUntilDate,
		Tagging:                   optional(tags),
	})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_, _ = b.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{
				Bucket: in.Bucket, Key: in.Key, UploadId: up.UploadId,
			})
		}
	}()
	parts := make([]types.CompletedPart, 0, len(ranges))
	for i, r := range ranges {
		n := aws.Int32(int32(i + 1))
		out, err := b.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: in.Bucket, Key: in.Key, UploadId: up.UploadId, PartNumber: n,
			CopySource: in.CopySource, CopySourceIfMatch: in.CopySourceIfMatch,
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", r.off, r.off+r.n-1)),
		})
		if err != nil {
			return err
		}
		if out.CopyPartResult == nil {
			return fmt.Errorf("UploadPartCopy of part %d: no result", i+1)
		}
		parts = append(parts, types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: n})
	}
	_, err = b.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: in.Bucket, Key: in.Key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		IfMatch:         optional(c.dstETag),
	})
	return err
}
