package testenv

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func TestKMSCreateKey(t *testing.T) {
	k := NewKMS(t)
	c := k.Client(t)
	ctx := context.Background()
	id1, id2 := k.CreateKey(t), k.CreateKey(t)
	if id1 == id2 {
		t.Fatalf("two CreateKey calls returned the same id %s", id1)
	}
	desc, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id1)})
	if err != nil {
		t.Fatal(err)
	}
	md := desc.KeyMetadata
	if md.KeySpec != types.KeySpecSymmetricDefault || md.KeyUsage != types.KeyUsageTypeEncryptDecrypt || md.KeyState != types.KeyStateEnabled {
		t.Errorf("key %s: spec %s usage %s state %s", id1, md.KeySpec, md.KeyUsage, md.KeyState)
	}

	plain := RandomBytes(t, 32, "")
	encCtx := map[string]string{"gateway": "s3seal", "bucket": "b"}
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id1), Plaintext: plain, EncryptionContext: encCtx})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc.CiphertextBlob, plain) {
		t.Fatal("ciphertext contains the plaintext")
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: encCtx})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dec.Plaintext, plain) || aws.ToString(dec.KeyId) == "" {
		t.Errorf("decrypt gave %x (key %s), want %x", dec.Plaintext, aws.ToString(dec.KeyId), plain)
	}
	if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob,
		EncryptionContext: map[string]string{"gateway": "s3seal", "bucket": "other"}}); err == nil {
		t.Error("decrypt with a different encryption context succeeded")
	}
}
