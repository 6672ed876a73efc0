package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// mpCrashStep is one backend request of a Complete: the N-th request (from 1) of its Label.
type mpCrashStep struct {
	label string
	n     int
}

func (s mpCrashStep) String() string { return fmt.Sprintf("%s #%d", s.label, s.n) }

// mpCrashSteps numbers the requests of a recorded Complete by label.
func mpCrashSteps(reqs []tapReq) []mpCrashStep {
	seen := map[string]int{}
	var steps []mpCrashStep
	for _, r := range reqs {
		seen[r.Label()]++
		steps = append(steps, mpCrashStep{r.Label(), seen[r.Label()]})
	}
	return steps
}

// mpCrashEnv starts gateways that all share one client credential, KMS key and backend (a tap
// in front of the shared MinIO): a restarted gateway is the same deployment as the killed one.
type mpCrashEnv struct {
	m     *testenv.MinIO
	kms   string
	keyID string
	creds map[string]string
}

func (e *mpCrashEnv) start(t *testing.T, tap *backendTap) (*testenv.Gateway, *s3.Client) {
	t.Helper()
	gw := testenv.StartGateway(t, coreGatewayEnv(e.m, tap.URL, e.kms, e.keyID, e.creds))
	return gw, gw.Client(t)
}

// TestMultipartCompleteCrash (issue 22, format 3): a gateway killed (SIGKILL) in the middle of
// a CompleteMultipartUpload, at every backend request the Complete makes (found by a first,
// recorded Complete) and at two moments of it: before the request reaches MinIO (the tap kills
// the gateway and drops the request) and after MinIO answered (the tap reads MinIO's whole
// answer, kills the gateway, drops the answer). The client sees a connection error; a gateway
// restarted on the same backend and keys is sent the same Complete again (same upload id, same
// parts). Allowed outcomes:
//
//   - 200, and then GET and HEAD give exactly the client's bytes with the Complete's ETag (S3's
//     multipart ETag), ListObjectVersions through the gateway lists the one object and nothing
//     else, MinIO holds no upload record and no open upload, and DeleteObject + DeleteBucket
//     through the gateway succeed;
//   - an S3 error (4xx with a code: NoSuchUpload, InvalidPart, ...), and then the key holds no
//     object (GET and HEAD 404) or a readable one (the client's bytes, GET's ETag = HEAD's).
//
// Never a 5xx or a connection error to the retry, never a 200 followed by a failed read, and
// never an object at the key that GET or HEAD refuse. A format-2 gateway fails the steps after
// the backend Complete: the retry gets NoSuchUpload and the object, without its manifest, is
// refused.
func TestMultipartCompleteCrash(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	env := &mpCrashEnv{m: m, kms: k.Endpoint, keyID: k.CreateKey(t)}
	direct := m.Client(t)
	ctx := context.Background()

	// The recording run: the backend requests of one Complete, unharmed.
	tap := newBackendTap(t, m.Endpoint)
	gw, c := env.start(t, tap)
	env.creds = map[string]string{"GATEWAY_ACCESS_KEY_ID": gw.AccessKeyID, "GATEWAY_SECRET_ACCESS_KEY": gw.SecretAccessKey}
	bucket := m.NewBucket(t)
	u := newMPUpload(t, c, bucket, "obj", mpCompleteParts)
	mark := tap.mark()
	_, err := c.CompleteMultipartUpload(ctx, u.completeInput())
	reqs := tap.settle(t, mark, 300*time.Millisecond)
	tapLog(t, "recorded Complete", reqs)
	if err != nil {
		t.Fatalf("recorded CompleteMultipartUpload: %v", err)
	}
	steps := mpCrashSteps(reqs)
	if len(steps) == 0 {
		t.Fatal("the recorded Complete made no backend request")
	}
	if err := gw.Stop(t); err != nil {
		t.Logf("recording gateway exit: %v", err)
	}

	name := strings.NewReplacer(" (reserved)", "-reserved", "?", "-", "&", "-", " ", "")
	for i, step := range steps {
		for _, at := range []tapMoment{tapBefore, tapAfter} {
			t.Run(fmt.Sprintf("step%02d-%s-%d-%v", i+1, name.Replace(step.label), step.n, at), func(t *testing.T) {
				t.Parallel()
				mpCrashOne(t, env, direct, step, at)
			})
		}
	}
}

// mpCrashOne is one sub-test of TestMultipartCompleteCrash.
func mpCrashOne(t *testing.T, env *mpCrashEnv, direct *s3.Client, step mpCrashStep, at tapMoment) {
	ctx := context.Background()
	tap := newBackendTap(t, env.m.Endpoint)
	gw1, c1 := env.start(t, tap)
	bucket := recordsTestBucket(t, direct, "crash")
	if _, err := direct.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("CreateBucket on MinIO: %v", err)
	}
	u := newMPUpload(t, c1, bucket, "obj", mpCompleteParts)

	hook := tap.arm(&tapHook{
		Match: func(r tapReq) bool { return r.Label() == step.label },
		N:     step.n, At: at,
		Do: func(r tapReq) {
			gw1.Kill(t)
			t.Logf("gateway killed %s %v", at, r)
		},
	})
	mark := tap.mark()
	_, err := c1.CompleteMultipartUpload(ctx, u.completeInput())
	tapLog(t, "crashed Complete", tap.settle(t, mark, 100*time.Millisecond))
	if !hook.Fired() {
		gw1.Kill(t)
		t.Fatalf("the Complete never made the request %v (answer %v): the step list is not deterministic", step, err)
	}
	if !hook.Wait(30 * time.Second) {
		t.Fatal("the tap's kill of the gateway did not return within 30 s")
	}
	if err == nil {
		// The step came after the gateway had answered its client: nothing to retry.
		t.Logf("the client had its answer before the gateway was killed")
		_, c2 := env.start(t, tap)
		mpReadBack(t, c2, u, u.etag())
		return
	}
	if code, status := faultS3Code(err); status != 0 {
		t.Errorf("crashed Complete: the client got an answer (%d %s: %v), want a connection error", status, code, err)
	}

	_, c2 := env.start(t, tap)
	mark = tap.mark()
	out, err := c2.CompleteMultipartUpload(ctx, u.completeInput())
	tapLog(t, "retried Complete", tap.settle(t, mark, 100*time.Millisecond))
	code, status := faultS3Code(err)
	switch {
	case err == nil:
		got := aws.ToString(out.ETag)
		t.Logf("retried Complete: 200, ETag %s", got)
		if got != u.etag() {
			t.Errorf("retried Complete answered ETag %s, want S3's multipart ETag %s", got, u.etag())
		}
		mpReadBack(t, c2, u, got)
		mpCrashNoLeftovers(t, c2, direct, u)
	case status >= 400 && status < 500 && code != "":
		t.Logf("retried Complete: %d %s", status, code)
		mpCrashKeyState(t, c2, u, fmt.Sprintf("after the retried Complete answered %d %s", status, code))
	default:
		t.Errorf("retried Complete: %v (status %d, code %q), want 200 or a clear S3 error", err, status, code)
		mpCrashKeyState(t, c2, u, "after the failed retry")
	}
}

// mpCrashKeyState fails the test unless u's key holds no object (GET and HEAD 404) or one that
// GET reads whole as the client's bytes with HEAD's ETag.
func mpCrashKeyState(t *testing.T, c *s3.Client, u *mpUpload, when string) {
	t.Helper()
	ctx := context.Background()
	head, herr := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &u.bucket, Key: &u.key})
	out, gerr := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &u.bucket, Key: &u.key})
	hcode, hstatus := faultS3Code(herr)
	gcode, gstatus := faultS3Code(gerr)
	switch {
	case gerr != nil && gstatus == http.StatusNotFound && gcode == "NoSuchKey":
		if hstatus != http.StatusNotFound {
			t.Errorf("%s: GET says NoSuchKey, HEAD %d %s (%v)", when, hstatus, hcode, herr)
		}
		t.Logf("%s: the key holds no object", when)
	case gerr != nil:
		t.Errorf("%s: the key holds an object the gateway refuses: GET %d %s (%v); HEAD %d %s",
			when, gstatus, gcode, gerr, hstatus, hcode)
	default:
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, u.plain()) {
			t.Errorf("%s: GET gives %d bytes (read error %v), not the client's %d bytes", when, len(got), err, len(u.plain()))
		}
		if herr != nil {
			t.Errorf("%s: GET reads the object, HEAD fails: %v", when, herr)
		} else if aws.ToString(head.ETag) != aws.ToString(out.ETag) {
			t.Errorf("%s: GET ETag %s, HEAD ETag %s", when, aws.ToString(out.ETag), aws.ToString(head.ETag))
		}
		t.Logf("%s: the key holds the readable object", when)
	}
}

// mpCrashNoLeftovers checks what a successful retry leaves: through the gateway one version
// (u's key) and no delete marker; on MinIO no upload record or held part (reserved prefix) and
// no open upload; and the client can delete the object and then the bucket through the gateway.
func mpCrashNoLeftovers(t *testing.T, c, direct *s3.Client, u *mpUpload) {
	t.Helper()
	ctx := context.Background()
	vs, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &u.bucket})
	if err != nil {
		t.Fatalf("ListObjectVersions through the gateway: %v", err)
	}
	if len(vs.Versions) != 1 || aws.ToString(vs.Versions[0].Key) != u.key || len(vs.DeleteMarkers) != 0 {
		var got []string
		for _, v := range vs.Versions {
			got = append(got, aws.ToString(v.Key)+"@"+aws.ToString(v.VersionId))
		}
		for _, d := range vs.DeleteMarkers {
			got = append(got, "delete marker "+aws.ToString(d.Key))
		}
		t.Errorf("the gateway lists %v, want only %s", got, u.key)
	}
	if n := reservedEntries(t, direct, u.bucket); n != 0 {
		t.Errorf("MinIO holds %d versions under the reserved prefix after the Complete", n)
	}
	ups, err := direct.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &u.bucket})
	if err != nil {
		t.Fatalf("ListMultipartUploads on MinIO: %v", err)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("MinIO holds %d open uploads after the Complete", len(ups.Uploads))
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &u.bucket, Key: &u.key}); err != nil {
		t.Errorf("DeleteObject through the gateway: %v", err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &u.bucket}); err != nil {
		code, _ := faultS3Code(err)
		t.Errorf("DeleteBucket through the gateway: %s (%v)", code, err)
	}
}
