package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/testenv"
)

// toolsPresign runs `gateway presign` and returns the URL it printed.
func toolsPresign(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	r := toolsRun(t, env, append([]string{"presign"}, args...)...)
	if r.code != 0 {
		t.Fatalf("presign %v: exit %d: %s", args, r.code, r.stderr)
	}
	u := strings.TrimSpace(r.stdout)
	if strings.Count(r.stdout, "\n") != 1 || !strings.HasPrefix(u, "http") {
		t.Fatalf("presign printed %q, want one URL line", r.stdout)
	}
	return u
}

// toolsCurl runs curl with args (-sS, the status code written to stdout) and returns the status.
func toolsCurl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("curl", append([]string{"-sS", "-w", "%{http_code}"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// TestToolsPresign is issue 6 acceptance 5: presigned PUT and GET URLs made by `gateway presign`
// (from the gateway's own configuration: listen address and client credential) work with curl,
// the PUT stores the object encrypted, the GET returns it byte-identical, and the URLs expire.
func TestToolsPresign(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyID := k.CreateKey(t)
	bucket := m.NewBucket(t)
	gw := testenv.StartGateway(t, toolsEnv(m, k.Endpoint, keyID, nil))
	env := map[string]string{
		"GATEWAY_LISTEN":            strings.TrimPrefix(gw.Endpoint, "http://"),
		"GATEWAY_ACCESS_KEY_ID":     gw.AccessKeyID,
		"GATEWAY_SECRET_ACCESS_KEY": gw.SecretAccessKey,
		"GATEWAY_DATA_DIR":          t.TempDir(),
	}
	dir := t.TempDir()
	key := "shared/a file+ü.bin"
	uri := "s3://" + bucket + "/" + key
	body := testenv.RandomBytes(t, 300000, marker)
	in := writeFile(t, dir, "in.bin", body)

	put := toolsPresign(t, env, "-method", "PUT", uri)
	if !strings.HasPrefix(put, gw.Endpoint+"/"+bucket+"/") || !strings.Contains(put, "X-Amz-Algorithm=AWS4-HMAC-SHA256") ||
		!strings.Contains(put, "X-Amz-Expires=3600") || !strings.Contains(put, "X-Amz-Credential="+gw.AccessKeyID) {
		t.Errorf("presigned PUT URL %s: not a SigV4 URL for the gateway with the default 1h expiry", put)
	}
	if code := toolsCurl(t, "-o", "/dev/null", "-T", in, put); code != "200" {
		t.Fatalf("curl PUT through the presigned URL: HTTP %s", code)
	}
	stored, meta := storedBytes(t, m.Client(t), bucket, key)
	if meta["s3seal-env"] == "" || bytes.Contains(stored, []byte(marker)) {
		t.Errorf("the object PUT through the presigned URL is not encrypted at rest (envelope %q)", meta["s3seal-env"])
	}

	get := toolsPresign(t, env, uri) // GET is the default
	out := filepath.Join(dir, "out.bin")
	if code := toolsCurl(t, "-o", out, get); code != "200" {
		t.Fatalf("curl GET through the presigned URL: HTTP %s", code)
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GET through the presigned URL: %d bytes, want the %d PUT (err %v)", len(got), len(body), err)
	}

	// URLs signed with another secret are refused: the gateway really checks these signatures.
	forged := toolsPresign(t, map[string]string{
		"GATEWAY_LISTEN": env["GATEWAY_LISTEN"], "GATEWAY_ACCESS_KEY_ID": gw.AccessKeyID,
		"GATEWAY_SECRET_ACCESS_KEY": strings.Repeat("x", 40), "GATEWAY_DATA_DIR": env["GATEWAY_DATA_DIR"],
	}, uri)
	if code := toolsCurl(t, "-o", out+".forged", forged); code != "403" {
		t.Errorf("GET with a URL signed by another secret: HTTP %s, want 403", code)
	}

	// Expiry: a 2-second URL works at once and is refused once it has expired.
	signed := time.Now()
	shortGet := toolsPresign(t, env, "-expires", "2s", uri)
	shortPut := toolsPresign(t, env, "-expires", "2s", "-method", "put", uri)
	if !strings.Contains(shortGet, "X-Amz-Expires=2&") && !strings.HasSuffix(shortGet, "X-Amz-Expires=2") {
		t.Errorf("short URL %s lacks X-Amz-Expires=2", shortGet)
	}
	if code := toolsCurl(t, "-o", out+".short", shortGet); code != "200" {
		t.Fatalf("GET through a 2 s URL right away: HTTP %s (signed %v ago)", code, time.Since(signed))
	}
	time.Sleep(time.Until(signed.Add(3500 * time.Millisecond)))
	if code := toolsCurl(t, "-o", out+".expired", shortGet); code != "403" {
		t.Errorf("GET through an expired URL: HTTP %s, want 403", code)
	} else if b, _ := os.ReadFile(out + ".expired"); s3ErrorCode(b) != "AccessDenied" {
		t.Errorf("expired URL: error %q, want AccessDenied (%s)", s3ErrorCode(b), b)
	}
	other := writeFile(t, dir, "other.bin", []byte("must not be stored"))
	if code := toolsCurl(t, "-o", out+".expired-put", "-T", other, shortPut); code != "403" {
		t.Errorf("PUT through an expired URL: HTTP %s, want 403", code)
	}
	if code := toolsCurl(t, "-o", out, get); code != "200" {
		t.Fatalf("GET after the refused PUT: HTTP %s", code)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, body) {
		t.Error("the object changed after a PUT through an expired URL")
	}

	// Refused arguments.
	for _, args := range [][]string{
		{"-expires", "169h", uri}, {"-expires", "0s", uri}, {"-method", "DELETE", uri}, {"s3://" + bucket + "/"}, {"not-a-uri"},
	} {
		if r := toolsRun(t, env, append([]string{"presign"}, args...)...); r.code != 2 || r.stdout != "" {
			t.Errorf("presign %v: exit %d, stdout %q; want exit 2 and no URL", args, r.code, r.stdout)
		}
	}
}
