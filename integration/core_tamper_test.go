package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// coreTamperPlain is the plaintext size of the tamper-matrix object: five full segments and a
// partial sixth one.
const coreTamperPlain = 5*coreS + 12345

// coreTamperSegs is the number of segments of that object.
const coreTamperSegs = 6

// coreSeg returns the stored offset and length (ciphertext and tag) of segment i of an object
// of coreTamperPlain bytes (FORMAT.md 3.3).
func coreSeg(i int) (off, n int) {
	plain := min(coreS, coreTamperPlain-i*coreS)
	return i * (coreS + 16), plain + 16
}

// coreTamperInput is what a mutation starts from: the stored bytes and envelope of the object
// as the gateway wrote it, and those of an earlier write of the same plaintext to the same key.
type coreTamperInput struct {
	stored, prevStored []byte
	env, prevEnv       string
}

// coreTamperCase is one row of the matrix.
type coreTamperCase struct {
	name   string
	mutate func(in coreTamperInput) (stored []byte, env string)
	// bad lists the segments whose reads must fail; the rest must read back correctly and HEAD
	// must return the original size and ETag. With all set, every read fails, HEAD included.
	bad []int
	all bool
	// elsewhere: the mutated object is written to this other name instead ("key" or "bucket").
	elsewhere string
	// noTamperLog: the failure is not an authentication failure the gateway can recognise as
	// such (explained in the case), so the log need not say kind=tamper.
	noTamperLog string
}

func flipAt(off int) func(coreTamperInput) ([]byte, string) {
	return func(in coreTamperInput) ([]byte, string) {
		b := bytes.Clone(in.stored)
		b[off] ^= 0x01
		return b, in.env
	}
}

// envFieldEdit changes byte at (field offset + at) of the decoded envelope with edit.
func envFieldEdit(t *testing.T, field string, at int, edit func(byte) byte) func(coreTamperInput) ([]byte, string) {
	return func(in coreTamperInput) ([]byte, string) {
		raw, err := base64.StdEncoding.DecodeString(in.env)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := coreEnvFields(raw)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(fs, func(f coreEnvField) bool { return f.Name == field })
		f := fs[i]
		pos := f.Off + at
		if at < 0 {
			pos = f.Off + f.Len + at
		}
		raw[pos] = edit(raw[pos])
		return in.stored, base64.StdEncoding.EncodeToString(raw)
	}
}

func xor1(b byte) byte { return b ^ 1 }

func coreTamperCases(t *testing.T) []coreTamperCase {
	var cs []coreTamperCase
	e := int(coreStoredSize(coreTamperPlain))
	// One byte of ciphertext or tag at and around every segment boundary, and inside every
	// segment.
	for i := range coreTamperSegs {
		off, n := coreSeg(i)
		for _, p := range []struct {
			what string
			at   int
		}{{"first", off}, {"middle", off + n/2}, {"tag-first", off + n - 16}, {"tag-last", off + n - 1}} {
			cs = append(cs, coreTamperCase{name: fmt.Sprintf("flip-seg%d-%s", i, p.what), mutate: flipAt(p.at), bad: []int{i}})
		}
	}
	for _, p := range []struct {
		what string
		at   int
	}{{"first", e - 32}, {"md5-last", e - 17}, {"tag-first", e - 16}, {"last", e - 1}} {
		cs = append(cs, coreTamperCase{name: "flip-trailer-" + p.what, mutate: flipAt(p.at), all: true})
	}

	// Each envelope field, decoded, changed and re-encoded.
	kmsRefuses := "the KMS emulator refuses the key id as unknown (KMS.NotFoundException); a missing key is not evidence of tampering"
	for _, f := range []struct {
		field string
		at    int
		edit  func(byte) byte
		why   string
	}{
		{"version", 0, xor1, ""},
		{"version", 0, func(byte) byte { return 2 }, ""},
		{"kind", 0, xor1, ""},
		{"wrap", 0, xor1, ""},
		{"wrap", 0, func(byte) byte { return 2 }, ""},
		{"seg_shift", 0, xor1, ""},
		{"key_id_len", 1, xor1, ""},
		{"key_id", -1, xor1, kmsRefuses},
		{"wrapped_len", 1, xor1, ""},
		// moto's blob starts with the key id: changing its first byte names another key, and
		// moto answers AccessDeniedException (AWS KMS: IncorrectKeyException, which the gateway
		// does count as tampering). A denial cannot be told from a key-policy change.
		{"wrapped_dk", 0, xor1, "the KMS emulator answers AccessDeniedException, indistinguishable from a key-policy denial"},
		{"wrapped_dk", -1, xor1, ""},
		{"es", 0, xor1, ""},
		{"es", -1, xor1, ""},
		{"kc", 0, xor1, ""},
		{"kc", -1, xor1, ""},
		{"sealed_ok", 0, xor1, ""},
		{"sealed_ok", -1, xor1, ""},
	} {
		name := fmt.Sprintf("env-%s-at%d-to%d", f.field, f.at, f.edit(0x10))
		cs = append(cs, coreTamperCase{name: name, mutate: envFieldEdit(t, f.field, f.at, f.edit), all: true, noTamperLog: f.why})
	}
	cs = append(cs, coreTamperCase{name: "env-not-base64", all: true, mutate: func(in coreTamperInput) ([]byte, string) {
		return in.stored, "*" + in.env[1:]
	}})
	cs = append(cs, coreTamperCase{name: "env-last-3-bytes-cut", all: true, mutate: func(in coreTamperInput) ([]byte, string) {
		return in.stored, in.env[:len(in.env)-4]
	}})
	cs = append(cs, coreTamperCase{name: "env-of-another-write", all: true, mutate: func(in coreTamperInput) ([]byte, string) {
		return in.stored, in.prevEnv // same name, same data key: only the object key differs
	}})

	// Truncation, extension, reordering.
	for k := 1; k < coreTamperSegs; k++ {
		cs = append(cs, coreTamperCase{name: fmt.Sprintf("truncate-at-seg%d", k), all: true, mutate: func(in coreTamperInput) ([]byte, string) {
			off, _ := coreSeg(k)
			return bytes.Clone(in.stored[:off]), in.env
		}})
	}
	cs = append(cs,
		coreTamperCase{name: "truncate-to-empty", all: true, mutate: func(in coreTamperInput) ([]byte, string) { return nil, in.env }},
		coreTamperCase{name: "drop-trailer", all: true, mutate: func(in coreTamperInput) ([]byte, string) {
			return bytes.Clone(in.stored[:e-32]), in.env
		}},
		coreTamperCase{name: "drop-last-segment-keep-trailer", all: true, mutate: func(in coreTamperInput) ([]byte, string) {
			off, _ := coreSeg(coreTamperSegs - 1)
			return slices.Concat(in.stored[:off], in.stored[e-32:]), in.env
		}},
		coreTamperCase{name: "append-segment-before-trailer", all: true, mutate: func(in coreTamperInput) ([]byte, string) {
			off, n := coreSeg(4)
			return slices.Concat(in.stored[:e-32], in.stored[off:off+n], in.stored[e-32:]), in.env
		}},
		coreTamperCase{name: "append-segment-after-trailer", all: true, mutate: func(in coreTamperInput) ([]byte, string) {
			off, n := coreSeg(1)
			return slices.Concat(in.stored, in.stored[off:off+n]), in.env
		}},
		coreTamperCase{name: "append-one-byte", all: true, mutate: func(in coreTamperInput) ([]byte, string) {
			return slices.Concat(in.stored, []byte{0}), in.env
		}},
		coreTamperCase{name: "swap-seg1-seg2", bad: []int{1, 2}, mutate: swapSegs(1, 2)},
		coreTamperCase{name: "swap-seg0-seg4", bad: []int{0, 4}, mutate: swapSegs(0, 4)},
		coreTamperCase{name: "seg2-overwritten-by-seg1", bad: []int{2}, mutate: func(in coreTamperInput) ([]byte, string) {
			b := bytes.Clone(in.stored)
			o1, n := coreSeg(1)
			o2, _ := coreSeg(2)
			copy(b[o2:o2+n], in.stored[o1:o1+n])
			return b, in.env
		}},
		coreTamperCase{name: "data-of-another-write", all: true, mutate: func(in coreTamperInput) ([]byte, string) {
			return bytes.Clone(in.prevStored), in.env
		}},
		// Bytes and metadata copied as they are to another name in the backend.
		coreTamperCase{name: "copied-to-another-key", all: true, elsewhere: "key", mutate: func(in coreTamperInput) ([]byte, string) {
			return bytes.Clone(in.stored), in.env
		}},
		coreTamperCase{name: "copied-to-another-bucket", all: true, elsewhere: "bucket", mutate: func(in coreTamperInput) ([]byte, string) {
			return bytes.Clone(in.stored), in.env
		}},
	)
	return cs
}

func swapSegs(i, j int) func(coreTamperInput) ([]byte, string) {
	return func(in coreTamperInput) ([]byte, string) {
		b := bytes.Clone(in.stored)
		oi, n := coreSeg(i)
		oj, _ := coreSeg(j)
		copy(b[oi:oi+n], in.stored[oj:oj+n])
		copy(b[oj:oj+n], in.stored[oi:oi+n])
		return b, in.env
	}
}

// coreTamperRanges are the ranged reads made of every tampered object: each segment alone, one
// range across a boundary, the last byte, and everything from 0.
func coreTamperRanges() []struct{ a, b int } {
	var rs []struct{ a, b int }
	for i := range coreTamperSegs {
		rs = append(rs, struct{ a, b int }{i * coreS, min((i+1)*coreS, coreTamperPlain) - 1})
	}
	return append(rs,
		struct{ a, b int }{3*coreS - 7, 3*coreS + 6},
		struct{ a, b int }{coreTamperPlain - 1, coreTamperPlain - 1},
		struct{ a, b int }{0, coreTamperPlain - 1})
}

// TestCoreTamperMatrix (issue 4, acceptance 2): an object of 5 full segments and a partial one
// is written through the gateway, altered directly in MinIO (one byte across every segment
// boundary, inside each segment, in tags and in the trailer; each envelope field; truncation,
// extension, reordering; copies under other names), and read through a second gateway with a
// fresh cache. Every HEAD, ranged GET and whole GET must fail as FORMAT.md specifies (an S3
// error before the first byte, or an aborted body), except reads that do not touch the altered
// segments, which must return the right bytes. None may return altered bytes as complete. The
// gateway log must name the failure kind=tamper.
func TestCoreTamperMatrix(t *testing.T) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyID := k.CreateKey(t)
	writer := testenv.StartGateway(t, coreGatewayEnv(m, m.Endpoint, k.Endpoint, keyID, nil))
	reader := testenv.StartGateway(t, coreGatewayEnv(m, m.Endpoint, k.Endpoint, keyID, nil))
	bucket, other := m.NewBucket(t), m.NewBucket(t)
	direct := m.Client(t)
	hc := coreHTTPClient()
	plain := testenv.RandomBytes(t, coreTamperPlain, "")

	var mu sync.Mutex
	tally := map[string]int{}
	count := func(what string) { mu.Lock(); tally[what]++; mu.Unlock() }

	t.Run("cases", func(t *testing.T) {
		for _, c := range coreTamperCases(t) {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				key := "tamper/" + c.name
				var in coreTamperInput
				if c.name == "env-of-another-write" || c.name == "data-of-another-write" {
					corePutGateway(t, hc, writer, bucket, key, plain)
					in.prevStored, in.prevEnv = storedEnv(t, direct, bucket, key)
				}
				etag := corePutGateway(t, hc, writer, bucket, key, plain)
				in.stored, in.env = storedEnv(t, direct, bucket, key)
				st, env := c.mutate(in)
				b, k := bucket, key
				switch c.elsewhere {
				case "key":
					k = key + "-copy"
				case "bucket":
					b = other
				}
				corePutDirect(t, direct, b, k, st, map[string]string{coreMetaEnv: env})
				checkTampered(t, hc, reader, b, k, c, plain, etag, count)

				if c.elsewhere != "" { // the original stays readable where it was written
					r := coreDo(hc, coreRequest(t, http.MethodGet, reader.Endpoint+"/"+bucket+"/"+key, nil, reader.AccessKeyID, reader.SecretAccessKey))
					if !r.complete() || !bytes.Equal(r.Body, plain) {
						t.Errorf("the original object no longer reads back: %v", r)
					}
				}
			})
		}
	})
	t.Logf("outcomes over all cases: %v", tally)

	// A real client: aws-cli downloading an object with a segment altered in its middle must
	// report a failure and leave no complete file behind.
	t.Run("aws-cli", func(t *testing.T) {
		key := "tamper/aws-cli"
		corePutGateway(t, hc, writer, bucket, key, plain)
		st, env := storedEnv(t, direct, bucket, key)
		off, n := coreSeg(3)
		st[off+n/2] ^= 0x01
		corePutDirect(t, direct, bucket, key, st, map[string]string{coreMetaEnv: env})
		dst := filepath.Join(t.TempDir(), "down.bin")
		out, err := reader.AWS(t, "s3", "cp", "s3://"+bucket+"/"+key, dst)
		if err == nil {
			t.Errorf("aws s3 cp of a tampered object succeeded: %s", out)
		}
		if got, rerr := os.ReadFile(dst); rerr == nil && len(got) == len(plain) {
			t.Errorf("aws s3 cp left a complete-looking %d-byte file (equal to the original: %v)", len(got), bytes.Equal(got, plain))
		}
	})
}

// storedEnv reads an object's stored bytes and envelope directly from MinIO.
func storedEnv(t *testing.T, c *s3.Client, bucket, key string) ([]byte, string) {
	t.Helper()
	st, meta := storedBytes(t, c, bucket, key)
	if meta[coreMetaEnv] == "" || int64(len(st)) != coreStoredSize(coreTamperPlain) {
		t.Fatalf("%s: stored %d bytes, envelope %q", key, len(st), meta[coreMetaEnv])
	}
	return st, meta[coreMetaEnv]
}

// checkTampered reads bucket/key through gw every way and checks the outcomes against c.
func checkTampered(t *testing.T, hc *http.Client, gw *testenv.Gateway, bucket, key string, c coreTamperCase, plain []byte, etag string, count func(string)) {
	t.Helper()
	url := gw.Endpoint + "/" + bucket + "/" + key
	req := func(method string, hdr http.Header) *http.Request {
		return coreRequest(t, method, url, hdr, gw.AccessKeyID, gw.SecretAccessKey)
	}
	tally := func(r coreResult) {
		switch {
		case r.complete():
			count("complete")
		case r.Status/100 == 2:
			count("aborted after headers")
		case r.Status == 0:
			count("connection closed before headers")
		default:
			count(fmt.Sprintf("S3 error %d %s", r.Status, r.Code))
		}
	}

	// HEAD first, while the reader has nothing of this object cached.
	h := coreDo(hc, req(http.MethodHead, nil))
	tally(h)
	if c.all {
		if !h.failedAsSpecified(http.MethodHead) {
			t.Errorf("HEAD: %v, want a failure", h)
		}
	} else if h.Status != http.StatusOK || h.Header.Get("Content-Length") != strconv.Itoa(len(plain)) || h.Header.Get("Etag") != etag {
		t.Errorf("HEAD: %v, Content-Length %s, ETag %s; want 200, %d, %s (the data alone was altered)",
			h, h.Header.Get("Content-Length"), h.Header.Get("Etag"), len(plain), etag)
	}

	for _, rg := range coreTamperRanges() {
		hdr := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", rg.a, rg.b)}}
		r := coreDo(hc, req(http.MethodGet, hdr))
		tally(r)
		touched := c.all
		for s := rg.a / coreS; s <= rg.b/coreS; s++ {
			touched = touched || slices.Contains(c.bad, s)
		}
		switch {
		case touched && !r.failedAsSpecified(http.MethodGet):
			t.Errorf("GET %s: %v, want a failure (equal to the original: %v)", hdr.Get("Range"), r, bytes.Equal(r.Body, plain[rg.a:rg.b+1]))
		case !touched && (r.Status != http.StatusPartialContent || !r.complete() || !bytes.Equal(r.Body, plain[rg.a:rg.b+1])):
			t.Errorf("GET %s (untouched segments): %v, want 206 and the original bytes", hdr.Get("Range"), r)
		}
	}

	w := coreDo(hc, req(http.MethodGet, nil))
	tally(w)
	if !w.failedAsSpecified(http.MethodGet) {
		t.Errorf("GET: %v, want a failure (equal to the original: %v)", w, bytes.Equal(w.Body, plain))
	}

	// The SDK, as an application would use it: the download must end in an error.
	out, err := gw.Client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err == nil {
		body, rerr := io.ReadAll(out.Body)
		out.Body.Close()
		if rerr == nil {
			t.Errorf("SDK GetObject returned %d bytes without an error (equal to the original: %v)", len(body), bytes.Equal(body, plain))
		}
	}

	if c.noTamperLog != "" {
		return
	}
	if n := tamperLogLines(t, gw.LogPath, bucket, key); n == 0 {
		t.Errorf("the gateway log has no kind=tamper line for %s/%s", bucket, key)
	}
}

// tamperLogLines counts the gateway log lines with kind=tamper about bucket/key.
func tamperLogLines(t *testing.T, path, bucket, key string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	attrRE := regexp.MustCompile(`(?:^| )(bucket|key)=("(?:[^"\\]|\\.)*"|\S+)`)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, " kind=tamper") {
			continue
		}
		attrs := map[string]string{}
		for _, m := range attrRE.FindAllStringSubmatch(line, -1) {
			v := m[2]
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			}
			attrs[m[1]] = v
		}
		if attrs["bucket"] == bucket && attrs["key"] == key {
			n++
		}
	}
	return n
}
