package proxy_test

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"testing"

	"github.com/s3seal/s3seal/keys"
	"github.com/s3seal/s3seal/proxy"
)

// TestUploadKeyAllowList (issue 21c): an upload under a KMS key is continued (UploadPart,
// UploadPartCopy, Complete) only by a credential that may use that key, as S3 wants
// kms:GenerateDataKey and kms:Decrypt on the upload's key for them. The upload's envelope
// names the key as the provider resolved it (here the key's second version), so the check
// resolves the credential's key names; the default key stays usable by every credential.
func TestUploadKeyAllowList(t *testing.T) {
	a := proxy.Credential{AccessKeyID: "AKIDALLOWEDK", SecretAccessKey: "allowed-secret-key-0123456789", KMSKeyIDs: []string{"team-k"}}
	b := proxy.Credential{AccessKeyID: "AKIDNOTALLOWEDK", SecretAccessKey: "other-secret-key-0123456789"}
	f, _ := newLyingFixture(t, func(c *proxy.Config, lf *keys.LocalFile) {
		if _, err := lf.CreateKey("team-k"); err != nil {
			t.Fatal(err)
		}
		if _, err := lf.RotateKey("team-k"); err != nil {
			t.Fatal(err)
		}
		c.Credentials = append(c.Credentials, a, b)
	})
	f.put("src", plaintext(1000, "COPY-SOURCE"))
	create := func(cred proxy.Credential, key string, hdr map[string]string) string {
		t.Helper()
		r := f.doAs(cred, http.MethodPost, "/"+ipBucket+"/"+key+"?uploads", nil, hdr)
		var ini initiateResult
		if r.status != http.StatusOK || xml.Unmarshal(r.body, &ini) != nil || ini.UploadID == "" {
			t.Fatalf("CreateMultipartUpload as %s: %d %s", cred.AccessKeyID, r.status, r.body)
		}
		return ini.UploadID
	}
	part := func(cred proxy.Credential, key, id string, n int, hdr map[string]string) result {
		return f.doAs(cred, http.MethodPut, fmt.Sprintf("/%s/%s?partNumber=%d&uploadId=%s", ipBucket, key, n, id), plaintext(1000, "PART"), hdr)
	}
	kms := map[string]string{"X-Amz-Server-Side-Encryption": "aws:kms", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "team-k"}
	if r := f.doAs(b, http.MethodPost, "/"+ipBucket+"/k?uploads", nil, kms); r.code != "AccessDenied" {
		t.Fatalf("CreateMultipartUpload under team-k by a credential without it: %d %s, want AccessDenied", r.status, r.body)
	}
	id := create(a, "k", kms)
	r := part(a, "k", id, 1, nil)
	if r.status != http.StatusOK {
		t.Fatalf("UploadPart by the credential allowed team-k: %d %s", r.status, r.body)
	}
	etag1 := r.header.Get("ETag")
	if r := part(b, "k", id, 2, nil); r.status != http.StatusForbidden || r.code != "AccessDenied" {
		t.Errorf("UploadPart of a team-k upload by a credential without team-k: %d %s, want 403 AccessDenied", r.status, r.body)
	}
	cp := f.doAs(b, http.MethodPut, fmt.Sprintf("/%s/k?partNumber=3&uploadId=%s", ipBucket, id), nil,
		map[string]string{"X-Amz-Copy-Source": "/" + ipBucket + "/src"})
	if cp.status != http.StatusForbidden || cp.code != "AccessDenied" {
		t.Errorf("UploadPartCopy into a team-k upload by a credential without team-k: %d %s, want 403 AccessDenied", cp.status, cp.body)
	}
	done := fmt.Sprintf("/%s/k?uploadId=%s", ipBucket, id)
	if r := f.doAs(b, http.MethodPost, done, completeBody(etag1), nil); r.status != http.StatusForbidden || r.code != "AccessDenied" {
		t.Errorf("Complete of a team-k upload by a credential without team-k: %d %s, want 403 AccessDenied", r.status, r.body)
	}
	if r := f.doAs(a, http.MethodPost, done, completeBody(etag1), nil); r.status != http.StatusOK {
		t.Errorf("Complete by the credential allowed team-k: %d %s", r.status, r.body)
	}
	// The default key: any credential continues any upload under it.
	id = create(a, "d", nil)
	if r := part(b, "d", id, 1, nil); r.status != http.StatusOK {
		t.Errorf("UploadPart of a default-key upload by another credential: %d %s", r.status, r.body)
	}
}
