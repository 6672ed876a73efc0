package integration

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestHostileHarnessThroughGateway: the hostile backend in its place behind a real gateway and
// MinIO. Requests pass unchanged (MinIO accepts the gateway's signatures through it), a byte
// flipped in the stored body on one read makes that GET fail, an S3 error on one read reaches
// the client (a 503 is retried once by the gateway instead), a reset connection never yields a
// wrong body; the next reads are whole again.
func TestHostileHarnessThroughGateway(t *testing.T) {
	gw, hostile, m := testenv.StartGatewayHostile(t, nil)
	bucket := m.NewBucket(t)
	plain := testenv.RandomBytes(t, 3*coreS+17, marker)
	if _, err := gw.Client(t).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &bucket, Key: aws.String("obj"), Body: bytes.NewReader(plain)}); err != nil {
		t.Fatal(err)
	}
	path := testenv.ObjectPath(bucket, "obj")
	hc := coreHTTPClient()
	get := func() coreResult {
		return coreDo(hc, coreRequest(t, http.MethodGet, gw.Endpoint+path, nil, gw.AccessKeyID, gw.SecretAccessKey))
	}
	if r := get(); !r.complete() || !bytes.Equal(r.Body, plain) {
		t.Fatalf("GET through the hostile proxy, no attack: %v", r)
	}

	// Every backend GET of the object from now on is changed once: the gateway's GET of a
	// cached object is one backend read, so the next read number is that GET's.
	hostile.FlipOnRead(path, hostile.Reads(path)+1, 2*coreS+5)
	if r := get(); r.complete() {
		t.Errorf("GET with a flipped stored byte: %v, want a failure", r)
	}
	hostile.RefuseOnRead(path, hostile.Reads(path)+1, http.StatusInternalServerError, "InternalError")
	if r := get(); r.complete() || r.Status != http.StatusInternalServerError {
		t.Errorf("GET with the backend answering 500: %v, want 500", r)
	}
	// One 503 (SlowDown) is retried by the gateway after a pause: the client gets the object.
	hostile.RefuseOnRead(path, hostile.Reads(path)+1, http.StatusServiceUnavailable, "SlowDown")
	if r := get(); !r.complete() || !bytes.Equal(r.Body, plain) {
		t.Errorf("GET with the backend answering 503 once: %v, want the plaintext (retried)", r)
	}
	// A reset before the answer: Go's transport may retry the idempotent GET on a new
	// connection (the next read), so the client sees a failure or the whole plaintext.
	n := hostile.Reads(path) + 1
	hostile.ResetOnRead(path, n)
	if r := get(); r.complete() && !bytes.Equal(r.Body, plain) {
		t.Errorf("GET with the backend connection reset: %v, want a failure or the plaintext", r)
	}
	if hostile.Reads(path) < n {
		t.Errorf("the reset read %d never reached the backend (%d reads)", n, hostile.Reads(path))
	}
	if r := get(); !r.complete() || !bytes.Equal(r.Body, plain) {
		t.Errorf("GET after the attacks: %v, want the plaintext", r)
	}
}
