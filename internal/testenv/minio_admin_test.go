package testenv

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestSioSealVectors checks sioSeal against test vectors of github.com/secure-io/sio-go
// v0.3.1 (test_vectors.json: the AES-128-GCM entries with one, two and three fragments, with
// and without associated data), the stream format madmin.EncryptData uses.
func TestSioSealVectors(t *testing.T) {
	for i, v := range []struct {
		bufSize                     int
		key, nonce, ad, plain, want string
	}{
		{16, "00000000000000000000000000000000", "0000000000000000", "", "", "e0247a864e783cecb1f7996c13cd3f64"},
		{16, "10000000000000000000000000000000", "1000000000000000", "00", "", "2d9ede532b1f5f034e22375d816f76c2"},
		{16, "0a7a6d49e4ad042f1e1ffa168849d651", "4a9ba500be169ab3", "d40703848d887a01664c30734fa370581c5f8f6d0ea7bfdd",
			"424d6d60d7e08b3b41e968fc4557b93c", "aa4b4ca42d587b98d0d5f009c0efbc4fcaaefdc1c79a3cfe07801ed8c708d259"},
		{16, "10000000000000000000000000000000", "0000000000000002", "", "0000000000000000000000000000000000",
			"691deb7b9ccbee91f48d12c7ad5fe3cd4e1e5e7d394f06b91228ec9a5dd2456ac7de9502a0b4010fb1ee1db94e940458fb"},
		{16, "000102030405060708090a0b0c0d0e0f", "0001020304050607", "0102030405060708090a0b0c0d0e0f10",
			"0000000000000000000000000000000000000000000000000000000000000000",
			"beffe57efbdadb693b5545d58454ba746c5362c6f37b65da457d85bfe6af8972cfea267b03f14aedf25e7501e88c0d79f5440d0ac49e5c4fdaab4dfac9aec4d3"},
		{17, "31dd758d120fd5d30063921a21f723be", "d3794fe387018e32",
			"1d838b6e861ea7576de110e08818de82a27337a99db7b95aa95c3347971ad4cfa0ef0960d6645f5a64f88c7d",
			"d0ae0d85e93ed6be853ded2031643116a03215b4fda224d2986d7233039aa47e91b686f4",
			"a6fe911b94e0b25a25bf6da71f28ad6a6b6920be01589e9194226f77c164606545d5cbdb76c99415b468c54517f5a8bc8dc8ac13b1b4285fe36f37f7884d5e4bfb32ecef56b4026bf02bfb1d4fce222e01ef9db9"},
	} {
		block, err := aes.NewCipher(unhex(t, v.key))
		if err != nil {
			t.Fatal(err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			t.Fatal(err)
		}
		s := sioStream{BufSize: v.bufSize, Nonce: unhex(t, v.nonce), AssociatedData: unhex(t, v.ad)}
		prefix := []byte("prefix")
		got := sioSeal(aead, s, append([]byte(nil), prefix...), unhex(t, v.plain))
		if !bytes.HasPrefix(got, prefix) {
			t.Errorf("vector %d: dst not kept", i)
		}
		if hex.EncodeToString(got[len(prefix):]) != v.want {
			t.Errorf("vector %d:\n got %x\nwant %s", i, got[len(prefix):], v.want)
		}
	}
}

// TestMadminEncryptLayout: salt | 0x02 | nonce | ciphertext one tag longer than the data, with
// a fresh salt and nonce every time. (That MinIO decrypts it is TestMinIODataUser's add-user.)
func TestMadminEncryptLayout(t *testing.T) {
	data := []byte(`{"secretKey":"s","status":"enabled"}`)
	a, err := madminEncrypt("password", data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := madminEncrypt("password", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32+1+8+len(data)+16 {
		t.Errorf("length %d, want %d", len(a), 32+1+8+len(data)+16)
	}
	if a[32] != 0x02 {
		t.Errorf("algorithm id %#x, want 0x02 (PBKDF2, AES-GCM)", a[32])
	}
	if bytes.Equal(a[:41], b[:41]) || bytes.Equal(a[41:], b[41:]) {
		t.Error("two encryptions share salt and nonce or ciphertext")
	}
}

// TestMinIODataUser: the data user may use the S3 API (bucket, objects, versioning) and is
// refused MinIO's admin API, which the root key may use.
func TestMinIODataUser(t *testing.T) {
	m := NewMinIO(t)
	if m.Data.AccessKey == "" || m.Data.AccessKey == m.AccessKey || m.Data.SecretKey == m.SecretKey {
		t.Fatalf("data user %q is not a user of its own", m.Data.AccessKey)
	}
	if again := NewMinIO(t); again.Data != m.Data {
		t.Errorf("second NewMinIO made another user %q (first %q)", again.Data.AccessKey, m.Data.AccessKey)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	data := m.Client(t, func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(m.Data.AccessKey, m.Data.SecretKey, "")
	})
	bucket := bucketName(t)
	if _, err := data.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("data user: CreateBucket: %v", err)
	}
	t.Cleanup(func() {
		if err := emptyAndDeleteBucket(context.Background(), m.Client(t), bucket); err != nil {
			t.Errorf("removing %s: %v", bucket, err)
		}
	})
	if _, err := data.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Errorf("data user: PutBucketVersioning: %v", err)
	}
	body := RandomBytes(t, 1000, "DATA")
	putObject(t, data, bucket, "k", body)
	if got, err := getObject(data, bucket, "k"); err != nil || !bytes.Equal(got, body) {
		t.Errorf("data user: GetObject: %d bytes, %v", len(got), err)
	}

	info := AdminCall{Method: http.MethodGet, Op: "info"}
	if r := m.Admin(ctx, m.rootUser(), info); r.Err != nil || r.Status != http.StatusOK {
		t.Errorf("root: GET info: %d %v %s", r.Status, r.Err, r.Body)
	}
	if r := m.Admin(ctx, m.Data, info); r.Err != nil || r.Status != http.StatusForbidden {
		t.Errorf("data user: GET info: %d %v %s, want 403", r.Status, r.Err, r.Body)
	}
	sealed, err := madminEncrypt(m.Data.SecretKey, []byte(`{"secretKey":"`+randomSecret(t)+`","status":"enabled"}`))
	if err != nil {
		t.Fatal(err)
	}
	other := "s3seal-probe-" + randomHex(t, 6)
	addUser := AdminCall{Method: http.MethodPut, Op: "add-user", Query: url.Values{"accessKey": {other}}, Body: sealed}
	if r := m.Admin(ctx, m.Data, addUser); r.Err != nil || r.Status != http.StatusForbidden {
		t.Errorf("data user: PUT add-user: %d %v %s, want 403", r.Status, r.Err, r.Body)
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
