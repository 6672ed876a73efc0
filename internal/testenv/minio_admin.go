package testenv

// A MinIO user for the gateway's backend key that may use the S3 API but not MinIO's admin
// API, created through the admin API with the root key. madmin-go is not a dependency of the
// module, so the three calls are made here by hand: add-canned-policy, add-user (its body
// encrypted the madmin way) and set-user-or-group-policy.

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// DataPolicyName is the MinIO canned policy given to the gateway's backend user.
const DataPolicyName = "s3seal-gateway-data"

// DataPolicy allows every S3 action (object, bucket and bucket-configuration APIs) on every
// bucket, and nothing of MinIO's admin API (admin:* actions), KMS (kms:*) or STS.
const DataPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}`

// adminPrefix is the path prefix of MinIO's admin API (version 3).
const adminPrefix = "/minio/admin/v3/"

// adminTimeout bounds one admin request.
const adminTimeout = 30 * time.Second

// MinIOUser is a credential of a MinIO user (not the root user).
type MinIOUser struct {
	AccessKey string
	SecretKey string
}

// dataUsers caches the data user of each MinIO server (by endpoint and root access key) for
// the test process, so that parallel tests share one user. A failed creation is not cached.
var dataUsers = struct {
	sync.Mutex
	byServer map[string]*dataUserEntry
}{byServer: map[string]*dataUserEntry{}}

// dataUserEntry is one server's data user, created at most once at a time.
type dataUserEntry struct {
	mu   sync.Mutex
	user *MinIOUser
}

// dataUser returns the MinIO user with the canned policy DataPolicy, created on first use
// (once per server and test process, under a unique name since several test processes share
// one MinIO). NewMinIO and NewPrivateMinIO put it in MinIO.Data.
func (m *MinIO) dataUser(t testing.TB) MinIOUser {
	t.Helper()
	server := m.Endpoint + "\x00" + m.AccessKey
	dataUsers.Lock()
	e := dataUsers.byServer[server]
	if e == nil {
		e = &dataUserEntry{}
		dataUsers.byServer[server] = e
	}
	dataUsers.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.user == nil {
		u := MinIOUser{AccessKey: "s3seal-gw-" + randomHex(t, 8), SecretKey: randomSecret(t)}
		if err := m.createDataUser(u); err != nil {
			t.Fatalf("testenv: creating MinIO user %s: %v", u.AccessKey, err)
		}
		e.user = &u
	}
	return *e.user
}

// RestoreDataUser creates m.Data again, with the same credentials, on a MinIO whose data
// directory was wiped (a backend started afresh has no users, and the gateways in front of it
// sign with m.Data).
func (m *MinIO) RestoreDataUser() error {
	if m.Data.AccessKey == "" {
		return errors.New("testenv: RestoreDataUser: this MinIO has no data user")
	}
	if err := m.createDataUser(m.Data); err != nil {
		return fmt.Errorf("testenv: creating MinIO user %s again: %w", m.Data.AccessKey, err)
	}
	return nil
}

// createDataUser makes the canned policy (again: the call replaces it), the user u and
// attaches the policy to it.
func (m *MinIO) createDataUser(u MinIOUser) error {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	root := m.rootUser()
	if err := adminOK(m.adminWhenReady(ctx, root, AdminCall{Method: http.MethodPut, Op: "add-canned-policy",
		Query: url.Values{"name": {DataPolicyName}}, Body: []byte(DataPolicy)})); err != nil {
		return fmt.Errorf("add-canned-policy: %w", err)
	}
	req, err := json.Marshal(map[string]string{"secretKey": u.SecretKey, "status": "enabled"})
	if err != nil {
		return err
	}
	sealed, err := madminEncrypt(root.SecretKey, req)
	if err != nil {
		return err
	}
	if err := adminOK(m.adminWhenReady(ctx, root, AdminCall{Method: http.MethodPut, Op: "add-user",
		Query: url.Values{"accessKey": {u.AccessKey}}, Body: sealed})); err != nil {
		return fmt.Errorf("add-user: %w", err)
	}
	// A MinIO that has just started can answer XMinioAdminNoSuchPolicy for the policy it has
	// just accepted (its IAM state is still loading: seen in the conformance run's backend
	// restarts, after which every test failed with 403): the attach is retried, policy first.
	for attempt := 0; ; attempt++ {
		err := adminOK(m.adminWhenReady(ctx, root, AdminCall{Method: http.MethodPut, Op: "set-user-or-group-policy",
			Query: url.Values{"policyName": {DataPolicyName}, "userOrGroup": {u.AccessKey}, "isGroup": {"false"}}}))
		if err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "XMinioAdminNoSuchPolicy") || attempt >= 20 || ctx.Err() != nil {
			return fmt.Errorf("set-user-or-group-policy: %w", err)
		}
		time.Sleep(250 * time.Millisecond)
		if err := adminOK(m.adminWhenReady(ctx, root, AdminCall{Method: http.MethodPut, Op: "add-canned-policy",
			Query: url.Values{"name": {DataPolicyName}}, Body: []byte(DataPolicy)})); err != nil {
			return fmt.Errorf("add-canned-policy: %w", err)
		}
	}
}

// rootUser is the root credential of m.
func (m *MinIO) rootUser() MinIOUser {
	return MinIOUser{AccessKey: m.AccessKey, SecretKey: m.SecretKey}
}

// AdminCall is one request to MinIO's admin API: Op is the path after /minio/admin/v3/.
type AdminCall struct {
	Method string
	Op     string
	Query  url.Values
	Body   []byte
}

// AdminResult is MinIO's answer to an admin request (the body at most 1 MiB).
type AdminResult struct {
	Status int
	Body   []byte
	Err    error // the request could not be made or its answer not read
}

// Admin makes one admin API request, SigV4-signed (service s3, m.Region) with cred.
func (m *MinIO) Admin(ctx context.Context, cred MinIOUser, call AdminCall) AdminResult {
	u := m.Endpoint + adminPrefix + call.Op
	if len(call.Query) > 0 {
		u += "?" + call.Query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, call.Method, u, bytes.NewReader(call.Body))
	if err != nil {
		return AdminResult{Err: err}
	}
	sum := sha256.Sum256(call.Body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: cred.AccessKey, SecretAccessKey: cred.SecretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "s3", m.Region, time.Now()); err != nil {
		return AdminResult{Err: err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return AdminResult{Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return AdminResult{Status: resp.StatusCode, Body: body, Err: err}
}

// adminWhenReady is Admin, sent again while MinIO answers 503 (a server that has just started
// answers XMinioServerNotInitialized until its IAM subsystem is up, after its health checks
// already pass), until ctx ends.
func (m *MinIO) adminWhenReady(ctx context.Context, cred MinIOUser, call AdminCall) AdminResult {
	for {
		r := m.Admin(ctx, cred, call)
		if r.Err != nil || r.Status != http.StatusServiceUnavailable {
			return r
		}
		select {
		case <-ctx.Done():
			return r
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// adminOK is r's error, or an error naming the status and body when it is not 200.
func adminOK(r AdminResult) error {
	if r.Err != nil {
		return r.Err
	}
	if r.Status != http.StatusOK {
		return fmt.Errorf("status %d: %s", r.Status, bytes.TrimSpace(r.Body))
	}
	return nil
}

// The madmin encryption of admin request bodies (madmin-go encrypt.go, EncryptData), the
// PBKDF2 variant that MinIO's DecryptData accepts besides the two Argon2id ones:
//
//	salt (32 random bytes) | algorithm id 0x02 | nonce (8 random bytes) | sio stream
//
// with the AES-256-GCM key PBKDF2-HMAC-SHA256(password, salt, 8192 iterations, 32 bytes) and
// the stream of github.com/secure-io/sio-go (madmin's "sio"; not minio/sio's DARE).
const (
	madminPBKDF2AESGCM = 0x02
	madminPBKDF2Cost   = 8192
	madminSaltSize     = 32
	sioBufSize         = 1 << 14 // sio.BufSize, the fragment size madmin uses
)

// madminEncrypt is madmin.EncryptData(password, data) with algorithm id 0x02.
func madminEncrypt(password string, data []byte) ([]byte, error) {
	var head [madminSaltSize + 1 + 8]byte
	if _, err := rand.Read(head[:]); err != nil {
		return nil, err
	}
	salt, nonce := head[:madminSaltSize], head[madminSaltSize+1:]
	head[madminSaltSize] = madminPBKDF2AESGCM
	key, err := pbkdf2.Key(sha256.New, password, salt, madminPBKDF2Cost, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return sioSeal(aead, sioStream{BufSize: sioBufSize, Nonce: nonce}, head[:], data), nil
}

// sioStream is the framing of one sio-go stream: fragment size, the nonce (the AEAD's nonce
// size minus 4 bytes) that the fragments' sequence numbers extend, and the associated data
// (madmin uses none).
type sioStream struct {
	BufSize        int
	Nonce          []byte
	AssociatedData []byte
}

// sioSeal appends to dst the sio-go encryption (Stream.EncryptWriter) of data: fragments of
// BufSize bytes, each sealed under nonce | little-endian uint32 sequence number (from 1) with
// the associated data flag | tag, where tag is the AEAD's seal of nothing with the stream's
// associated data under sequence number 0 and flag is 0x00, or 0x80 for the last fragment
// (which may be empty).
func sioSeal(aead cipher.AEAD, s sioStream, dst, data []byte) []byte {
	nonce := make([]byte, aead.NonceSize())
	copy(nonce, s.Nonce)
	seq := func(n uint32) []byte {
		binary.LittleEndian.PutUint32(nonce[len(nonce)-4:], n)
		return nonce
	}
	ad := append([]byte{0x00}, aead.Seal(nil, seq(0), nil, s.AssociatedData)...)
	n := uint32(1)
	for ; len(data) > s.BufSize; n++ {
		dst = aead.Seal(dst, seq(n), data[:s.BufSize], ad)
		data = data[s.BufSize:]
	}
	ad[0] = 0x80
	return aead.Seal(dst, seq(n), data, ad)
}
