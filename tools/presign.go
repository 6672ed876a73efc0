package tools

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/s3seal/s3seal/internal/s3path"
)

// MaxPresignExpiry is SigV4's limit for a presigned URL: 7 days.
const MaxPresignExpiry = 7 * 24 * time.Hour

// unsignedPayload is the payload hash of a presigned URL: the body is not signed.
const unsignedPayload = "UNSIGNED-PAYLOAD"

// PresignOptions describe a presigned URL for the gateway.
type PresignOptions struct {
	Method      string        // GET or PUT
	Endpoint    string        // the gateway's base URL, e.g. http://127.0.0.1:8080
	Bucket, Key string        // the object
	Region      string        // the region clients sign for (the gateway's region)
	AccessKeyID string        // a client credential of the gateway
	Secret      string        // its secret access key
	Expires     time.Duration // 1 s to 7 days, whole seconds
	Now         time.Time     // signing time; zero = now
}

// Presign returns a SigV4 query-authenticated URL (path-style, UNSIGNED-PAYLOAD, only the Host
// header signed), the same kind `aws s3 presign` makes, signed by aws-sdk-go-v2's signer.
func Presign(ctx context.Context, o PresignOptions) (string, error) {
	switch o.Method {
	case http.MethodGet, http.MethodPut:
	default:
		return "", fmt.Errorf("method %q: want GET or PUT", o.Method)
	}
	if o.Expires < time.Second || o.Expires > MaxPresignExpiry || o.Expires%time.Second != 0 {
		return "", fmt.Errorf("expiry %v: want whole seconds from 1s to %v", o.Expires, MaxPresignExpiry)
	}
	if o.Key == "" || !validBucket(o.Bucket) {
		return "", errors.New("need a bucket and an object key")
	}
	if o.AccessKeyID == "" || o.Secret == "" {
		return "", errors.New("no client credential")
	}
	base, err := url.Parse(o.Endpoint)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" ||
		base.RawQuery != "" || base.Fragment != "" || base.User != nil {
		return "", fmt.Errorf("endpoint %q: want http(s)://host[:port][/path]", o.Endpoint)
	}
	raw := strings.TrimSuffix(base.Scheme+"://"+base.Host+base.EscapedPath(), "/") +
		"/" + o.Bucket + "/" + s3path.Escape(o.Key) + "?X-Amz-Expires=" + strconv.FormatInt(int64(o.Expires/time.Second), 10)
	req, err := http.NewRequestWithContext(ctx, o.Method, raw, nil)
	if err != nil {
		return "", err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	signer := v4.NewSigner(func(s *v4.SignerOptions) { s.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: o.AccessKeyID, SecretAccessKey: o.Secret}
	signed, _, err := signer.PresignHTTP(ctx, creds, req, unsignedPayload, "s3", o.Region, now.UTC())
	if err != nil {
		return "", err
	}
	return signed, nil
}
