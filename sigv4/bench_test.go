package sigv4

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"io"
	"testing"
)

const benchSize = 64 << 20

func benchPayload() []byte { return testPayload(benchSize) }

func benchBody(b *testing.B, a *Auth, body []byte) {
	b.SetBytes(benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p := a.Body(io.NopCloser(bytes.NewReader(body)), nil)
		n, err := io.CopyBuffer(io.Discard, p, make([]byte, 64<<10))
		if err != nil || n != benchSize {
			b.Fatalf("%d bytes, %v", n, err)
		}
	}
}

// BenchmarkSignedBody: x-amz-content-sha256 = hex SHA-256 of a 64 MiB body.
func BenchmarkSignedBody(b *testing.B) {
	data := benchPayload()
	r := toServer(b, signedPut(b, testURL, data, nil))
	a, err := testVerifier().Authenticate(r)
	if err != nil {
		b.Fatal(err)
	}
	benchBody(b, a, data)
}

func benchStreaming(b *testing.B, mode string, signed bool, chunk int) {
	data := benchPayload()
	trailer := ""
	if mode != streamingSignedPayload {
		trailer = "x-amz-checksum-crc32c"
	}
	var body []byte
	r := streamingRequest(b, mode, len(data), trailer, nil, func(seed string) []byte {
		w := newChunkWriter(seed, signed, testNow)
		for off := 0; off < len(data); off += chunk {
			w.chunk(data[off:min(off+chunk, len(data))])
		}
		w.chunk(nil)
		if trailer != "" {
			crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
			w.trailer(trailer + ":" + base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc)))
		}
		body = w.end()
		return body
	})
	a, err := testVerifier().Authenticate(r)
	if err != nil {
		b.Fatal(err)
	}
	benchBody(b, a, body)
}

// BenchmarkStreamingSigned: STREAMING-AWS4-HMAC-SHA256-PAYLOAD, 64 KiB chunks.
func BenchmarkStreamingSigned(b *testing.B) {
	benchStreaming(b, streamingSignedPayload, true, 64<<10)
}

// BenchmarkStreamingSignedTrailer: signed 64 KiB chunks plus a CRC32C trailer.
func BenchmarkStreamingSignedTrailer(b *testing.B) {
	benchStreaming(b, streamingSignedPayloadTrailer, true, 64<<10)
}

// BenchmarkStreamingUnsignedTrailer: what SDKs send over TLS by default.
func BenchmarkStreamingUnsignedTrailer(b *testing.B) {
	benchStreaming(b, streamingUnsignedPayloadTrailer, false, 64<<10)
}

func BenchmarkAuthenticateHeaderV4(b *testing.B) {
	r := toServer(b, signedPut(b, testURL, []byte("x"), map[string]string{"X-Amz-Meta-A": "b"}))
	v := testVerifier()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}
