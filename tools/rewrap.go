package tools

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/format"
)

// RewrapOptions configure Rewrap.
type RewrapOptions struct {
	RunOptions
	// From unwraps the data keys named in the existing envelopes.
	From KeySource
	// To makes the new data keys (may be the same provider as From).
	To KeySource
	// ToKey is the target key: KMS key id, ARN or alias, or a local key name. Required.
	ToKey string
	// FromKey, when set, limits the run to objects whose envelope names this key id (a key
	// version to be retired); other objects are counted as skipped.
	FromKey string
	// CopyThreshold: objects with more stored bytes are copied part by part (UploadPartCopy);
	// default and maximum MaxCopySize, S3's CopyObject limit.
	CopyThreshold int64
}

// rewrapLabels are the summary words of a rewrap.
func rewrapLabels() [numOutcomes]string {
	return [numOutcomes]string{
		Done: "rewrapped", Skipped: "skipped", NotEncrypted: "not-encrypted", CustomerKey: "customer-key", Failed: "failed",
	}
}

// Rewrap puts every object under o.Prefix whose envelope is not yet under o.ToKey under a new
// data key of o.ToKey: it opens the envelope with the key named in it, seals a new one around
// the same object key for the same name, and replaces the object's metadata with a
// server-side copy of the object onto itself, conditional on the ETag it read. Object data is
// never re-encrypted or downloaded. Objects already under the target key are counted as
// skipped, so an interrupted run is simply run again.
func Rewrap(ctx context.Context, b Backend, o RewrapOptions) (Summary, error) {
	labels := rewrapLabels()
	if o.DryRun {
		labels[Done] = "would-rewrap"
	}
	t := newTally(labels)
	if o.ToKey == "" {
		return t.summary(""), errors.New("rewrap: no target key")
	}
	if o.From == nil || o.To == nil {
		return t.summary(""), errors.New("rewrap: no key provider")
	}
	r := &rewrapper{b: b, o: o, ring: newKeyring(o.From, o.To), lim: &limiter{max: o.Limit}}
	defer r.ring.close()
	// Resolve the target key as the provider names it in envelopes (a KMS alias or key id
	// becomes the key ARN), and check that it is usable before touching anything.
	probe, err := r.ring.seal.EncryptKey(ctx, o.ToKey, format.EncryptionContext(o.Bucket), 0)
	if err != nil {
		return t.summary(""), fmt.Errorf("rewrap: target key %q: %w", o.ToKey, err)
	}
	r.target = probe.KeyID
	probe.Zero()
	stop, err := walk(ctx, b, o.RunOptions, "rewrap", t, r.lim, nil, r.one)
	return t.summary(stop), err
}

type rewrapper struct {
	b      Backend
	o      RewrapOptions
	ring   *keyring
	lim    *limiter
	target string // o.ToKey as the provider reports it
}

// isTarget reports whether keyID is the target key as the provider names it in envelopes
// (ToKey itself may be an alias, or a key name whose newest version is another id).
func (r *rewrapper) isTarget(keyID string) bool {
	return format.SameKeyID(keyID, r.target)
}

// one rewraps one object.
func (r *rewrapper) one(ctx context.Context, it item) (Outcome, error) {
	bucket := r.o.Bucket
	head, err := r.b.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(it.key)})
	if isNotFound(err) {
		return Skipped, nil // deleted since it was listed
	}
	if err != nil {
		return Failed, err
	}
	value := envelopeOf(head.Metadata)
	if value == "" {
		return NotEncrypted, nil
	}
	env, err := format.DecodeEnvelope(value)
	if err != nil {
		return Failed, fmt.Errorf("envelope: %w", err)
	}
	if env.Wrap == format.WrapCustomerKey {
		return CustomerKey, nil
	}
	if r.isTarget(env.KeyID) || (r.o.FromKey != "" && !format.SameKeyID(env.KeyID, r.o.FromKey)) {
		return Skipped, nil
	}
	if !r.lim.claim() {
		return Failed, errLimit
	}
	extra, err := storedContext(head.Metadata)
	if err != nil {
		return Failed, err
	}
	okey, err := r.ring.openEnvelope(ctx, env, bucket, it.key, extra)
	if err != nil {
		return Failed, err
	}
	defer okey.Zero()
	if r.o.DryRun {
		return Done, nil
	}
	s, err := r.ring.sealFor(ctx, okey, env.Kind, r.o.ToKey, bucket, extra, 0, it.key)
	if err != nil {
		return Failed, err
	}
	etag := aws.ToString(head.ETag)
	c := metaCopy{
		bucket: bucket, key: it.key, srcKey: it.key, srcETag: etag, dstETag: etag,
		size: aws.ToInt64(head.ContentLength), kind: env.Kind, version: env.Version(),
		meta: replaceEnvelope(head.Metadata, s[0].env), hdr: headersOf(head), threshold: r.o.CopyThreshold,
	}
	if err := c.run(ctx, r.b); err != nil {
		if isPrecondition(err) {
			return Failed, errPrecondition
		}
		return Failed, fmt.Errorf("copy onto itself: %w", err)
	}
	after, err := r.b.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(it.key)})
	if err != nil {
		return Failed, fmt.Errorf("checking the new envelope: %w", err)
	}
	if envelopeOf(after.Metadata) != s[0].env {
		return Failed, errors.New("the backend did not keep the new envelope (changed concurrently?)")
	}
	if aws.ToInt64(after.ContentLength) != c.size {
		return Failed, fmt.Errorf("stored size changed from %d to %d bytes", c.size, aws.ToInt64(after.ContentLength))
	}
	return Done, nil
}
