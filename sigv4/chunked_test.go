package sigv4

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"hash/crc64"
	"strings"
	"testing"
)

func crc32cB64(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))))
}

// TestCRC64NVMEKnownVector checks the polynomial against the CRC-64/NVME
// check value (CRC of "123456789") from the CRC catalogue.
func TestCRC64NVMEKnownVector(t *testing.T) {
	a, _ := checksumByName("CRC64NVME")
	h := a.newFn()
	h.Write([]byte("123456789"))
	if got := binary.BigEndian.Uint64(h.Sum(nil)); got != 0xae8b14860a799888 {
		t.Fatalf("CRC-64/NVME(123456789) = %#x", got)
	}
	if crc64.Checksum([]byte("123456789"), crc64.MakeTable(crc64.ECMA)) == 0xae8b14860a799888 {
		t.Fatal("vector does not discriminate")
	}
}

// TestNewChecksumAlgorithms checks SHA512, MD5 (standard library) and the xxHashes against
// values from python3-xxhash 3.2.0 (Debian; the C xxHash library), in S3's base64 of the
// canonical big-endian digest.
func TestNewChecksumAlgorithms(t *testing.T) {
	long := bytes.Repeat([]byte("hello world"), 1000)
	md5sum, sha512sum := md5.Sum(long), sha512.Sum512(long)
	cases := []struct {
		alg   string
		data  []byte
		value string
	}{
		{"XXHASH64", nil, "70bbN1HY6Zk="}, {"XXHASH3", nil, "LQaABTjTlMI="}, {"XXHASH128", nil, "maoG0wFHmNhgAcMkRo1Jfw=="},
		{"XXHASH64", []byte("abc"), "RLws9a13CZk="}, {"XXHASH3", []byte("abc"), "eK9flIkvOVA="}, {"XXHASH128", []byte("abc"), "BrBatnM6YYV4r1+UiS85UA=="},
		{"XXHASH64", long, "6DnH1qcyXE4="}, {"XXHASH3", long, "4xfrLnDb960="}, {"XXHASH128", long, "t1TjS+aVuaPjF+sucNv3rQ=="},
		{"MD5", long, base64.StdEncoding.EncodeToString(md5sum[:])},
		{"SHA512", long, base64.StdEncoding.EncodeToString(sha512sum[:])},
	}
	for _, c := range cases {
		a, ok := checksumByName(c.alg)
		if !ok {
			t.Fatalf("%s: unknown", c.alg)
		}
		if h, ok := checksumByHeader("X-Amz-Checksum-" + c.alg); !ok || h.name != c.alg {
			t.Fatalf("%s: header name not known", c.alg)
		}
		h := a.newFn()
		h.Write(c.data)
		if got := base64.StdEncoding.EncodeToString(h.Sum(nil)); got != c.value {
			t.Errorf("%s of %d bytes = %s, want %s", c.alg, len(c.data), got, c.value)
		}
		if _, ok := decodeChecksum(a, c.value); !ok {
			t.Errorf("%s: decodeChecksum refuses %s", c.alg, c.value)
		}
	}
}

var (
	chunkA = bytes.Repeat([]byte("A"), 8192)
	chunkB = bytes.Repeat([]byte("B"), 8192)
	chunkC = []byte("the end")
)

func threeChunks() []byte { return bytes.Join([][]byte{chunkA, chunkB, chunkC}, nil) }

func TestStreamingSigned(t *testing.T) {
	v := testVerifier()
	payload := threeChunks()
	r := streamingRequest(t, streamingSignedPayload, len(payload), "", nil, func(seed string) []byte {
		return newChunkWriter(seed, true, testNow).chunk(chunkA).chunk(chunkB).chunk(chunkC).chunk(nil).end()
	})
	a, err := v.Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	if a.Payload != PayloadStreamingSigned || a.DecodedLength != int64(len(payload)) {
		t.Fatalf("auth = %+v", a)
	}
	got, err := readAllChecked(a.Body(r.Body, r.Header))
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("err %v, got %d bytes", err, len(got))
	}
}

// TestTamperedMiddleChunk: the bytes of a chunk whose signature fails must
// never be returned; the chunk before it was verified and is returned.
func TestTamperedMiddleChunk(t *testing.T) {
	payload := threeChunks()
	r := streamingRequest(t, streamingSignedPayload, len(payload), "", nil, func(seed string) []byte {
		body := newChunkWriter(seed, true, testNow).chunk(chunkA).chunk(chunkB).chunk(chunkC).chunk(nil).end()
		i := bytes.IndexByte(body, 'B')
		body[i+100] = 'X'
		return body
	})
	a, err := testVerifier().Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAllChecked(a.Body(r.Body, r.Header))
	wantCode(t, err, CodeSignatureDoesNotMatch)
	if !bytes.Equal(got, chunkA) {
		t.Fatalf("returned %d bytes before the failure, want exactly the first chunk (%d)", len(got), len(chunkA))
	}
}

func TestStreamingTrailers(t *testing.T) {
	payload := threeChunks()
	good := crc32cB64(payload)
	sha := sha256.Sum256(payload)
	shaB64 := base64.StdEncoding.EncodeToString(sha[:])
	type tc struct {
		name    string
		mode    string
		trailer string // x-amz-trailer
		extra   map[string]string
		body    func(seed string) []byte
		code    string // "" = success
		alg     string
	}
	signedBody := func(lines ...string) func(string) []byte {
		return func(seed string) []byte {
			return newChunkWriter(seed, true, testNow).chunk(chunkA).chunk(chunkB).chunk(chunkC).chunk(nil).trailer(lines...).end()
		}
	}
	unsignedBody := func(lines ...string) func(string) []byte {
		return func(seed string) []byte {
			return newChunkWriter(seed, false, testNow).chunk(chunkA).chunk(chunkB).chunk(chunkC).chunk(nil).trailer(lines...).end()
		}
	}
	cases := []tc{
		{"signed trailer", streamingSignedPayloadTrailer, "x-amz-checksum-crc32c", nil, signedBody("x-amz-checksum-crc32c:" + good), "", "CRC32C"},
		{"signed sha256 trailer", streamingSignedPayloadTrailer, "x-amz-checksum-sha256",
			map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "SHA256"}, signedBody("x-amz-checksum-sha256:" + shaB64), "", "SHA256"},
		{"tampered trailer", streamingSignedPayloadTrailer, "x-amz-checksum-crc32c", nil, func(seed string) []byte {
			b := signedBody("x-amz-checksum-crc32c:" + good)(seed)
			return bytes.Replace(b, []byte(good), []byte(crc32cB64([]byte("other"))), 1)
		}, CodeSignatureDoesNotMatch, ""},
		{"signed trailer, wrong crc", streamingSignedPayloadTrailer, "x-amz-checksum-crc32c", nil,
			signedBody("x-amz-checksum-crc32c:" + crc32cB64([]byte("other"))), CodeBadDigest, ""},
		{"missing trailer signature", streamingSignedPayloadTrailer, "x-amz-checksum-crc32c", nil,
			unsignedBodyOnSigned(good), CodeSignatureDoesNotMatch, ""},
		{"unsigned trailer", streamingUnsignedPayloadTrailer, "x-amz-checksum-crc32c", nil, unsignedBody("x-amz-checksum-crc32c:" + good), "", "CRC32C"},
		{"unsigned trailer, wrong crc32c", streamingUnsignedPayloadTrailer, "x-amz-checksum-crc32c", nil,
			unsignedBody("x-amz-checksum-crc32c:" + crc32cB64([]byte("other"))), CodeBadDigest, ""},
		{"undeclared trailer", streamingUnsignedPayloadTrailer, "x-amz-checksum-crc32c", nil,
			unsignedBody("x-amz-checksum-crc32:AAAAAA=="), CodeMalformedTrailerError, ""},
		{"declared trailer missing", streamingUnsignedPayloadTrailer, "x-amz-checksum-crc32c", nil, unsignedBody(), CodeMalformedTrailerError, ""},
		{"trailer signature in unsigned mode", streamingUnsignedPayloadTrailer, "x-amz-checksum-crc32c", nil,
			unsignedBody("x-amz-checksum-crc32c:"+good, "x-amz-trailer-signature:"+strings.Repeat("0", 64)), CodeMalformedTrailerError, ""},
		{"no trailer declared, none sent", streamingUnsignedPayloadTrailer, "", nil, unsignedBody(), "", ""},
		{"final CRLF missing", streamingUnsignedPayloadTrailer, "x-amz-checksum-crc32c", nil, func(seed string) []byte {
			b := unsignedBody("x-amz-checksum-crc32c:" + good)(seed)
			return b[:len(b)-2]
		}, "", "CRC32C"},
		{"blank line before trailers", streamingSignedPayloadTrailer, "x-amz-checksum-crc32c", nil, func(seed string) []byte {
			b := signedBody("x-amz-checksum-crc32c:" + good)(seed)
			i := bytes.Index(b, []byte("x-amz-checksum-crc32c:"))
			return append(append(append([]byte{}, b[:i]...), "\r\n"...), b[i:]...)
		}, "", "CRC32C"},
		// xxHash values of threeChunks() from python3-xxhash 3.2.0 (Debian; the C xxHash library),
		// not from the code under test.
		{"xxhash64 trailer", streamingUnsignedPayloadTrailer, "x-amz-checksum-xxhash64",
			map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "XXHASH64"}, unsignedBody("x-amz-checksum-xxhash64:mgA2U2onuoQ="), "", "XXHASH64"},
		{"xxhash3 trailer", streamingSignedPayloadTrailer, "x-amz-checksum-xxhash3", nil, signedBody("x-amz-checksum-xxhash3:+nJgOZPwnPI="), "", "XXHASH3"},
		{"xxhash128 trailer", streamingUnsignedPayloadTrailer, "x-amz-checksum-xxhash128", nil,
			unsignedBody("x-amz-checksum-xxhash128:9bR0kPTEgmT6cmA5k/Cc8g=="), "", "XXHASH128"},
		{"xxhash128 trailer, wrong value", streamingUnsignedPayloadTrailer, "x-amz-checksum-xxhash128", nil,
			unsignedBody("x-amz-checksum-xxhash128:9bR0kPTEgmT6cmA5k/Cc8w=="), CodeBadDigest, ""},
		{"header checksum plus trailer", streamingUnsignedPayloadTrailer, "x-amz-checksum-crc32c",
			map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA=="}, unsignedBody("x-amz-checksum-crc32c:" + good), CodeInvalidRequest, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := streamingRequest(t, c.mode, len(payload), c.trailer, c.extra, c.body)
			a, err := testVerifier().Authenticate(r)
			if err != nil {
				if c.code != "" {
					wantCode(t, err, c.code)
					return
				}
				t.Fatal(err)
			}
			p := a.Body(r.Body, r.Header)
			got, err := readAllChecked(p)
			if c.code != "" {
				wantCode(t, err, c.code)
				return
			}
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("err %v, %d bytes", err, len(got))
			}
			if alg, _ := p.Checksum(); alg != c.alg {
				t.Fatalf("Checksum() algorithm %q, want %q", alg, c.alg)
			}
		})
	}
}

// unsignedBodyOnSigned writes signed chunks but an unsigned trailer section.
func unsignedBodyOnSigned(crc string) func(string) []byte {
	return func(seed string) []byte {
		w := newChunkWriter(seed, true, testNow).chunk(chunkA).chunk(chunkB).chunk(chunkC).chunk(nil)
		w.signed = false
		return w.trailer("x-amz-checksum-crc32c:" + crc).end()
	}
}

func TestStreamingLengthAndFraming(t *testing.T) {
	payload := threeChunks()
	n := len(payload)
	unsigned := func(mod func(b []byte) []byte) func(string) []byte {
		return func(seed string) []byte {
			b := newChunkWriter(seed, false, testNow).chunk(chunkA).chunk(chunkB).chunk(chunkC).chunk(nil).end()
			return mod(append([]byte{}, b...))
		}
	}
	replace := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
	}
	cases := []struct {
		name     string
		mode     string
		declared int
		body     func(string) []byte
		code     string
		maxOut   int // most decoded bytes that may be returned before the error
	}{
		{"declared longer than body", streamingUnsignedPayloadTrailer, n + 1, unsigned(func(b []byte) []byte { return b }), CodeIncompleteBody, n},
		{"declared shorter than body", streamingUnsignedPayloadTrailer, n - 1, unsigned(func(b []byte) []byte { return b }), CodeIncompleteBody, len(chunkA) + len(chunkB)},
		{"signed, declared shorter", streamingSignedPayload, len(chunkA) + 10, func(seed string) []byte {
			return newChunkWriter(seed, true, testNow).chunk(chunkA).chunk(chunkB).chunk(nil).end()
		}, CodeIncompleteBody, len(chunkA)},
		{"missing CRLF after data", streamingUnsignedPayloadTrailer, n, unsigned(replace("A\r\n2000", "A\r2000")), CodeInvalidRequest, len(chunkA)},
		{"bare LF in header", streamingUnsignedPayloadTrailer, n, unsigned(replace("2000\r\n", "2000\n")), CodeInvalidRequest, 0},
		{"hex overflow", streamingUnsignedPayloadTrailer, n, unsigned(replace("2000\r\n", "10000000000000000\r\n")), CodeInvalidRequest, 0},
		{"hex garbage", streamingUnsignedPayloadTrailer, n, unsigned(replace("2000\r\n", "-200\r\n")), CodeInvalidRequest, 0},
		{"extension in unsigned mode", streamingUnsignedPayloadTrailer, n, unsigned(replace("2000\r\n", "2000;x=y\r\n")), CodeInvalidRequest, 0},
		{"long header line", streamingUnsignedPayloadTrailer, n, unsigned(replace("2000\r\n", strings.Repeat("0", 300)+"2000\r\n")), CodeInvalidRequest, 0},
		{"data after final chunk", streamingSignedPayload, n, func(seed string) []byte {
			return append(newChunkWriter(seed, true, testNow).chunk(chunkA).chunk(chunkB).chunk(chunkC).chunk(nil).end(), "junk"...)
		}, CodeInvalidRequest, n},
		{"junk after trailers", streamingUnsignedPayloadTrailer, n, unsigned(func(b []byte) []byte { return append(b, "junk\r\n"...) }), CodeMalformedTrailerError, n},
		{"truncated", streamingUnsignedPayloadTrailer, n, unsigned(func(b []byte) []byte { return b[:len(b)/2] }), CodeIncompleteBody, n},
		{"signed chunk without signature", streamingSignedPayload, n, unsigned(func(b []byte) []byte { return b }), CodeInvalidRequest, 0},
		{"signed chunk over the limit", streamingSignedPayload, 1 << 20, func(seed string) []byte {
			return newChunkWriter(seed, true, testNow).chunk(make([]byte, 1<<20)).chunk(nil).end()
		}, CodeInvalidRequest, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := streamingRequest(t, c.mode, c.declared, "", nil, c.body)
			v := NewVerifier(Config{Secrets: secrets{testAKID: testSecret}, Now: fixedClock(testNow), MaxChunkSize: 64 << 10})
			a, err := v.Authenticate(r)
			if err != nil {
				t.Fatal(err)
			}
			p := a.Body(r.Body, r.Header)
			got, err := readAllChecked(p)
			wantCode(t, err, c.code)
			if len(got) > c.maxOut {
				t.Fatalf("returned %d bytes before failing, at most %d allowed", len(got), c.maxOut)
			}
			if _, err2 := p.Read(make([]byte, 1)); err2 != err {
				t.Fatalf("second Read returned %v", err2)
			}
		})
	}
}
