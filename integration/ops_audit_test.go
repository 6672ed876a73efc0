package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/s3seal/s3seal/audit"
	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/testenv"
)

// opsRequestID is the x-amz-request-id of an SDK response.
func opsRequestID(t *testing.T, md middleware.Metadata) string {
	t.Helper()
	id, ok := awsmiddleware.GetRequestIDMetadata(md)
	if !ok || id == "" {
		t.Fatal("response without x-amz-request-id")
	}
	return id
}

// opsReadAudit parses an audit file strictly (unknown fields are an error).
func opsReadAudit(t *testing.T, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var r audit.Record
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// TestOpsAuditTrail: a workload of PUTs and GETs (whole and ranged) leaves exactly one audit
// record per key use, matched to its request by x-amz-request-id, with the credential, bucket,
// object, the KMS key's ARN and the SHA-256 of the wrapped data key stored in the object's
// envelope.
func TestOpsAuditTrail(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyID := k.CreateKey(t)
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	env, _ := opsGatewayEnv(t, m, k.Endpoint, keyID)
	env["GATEWAY_AUDIT_FILE"] = auditPath
	env["GATEWAY_LOG_FORMAT"] = "json"
	gw := testenv.StartGateway(t, env)
	bucket := m.NewBucket(t)
	c := gw.Client(t)
	ctx := context.Background()
	start := time.Now().Add(-time.Second)

	desc, err := k.Client(t).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &keyID})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(desc.KeyMetadata.Arn)

	type use struct{ action, key string }
	want := map[string]use{} // by request id
	sizes := []int{0, 10, 70000, 300000, 1 << 20}
	for i, n := range sizes {
		key := fmt.Sprintf("audit/o%d", i)
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(testenv.RandomBytes(t, n, ""))})
		if err != nil {
			t.Fatalf("PUT %s: %v", key, err)
		}
		want[opsRequestID(t, out.ResultMetadata)] = use{"write", key}
	}
	get := func(key, rng string) {
		in := &s3.GetObjectInput{Bucket: &bucket, Key: &key}
		if rng != "" {
			in.Range = &rng
		}
		out, err := c.GetObject(ctx, in)
		if err != nil {
			t.Fatalf("GET %s %s: %v", key, rng, err)
		}
		_, _ = io.Copy(io.Discard, out.Body)
		out.Body.Close()
		want[opsRequestID(t, out.ResultMetadata)] = use{"read", key}
	}
	get("audit/o1", "")
	get("audit/o2", "")
	get("audit/o4", "")
	get("audit/o3", "bytes=100-200000")

	recs := opsReadAudit(t, auditPath)
	if len(recs) != len(want) {
		t.Errorf("%d audit records for %d key uses", len(recs), len(want))
	}
	seen := map[string]bool{}
	for _, r := range recs {
		w, ok := want[r.RequestID]
		if !ok {
			t.Errorf("audit record for an unknown request: %+v", r)
			continue
		}
		if seen[r.RequestID] {
			t.Errorf("two audit records for request %s", r.RequestID)
		}
		seen[r.RequestID] = true
		if r.Action != w.action || r.Object != w.key || r.Bucket != bucket || r.AccessKey != gw.AccessKeyID {
			t.Errorf("record %+v, want action %s object %s bucket %s access key %s", r, w.action, w.key, bucket, gw.AccessKeyID)
		}
		if r.KeyID != arn {
			t.Errorf("record key id %q, want the key's ARN %q", r.KeyID, arn)
		}
		if r.Time.Before(start) || r.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("record time %v outside the test", r.Time)
		}
		_, meta := storedBytes(t, m.Client(t), bucket, w.key)
		envl, err := format.DecodeEnvelope(meta["s3seal-env"])
		if err != nil {
			t.Fatalf("envelope of %s: %v", w.key, err)
		}
		sum := sha256.Sum256(envl.WrappedKey)
		if r.WrappedKeySHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: record digest %s, want SHA-256 of the stored wrapped key %x", w.key, r.WrappedKeySHA256, sum)
		}
	}
	for id, w := range want {
		if !seen[id] {
			t.Errorf("no audit record for %s of %s (request %s)", w.action, w.key, id)
		}
	}
	st, err := os.Stat(auditPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v (%v), want 0600", st.Mode(), err)
	}
}

// TestOpsAuditReopenOnSIGHUP: after logrotate moves the audit file away, SIGHUP makes the gateway
// write to a new file at the configured path; without TLS, SIGHUP does not stop the gateway.
func TestOpsAuditReopenOnSIGHUP(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	env, _ := opsGatewayEnv(t, m, k.Endpoint, k.CreateKey(t))
	env["GATEWAY_AUDIT_FILE"] = auditPath
	gw := testenv.StartGateway(t, env)
	bucket := m.NewBucket(t)
	c := gw.Client(t)
	put := func(key string) string {
		out, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader([]byte(key))})
		if err != nil {
			t.Fatalf("PUT %s: %v", key, err)
		}
		return opsRequestID(t, out.ResultMetadata)
	}
	first := put("before-rotation")
	if err := os.Rename(auditPath, auditPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := gw.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The reopen is asynchronous: retry until a record lands in the new file.
	var second string
	for deadline := time.Now().Add(5 * time.Second); ; {
		second = put("after-rotation")
		if _, err := os.Stat(auditPath); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new audit file 5 s after SIGHUP")
		}
		time.Sleep(100 * time.Millisecond)
	}
	old, cur := opsReadAudit(t, auditPath+".1"), opsReadAudit(t, auditPath)
	if len(old) == 0 || old[0].RequestID != first {
		t.Errorf("rotated file %+v, want the first PUT %s", old, first)
	}
	if len(cur) != 1 || cur[0].RequestID != second || cur[0].Object != "after-rotation" {
		t.Errorf("new file %+v, want exactly the PUT %s", cur, second)
	}
	for _, r := range old[1:] {
		if r.Object != "after-rotation" {
			t.Errorf("unexpected record in the rotated file: %+v", r)
		}
	}
	// (The PUTs after SIGHUP succeeded: the gateway did not exit on it.)
}
