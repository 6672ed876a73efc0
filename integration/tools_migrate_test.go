package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/tools"
)

// toolsMigrateSizes are the plaintext sizes of the pre-existing objects (cycled).
var toolsMigrateSizes = []int{0, 1, 100, 65535, 65536, 65537, 200000, 3 << 20}

// TestToolsMigrate is issue 6 acceptance 3: 200 plaintext objects made directly in MinIO are
// encrypted in place by `gateway migrate`: afterwards every one reads through the gateway with
// the same content, content type and user metadata, is encrypted at rest (envelope present, the
// encrypted size, no 16-byte run of the plaintext in the stored bytes), no temporary object is
// left, a run stopped part-way (-limit) is finished by the next, and a final run migrates
// nothing. Objects outside the prefix and objects of the AWS
// S3 Encryption Client are left alone.
func TestToolsMigrate(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyID := k.CreateKey(t)
	bucket := m.NewBucket(t)
	mc := m.Client(t)
	ctx := context.Background()

	const total = 200
	plain := map[string][]byte{}
	tagged := map[string]string{} // key -> its tags, "k=v,k=v"
	for i := range total - 1 {
		key := fmt.Sprintf("legacy/%02d/file %d.txt", i%9, i)
		body := testenv.RandomBytes(t, toolsMigrateSizes[i%len(toolsMigrateSizes)], marker)
		in := &s3.PutObjectInput{
			Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader(body),
			ContentType: aws.String(fmt.Sprintf("text/x-legacy-%d", i%5)),
			Metadata:    map[string]string{"origin": fmt.Sprintf("legacy-%d", i)},
		}
		if i%10 == 0 {
			in.ContentDisposition = aws.String(fmt.Sprintf(`attachment; filename="f%d.txt"`, i))
			in.CacheControl = aws.String("max-age=60")
		}
		if i%25 == 0 {
			in.Tagging = aws.String(fmt.Sprintf("class=legacy&team=t%%20%d", i))
			tagged[key] = fmt.Sprintf("class=legacy,team=t %d", i)
		}
		if _, err := mc.PutObject(ctx, in); err != nil {
			t.Fatal(err)
		}
		plain[key] = body
	}
	// One multipart plaintext object (its ETag is "<md5>-2" before, the plain MD5 after).
	mp := testenv.RandomBytes(t, 5<<20+4321, marker)
	toolsPutMultipart(t, mc, bucket, "legacy/multipart.bin", mp, []int{5 << 20, 4321})
	plain["legacy/multipart.bin"] = mp
	// Left alone: outside the prefix, and an object of the AWS S3 Encryption Client.
	outside := testenv.RandomBytes(t, 5000, marker)
	if _, err := mc.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("other/keep"), Body: bytes.NewReader(outside)}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &bucket, Key: aws.String("legacy/s3ec-object"), Body: strings.NewReader("not really ciphertext"),
		Metadata: map[string]string{"x-amz-key-v2": "AAAA", "x-amz-cek-alg": "AES/GCM/NoPadding", "x-amz-iv": "AAAAAAAAAAAAAAAA"},
	}); err != nil {
		t.Fatal(err)
	}
	before := toolsSnapshot(t, mc, bucket, "", false)

	env := toolsEnv(m, k.Endpoint, keyID, nil)
	uri := "s3://" + bucket + "/legacy/"
	r := toolsRun(t, env, "migrate", "-dry-run", uri)
	toolsWantCounts(t, "dry run", toolsCounts(t, r.stdout), map[string]int64{"would-migrate": total, "client-encrypted": 1})
	toolsSameSnapshot(t, before, toolsSnapshot(t, mc, bucket, "", false), true)

	// A first run stops after 50 objects; the next one does the rest.
	r = toolsRun(t, env, "migrate", "-limit", "50", "-concurrency", "3", uri)
	if r.code != 3 {
		t.Errorf("migrate -limit 50: exit %d, want 3 (incomplete)", r.code)
	}
	toolsWantCounts(t, "migrate -limit 50", toolsCounts(t, r.stdout), map[string]int64{"migrated": 50})
	r = toolsRun(t, env, "migrate", "-concurrency", "6", uri)
	if r.code != 0 {
		t.Fatalf("migrate: exit %d", r.code)
	}
	toolsWantCounts(t, "migrate", toolsCounts(t, r.stdout), map[string]int64{"migrated": total - 50, "already-encrypted": 50, "client-encrypted": 1})

	after := toolsSnapshot(t, mc, bucket, "", true)
	if len(after) != len(before) {
		t.Errorf("%d objects in the bucket before, %d after (temporary objects left?)", len(before), len(after))
	}
	for key := range after {
		if strings.Contains(key, tools.TempMarker) {
			t.Errorf("temporary object left: %s", key)
		}
	}
	for _, key := range []string{"other/keep", "legacy/s3ec-object"} {
		if after[key].sum != before[key].sum || after[key].env != "" {
			t.Errorf("%s was changed", key)
		}
	}
	arn := toolsKeyARN(t, k, keyID)
	for key, body := range plain {
		s := after[key]
		switch {
		case s.env == "" || !toolsSameKey(s.keyID, keyID, arn):
			t.Errorf("%s: no envelope under the key (key id %q)", key, s.keyID)
		case s.size != format.EncryptedSize(int64(len(body))):
			t.Errorf("%s: %d stored bytes, want the encrypted size %d", key, s.size, format.EncryptedSize(int64(len(body))))
		case len(body) >= 16 && sharedRun(body, s.storedAt) >= 0:
			t.Errorf("%s: plaintext run in the stored bytes", key)
		case bytes.Contains(s.storedAt, []byte(marker)):
			t.Errorf("%s: marker in the stored bytes", key)
		case s.ctype != before[key].ctype || s.meta["origin"] != before[key].meta["origin"]:
			t.Errorf("%s: content type or metadata lost: %q %v -> %q %v", key, before[key].ctype, before[key].meta, s.ctype, s.meta)
		}
	}

	for key, want := range tagged {
		if got := toolsTags(t, mc, bucket, key); got != want {
			t.Errorf("%s: tags %q after the migration, want %q", key, got, want)
		}
	}

	// Through a gateway: same content, headers, metadata; single-part ETags are the plain MD5.
	gw := testenv.StartGateway(t, toolsEnv(m, k.Endpoint, keyID, nil))
	gc := gw.Client(t)
	toolsGetAll(t, gc, bucket, plain)
	for i, key := range []string{"legacy/00/file 0.txt", "legacy/01/file 10.txt", "legacy/multipart.bin", "legacy/05/file 5.txt"} {
		o, err := gc.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(o.Body)
		o.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		sum := md5.Sum(plain[key])
		if want := `"` + hex.EncodeToString(sum[:]) + `"`; aws.ToString(o.ETag) != want || !bytes.Equal(got, plain[key]) {
			t.Errorf("%s: ETag %s, want %s (or content differs)", key, aws.ToString(o.ETag), want)
		}
		if aws.ToString(o.ContentType) != before[key].ctype || o.Metadata["origin"] != before[key].meta["origin"] {
			t.Errorf("%s: gateway shows %q %v, want %q %v", key, aws.ToString(o.ContentType), o.Metadata, before[key].ctype, before[key].meta)
		}
		if i < 2 && (aws.ToString(o.ContentDisposition) == "" || aws.ToString(o.CacheControl) != "max-age=60") {
			t.Errorf("%s: content disposition / cache control lost: %q %q", key, aws.ToString(o.ContentDisposition), aws.ToString(o.CacheControl))
		}
	}

	// A rerun has nothing to do.
	r = toolsRun(t, env, "migrate", uri)
	if r.code != 0 {
		t.Fatalf("rerun: exit %d", r.code)
	}
	toolsWantCounts(t, "rerun", toolsCounts(t, r.stdout), map[string]int64{"already-encrypted": total, "client-encrypted": 1})
	again := toolsSnapshot(t, mc, bucket, "", false)
	for key, s := range after {
		if again[key].sum != s.sum || again[key].env != s.env {
			t.Errorf("%s: changed by the rerun", key)
		}
	}
}
