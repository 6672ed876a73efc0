package sigv4

// Real-client interoperability: a tiny S3 stand-in whose handler runs
// Authenticate + Body, driven by aws-cli v1 (pip), Debian's aws-cli v2,
// boto3, and aws-sdk-go-v2's service/s3. A missing client fails the test
// when CI=true and skips it otherwise.

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// served is what the stand-in saw for one request.
type served struct {
	method, path string
	auth         *Auth
	body         []byte
	alg, val     string
	err          error
}

type standIn struct {
	v   *Verifier
	mu  sync.Mutex
	got []served
}

func newStandIn() *standIn {
	return &standIn{v: NewVerifier(Config{Region: "us-east-1", Secrets: secrets{testAKID: testSecret}, SigV2: true})}
}

func (s *standIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := served{method: r.Method, path: r.URL.Path}
	defer func() {
		s.mu.Lock()
		s.got = append(s.got, rec)
		s.mu.Unlock()
	}()
	fail := func(err error) {
		rec.err = err
		var e *Error
		code, status := "InternalError", 500
		if errors.As(err, &e) {
			code, status = e.Code, e.StatusCode()
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>", code, err)
	}
	a, err := s.v.Authenticate(r)
	if err != nil {
		fail(err)
		return
	}
	rec.auth = a
	p := a.Body(r.Body, r.Header)
	rec.body, err = io.ReadAll(p)
	if err != nil {
		fail(err)
		return
	}
	rec.alg, rec.val = p.Checksum()
	sum := md5.Sum(rec.body)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "presigned-ok")
	}
}

func (s *standIn) take() []served {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.got
	s.got = nil
	return out
}

// expectOne asserts exactly one request, successfully authenticated, whose
// decoded body is want, and returns it.
func (s *standIn) expectOne(t *testing.T, label string, want []byte) served {
	t.Helper()
	got := s.take()
	if len(got) != 1 {
		for _, g := range got {
			t.Logf("%s: %s %s err=%v", label, g.method, g.path, g.err)
		}
		t.Fatalf("%s: %d requests reached the server, want 1", label, len(got))
	}
	g := got[0]
	if g.err != nil {
		t.Fatalf("%s: %s %s: %v", label, g.method, g.path, g.err)
	}
	if !bytes.Equal(g.body, want) {
		t.Fatalf("%s: decoded body %d bytes, want %d", label, len(g.body), len(want))
	}
	t.Logf("%s: %s %s method=%v payload=%v checksum=%s", label, g.method, g.path, g.auth.Method, g.auth.Payload, g.alg)
	return g
}

func needTool(t *testing.T, path string) {
	t.Helper()
	if testing.Short() {
		t.Skip("real-client tests are skipped in -short mode")
	}
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (required when CI=true)", path)
	}
	t.Skipf("%s is not installed", path)
}

// lookTool finds a command on PATH whose --version output starts with prefix.
func lookTool(t *testing.T, name, versionPrefix string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		out, verr := exec.Command(p, "--version").CombinedOutput()
		if verr == nil && strings.HasPrefix(string(out), versionPrefix) {
			return p
		}
	}
	needTool(t, name+" ("+versionPrefix+")")
	return ""
}

// servers starts the stand-in over HTTP and HTTPS and writes the TLS
// certificate to a CA bundle file.
func servers(t *testing.T) (s *standIn, plain, tls *httptest.Server, caFile string) {
	s = newStandIn()
	plain = httptest.NewServer(s)
	tls = httptest.NewTLSServer(s)
	t.Cleanup(plain.Close)
	t.Cleanup(tls.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tls.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return s, plain, tls, caFile
}

// cliEnv is a clean environment for the AWS CLIs and boto3.
func cliEnv(t *testing.T, caFile string) []string {
	home := t.TempDir()
	cfg := filepath.Join(home, "config")
	if err := os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+home, "AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"),
		"AWS_ACCESS_KEY_ID="+testAKID, "AWS_SECRET_ACCESS_KEY="+testSecret, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard", "AWS_CA_BUNDLE="+caFile,
		"AWS_PAGER=")
}

// withS3v4Config returns env with a config file that sets
// s3.signature_version = s3v4.
func withS3v4Config(t *testing.T, env []string) []string {
	cfg := filepath.Join(t.TempDir(), "config-s3v4")
	if err := os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n    signature_version = s3v4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := append([]string(nil), env...)
	for i, kv := range out {
		if strings.HasPrefix(kv, "AWS_CONFIG_FILE=") {
			out[i] = "AWS_CONFIG_FILE=" + cfg
		}
	}
	return out
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, stderr, err := runMaybe(t, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", filepath.Base(name), strings.Join(args, " "), err, out, stderr)
	}
	return out
}

func runMaybe(t *testing.T, env []string, name string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return stdout.String(), stderr.String(), err
	case <-time.After(120 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return stdout.String(), stderr.String(), errors.New("timed out")
	}
}

// fetch GETs a presigned URL with net/http and expects 200.
func fetch(t *testing.T, client *http.Client, u string) {
	t.Helper()
	resp, err := client.Get(strings.TrimSpace(u))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET presigned URL: %d %s", resp.StatusCode, b)
	}
}

func testPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func testAWSCLI(t *testing.T, bin string, v2 bool) {
	s, plain, tls, ca := servers(t)
	env := cliEnv(t, ca)
	data := testPayload(300 << 10)
	file := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	algs := []string{"", "CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"}
	if v2 {
		algs = algs[:5] // aws-cli 2.9 predates CRC64NVME
	}
	for _, srv := range []*httptest.Server{plain, tls} {
		algs := algs
		if srv == plain { // plain HTTP: signed payloads with checksum headers
			algs = []string{"", "SHA256"}
		}
		for _, alg := range algs {
			args := []string{"--endpoint-url", srv.URL, "s3api", "put-object", "--bucket", "bkt", "--key", "dir/a b+c ü.bin", "--body", file}
			if alg != "" {
				args = append(args, "--checksum-algorithm", alg)
			}
			if out, stderr, err := runMaybe(t, env, bin, args...); err != nil {
				if strings.Contains(stderr, "botocore[crt]") {
					t.Logf("%s: %s needs awscrt, which is not installed; not tested with this client", filepath.Base(bin), alg)
					s.take()
					continue
				}
				t.Fatalf("%s %v: %v\nstdout: %s\nstderr: %s", bin, args, err, out, stderr)
			}
			g := s.expectOne(t, srv.URL+" put-object "+alg, data)
			if g.path != "/bkt/dir/a b+c ü.bin" {
				t.Fatalf("path %q", g.path)
			}
			if alg != "" && g.alg != alg {
				t.Fatalf("checksum %q verified, want %q", g.alg, alg)
			}
		}
		run(t, env, bin, "--endpoint-url", srv.URL, "s3", "cp", file, "s3://bkt/x/y%z.bin")
		s.expectOne(t, srv.URL+" s3 cp", data)
		// aws-cli v1 presigns with SigV2 unless told otherwise; v2 uses SigV4.
		want := map[bool]Method{false: PresignedV2, true: PresignedV4}[v2]
		for _, e := range [][]string{env, withS3v4Config(t, env)} {
			u := run(t, e, bin, "--endpoint-url", srv.URL, "s3", "presign", "s3://bkt/some key+ü.txt", "--expires-in", "300")
			fetch(t, srv.Client(), u)
			if g := s.expectOne(t, srv.URL+" s3 presign", nil); g.auth.Method != want {
				t.Fatalf("presign used %v, want %v", g.auth.Method, want)
			}
			want = PresignedV4
		}
	}
}

func TestClientAWSCLIv1(t *testing.T) {
	testAWSCLI(t, lookTool(t, "aws", "aws-cli/1."), false)
}

func TestClientAWSCLIv2Debian(t *testing.T) {
	needTool(t, "/usr/bin/aws")
	testAWSCLI(t, "/usr/bin/aws", true)
}

const boto3Script = `
import json, sys, boto3, botocore
from botocore.config import Config
a = json.loads(sys.argv[1])
out = {}
def client(sig, **kw):
    return boto3.client("s3", endpoint_url=a["endpoint"], region_name="us-east-1", verify=a["ca"],
        config=Config(signature_version=sig, s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **kw))
data = open(a["data"], "rb").read()
c = client("s3v4")
for alg in a["algs"]:
    kw = {"ChecksumAlgorithm": alg} if alg else {}
    c.put_object(Bucket="bkt", Key="k/" + (alg or "default"), Body=data, **kw)
    print("put", alg, flush=True)
    input()
import base64, hashlib
c.put_object(Bucket="bkt", Key="md5", Body=data, ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode())
print("md5", flush=True); input()
out = {"v4": c.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "p q+r.txt"}, ExpiresIn=300)}
if a["v2"]:
    c2 = client("s3")
    c2.put_object(Bucket="bkt", Key="v2 key", Body=data)
    print("v2put", flush=True); input()
    out["v2"] = c2.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "v2 get"}, ExpiresIn=300)
print(json.dumps(out), flush=True)
`

// testBoto3 runs boto3Script step by step, checking the server after each
// request.
func testBoto3(t *testing.T, python string, algs []string, v2 bool) {
	s, _, tls, ca := servers(t)
	data := testPayload(200 << 10)
	dataFile := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(dataFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(python, "-c", "import awscrt").Run(); err != nil {
		t.Logf("%s has no awscrt: CRC32C and CRC64NVME are not tested with this client", python)
		var keep []string
		for _, a := range algs {
			if a != "CRC32C" && a != "CRC64NVME" {
				keep = append(keep, a)
			}
		}
		algs = keep
	}
	args, _ := json.Marshal(map[string]any{"endpoint": tls.URL, "ca": ca, "data": dataFile, "algs": algs, "v2": v2})
	cmd := exec.Command(python, "-c", boto3Script, string(args))
	cmd.Env = cliEnv(t, ca)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string)
	go func() {
		buf := make([]byte, 1<<20)
		var acc []byte
		for {
			n, err := stdout.Read(buf)
			acc = append(acc, buf[:n]...)
			for {
				i := bytes.IndexByte(acc, '\n')
				if i < 0 {
					break
				}
				lines <- string(acc[:i])
				acc = acc[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("boto3 script ended early: %s", stderr.String())
			}
			return l
		case <-time.After(60 * time.Second):
			t.Fatalf("boto3 script timed out: %s", stderr.String())
		}
		return ""
	}
	for _, alg := range algs {
		next()
		g := s.expectOne(t, "boto3 put_object "+alg, data)
		if alg != "" && g.alg != alg {
			t.Fatalf("checksum %q verified, want %q", g.alg, alg)
		}
		io.WriteString(stdin, "\n")
	}
	next()
	s.expectOne(t, "boto3 put_object ContentMD5", data)
	io.WriteString(stdin, "\n")
	if v2 {
		next()
		g := s.expectOne(t, "boto3 SigV2 put_object", data)
		if g.auth.Method != HeaderV2 {
			t.Fatalf("method %v", g.auth.Method)
		}
		io.WriteString(stdin, "\n")
	}
	var urls map[string]string
	if err := json.Unmarshal([]byte(next()), &urls); err != nil {
		t.Fatal(err)
	}
	fetch(t, tls.Client(), urls["v4"])
	if g := s.expectOne(t, "boto3 presigned s3v4", nil); g.auth.Method != PresignedV4 {
		t.Fatalf("method %v", g.auth.Method)
	}
	if v2 {
		fetch(t, tls.Client(), urls["v2"])
		if g := s.expectOne(t, "boto3 presigned s3 (SigV2)", nil); g.auth.Method != PresignedV2 {
			t.Fatalf("method %v", g.auth.Method)
		}
	}
}

func TestClientBoto3(t *testing.T) {
	py := lookTool(t, "python3", "Python 3")
	if err := exec.Command(py, "-c", "import boto3").Run(); err != nil {
		needTool(t, "python3 with boto3")
	}
	testBoto3(t, py, []string{"", "CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"}, true)
}

func TestClientBoto3Debian(t *testing.T) {
	needTool(t, "/usr/bin/python3")
	if err := exec.Command("/usr/bin/python3", "-c", "import boto3").Run(); err != nil {
		needTool(t, "/usr/bin/python3 with python3-boto3")
	}
	testBoto3(t, "/usr/bin/python3", []string{"", "CRC32", "CRC32C", "SHA1", "SHA256"}, true)
}
