package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/internal/testenv"
)

// adminGateway is a gateway in front of the shared MinIO with a non-admin and an admin
// credential from its config file, SigV2 on and base domain s3.test.
type adminGateway struct {
	gw          *testenv.Gateway
	m           *testenv.MinIO
	user, admin negCred
}

func adminStart(t *testing.T) *adminGateway {
	t.Helper()
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	a := &adminGateway{m: m,
		user:  negCred{"AKUSER" + negRandom(t, 6), negRandom(t, 20)},
		admin: negCred{"AKADMIN" + negRandom(t, 6), negRandom(t, 20)},
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`credentials:
  - access_key_id: %s
    secret_access_key: %s
  - access_key_id: %s
    secret_access_key: %s
    admin: true
`, a.user.id, a.user.secret, a.admin.id, a.admin.secret)
	a.gw = testenv.StartGatewayWithArgs(t, map[string]string{
		"GATEWAY_BACKEND_ENDPOINT":          m.Endpoint,
		"GATEWAY_BACKEND_REGION":            m.Region,
		"GATEWAY_BACKEND_ACCESS_KEY_ID":     m.Data.AccessKey,
		"GATEWAY_BACKEND_SECRET_ACCESS_KEY": m.Data.SecretKey,
		"GATEWAY_BACKEND_PATH_STYLE":        "true",
		"GATEWAY_KMS_ENDPOINT":              k.Endpoint,
		"GATEWAY_KMS_REGION":                k.Region,
		"GATEWAY_KMS_ACCESS_KEY_ID":         "test", // moto accepts any credentials
		"GATEWAY_KMS_SECRET_ACCESS_KEY":     "test",
		"GATEWAY_KMS_KEY_ID":                k.CreateKey(t),
		"GATEWAY_SIGV2":                     "true",
		"GATEWAY_BASE_DOMAINS":              "s3.test",
	}, "-config", writeFile(t, dir, "gateway.yaml", []byte(cfg)))
	return a
}

// client is the Go SDK's S3 client for the gateway with credential c.
func (a *adminGateway) client(t *testing.T, c negCred) *s3.Client {
	return a.gw.Client(t, func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(c.id, c.secret, "")
	})
}

// apiCode is the S3 error code of err ("" for nil or a non-API error).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// bucketConfigOps are the configuration changes the acceptance criteria name, in an order an
// admin can apply them to MinIO (replication needs versioning).
func bucketConfigOps(bucket string) []struct {
	name string
	do   func(ctx context.Context, c *s3.Client) error
} {
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/public/*"]}]}`, bucket)
	return []struct {
		name string
		do   func(ctx context.Context, c *s3.Client) error
	}{
		{"PutBucketPolicy", func(ctx context.Context, c *s3.Client) error {
			_, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: &bucket, Policy: &policy})
			return err
		}},
		{"PutBucketAcl", func(ctx context.Context, c *s3.Client) error {
			_, err := c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: &bucket, ACL: types.BucketCannedACLPrivate})
			return err
		}},
		{"PutBucketLifecycleConfiguration", func(ctx context.Context, c *s3.Client) error {
			_, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: &bucket,
				LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{
					ID: aws.String("expire-tmp"), Status: types.ExpirationStatusEnabled,
					Filter:     &types.LifecycleRuleFilter{Prefix: aws.String("tmp/")},
					Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)},
				}}}})
			return err
		}},
		{"PutBucketVersioning", func(ctx context.Context, c *s3.Client) error {
			_, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &bucket,
				VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
			return err
		}},
		{"PutBucketReplication", func(ctx context.Context, c *s3.Client) error {
			_, err := c.PutBucketReplication(ctx, &s3.PutBucketReplicationInput{Bucket: &bucket,
				ReplicationConfiguration: &types.ReplicationConfiguration{
					Role: aws.String(""),
					Rules: []types.ReplicationRule{{
						ID: aws.String("r1"), Status: types.ReplicationRuleStatusEnabled, Priority: aws.Int32(1),
						Filter:                  &types.ReplicationRuleFilter{Prefix: aws.String("")},
						DeleteMarkerReplication: &types.DeleteMarkerReplication{Status: types.DeleteMarkerReplicationStatusDisabled},
						Destination:             &types.Destination{Bucket: aws.String("arn:aws:s3:::attacker-bucket")},
					}},
				}})
			return err
		}},
	}
}

// TestAdminBucketConfiguration: a non-admin credential gets AccessDenied for PutBucketPolicy,
// PutBucketAcl, PutBucketLifecycleConfiguration, PutBucketVersioning and PutBucketReplication
// (the Go SDK as client) and MinIO's bucket is left as it was; it can still read versioning,
// location and the ACL. An admin credential's requests reach MinIO: policy, ACL, lifecycle and
// versioning are applied (read back from MinIO directly); MinIO refuses the replication rule
// (no remote target is configured), and the gateway relays MinIO's own answer: the same error
// code MinIO gives the same request sent to it directly.
func TestAdminBucketConfiguration(t *testing.T) {
	a := adminStart(t)
	ctx := context.Background()
	bucket := a.m.NewBucket(t)
	user, admin, direct := a.client(t, a.user), a.client(t, a.admin), a.m.Client(t)

	for _, op := range bucketConfigOps(bucket) {
		if code := apiCode(op.do(ctx, user)); code != "AccessDenied" {
			t.Errorf("non-admin %s: error code %q, want AccessDenied", op.name, code)
		}
	}
	if v, err := direct.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &bucket}); err != nil || v.Status != "" {
		t.Errorf("MinIO versioning after refused requests: %+v %v, want never enabled", v, err)
	}
	if _, err := direct.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: &bucket}); apiCode(err) != "NoSuchBucketPolicy" {
		t.Errorf("MinIO policy after refused requests: %v, want NoSuchBucketPolicy", err)
	}
	if _, err := direct.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &bucket}); apiCode(err) != "NoSuchLifecycleConfiguration" {
		t.Errorf("MinIO lifecycle after refused requests: %v, want NoSuchLifecycleConfiguration", err)
	}
	// Reads stay open to non-admins.
	if _, err := user.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &bucket}); err != nil {
		t.Errorf("non-admin GetBucketVersioning: %v", err)
	}
	if _, err := user.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: &bucket}); err != nil {
		t.Errorf("non-admin GetBucketLocation: %v", err)
	}
	if _, err := user.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: &bucket}); err != nil {
		t.Errorf("non-admin GetBucketAcl: %v", err)
	}

	for _, op := range bucketConfigOps(bucket) {
		err := op.do(ctx, admin)
		if op.name != "PutBucketReplication" {
			if err != nil {
				t.Errorf("admin %s: %v", op.name, err)
			}
			continue
		}
		directErr := op.do(ctx, direct)
		if err == nil || directErr == nil || apiCode(err) != apiCode(directErr) || apiCode(err) == "AccessDenied" {
			t.Errorf("admin PutBucketReplication: gateway %v, MinIO directly %v; want MinIO's own error through the gateway", err, directErr)
		} else {
			t.Logf("admin PutBucketReplication reached MinIO, which answered %s (as it does directly)", apiCode(err))
		}
	}
	if v, err := direct.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &bucket}); err != nil || v.Status != types.BucketVersioningStatusEnabled {
		t.Errorf("MinIO versioning after admin request: %+v %v, want Enabled", v, err)
	}
	if p, err := direct.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: &bucket}); err != nil || !strings.Contains(aws.ToString(p.Policy), "/public/*") {
		t.Errorf("MinIO policy after admin request: %v", err)
	}
	if l, err := direct.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &bucket}); err != nil || len(l.Rules) != 1 {
		t.Errorf("MinIO lifecycle after admin request: %+v %v", l, err)
	}
	// Leave the shared MinIO's bucket deletable by the cleanup.
	if _, err := admin.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: &bucket}); err != nil {
		t.Errorf("admin DeleteBucketPolicy: %v", err)
	}
}

// TestAdminAWSCLIAndAllowlist: aws-cli (a non-admin credential) gets AccessDenied for
// put-bucket-versioning, and the environment's credential (admin by default) may do it; a
// sub-resource that is not on the gateway's allowlist gets NotImplemented.
func TestAdminAWSCLIAndAllowlist(t *testing.T) {
	a := adminStart(t)
	bucket := a.m.NewBucket(t)
	awsBin := testenv.LookPath(t, "aws")
	run := func(c negCred, args ...string) (string, error) {
		cmd := exec.Command(awsBin, append([]string{"--endpoint-url", a.gw.Endpoint}, args...)...)
		env := []string{"AWS_ACCESS_KEY_ID=" + c.id, "AWS_SECRET_ACCESS_KEY=" + c.secret}
		for _, kv := range a.gw.Env() {
			if !strings.HasPrefix(kv, "AWS_ACCESS_KEY_ID=") && !strings.HasPrefix(kv, "AWS_SECRET_ACCESS_KEY=") {
				env = append(env, kv)
			}
		}
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	args := []string{"s3api", "put-bucket-versioning", "--bucket", bucket, "--versioning-configuration", "Status=Enabled"}
	if out, err := run(a.user, args...); err == nil || !strings.Contains(out, "AccessDenied") {
		t.Errorf("aws-cli put-bucket-versioning as non-admin: %v %s, want AccessDenied", err, out)
	}
	if out, err := run(negCred{a.gw.AccessKeyID, a.gw.SecretAccessKey}, args...); err != nil {
		t.Errorf("aws-cli put-bucket-versioning with the environment's (admin) credential: %v %s", err, out)
	}
	if out, err := run(a.user, "s3api", "get-bucket-versioning", "--bucket", bucket); err != nil || !strings.Contains(out, "Enabled") {
		t.Errorf("aws-cli get-bucket-versioning as non-admin: %v %s", err, out)
	}

	admin := a.admin
	for _, target := range []string{"/" + bucket + "?foo", "/" + bucket + "?tagging&policy", "/" + bucket + "/k?policy"} {
		r := negDo(t, negRequest(t, http.MethodPut, a.gw.Endpoint+target, nil, negSig{cred: admin}, nil))
		if r.status != http.StatusNotImplemented || r.code != "NotImplemented" {
			t.Errorf("PUT %s as admin: %d %s, want 501 NotImplemented", target, r.status, r.code)
		}
	}
	if _, err := a.m.Client(t).GetBucketPolicy(context.Background(), &s3.GetBucketPolicyInput{Bucket: &bucket}); err == nil {
		t.Errorf("a refused request set a policy on MinIO")
	}
}

// botocoreSigV2 signs method url with botocore's HmacV1Auth (SigV2) for the canonical resource
// authPath (what botocore itself uses for virtual-hosted requests), with the gateway's
// environment credential (passed to python in AWS_* variables, not on its command line), and
// returns the headers.
func botocoreSigV2(t *testing.T, gw *testenv.Gateway, method, rawURL, authPath string) http.Header {
	t.Helper()
	script := `
import json, os, sys
from botocore.auth import HmacV1Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
req = AWSRequest(method=sys.argv[1], url=sys.argv[2])
req.auth_path = sys.argv[3]
HmacV1Auth(Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])).add_auth(req)
print(json.dumps({k: v for k, v in req.headers.items()}))
`
	out, err := gw.Python(t, script, method, rawURL, authPath)
	if err != nil {
		t.Fatalf("botocore SigV2 signing: %v", err)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("botocore output %q: %v", out, err)
	}
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

// sendWithHost sends a GET for path to the gateway with the given Host and headers.
func sendWithHost(t *testing.T, gw *testenv.Gateway, host, path string, h http.Header) negResp {
	t.Helper()
	u, err := url.Parse(gw.Endpoint + path)
	if err != nil {
		t.Fatal(err)
	}
	req := &http.Request{Method: http.MethodGet, URL: u, Host: host, Header: h.Clone()}
	return negDo(t, req)
}

// TestSigV2HostConfusion: SigV2 on, base domain s3.test. A SigV2 signature (botocore's
// HmacV1Auth) for bucketx.s3.test/<other>/<key> replayed with "Host: bucketx" would, under
// SigV2's CNAME rule, still verify while the router sends it path-style to bucket <other>,
// key <key>: the gateway refuses it with SignatureDoesNotMatch (403). Genuine virtual-hosted
// and path-style SigV2 requests still verify and return the plaintext.
func TestSigV2HostConfusion(t *testing.T) {
	a := adminStart(t)
	ctx := context.Background()
	bucketx, other := a.m.NewBucket(t), a.m.NewBucket(t)
	c := a.client(t, a.user)
	put := func(bucket, key, body string) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
			t.Fatalf("put %s/%s: %v", bucket, key, err)
		}
	}
	put(bucketx, other+"/secret", "in bucketx")
	put(other, "secret", "in the other bucket")
	port := strings.TrimPrefix(a.gw.Endpoint, "http://127.0.0.1")
	vhost := bucketx + ".s3.test" + port
	path := "/" + other + "/secret"

	signed := botocoreSigV2(t, a.gw, http.MethodGet, "http://"+vhost+path, "/"+bucketx+path)
	if !strings.HasPrefix(signed.Get("Authorization"), "AWS ") {
		t.Fatalf("botocore did not sign with SigV2: %v", signed)
	}
	if r := sendWithHost(t, a.gw, vhost, path, signed); r.status != http.StatusOK || string(r.body) != "in bucketx" {
		t.Fatalf("genuine virtual-hosted SigV2 GET: %d %s %q", r.status, r.code, r.body)
	}
	r := sendWithHost(t, a.gw, bucketx, path, signed)
	if r.status != http.StatusForbidden || r.code != "SignatureDoesNotMatch" {
		t.Errorf("replay with Host: %s: %d %s %q, want 403 SignatureDoesNotMatch", bucketx, r.status, r.code, r.body)
	}

	pathSigned := botocoreSigV2(t, a.gw, http.MethodGet, a.gw.Endpoint+path, path)
	if r := sendWithHost(t, a.gw, "127.0.0.1"+port, path, pathSigned); r.status != http.StatusOK || string(r.body) != "in the other bucket" {
		t.Errorf("genuine path-style SigV2 GET: %d %s %q", r.status, r.code, r.body)
	}
}
