package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMS is the AWS KMS emulator of the test run (moto_server).
type KMS struct {
	Endpoint string // http://127.0.0.1:PORT
	Region   string // us-east-1
}

// kmsDummyKey is the static access key (and secret) the emulator is called with; moto accepts
// any credentials.
const kmsDummyKey = "test"

// NewKMS returns the shared KMS emulator (S3SEAL_TEST_KMS_ENDPOINT from scripts/test).
func NewKMS(t testing.TB) *KMS {
	t.Helper()
	return &KMS{Endpoint: requireEnv(t, "S3SEAL_TEST_KMS_ENDPOINT"), Region: "us-east-1"}
}

// Client returns a KMS client for the emulator with dummy static credentials.
func (k *KMS) Client(t testing.TB, optFns ...func(*kms.Options)) *kms.Client {
	t.Helper()
	return kms.New(kms.Options{
		Region:       k.Region,
		BaseEndpoint: aws.String(k.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(kmsDummyKey, kmsDummyKey, ""),
		HTTPClient:   awshttp.NewBuildableClient().WithTimeout(time.Minute),
	}, optFns...)
}

// CreateKey creates a new symmetric encryption key (SYMMETRIC_DEFAULT) and returns its KeyId.
func (k *KMS) CreateKey(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := k.Client(t).CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:     types.KeySpecSymmetricDefault,
		KeyUsage:    types.KeyUsageTypeEncryptDecrypt,
		Description: aws.String("s3seal test key for " + t.Name()),
	})
	if err != nil {
		t.Fatalf("testenv: KMS CreateKey: %v", err)
	}
	if out.KeyMetadata == nil || aws.ToString(out.KeyMetadata.KeyId) == "" {
		t.Fatal("testenv: KMS CreateKey returned no KeyId")
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}
