package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestHostileClientAdminAPI: with MinIO's ROOT key as the gateway's backend key (so that the
// gateway, not the key, must stop it), a read-only, a non-admin and an admin gateway
// credential reach no MinIO admin endpoint by any route: the admin paths themselves, in
// path and virtual-host style, admin parameters on S3 operations, a copy source under
// minio/, dot segments, Ceph RGW's admin paths. Every attempt is answered with an S3 error or
// an S3 answer, MinIO records no request outside /<bucket>[/<key>] and no admin parameter,
// and the user the attacks name still exists afterwards.
func TestHostileClientAdminAPI(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	h := testenv.NewHostile(t, m.Endpoint)
	ro := negCred{"AKRO" + negRandom(t, 6), negRandom(t, 20)}
	user := negCred{"AKUSER" + negRandom(t, 6), negRandom(t, 20)}
	admin := negCred{"AKADMIN" + negRandom(t, 6), negRandom(t, 20)}
	cfg := fmt.Sprintf("credentials:\n  - {access_key_id: %s, secret_access_key: %s, read_only: true}\n"+
		"  - {access_key_id: %s, secret_access_key: %s}\n  - {access_key_id: %s, secret_access_key: %s, admin: true}\n",
		ro.id, ro.secret, user.id, user.secret, admin.id, admin.secret)
	gw := testenv.StartGatewayWithArgs(t, map[string]string{
		"GATEWAY_BACKEND_ENDPOINT":          h.URL,
		"GATEWAY_BACKEND_REGION":            m.Region,
		"GATEWAY_BACKEND_ACCESS_KEY_ID":     m.AccessKey, // MinIO's root key, on purpose
		"GATEWAY_BACKEND_SECRET_ACCESS_KEY": m.SecretKey,
		"GATEWAY_BACKEND_PATH_STYLE":        "true",
		"GATEWAY_KMS_ENDPOINT":              k.Endpoint,
		"GATEWAY_KMS_REGION":                k.Region,
		"GATEWAY_KMS_ACCESS_KEY_ID":         "test",
		"GATEWAY_KMS_SECRET_ACCESS_KEY":     "test",
		"GATEWAY_KMS_KEY_ID":                k.CreateKey(t),
		"GATEWAY_BASE_DOMAINS":              "s3.test",
	}, "-config", writeFile(t, t.TempDir(), "gateway.yaml", []byte(cfg)))
	bucket := m.NewBucket(t)
	victim := m.Data.AccessKey

	// The key can do it: MinIO answers the root key's admin request.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if r := m.Admin(ctx, testenv.MinIOUser{AccessKey: m.AccessKey, SecretKey: m.SecretKey},
		testenv.AdminCall{Method: http.MethodGet, Op: "user-info", Query: url.Values{"accessKey": {victim}}}); r.Err != nil || r.Status != http.StatusOK {
		t.Fatalf("root key's admin request: %d %v %s", r.Status, r.Err, r.Body)
	}

	type attack struct {
		method, path, host string
		header             map[string]string
	}
	attacks := []attack{
		{"DELETE", "/minio/admin/v3/remove-user?accessKey=" + victim, "", nil},
		{"DELETE", "/minio/admin/v3/delete-service-account?accessKey=" + victim, "", nil},
		{"GET", "/minio/admin/v3/info?tagging", "", nil},
		{"GET", "/minio/admin/v3/info", "", nil},
		{"GET", "/minio/admin/v3/list-users?acl", "", nil},
		{"GET", "/minio/admin/v3/user-info?accessKey=" + victim + "&versionId=1", "", nil},
		{"PUT", "/minio/admin/v3/add-user?accessKey=evil", "", nil},
		{"POST", "/minio/admin/v3/service?action=restart", "", nil},
		{"GET", "/minio/v2/metrics/cluster", "", nil},
		{"DELETE", "/admin/bucket?bucket=" + bucket + "&purge-objects=true", "", nil},
		{"GET", "/admin/v3/info", "minio.s3.test", nil},
		{"DELETE", "/admin/v3/remove-user?accessKey=" + victim, "minio.s3.test", nil},
		{"DELETE", "/" + bucket + "/k?accessKey=" + victim, "", nil},
		{"GET", "/" + bucket + "/k?tagging&accessKey=" + victim, "", nil},
		{"GET", "/" + bucket + "?uploads&accessKey=" + victim, "", nil},
		{"GET", "/?accessKey=" + victim, "", nil},
		{"GET", "/" + bucket + "/../minio/admin/v3/info", "", nil},
		{"DELETE", "/" + bucket + "/../minio/admin/v3/remove-user?accessKey=" + victim, "", nil},
		{"GET", "/" + bucket + "/..%2Fminio%2Fadmin%2Fv3%2Finfo", "", nil},
		{"PUT", "/" + bucket + "/copy", "", map[string]string{"X-Amz-Copy-Source": "minio/admin/v3/info"}},
		{"PUT", "/" + bucket + "/copy", "", map[string]string{"X-Amz-Copy-Source": "/minio/admin/v3/user-info?accessKey=" + victim}},
		{"PUT", "/" + bucket + "/copy", "", map[string]string{"X-Amz-Copy-Source": bucket + "/../minio/admin/v3/info"}},
	}
	for _, c := range []negCred{ro, user, admin} {
		for _, a := range attacks {
			u := gw.Endpoint + a.path
			req := signedRequestHost(t, a.method, u, a.host, a.header, c)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", a.method, a.path, err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if strings.Contains(string(body), "deploymentID") || strings.Contains(string(body), `"accessKey"`) ||
				strings.Contains(string(body), "policyName") {
				t.Errorf("%s %s (%s): MinIO admin data in the answer: %.300s", a.method, a.path, c.id, body)
			}
			if resp.StatusCode/100 == 2 && strings.HasPrefix(a.path, "/minio") {
				t.Errorf("%s %s (%s): answered %d", a.method, a.path, c.id, resp.StatusCode)
			}
		}
	}
	for _, r := range h.Requests() {
		bucketOf, _, _ := strings.Cut(strings.TrimPrefix(r.Path, "/"), "/")
		// A key may hold dot segments ("../minio/admin/v3/info" is an S3 key like any other):
		// the path stays /<bucket>/<key> as sent, and MinIO does not normalise it (see
		// docs/SECURITY.md on path-normalising proxies in front of a backend).
		if strings.HasPrefix(r.Path, "/minio") || strings.HasPrefix(r.Path, "/admin") || bucketOf != bucket {
			t.Errorf("MinIO received %s %s?%s", r.Method, r.Path, r.Query.Encode())
		}
		for _, p := range []string{"accessKey", "purge-objects", "bucket", "action"} {
			if r.Query.Has(p) {
				t.Errorf("MinIO received %s %s with parameter %s", r.Method, r.Path, p)
			}
		}
	}
	if r := m.Admin(ctx, testenv.MinIOUser{AccessKey: m.AccessKey, SecretKey: m.SecretKey},
		testenv.AdminCall{Method: http.MethodGet, Op: "user-info", Query: url.Values{"accessKey": {victim}}}); r.Status != http.StatusOK {
		t.Errorf("after the attacks, user %s: %d %s", victim, r.Status, r.Body)
	}
	t.Logf("%d attacks by 3 credentials; MinIO received %d requests, all S3 data requests", len(attacks), len(h.Requests()))
}

// signedRequestHost is signedRequest for credential c with an empty body, Host set to host
// when given (virtual-host style), and extra headers signed with it.
func signedRequestHost(t *testing.T, method, u, host string, header map[string]string, c negCred) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	// http.NewRequest keeps the path as written: "/b/../x" is sent as it is.
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	err = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: c.id, SecretAccessKey: c.secret}, req, emptySHA256, "s3", "us-east-1", time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	return req
}
