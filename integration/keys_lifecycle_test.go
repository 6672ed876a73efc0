package integration

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestKeysLifecycle (issue 15, acceptance 3), for the local key file and for PKCS#11:
// `gateway keys create` and `list`; after `rotate`, new objects get the new version and old
// ones still read; `retire` refuses, naming an object, while objects need the old version;
// after `rewrap -from-version` it succeeds, the version is gone from `list`, and every object
// still reads.
func TestKeysLifecycle(t *testing.T) {
	w := newKeysWorld(t, map[string]string{"files": "files:team", "hsm": "hsm:team"})
	cases := []struct {
		provider string
		v1, v2   string // the ids envelopes record
	}{
		{"files", "files:team", "files:team.v2"},
		{"hsm", "hsm:team/v1/gcm", "hsm:team/v2/gcm"},
	}
	w.tool(t, 0, "keys", "create", "-provider", "hsm", "s3seal") // the hsm provider's default key
	// A key file must exist before a key is added to it: the gateway's first start makes it.
	gw := w.start(t)
	gw.Stop(t)
	for _, tc := range cases {
		t.Run(tc.provider, func(t *testing.T) {
			bucket := w.buckets[tc.provider]
			r := w.tool(t, 0, "keys", "create", "-provider", tc.provider, "team")
			if !strings.Contains(r.stdout, tc.provider+":team") {
				t.Errorf("create does not print the bucket_key_ids value to use: %q", r.stdout)
			}
			r = w.tool(t, 0, "keys", "list", "-provider", tc.provider)
			if line := keysListLine(r.stdout, tc.v1); line == "" || !strings.Contains(line, bucket) {
				t.Errorf("list: no line for %s naming bucket %s:\n%s", tc.v1, bucket, r.stdout)
			}

			plain := map[string][]byte{}
			put := func(gw *testenv.Gateway, from, to int) {
				for i := from; i < to; i++ {
					key := "obj" + strconv.Itoa(i)
					plain[key] = testenv.RandomBytes(t, 1000+i, marker)
					if _, err := gw.Client(t).PutObject(context.Background(), &s3.PutObjectInput{
						Bucket: &bucket, Key: &key, Body: bytes.NewReader(plain[key])}); err != nil {
						t.Fatalf("PUT %s: %v", key, err)
					}
				}
			}
			gw := w.start(t)
			put(gw, 0, 5)
			gw.Stop(t)

			r = w.tool(t, 0, "keys", "rotate", "-provider", tc.provider, "team")
			if !strings.Contains(r.stdout, tc.v2) {
				t.Errorf("rotate does not print the new version %s: %q", tc.v2, r.stdout)
			}
			r = w.tool(t, 0, "keys", "list", "-provider", tc.provider)
			if line := keysListLine(r.stdout, tc.v2); !strings.Contains(line, "yes") {
				t.Errorf("list: %s is not the active version:\n%s", tc.v2, r.stdout)
			}
			gw = w.start(t)
			put(gw, 5, 10)
			ids := w.keyIDs(t, bucket)
			for i := range 10 {
				want := tc.v1
				if i >= 5 {
					want = tc.v2
				}
				if got := ids["obj"+strconv.Itoa(i)]; got != want {
					t.Errorf("obj%d under %q, want %q", i, got, want)
				}
			}
			toolsGetAll(t, gw.Client(t), bucket, plain)

			r = w.tool(t, 1, "keys", "retire", tc.v1)
			if !strings.Contains(r.stderr, "refused") || !strings.Contains(r.stderr, bucket+"/obj") {
				t.Errorf("retire while objects need %s does not say which: %s", tc.v1, r.stderr)
			}
			r = w.tool(t, 0, "rewrap", "-from-version", tc.v1, "s3://"+bucket+"/")
			toolsWantCounts(t, "rewrap -from-version", toolsCounts(t, r.stdout), map[string]int64{"rewrapped": 5, "skipped": 5})
			for key, id := range w.keyIDs(t, bucket) {
				if id != tc.v2 {
					t.Errorf("after rewrap, %s under %q", key, id)
				}
			}
			w.tool(t, 0, "keys", "retire", tc.v1)
			r = w.tool(t, 0, "keys", "list", "-provider", tc.provider)
			if keysListLine(r.stdout, tc.v1) != "" {
				t.Errorf("list still shows the retired %s:\n%s", tc.v1, r.stdout)
			}
			gw.Stop(t)
			gw = w.start(t)
			toolsGetAll(t, gw.Client(t), bucket, plain)
			gw.Stop(t)
		})
	}
}

// keysListLine is the line of `keys list` output for id ("" if none).
func keysListLine(out, id string) string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == id {
			return line
		}
	}
	return ""
}

// TestKeysPKCS11Failures (issue 15, acceptance 1): a gateway whose token refuses the PIN, and a
// gateway whose token goes away, answer S3 errors to writes and to uncached reads: never
// plaintext, never a stored object, and they keep running (no panic).
func TestKeysPKCS11Failures(t *testing.T) {
	w := newKeysWorld(t, nil)
	w.tool(t, 0, "keys", "create", "-provider", "hsm", "s3seal")
	bucket := w.buckets["hsm"]
	body := testenv.RandomBytes(t, 50_000, marker)
	good := w.start(t)
	if _, err := good.Client(t).PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("a"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	good.Stop(t)

	// want is the status docs/KEYS.md gives: 403 AccessDenied (wrong PIN), 503
	// ServiceUnavailable (token gone), as for a KMS that refuses or is down.
	check := func(t *testing.T, gw *testenv.Gateway, want int) {
		t.Helper()
		for _, key := range []string{"new-1", "new-2"} {
			st, resp := keysRaw(t, gw, http.MethodPut, bucket, key, body)
			if st != want || !strings.Contains(resp, "<Error>") {
				t.Errorf("PUT with the token refusing: %d %q, want %d and an S3 error", st, resp, want)
			}
			t.Logf("PUT %s: %d %s", key, st, s3ErrorCode([]byte(resp)))
		}
		st, resp := keysRaw(t, gw, http.MethodGet, bucket, "a", nil)
		if st != want || !strings.Contains(resp, "<Error>") || strings.Contains(resp, string(body[:64])) {
			t.Errorf("GET with the token refusing: %d, want %d, an S3 error and no plaintext (%d bytes)", st, want, len(resp))
		}
		t.Logf("GET a: %d %s", st, s3ErrorCode([]byte(resp)))
		for key := range w.keyIDs(t, bucket) {
			if key != "a" {
				t.Errorf("object %s stored while the token refused", key)
			}
		}
		if st, _ := keysRaw(t, gw, http.MethodGet, bucket, "a", nil); st != want {
			t.Errorf("second GET: %d", st) // still running and still refusing
		}
	}
	t.Run("wrong-pin", func(t *testing.T) {
		env := maps(w.env, map[string]string{"HSM_PIN": "wrong-" + w.tok.PIN})
		gw := testenv.StartGatewayWithArgs(t, env, "-config", w.cfg)
		check(t, gw, http.StatusForbidden)
		gw.Stop(t)
	})
	t.Run("token-removed", func(t *testing.T) {
		env := maps(w.env, map[string]string{"GATEWAY_CACHE_DISABLED": "true"})
		gw := testenv.StartGatewayWithArgs(t, env, "-config", w.cfg)
		if got := keysGet(t, gw.Client(t), bucket, "a", ""); !bytes.Equal(got, body) {
			t.Fatal("object does not read before the token goes away")
		}
		w.tok.DeleteToken(t)
		check(t, gw, http.StatusServiceUnavailable)
		gw.Stop(t)
	})
}

// maps returns a copy of a with b on top.
func maps(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// keysRaw sends a signed request and returns the status and body.
func keysRaw(t *testing.T, gw *testenv.Gateway, method, bucket, key string, body []byte) (int, string) {
	t.Helper()
	req := signedRequest(t, method, gw.Endpoint+"/"+bucket+"/"+key, body, "UNSIGNED-PAYLOAD", gw.AccessKeyID, gw.SecretAccessKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, key, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestKeysCreateKMS: `gateway keys create -provider kms` makes a symmetric ENCRYPT_DECRYPT key
// with the alias asked for and prints the configuration line that uses it; a gateway given
// that key id writes objects under it and reads them back.
func TestKeysCreateKMS(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	env := toolsEnv(m, k.Endpoint, "", map[string]string{"GATEWAY_KMS_KEY_ID": ""})
	r := toolsRun(t, env, "keys", "create", "-provider", "kms", "-alias", "s3seal-test", "objects of the test")
	if r.code != 0 {
		t.Fatalf("keys create -provider kms: exit %d: %s", r.code, r.stderr)
	}
	arn := regexp.MustCompile(`key_id: "(arn:aws:kms:[^"]+)"`).FindStringSubmatch(r.stdout)
	if arn == nil {
		t.Fatalf("no configuration line with the key's ARN in %q", r.stdout)
	}
	ctx := context.Background()
	d, err := k.Client(t).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/s3seal-test")})
	if err != nil {
		t.Fatalf("the alias was not created: %v", err)
	}
	if aws.ToString(d.KeyMetadata.Arn) != arn[1] || d.KeyMetadata.KeyUsage != kmstypes.KeyUsageTypeEncryptDecrypt ||
		d.KeyMetadata.KeySpec != kmstypes.KeySpecSymmetricDefault {
		t.Fatalf("key %s: usage %s, spec %s; want the printed ARN %s, ENCRYPT_DECRYPT, SYMMETRIC_DEFAULT",
			aws.ToString(d.KeyMetadata.Arn), d.KeyMetadata.KeyUsage, d.KeyMetadata.KeySpec, arn[1])
	}
	bucket := m.NewBucket(t)
	gw := testenv.StartGateway(t, toolsEnv(m, k.Endpoint, arn[1], nil))
	body := testenv.RandomBytes(t, 20_000, marker)
	if _, err := gw.Client(t).PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("o"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	if got := keysGet(t, gw.Client(t), bucket, "o", ""); !bytes.Equal(got, body) {
		t.Fatal("object under the new key does not read back")
	}
	if id := toolsSnapshot(t, m.Client(t), bucket, "", false)["o"].keyID; id != arn[1] {
		t.Fatalf("object stored under %q, want the new key %s", id, arn[1])
	}
}
