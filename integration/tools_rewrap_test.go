package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// toolsCountUnder counts the objects of a snapshot whose envelope names keyID (id or ARN).
func toolsCountUnder(snap map[string]toolsStored, keyID, arn string) int64 {
	var n int64
	for _, s := range snap {
		if toolsSameKey(s.keyID, keyID, arn) {
			n++
		}
	}
	return n
}

// toolsKillAfter runs a rewrap and SIGKILLs it once its progress lines report at least n
// objects rewrapped (or lets it end if it gets there first). It returns whether it killed it.
func toolsKillAfter(t *testing.T, env map[string]string, n int64, args ...string) bool {
	t.Helper()
	cmd := toolsCommand(t, env, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`rewrapped (\d+)`)
	killed := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil || killed {
			continue
		}
		if v, _ := strconv.ParseInt(m[1], 10, 64); v >= n {
			t.Logf("killing the rewrap (SIGKILL) at: %s", sc.Text())
			_ = cmd.Process.Kill()
			killed = true
		}
	}
	_ = cmd.Wait()
	return killed
}

// TestToolsRewrap is issue 6 acceptance 2: `gateway rewrap` of 500 objects to another KMS key.
// All read back through a fresh gateway, no object's stored bytes changed (direct reads before
// and after), reading no longer needs the old key (disabled), and an interrupted run is
// finished by running it again, which rewraps only the rest.
func TestToolsRewrap(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyA, keyB := k.CreateKey(t), k.CreateKey(t)
	arnA, arnB := toolsKeyARN(t, k, keyA), toolsKeyARN(t, k, keyB)
	bucket := m.NewBucket(t)
	env := toolsEnv(m, k.Endpoint, keyA, nil)
	gw := testenv.StartGateway(t, env)
	gc := gw.Client(t)

	const total = 500
	keys := make([]string, 0, total)
	for i := range total - 2 {
		keys = append(keys, fmt.Sprintf("data/%03d/obj-%d", i%17, i))
	}
	plain := toolsPutMany(t, gc, bucket, keys, func(i int) int { return (i * 7919) % 140000 })
	for _, key := range []string{"data/multi/one", "data/multi/two"} {
		body := testenv.RandomBytes(t, 5<<20+5<<20+12345, marker)
		toolsPutMultipart(t, gc, bucket, key, body, []int{5 << 20, 5 << 20, 12345})
		plain[key] = body
	}
	control := testenv.RandomBytes(t, 1000, marker) // stays under key A: shows the guard works
	if _, err := gc.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &bucket, Key: aws.String("control/a"), Body: strings.NewReader(string(control)),
	}); err != nil {
		t.Fatal(err)
	}
	mc := m.Client(t)
	before := toolsSnapshot(t, mc, bucket, "data/", false)
	if len(before) != total || toolsCountUnder(before, keyA, arnA) != total {
		t.Fatalf("setup: %d objects, %d under key A; want %d", len(before), toolsCountUnder(before, keyA, arnA), total)
	}
	gw.Stop(t)

	toolEnv := toolsEnv(m, k.Endpoint, keyA, nil)
	uri := "s3://" + bucket + "/data/"

	// A dry run changes nothing.
	r := toolsRun(t, toolEnv, "rewrap", "-dry-run", "-to-key", keyB, uri)
	if r.code != 0 {
		t.Fatalf("dry run: exit %d", r.code)
	}
	toolsWantCounts(t, "dry run", toolsCounts(t, r.stdout), map[string]int64{"would-rewrap": total})
	toolsSameSnapshot(t, before, toolsSnapshot(t, mc, bucket, "data/", false), true)

	// Run 1 stops after 150 objects (-limit).
	r = toolsRun(t, toolEnv, "rewrap", "-to-key", keyB, "-limit", "150", "-concurrency", "4", uri)
	if r.code != 3 {
		t.Errorf("run with -limit: exit %d, want 3 (incomplete)", r.code)
	}
	toolsWantCounts(t, "run 1 (-limit 150)", toolsCounts(t, r.stdout), map[string]int64{"rewrapped": 150})
	if n := toolsCountUnder(toolsSnapshot(t, mc, bucket, "data/", false), keyB, arnB); n != 150 {
		t.Fatalf("after run 1: %d objects under key B, want 150", n)
	}

	// Run 2 is killed (SIGKILL) part-way.
	killed := toolsKillAfter(t, toolEnv, 40, "rewrap", "-to-key", keyB, "-concurrency", "2", "-progress-interval", "50ms", uri)
	mid := toolsCountUnder(toolsSnapshot(t, mc, bucket, "data/", false), keyB, arnB)
	t.Logf("after run 2 (killed=%v): %d objects under key B", killed, mid)
	if mid < 150+40 {
		t.Fatalf("after run 2: %d objects under key B, want at least 190", mid)
	}

	// Run 3 finishes: it rewraps exactly the rest and skips what is done.
	r = toolsRun(t, toolEnv, "rewrap", "-to-key", keyB, uri)
	if r.code != 0 {
		t.Fatalf("run 3: exit %d", r.code)
	}
	toolsWantCounts(t, "run 3", toolsCounts(t, r.stdout), map[string]int64{"rewrapped": total - mid, "skipped": mid})
	// Run 4 has nothing left to do.
	r = toolsRun(t, toolEnv, "rewrap", "-to-key", arnB, uri)
	toolsWantCounts(t, "run 4", toolsCounts(t, r.stdout), map[string]int64{"skipped": total})

	after := toolsSnapshot(t, mc, bucket, "data/", false)
	toolsSameSnapshot(t, before, after, false)
	if n := toolsCountUnder(after, keyB, arnB); n != total {
		t.Fatalf("%d of %d objects under key B", n, total)
	}

	// Key A is disabled; a fresh gateway (empty caches) reads through the guard that enforces it.
	if _, err := k.Client(t).DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: &keyA}); err != nil {
		t.Fatal(err)
	}
	guard := newToolsKMSGuard(t, k)
	gw2 := testenv.StartGateway(t, toolsEnv(m, guard.URL, keyB, map[string]string{
		"GATEWAY_ACCESS_KEY_ID": gw.AccessKeyID, "GATEWAY_SECRET_ACCESS_KEY": gw.SecretAccessKey,
	}))
	gc2 := gw2.Client(t)
	toolsGetAll(t, gc2, bucket, plain)
	_, err := gc2.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("control/a")})
	if err == nil {
		t.Fatal("an object still under the disabled key A was served: the guard does not enforce the disable, so the check above proves nothing")
	}
	if guard.refused.Load() == 0 {
		t.Fatalf("the guard refused no KMS call (control read failed with %v)", err)
	}
	t.Logf("guard: %d KMS calls, %d refused; control object: %v", guard.calls.Load(), guard.refused.Load(), err)
}

// toolsSameSnapshot checks that every object's stored bytes are unchanged; sameEnvelope also
// wants the metadata unchanged, otherwise it wants every envelope replaced and the rest of the
// metadata and the content type kept.
func toolsSameSnapshot(t *testing.T, before, after map[string]toolsStored, sameEnvelope bool) {
	t.Helper()
	if len(after) != len(before) {
		t.Fatalf("%d objects before, %d after", len(before), len(after))
	}
	bad := 0
	for key, b := range before {
		a, ok := after[key]
		switch {
		case !ok:
			t.Errorf("%s: gone", key)
		case a.sum != b.sum || a.size != b.size:
			t.Errorf("%s: stored bytes changed (%d -> %d bytes)", key, b.size, a.size)
		case sameEnvelope && a.env != b.env:
			t.Errorf("%s: envelope changed by a dry run", key)
		case !sameEnvelope && a.env == b.env:
			t.Errorf("%s: envelope not replaced", key)
		case a.ctype != b.ctype || a.meta["origin"] != b.meta["origin"]:
			t.Errorf("%s: content type or user metadata lost: %q %v -> %q %v", key, b.ctype, b.meta, a.ctype, a.meta)
		default:
			continue
		}
		if bad++; bad > 10 {
			t.Fatal("too many differences")
		}
	}
}

// TestToolsRewrapMultipartCopy rewraps with a small -copy-threshold, so that objects are copied
// part by part (UploadPartCopy, as above 5 GiB): a multipart object keeps its parts, a
// multipart object the backend holds as one part (after a plain copy) gets its parts back from
// its part headers (a format-3 object's tail, found by its footer, with the last one), a
// single-part object is copied in one part; stored bytes never change and everything reads
// back through the gateway.
func TestToolsRewrapMultipartCopy(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyA, keyB := k.CreateKey(t), k.CreateKey(t)
	bucket := m.NewBucket(t)
	gwEnv := toolsEnv(m, k.Endpoint, keyA, nil)
	gw := testenv.StartGateway(t, gwEnv)
	gc := gw.Client(t)
	mc := m.Client(t)
	ctx := context.Background()

	plain := map[string][]byte{
		"mp/parts":  testenv.RandomBytes(t, 5<<20+5<<20+777, marker),
		"mp/single": testenv.RandomBytes(t, 6<<20+3, marker),
	}
	toolsPutMultipart(t, gc, bucket, "mp/parts", plain["mp/parts"], []int{5 << 20, 5 << 20, 777})
	if _, err := gc.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("mp/single"),
		Body: strings.NewReader(string(plain["mp/single"]))}); err != nil {
		t.Fatal(err)
	}
	partsOf := func(key string) int32 {
		h, err := mc.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key), PartNumber: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToInt32(h.PartsCount)
	}
	// The gateway's Complete uploads the part manifest as the object's tail (FORMAT.md 3.6):
	// the backend holds the object as the client's parts, the last one (777 bytes, held by the
	// gateway) followed by the tail; the copies below must keep every byte.
	toolsWantFormat3(t, mc, bucket, "mp/parts")
	if n := partsOf("mp/parts"); n != 3 {
		t.Fatalf("setup: the format-3 object has %d backend parts, want 3", n)
	}
	if _, err := mc.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: &bucket, Key: aws.String("mp/parts"),
		Tagging: &s3types.Tagging{TagSet: []s3types.Tag{{Key: aws.String("keep"), Value: aws.String("me too")}}}}); err != nil {
		t.Fatal(err)
	}
	wantTags := func(when string) {
		if got := toolsTags(t, mc, bucket, "mp/parts"); got != "keep=me too" {
			t.Errorf("%s: tags %q, want keep=me too", when, got)
		}
	}
	before := toolsSnapshot(t, mc, bucket, "mp/", false)
	env := toolsEnv(m, k.Endpoint, keyA, nil)
	uri := "s3://" + bucket + "/mp/"

	// Part by part to key B: the multipart object keeps its 3 backend parts.
	r := toolsRun(t, env, "rewrap", "-to-key", keyB, "-copy-threshold", "1048576", uri)
	toolsWantCounts(t, "rewrap to B", toolsCounts(t, r.stdout), map[string]int64{"rewrapped": 2})
	if n := partsOf("mp/parts"); n != 3 {
		t.Errorf("after the part-by-part copy the backend has %d parts, want 3", n)
	}
	toolsSameSnapshot(t, before, toolsSnapshot(t, mc, bucket, "mp/", false), false)
	toolsGetAll(t, gc, bucket, plain)
	wantTags("after the part-by-part copy")

	// Whole-object copy back to key A: the backend now holds the multipart object as one part.
	r = toolsRun(t, env, "rewrap", "-to-key", keyA, uri)
	toolsWantCounts(t, "rewrap to A", toolsCounts(t, r.stdout), map[string]int64{"rewrapped": 2})
	if n := partsOf("mp/parts"); n > 1 {
		t.Fatalf("after a CopyObject the backend still has %d parts; this step wants one", n)
	}
	toolsGetAll(t, gc, bucket, plain)

	// Part by part again: the parts come from the part headers.
	r = toolsRun(t, env, "rewrap", "-to-key", keyB, "-copy-threshold", "1048576", uri)
	toolsWantCounts(t, "rewrap to B again", toolsCounts(t, r.stdout), map[string]int64{"rewrapped": 2})
	if n := partsOf("mp/parts"); n != 3 {
		t.Errorf("parts from the part headers: backend has %d parts, want 3", n)
	}
	toolsSameSnapshot(t, before, toolsSnapshot(t, mc, bucket, "mp/", false), false)
	gw2 := testenv.StartGateway(t, toolsEnv(m, k.Endpoint, keyB, map[string]string{
		"GATEWAY_ACCESS_KEY_ID": gw.AccessKeyID, "GATEWAY_SECRET_ACCESS_KEY": gw.SecretAccessKey,
	}))
	toolsGetAll(t, gw2.Client(t), bucket, plain)
	wantTags("at the end")
}

// TestToolsRewrapToLocalKey moves objects from a KMS key to the local key file
// (-to-provider local): afterwards a gateway that has only the key file reads them, and the
// stored bytes did not change.
func TestToolsRewrapToLocalKey(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyID := k.CreateKey(t)
	bucket := m.NewBucket(t)
	gw := testenv.StartGateway(t, toolsEnv(m, k.Endpoint, keyID, nil))
	plain := toolsPutMany(t, gw.Client(t), bucket, []string{"x/1", "x/2", "x/3"}, func(i int) int { return 1000 * i })
	mc := m.Client(t)
	before := toolsSnapshot(t, mc, bucket, "x/", false)
	gw.Stop(t)

	// A key file with a key "k1" (the gateway makes one on first start in local mode).
	keyFile := filepath.Join(t.TempDir(), "keys.yaml")
	local := testenv.StartGateway(t, toolsEnv(m, "", "", map[string]string{"GATEWAY_KEY_PROVIDER": "local", "GATEWAY_LOCAL_KEY_FILE": keyFile}))
	local.Stop(t)

	env := toolsEnv(m, k.Endpoint, keyID, map[string]string{"GATEWAY_LOCAL_KEY_FILE": keyFile})
	r := toolsRun(t, env, "rewrap", "-to-provider", "local", "s3://"+bucket+"/x/")
	if r.code != 0 {
		t.Fatalf("rewrap to the local key: exit %d", r.code)
	}
	toolsWantCounts(t, "rewrap to local", toolsCounts(t, r.stdout), map[string]int64{"rewrapped": 3})
	after := toolsSnapshot(t, mc, bucket, "x/", false)
	toolsSameSnapshot(t, before, after, false)
	for key, s := range after {
		if s.keyID != "k1" {
			t.Errorf("%s: envelope under %q, want the local key k1", key, s.keyID)
		}
	}
	reader := testenv.StartGateway(t, toolsEnv(m, "", "", map[string]string{
		"GATEWAY_KEY_PROVIDER": "local", "GATEWAY_LOCAL_KEY_FILE": keyFile,
		"GATEWAY_ACCESS_KEY_ID": gw.AccessKeyID, "GATEWAY_SECRET_ACCESS_KEY": gw.SecretAccessKey,
	}))
	toolsGetAll(t, reader.Client(t), bucket, plain)
}

// TestToolsSSEKMSContext: an object written with SSE-KMS and a client encryption context keeps
// its context through a rewrap (the new data key is bound to it too, and the gateway still
// answers with the SSE-KMS headers, now naming the new key), and `decrypt` recovers it from
// MinIO and from downloaded files.
func TestToolsSSEKMSContext(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyA, keyB := k.CreateKey(t), k.CreateKey(t)
	arnB := toolsKeyARN(t, k, keyB)
	bucket := m.NewBucket(t)
	gw := testenv.StartGateway(t, toolsEnv(m, k.Endpoint, keyA, nil))
	ctx := context.Background()
	const encCtx = "eyJwcm9qZWN0IjoiYWxwaGEifQ==" // {"project":"alpha"}
	plain := map[string][]byte{"ctx/obj": testenv.RandomBytes(t, 100000, marker)}
	if _, err := gw.Client(t).PutObject(ctx, &s3.PutObjectInput{
		Bucket: &bucket, Key: aws.String("ctx/obj"), Body: strings.NewReader(string(plain["ctx/obj"])),
		ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSEncryptionContext: aws.String(encCtx),
	}); err != nil {
		t.Fatal(err)
	}
	mc := m.Client(t)
	before := toolsSnapshot(t, mc, bucket, "ctx/", false)
	if before["ctx/obj"].meta["s3seal-ctx"] == "" {
		t.Fatalf("setup: the gateway kept no client context (metadata %v)", before["ctx/obj"].meta)
	}
	gw.Stop(t)

	env := toolsEnv(m, k.Endpoint, keyA, nil)
	r := toolsRun(t, env, "rewrap", "-to-key", keyB, "s3://"+bucket+"/ctx/")
	toolsWantCounts(t, "rewrap", toolsCounts(t, r.stdout), map[string]int64{"rewrapped": 1})
	after := toolsSnapshot(t, mc, bucket, "ctx/", false)
	if a := after["ctx/obj"]; a.sum != before["ctx/obj"].sum || a.meta["s3seal-ctx"] != before["ctx/obj"].meta["s3seal-ctx"] ||
		a.meta["s3seal-sse"] != before["ctx/obj"].meta["s3seal-sse"] || !toolsSameKey(a.keyID, keyB, arnB) {
		t.Fatalf("after the rewrap: key %q, metadata %v (before %v), stored bytes same %v", a.keyID, a.meta, before["ctx/obj"].meta, a.sum == before["ctx/obj"].sum)
	}

	gw2 := testenv.StartGateway(t, toolsEnv(m, k.Endpoint, keyB, map[string]string{
		"GATEWAY_ACCESS_KEY_ID": gw.AccessKeyID, "GATEWAY_SECRET_ACCESS_KEY": gw.SecretAccessKey,
	}))
	toolsGetAll(t, gw2.Client(t), bucket, plain)
	resp, err := http.DefaultClient.Do(signedRequest(t, http.MethodHead, gw2.Endpoint+"/"+bucket+"/ctx/obj", nil, "", gw.AccessKeyID, gw.SecretAccessKey))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header; resp.StatusCode != http.StatusOK || h.Get("X-Amz-Server-Side-Encryption") != "aws:kms" ||
		!toolsSameKey(h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"), keyB, arnB) || h.Get("X-Amz-Server-Side-Encryption-Context") != encCtx {
		t.Errorf("HEAD after the rewrap: %d, SSE headers %q %q %q", resp.StatusCode, h.Get("X-Amz-Server-Side-Encryption"),
			h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"), h.Get("X-Amz-Server-Side-Encryption-Context"))
	}
	gw2.Stop(t)

	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if r := toolsRun(t, env, "decrypt", "-o", out, "s3://"+bucket+"/ctx/obj"); r.code != 0 {
		t.Fatalf("decrypt from MinIO: exit %d", r.code)
	}
	toolsWantFile(t, "from MinIO", out, plain["ctx/obj"])
	stored, meta := toolsDownload(t, m, bucket, "ctx/obj", dir)
	if r := toolsRun(t, env, "decrypt", "-o", out+".file", "-file", stored, "-metadata", meta, "-bucket", bucket, "-key", "ctx/obj"); r.code != 0 {
		t.Fatalf("decrypt from files: exit %d", r.code)
	}
	toolsWantFile(t, "from files", out+".file", plain["ctx/obj"])
}
