package integration

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/internal/benchutil"
	"github.com/s3seal/s3seal/internal/testenv"
)

const gib = float64(1 << 30)

// cycleReader yields n bytes by cycling through buf (random bytes made once), so a benchmark
// client spends next to nothing producing a body of any size.
type cycleReader struct {
	buf  []byte
	off  int64
	left int64
}

func (c *cycleReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n := copy(p, c.buf[c.off%int64(len(c.buf)):])
	c.off += int64(n)
	c.left -= int64(n)
	return n, nil
}

// figBody is the random source of every benchmark body (16 MiB, not a divisor-friendly
// multiple of the segment size so that segments do not repeat in step).
func figBody(b *testing.B) []byte { return testenv.RandomBytes(b, 16<<20+4099, "") }

// curl runs curl with args and returns the elapsed time and its -w output.
func curl(b *testing.B, args ...string) (time.Duration, string) {
	start := time.Now()
	out, err := exec.Command("curl", append([]string{"-sS", "-f", "-o", "/dev/null"}, args...)...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		b.Fatalf("curl %s: %v %s", strings.Join(args[:len(args)-1], " "), err, msg)
	}
	return time.Since(start), strings.TrimSpace(string(out))
}

// cryptoCPU measures, on one goroutine, the CPU seconds per GiB of what the gateway must do to
// the bytes at least: AES-256-GCM seal of 64 KiB segments plus MD5 of the plaintext (PUT), and
// AES-256-GCM open (GET).
func cryptoCPU(b *testing.B) (put, get float64) {
	const n = 256 << 20
	key := make([]byte, 32)
	blk, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(blk)
	plain := make([]byte, format.SegmentSize)
	out := make([]byte, 0, format.SegmentSize+16)
	nonce := make([]byte, 12)
	self := os.Getpid()
	c0, _ := benchutil.CPUSeconds(self)
	h := md5.New()
	for done := 0; done < n; done += len(plain) {
		h.Write(plain)
		out = aead.Seal(out[:0], nonce, plain, nil)
	}
	c1, _ := benchutil.CPUSeconds(self)
	sealed := append([]byte(nil), out...)
	for done := 0; done < n; done += len(plain) {
		if _, err := aead.Open(plain[:0], nonce, sealed, nil); err != nil {
			b.Fatal(err)
		}
	}
	c2, _ := benchutil.CPUSeconds(self)
	return (c1 - c0) * gib / n, (c2 - c1) * gib / n
}

// streamFile writes n bytes of the figures' body to name in the scratch directory, for curl
// to upload, and returns its path.
func (s *figStack) streamFile(b *testing.B, name string, n int64) string {
	file := filepath.Join(s.scratchDir, name)
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, &cycleReader{buf: figBody(b), left: n}); err != nil {
		b.Fatal(err)
	}
	return file
}

// streamFigures: a stream-size object PUT and GET with curl (presigned, UNSIGNED-PAYLOAD)
// straight to MinIO, through the gateway and through the pass-through proxy, in rotating order
// each round; throughput ratios and CPU seconds per GiB of each process.
func (s *figStack) streamFigures(b *testing.B, t *benchutil.Table) {
	n := s.cfg.stream
	file := s.streamFile(b, "stream.bin", n)
	defer os.Remove(file)
	type result struct{ put, get, cpuPut, cpuGet, minioPut, minioGet float64 }
	var passPutR, passGetR []float64
	var putR, getR, cpuPutR, cpuGetR, gwPut, gwGet, basePut, baseGet, mDirPut, mGwPut, mDirGet, mGwGet []float64
	targets := []*figTarget{s.direct, s.gate, s.pass}
	for r := 0; r < s.cfg.rounds; r++ {
		res := map[string]result{}
		for i := range targets {
			tg := targets[(i+r)%len(targets)]
			key := "stream/" + tg.name
			var x result
			up, err := tg.presign("PUT", s.bucket, key)
			if err != nil {
				b.Fatal(err)
			}
			c0, m0 := tg.cpu(b), s.direct.cpu(b)
			d, _ := curl(b, "-T", file, up)
			c1, m1 := tg.cpu(b), s.direct.cpu(b)
			x.put, x.cpuPut, x.minioPut = d.Seconds(), c1-c0, m1-m0
			down, err := tg.presign("GET", s.bucket, key)
			if err != nil {
				b.Fatal(err)
			}
			d, size := curl(b, "-w", "%{size_download}", down)
			c2, m2 := tg.cpu(b), s.direct.cpu(b)
			if size != strconv.FormatInt(n, 10) {
				b.Fatalf("%s GET: %s bytes of %d", tg.name, size, n)
			}
			x.get, x.cpuGet, x.minioGet = d.Seconds(), c2-c1, m2-m1
			res[tg.name] = x
		}
		cp, cg := cryptoCPU(b)
		dir, gw, pass := res["direct"], res["gateway"], res["pass-through"]
		per := gib / float64(n)
		putR, getR = append(putR, dir.put/gw.put), append(getR, dir.get/gw.get)
		passPutR, passGetR = append(passPutR, dir.put/pass.put), append(passGetR, dir.get/pass.get)
		gwPut, gwGet = append(gwPut, gw.cpuPut*per), append(gwGet, gw.cpuGet*per)
		basePut, baseGet = append(basePut, pass.cpuPut*per+cp), append(baseGet, pass.cpuGet*per+cg)
		cpuPutR, cpuGetR = append(cpuPutR, gw.cpuPut*per/(pass.cpuPut*per+cp)), append(cpuGetR, gw.cpuGet*per/(pass.cpuGet*per+cg))
		mDirPut, mGwPut = append(mDirPut, dir.minioPut*per), append(mGwPut, gw.minioPut*per)
		mDirGet, mGwGet = append(mDirGet, dir.minioGet*per), append(mGwGet, gw.minioGet*per)
		fmt.Fprintf(os.Stderr, "figures: stream round %d: PUT direct %.2fs gw %.2fs pass %.2fs | GET direct %.2fs gw %.2fs pass %.2fs | gw CPU %.2f/%.2f s, pass %.2f/%.2f s, crypto %.2f/%.2f s/GiB\n",
			r, dir.put, gw.put, pass.put, dir.get, gw.get, pass.get, gw.cpuPut, gw.cpuGet, pass.cpuPut, pass.cpuGet, cp, cg)
	}
	med := benchutil.Median
	size := benchutil.SizeLabel(n)
	t.Add(
		benchutil.AtLeast(size+" PUT with curl (presigned, UNSIGNED-PAYLOAD), gateway ÷ direct", "%.2f", med(putR), 0.85),
		benchutil.AtLeast(size+" GET with curl, gateway ÷ direct", "%.2f", med(getR), 0.70),
		benchutil.Bound(size+" PUT with curl, pass-through ÷ direct", fmt.Sprintf("%.2f", med(passPutR))),
		benchutil.Bound(size+" GET with curl, pass-through ÷ direct", fmt.Sprintf("%.2f", med(passGetR))),
		benchutil.AtMost(fmt.Sprintf("gateway CPU per GiB PUT ÷ (pass-through + seal + MD5) [%.2f ÷ %.2f s/GiB]", med(gwPut), med(basePut)), "%.2f", med(cpuPutR), 1.10),
		benchutil.AtMost(fmt.Sprintf("gateway CPU per GiB GET ÷ (pass-through + open) [%.2f ÷ %.2f s/GiB]", med(gwGet), med(baseGet)), "%.2f", med(cpuGetR), 1.10),
		benchutil.Info("MinIO CPU per GiB PUT: direct / behind the gateway", fmt.Sprintf("%.2f / %.2f s", med(mDirPut), med(mGwPut))),
		benchutil.Info("MinIO CPU per GiB GET: direct / behind the gateway", fmt.Sprintf("%.2f / %.2f s", med(mDirGet), med(mGwGet))),
	)
}

// sweep measures PUT and GET throughput of each sweep size for the gateway and MinIO direct
// (sequential requests, Go client, alternating which goes first) for the plot.
func (s *figStack) sweep(b *testing.B) []benchutil.Series {
	buf := figBody(b)
	names := []string{"gateway PUT", "direct PUT", "gateway GET", "direct GET"}
	pts := make([][]benchutil.Point, len(names))
	for si, size := range s.cfg.sweep {
		ops := int(min(max(1, s.cfg.sweepBytes/size), 300))
		targets := []*figTarget{s.gate, s.direct}
		if si%2 == 1 {
			targets[0], targets[1] = targets[1], targets[0]
		}
		for _, tg := range targets {
			key := fmt.Sprintf("sweep/%s/%d", tg.name, size)
			var up, down time.Duration
			for i := 0; i < ops; i++ {
				d, err := tg.put(s.bucket, key, &cycleReader{buf: buf, off: int64(i), left: size}, size)
				if err != nil {
					b.Fatal(err)
				}
				up += d
			}
			for i := 0; i < ops; i++ {
				d, got, err := tg.get(s.bucket, key, "", io.Discard)
				if err != nil || got != size {
					b.Fatalf("%s GET %s: %d bytes, %v", tg.name, key, got, err)
				}
				down += d
			}
			mb := float64(size) * float64(ops) / 1e6
			i := 0
			if tg == s.direct {
				i = 1
			}
			pts[i] = append(pts[i], benchutil.Point{Size: size, MBps: mb / up.Seconds()})
			pts[i+2] = append(pts[i+2], benchutil.Point{Size: size, MBps: mb / down.Seconds()})
			fmt.Fprintf(os.Stderr, "figures: sweep %s %s × %d: PUT %.1f MB/s, GET %.1f MB/s\n", tg.name, benchutil.SizeLabel(size), ops, mb/up.Seconds(), mb/down.Seconds())
			s.deleteKey(b, key)
		}
	}
	series := make([]benchutil.Series, len(names))
	for i := range names {
		series[i] = benchutil.Series{Name: names[i], Points: pts[i]}
	}
	return series
}
