package keys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// KMS defaults.
const (
	DefaultKMSRegion      = "us-east-1"
	DefaultKMSTimeout     = 5 * time.Second
	DefaultKMSMaxAttempts = 4
	// kmsMaxBackoff caps the SDK's exponential backoff between attempts, so that the retries fit
	// in the per-call timeout instead of sleeping past it (the SDK default cap is 20s).
	kmsMaxBackoff = 2 * time.Second
)

// KMSConfig configures a KMS provider. The zero value talks to AWS KMS in the region of the
// default configuration chain (or us-east-1) with the default credential chain.
type KMSConfig struct {
	// Endpoint is the KMS endpoint URL; "" means AWS KMS. Set it for emulators (moto_server,
	// local-kms) and private endpoints.
	Endpoint string
	// Region; "" means the region of the AWS default configuration chain, else us-east-1.
	Region string
	// Static credentials. When AccessKeyID is "", the AWS default credential chain is used
	// (environment, shared files, web identity, container and instance roles).
	AccessKeyID, SecretAccessKey, SessionToken string
	// KeyID is the default key (key id, key ARN, alias name or alias ARN) for GenerateDataKey.
	// It may be empty for a gateway that only reads.
	KeyID string
	// Timeout bounds each provider call including its retries; default 5s.
	Timeout time.Duration
	// MaxAttempts is the number of attempts per call (the SDK standard retryer, exponential
	// backoff with jitter); default 4.
	MaxAttempts int
	// CABundle is an optional PEM file of CA certificates for a private endpoint.
	CABundle string
}

// KMS is a key provider backed by AWS KMS (or a server that speaks its API). It is safe for
// concurrent use.
type KMS struct {
	client     *kms.Client
	defaultKey string
	timeout    time.Duration
}

// NewKMS builds a KMS provider. It does not contact KMS (so a gateway can start while KMS is
// unreachable); use Ping for that.
func NewKMS(ctx context.Context, c KMSConfig) (*KMS, error) {
	if c.Timeout < 0 || c.MaxAttempts < 0 {
		return nil, errors.New("keys: kms timeout and max attempts must not be negative")
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultKMSTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultKMSMaxAttempts
	}
	maxAttempts := c.MaxAttempts
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.MaxBackoff = kmsMaxBackoff
				o.Backoff = retry.NewExponentialJitterBackoff(kmsMaxBackoff)
			})
		}),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	switch {
	case c.AccessKeyID != "" && c.SecretAccessKey != "":
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	case c.AccessKeyID != "" || c.SecretAccessKey != "":
		return nil, errors.New("keys: kms access key id and secret access key must be set together")
	}
	if c.CABundle != "" {
		pem, err := os.ReadFile(c.CABundle)
		if err != nil {
			return nil, fmt.Errorf("keys: kms CA bundle: %w", err)
		}
		opts = append(opts, config.WithCustomCABundle(bytes.NewReader(pem)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("keys: kms configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultKMSRegion
	}
	client := kms.NewFromConfig(cfg, func(o *kms.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	})
	return &KMS{client: client, defaultKey: c.KeyID, timeout: c.Timeout}, nil
}

// DefaultKeyID returns the configured default key, as configured (possibly an alias).
func (k *KMS) DefaultKeyID() string { return k.defaultKey }

// GenerateDataKey returns a new 32-byte data key and its wrapped form (the KMS CiphertextBlob),
// bound to encCtx. keyID "" means the default key.
func (k *KMS) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (plaintext, wrapped []byte, err error) {
	_, plaintext, wrapped, err = k.GenerateDataKeyID(ctx, keyID, encCtx)
	return plaintext, wrapped, err
}

// GenerateDataKeyID is GenerateDataKey that also returns the ARN of the key KMS actually used.
// Record that ARN (not an alias) with the wrapped key: Decrypt with an alias fails once the
// alias is pointed at another key.
func (k *KMS) GenerateDataKeyID(ctx context.Context, keyID string, encCtx map[string]string) (usedKeyID string, plaintext, wrapped []byte, err error) {
	if keyID == "" {
		keyID = k.defaultKey
	}
	if keyID == "" {
		return "", nil, nil, fmt.Errorf("keys: kms GenerateDataKey: no key id and no default key configured: %w", ErrKeyNotFound)
	}
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	out, err := k.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(keyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: encCtx,
	})
	if err != nil {
		return "", nil, nil, kmsError("GenerateDataKey", keyID, err)
	}
	if len(out.Plaintext) != DataKeySize || len(out.CiphertextBlob) == 0 {
		clear(out.Plaintext)
		return "", nil, nil, fmt.Errorf("keys: kms GenerateDataKey key %q: unexpected response (%d-byte key, %d-byte blob)",
			keyID, len(out.Plaintext), len(out.CiphertextBlob))
	}
	used := aws.ToString(out.KeyId)
	if used == "" {
		used = keyID
	}
	return used, out.Plaintext, out.CiphertextBlob, nil
}

// Decrypt unwraps a data key. KeyId is always sent, so KMS refuses a blob made under any other
// key than keyID (the key recorded in the object).
func (k *KMS) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	if len(wrapped) == 0 {
		return nil, fmt.Errorf("keys: kms Decrypt key %q: empty ciphertext: %w", keyID, ErrInvalidCiphertext)
	}
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	in := &kms.DecryptInput{CiphertextBlob: wrapped, EncryptionContext: encCtx}
	if keyID != "" {
		// The gateway's own envelopes name their key: KMS then refuses a blob of another key.
		// Objects of other writers (the S3 Encryption Client) do not, and pass "": the
		// symmetric blob names its key itself.
		in.KeyId = aws.String(keyID)
	}
	out, err := k.client.Decrypt(ctx, in)
	if err != nil {
		return nil, kmsError("Decrypt", keyID, err)
	}
	if len(out.Plaintext) != DataKeySize {
		clear(out.Plaintext)
		return nil, fmt.Errorf("keys: kms Decrypt key %q: unexpected %d-byte plaintext: %w",
			keyID, len(out.Plaintext), ErrInvalidCiphertext)
	}
	return out.Plaintext, nil
}

// Ping checks that KMS is reachable and the default key usable (DescribeKey). A disabled default
// key gives ErrKeyDisabled. Without a default key it lists one key to check reachability and
// credentials.
func (k *KMS) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	if k.defaultKey == "" {
		_, err := k.client.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1)})
		if err != nil {
			return kmsError("ListKeys", "", err)
		}
		return nil
	}
	out, err := k.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k.defaultKey)})
	if err != nil {
		return kmsError("DescribeKey", k.defaultKey, err)
	}
	if md := out.KeyMetadata; md != nil && (!md.Enabled || (md.KeyState != "" && md.KeyState != types.KeyStateEnabled)) {
		return fmt.Errorf("keys: kms key %q is in state %s: %w", k.defaultKey, md.KeyState, ErrKeyDisabled)
	}
	return nil
}

// kmsError classifies an SDK error into one of the sentinel errors, keeping the SDK's error
// (and its message) in the chain.
func kmsError(op, keyID string, err error) error {
	sentinel := classifyKMS(err)
	if sentinel == nil {
		return fmt.Errorf("keys: kms %s key %q: %w", op, keyID, err)
	}
	return fmt.Errorf("keys: kms %s key %q: %w: %w", op, keyID, sentinel, err)
}

func classifyKMS(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NotFoundException", "InvalidArnException":
			return ErrKeyNotFound
		case "DisabledException", "KMSInvalidStateException", "CustomKeyStoreInvalidStateException":
			return ErrKeyDisabled
		case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
			"IncompleteSignature", "MissingAuthenticationToken", "InvalidClientTokenId",
			"ExpiredTokenException", "AccessDenied":
			return ErrAccessDenied
		case "InvalidCiphertextException", "IncorrectKeyException":
			return ErrInvalidCiphertext
		case "ThrottlingException", "Throttling", "TooManyRequestsException", "LimitExceededException",
			"KMSInternalException", "DependencyTimeoutException", "KeyUnavailableException",
			"InternalFailure", "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException":
			return ErrUnavailable
		}
		var respErr *smithyhttp.ResponseError
		if errors.As(err, &respErr) && respErr.HTTPStatusCode() >= http.StatusInternalServerError {
			return ErrUnavailable
		}
		return nil
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() >= http.StatusBadRequest &&
		respErr.HTTPStatusCode() < http.StatusInternalServerError && respErr.HTTPStatusCode() != http.StatusTooManyRequests {
		// A 4xx answer the SDK could not decode into an API error: reachable, but refused.
		return nil
	}
	// No answer at all: connection refused, DNS, TLS, timeouts, retries exhausted.
	return ErrUnavailable
}

// CreateKey creates a symmetric KMS key for the gateway (key spec SYMMETRIC_DEFAULT, usage
// ENCRYPT_DECRYPT: what GenerateDataKey and Decrypt need) and, when alias is not "", the alias
// ("alias/" is added when missing). It returns the key's ARN. KMS rotates the key material of
// such keys itself (EnableKeyRotation): envelopes name the key, not a version, so nothing
// needs to be rewrapped.
func (k *KMS) CreateKey(ctx context.Context, alias, description string) (arn string, err error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	out, err := k.client.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:     types.KeySpecSymmetricDefault,
		KeyUsage:    types.KeyUsageTypeEncryptDecrypt,
		Description: aws.String(description),
		Tags:        []types.Tag{{TagKey: aws.String("created-by"), TagValue: aws.String("s3seal")}},
	})
	if err != nil {
		return "", kmsError("CreateKey", "", err)
	}
	if out.KeyMetadata == nil || out.KeyMetadata.Arn == nil {
		return "", errors.New("keys: kms CreateKey: no key ARN in the answer")
	}
	arn = *out.KeyMetadata.Arn
	if alias != "" {
		if len(alias) < 6 || alias[:6] != "alias/" {
			alias = "alias/" + alias
		}
		if _, err := k.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
			return arn, kmsError("CreateAlias", arn, err)
		}
	}
	return arn, nil
}
