package format_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net/textproto"
	"strconv"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// Single-part objects sealing S3's additional checksum of their plaintext (FORMAT.md 3.3):
// the algorithm in PartInfo byte 2, the digest in the trailer after the MD5.

// allChecksums is none and every algorithm, by number.
var allChecksums = []format.ChecksumAlgorithm{
	format.ChecksumNone, format.ChecksumCRC32, format.ChecksumCRC32C, format.ChecksumCRC64NVME,
	format.ChecksumSHA1, format.ChecksumSHA256, format.ChecksumSHA512, format.ChecksumMD5,
	format.ChecksumXXHASH64, format.ChecksumXXHASH3, format.ChecksumXXHASH128,
}

var checksumSizes = []int64{0, 1, S - 1, S, S + 1, 3*S + 5}

// checksumOf is a's digest of b as hash.Sum gives it, nil for none.
func checksumOf(a format.ChecksumAlgorithm, b []byte) []byte {
	h := a.New()
	if h == nil {
		return nil
	}
	h.Write(b)
	return h.Sum(nil)
}

func algName(a format.ChecksumAlgorithm) string {
	if a == format.ChecksumNone {
		return "none"
	}
	return a.String()
}

// encryptChecksum returns the stored bytes of plain under k with algorithm a and the digest the
// reader reported; viaWriteTo drains the reader with WriteTo instead of Read.
func encryptChecksum(t testing.TB, k *format.ObjectKey, plain []byte, o format.EncryptOptions, viaWriteTo bool) ([]byte, []byte) {
	t.Helper()
	r, err := format.NewEncryptReader(bytes.NewReader(plain), k, int64(len(plain)), o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Checksum() != nil {
		t.Fatalf("%s, %d bytes: Checksum before any read", algName(o.Checksum), len(plain))
	}
	var out []byte
	if viaWriteTo {
		var b bytes.Buffer
		_, err = r.WriteTo(&b)
		out = b.Bytes()
	} else {
		out, err = io.ReadAll(r)
	}
	if err != nil {
		t.Fatalf("%s, %d bytes: encrypt: %v", algName(o.Checksum), len(plain), err)
	}
	want := format.EncryptedSizeOf(int64(len(plain)), o.Checksum)
	if int64(len(out)) != want || r.Size() != want {
		t.Fatalf("%s, %d bytes: %d stored bytes, Size() %d, EncryptedSizeOf %d", algName(o.Checksum), len(plain), len(out), r.Size(), want)
	}
	return out, r.Checksum()
}

func TestSingleChecksumRoundTrip(t *testing.T) {
	k := newKey(t)
	for i, a := range allChecksums {
		for j, size := range checksumSizes {
			plain := randomBytes(t, size)
			want := checksumOf(a, plain)
			wantMD5 := md5.Sum(plain)
			withMD5 := (i+j)%2 == 0
			name := algName(a) + "/" + strconv.FormatInt(size, 10)
			stored, encSum := encryptChecksum(t, k, plain, format.EncryptOptions{ComputeMD5: withMD5, Checksum: a}, j%2 == 1)
			if !bytes.Equal(encSum, want) || (a == format.ChecksumNone) != (encSum == nil) {
				t.Fatalf("%s: EncryptReader.Checksum %x, want %x", name, encSum, want)
			}
			if a != format.ChecksumNone && len(encSum) != a.Size() {
				t.Fatalf("%s: checksum of %d bytes, want %d", name, len(encSum), a.Size())
			}
			p, err := format.DecryptedSizeOf(int64(len(stored)), a)
			if err != nil || p != size {
				t.Fatalf("%s: DecryptedSizeOf(%d) = %d, %v", name, len(stored), p, err)
			}
			s, err := k.SingleStreamOf(p, a)
			if err != nil {
				t.Fatal(err)
			}
			ts := int64(format.TrailerSize + a.Size())
			if s.StoredSize() != int64(len(stored)) || s.TrailerSize() != ts || s.TrailerOffset() != int64(len(stored))-ts || s.Checksum() != a {
				t.Fatalf("%s: StoredSize %d TrailerSize %d TrailerOffset %d Checksum %d; stored %d", name, s.StoredSize(), s.TrailerSize(), s.TrailerOffset(), s.Checksum(), len(stored))
			}
			d := s.DecryptAll(bytes.NewReader(stored))
			var got []byte
			if j%2 == 0 {
				// Checksum is nil until the end, also once every plaintext byte is out.
				got = make([]byte, size)
				if _, err := io.ReadFull(d, got); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if d.Checksum() != nil {
					t.Fatalf("%s: DecryptReader.Checksum before io.EOF", name)
				}
				if rest, err := io.ReadAll(d); err != nil || len(rest) != 0 {
					t.Fatalf("%s: after the plaintext: %d bytes, %v", name, len(rest), err)
				}
			} else {
				var b bytes.Buffer
				_, err = d.WriteTo(&b)
				got = b.Bytes()
			}
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%s: DecryptAll: %v (plaintext equal: %v)", name, err, bytes.Equal(got, plain))
			}
			if !bytes.Equal(d.Checksum(), want) || (a == format.ChecksumNone) != (d.Checksum() == nil) {
				t.Fatalf("%s: DecryptReader.Checksum %x, want %x", name, d.Checksum(), want)
			}
			if gotMD5 := d.MD5(); withMD5 != bytes.Equal(gotMD5, wantMD5[:]) || !withMD5 && gotMD5 != nil {
				t.Fatalf("%s: MD5 %x (computed: %v)", name, gotMD5, withMD5)
			}
			m, c, err := s.OpenTrailerChecksum(stored[s.TrailerOffset():])
			if err != nil || !bytes.Equal(c, want) || (a == format.ChecksumNone) != (c == nil) || withMD5 != (m != nil) {
				t.Fatalf("%s: OpenTrailerChecksum = %x, %x, %v", name, m, c, err)
			}
			if m2, err := s.OpenTrailer(stored[s.TrailerOffset():]); err != nil || !bytes.Equal(m2, m) {
				t.Fatalf("%s: OpenTrailer = %x, %v; want %x", name, m2, err, m)
			}
			if m != nil && c != nil {
				// The two values do not share room: appending to the MD5 leaves C as it is.
				_ = append(m, 0xff, 0xff)
				if !bytes.Equal(c, want) {
					t.Fatalf("%s: appending to the MD5 changed the checksum to %x", name, c)
				}
			}
			if a == format.ChecksumNone {
				// The old API reads an object without a checksum as before.
				if _, _, err := decryptSingle(k, stored); err != nil {
					t.Fatalf("%s: DecryptedSize/SingleStream: %v", name, err)
				}
			}
		}
	}
}

// specPartKey is PK = HKDF(OK, -, "s3seal/1 part" ‖ PartInfo(kind 0, a, part 0, p), 32), built
// from FORMAT.md without the package.
func specPartKey(t *testing.T, ok []byte, a format.ChecksumAlgorithm, p int64) cipher.AEAD {
	t.Helper()
	pi := make([]byte, 16)
	pi[0], pi[1], pi[2], pi[3] = 1, 0, byte(a), 0
	binary.BigEndian.PutUint64(pi[8:], uint64(p))
	pk, err := hkdf.Key(sha256.New, ok, nil, "s3seal/1 part"+string(pi), 32)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(pk)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func specNonce(i uint64, flag uint32) []byte {
	n := binary.BigEndian.AppendUint64(nil, i)
	return binary.BigEndian.AppendUint32(n, flag)
}

// TestSingleChecksumLayoutBySpec decodes the stored bytes by FORMAT.md 3.1-3.3 alone: PK from
// PartInfo with the algorithm in byte 2, every segment, and a trailer of MD5 ‖ C.
func TestSingleChecksumLayoutBySpec(t *testing.T) {
	k := newKey(t)
	ok := format.ObjectKeyBytes(k)
	for _, a := range allChecksums {
		for _, size := range []int64{0, 1, S, 2*S + 3} {
			plain := randomBytes(t, size)
			stored, _ := encryptChecksum(t, k, plain, format.EncryptOptions{ComputeMD5: true, Checksum: a}, false)
			g := specPartKey(t, ok, a, size)
			n := max(1, (size+S-1)/S)
			var got []byte
			off := int64(0)
			for i := range n {
				m := min(int64(S), size-i*S)
				flag := uint32(0)
				if i == n-1 {
					flag = 1
				}
				pt, err := g.Open(nil, specNonce(uint64(i), flag), stored[off:off+m+16], nil)
				if err != nil {
					t.Fatalf("%s/%d: segment %d does not open under the spec's PK", algName(a), size, i)
				}
				got = append(got, pt...)
				off += m + 16
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("%s/%d: segments differ from the plaintext", algName(a), size)
			}
			tr, err := g.Open(nil, specNonce(uint64(n), 2), stored[off:], nil)
			if err != nil {
				t.Fatalf("%s/%d: trailer (%d bytes) does not open under the spec's PK", algName(a), size, len(stored)-int(off))
			}
			sum := md5.Sum(plain)
			if want := append(sum[:], checksumOf(a, plain)...); !bytes.Equal(tr, want) {
				t.Fatalf("%s/%d: trailer %x, want MD5 ‖ C = %x", algName(a), size, tr, want)
			}
		}
	}
}

// TestSingleChecksumNoneUnchanged: an object without a checksum is the object the package
// wrote before checksums (EncryptOptions without Checksum, the old API).
func TestSingleChecksumNoneUnchanged(t *testing.T) {
	k := newKey(t)
	for _, size := range checksumSizes {
		plain := randomBytes(t, size)
		old := encryptSingle(t, k, plain, format.EncryptOptions{ComputeMD5: true})
		now, _ := encryptChecksum(t, k, plain, format.EncryptOptions{ComputeMD5: true, Checksum: format.ChecksumNone}, false)
		if !bytes.Equal(old, now) {
			t.Fatalf("%d bytes: Checksum none changes the stored bytes", size)
		}
		crc, _ := encryptChecksum(t, k, plain, format.EncryptOptions{ComputeMD5: true, Checksum: format.ChecksumCRC32}, false)
		if bytes.Equal(old[:16], crc[:16]) {
			t.Fatalf("%d bytes: CRC32 does not change the part key", size)
		}
		s0, err0 := k.SingleStream(size)
		s1, err1 := k.SingleStreamOf(size, format.ChecksumNone)
		if err0 != nil || err1 != nil || s0.StoredSize() != s1.StoredSize() || s0.TrailerSize() != format.TrailerSize || s0.Checksum() != format.ChecksumNone {
			t.Fatalf("%d bytes: SingleStream and SingleStreamOf(none) differ: %v %v", size, err0, err1)
		}
	}
}

func TestSingleChecksumRanges(t *testing.T) {
	k := newKey(t)
	r := rng(t)
	for _, a := range allChecksums {
		size := int64(3*S + 5)
		plain := randomBytes(t, size)
		stored, _ := encryptChecksum(t, k, plain, format.EncryptOptions{Checksum: a}, false)
		s, err := k.SingleStreamOf(size, a)
		if err != nil {
			t.Fatal(err)
		}
		ranges := [][2]int64{{0, 1}, {0, size}, {size - 1, 1}, {S - 1, 2}, {3 * S, 5}, {3*S + 4, 1}, {S, S}}
		for range 20 {
			off := r.Int64N(size)
			ranges = append(ranges, [2]int64{off, 1 + r.Int64N(size-off)})
		}
		for _, rg := range ranges {
			so, sl, err := s.Span(rg[0], rg[1])
			if err != nil {
				t.Fatal(err)
			}
			if so+sl > s.TrailerOffset() {
				t.Fatalf("%s: range %v needs stored [%d, %d), past the trailer at %d", algName(a), rg, so, so+sl, s.TrailerOffset())
			}
			if rg[0]+rg[1] == size && so+sl != s.TrailerOffset() {
				t.Fatalf("%s: range %v to the end needs stored [%d, %d), not up to the trailer at %d", algName(a), rg, so, so+sl, s.TrailerOffset())
			}
			got, err := io.ReadAll(s.DecryptRange(bytes.NewReader(stored[so:so+sl]), rg[0], rg[1]))
			if err != nil || !bytes.Equal(got, plain[rg[0]:rg[0]+rg[1]]) {
				t.Fatalf("%s: range %v: %v", algName(a), rg, err)
			}
			d := s.DecryptRange(bytes.NewReader(stored[so:so+sl]), rg[0], rg[1]).(*format.DecryptReader)
			if _, err := io.Copy(io.Discard, d); err != nil || d.Checksum() != nil {
				t.Fatalf("%s: range %v: Checksum %x after a ranged read, %v", algName(a), rg, d.Checksum(), err)
			}
		}
	}
}

// TestPartChecksumComputedOnly: the part encrypt readers compute the checksum and store the
// same bytes as without it.
func TestPartChecksumComputedOnly(t *testing.T) {
	for _, a := range allChecksums[1:] {
		for _, size := range []int64{0, 1, S, 2*S + 3} {
			plain := randomBytes(t, size)
			want := checksumOf(a, plain)
			for _, ver := range []int{format.Version3, format.Version2} {
				k, err := format.NewObjectKeyOfVersion(bytes.NewReader(make([]byte, 32)), ver)
				if err != nil {
					t.Fatal(err)
				}
				var out [2][]byte
				for i, o := range []format.EncryptOptions{{ComputeMD5: true}, {ComputeMD5: true, Checksum: a}} {
					r, err := format.NewPartEncryptReaderV2WithRand(k, bytes.NewReader(bytes.Repeat([]byte{7}, 32)), bytes.NewReader(plain), 2, size, o)
					if err != nil {
						t.Fatal(err)
					}
					if out[i], err = io.ReadAll(r); err != nil {
						t.Fatal(err)
					}
					if int64(len(out[i])) != r.Size() || r.Size() != format.PartEncryptedSize(size) {
						t.Fatalf("%s/%d v%d: part of %d bytes, Size %d", algName(a), size, ver, len(out[i]), r.Size())
					}
					if got := r.Checksum(); (o.Checksum == a) != bytes.Equal(got, want) || o.Checksum == format.ChecksumNone && got != nil {
						t.Fatalf("%s/%d v%d: part Checksum %x, want %x", algName(a), size, ver, got, want)
					}
					if sum := md5.Sum(plain); !bytes.Equal(r.MD5(), sum[:]) {
						t.Fatalf("%s/%d v%d: part MD5 %x with a checksum", algName(a), size, ver, r.MD5())
					}
				}
				if !bytes.Equal(out[0], out[1]) {
					t.Fatalf("%s/%d v%d: the checksum changed the part's stored bytes", algName(a), size, ver)
				}
				s, err := k.PartStream(out[1][:format.PartHeaderSize], 2)
				if err != nil {
					t.Fatal(err)
				}
				if s.TrailerSize() != format.TrailerSize || s.StoredSize() != format.EncryptedSize(size) || s.Checksum() != format.ChecksumNone {
					t.Fatalf("%s/%d v%d: part stream trailer %d, stored %d", algName(a), size, ver, s.TrailerSize(), s.StoredSize())
				}
				d := s.DecryptAll(bytes.NewReader(out[1][format.PartHeaderSize:]))
				if got, err := io.ReadAll(d); err != nil || !bytes.Equal(got, plain) || d.Checksum() != nil {
					t.Fatalf("%s/%d v%d: part read back: %v, Checksum %x", algName(a), size, ver, err, d.Checksum())
				}
			}
			// Format 1 (NewPartEncryptReader with an upload public key).
			upub, err := newKey(t).UploadPublicKey()
			if err != nil {
				t.Fatal(err)
			}
			r, err := format.NewPartEncryptReader(bytes.NewReader(plain), upub, 1, size, format.EncryptOptions{Checksum: a})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, r); err != nil || n != format.PartEncryptedSize(size) || !bytes.Equal(r.Checksum(), want) || r.MD5() != nil {
				t.Fatalf("%s/%d v1: %d bytes, %v, Checksum %x MD5 %x", algName(a), size, n, err, r.Checksum(), r.MD5())
			}
		}
	}
}

// TestChecksumBeforeEOF: EncryptReader.Checksum is there once the last stored byte has been
// read, before the reader's own io.EOF, and never after a failed read.
func TestChecksumBeforeEOF(t *testing.T) {
	k := newKey(t)
	plain := randomBytes(t, 2*S+1)
	r, err := format.NewEncryptReader(bytes.NewReader(plain), k, int64(len(plain)), format.EncryptOptions{Checksum: format.ChecksumSHA256})
	if err != nil {
		t.Fatal(err)
	}
	stored := make([]byte, format.EncryptedSizeOf(int64(len(plain)), format.ChecksumSHA256))
	if _, err := io.ReadFull(r, stored); err != nil {
		t.Fatal(err)
	}
	// Every stored byte read, io.EOF not yet returned (an HTTP client stops at Content-Length):
	// the checksum is there, as the MD5 is.
	if !bytes.Equal(r.Checksum(), checksumOf(format.ChecksumSHA256, plain)) {
		t.Fatalf("Checksum once every stored byte was read: %x", r.Checksum())
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the stored bytes: %d, %v", n, err)
	}
	if !bytes.Equal(r.Checksum(), checksumOf(format.ChecksumSHA256, plain)) {
		t.Fatalf("Checksum after io.EOF: %x", r.Checksum())
	}
	// A failed read never reports a checksum.
	short, err := format.NewEncryptReader(bytes.NewReader(plain[:S]), k, int64(len(plain)), format.EncryptOptions{Checksum: format.ChecksumCRC32})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, short); !errors.Is(err, format.ErrSize) || short.Checksum() != nil {
		t.Fatalf("short source: %v, Checksum %x", err, short.Checksum())
	}
}

func TestChecksumUnknownAlgorithm(t *testing.T) {
	k := newKey(t)
	for _, a := range []format.ChecksumAlgorithm{11, 12, 0x80, 0x81, 255} {
		if _, err := format.NewEncryptReader(strings.NewReader("x"), k, 1, format.EncryptOptions{Checksum: a}); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("NewEncryptReader with algorithm %d: %v", a, err)
		}
		if _, err := k.SingleStreamOf(1, a); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("SingleStreamOf algorithm %d: %v", a, err)
		}
		if e := format.EncryptedSizeOf(1, a); e != -1 {
			t.Errorf("EncryptedSizeOf(1, %d) = %d", a, e)
		}
		if _, err := format.DecryptedSizeOf(format.EncryptedSize(1), a); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("DecryptedSizeOf(_, %d): %v", a, err)
		}
		r, err := k.NewPartEncryptReader(strings.NewReader("x"), 1, 1, format.EncryptOptions{Checksum: a})
		if err != nil {
			t.Fatal(err)
		}
		if out, err := io.ReadAll(r); !errors.Is(err, format.ErrMalformed) || len(out) != 0 {
			t.Errorf("part with algorithm %d: %d bytes, %v", a, len(out), err)
		}
		r, err = k.NewPartEncryptReader(strings.NewReader("x"), 1, 1, format.EncryptOptions{Checksum: a})
		if err != nil {
			t.Fatal(err)
		}
		var w bytes.Buffer
		if n, err := r.WriteTo(&w); !errors.Is(err, format.ErrMalformed) || n != 0 || w.Len() != 0 {
			t.Errorf("part with algorithm %d, WriteTo: %d bytes, %v", a, n, err)
		}
	}
}

func TestParseChecksumMeta(t *testing.T) {
	for _, a := range allChecksums[1:] {
		got, err := format.ParseChecksumMeta(a.String())
		if err != nil || got != a {
			t.Errorf("ParseChecksumMeta(%q) = %d, %v", a.String(), got, err)
		}
	}
	if got, err := format.ParseChecksumMeta(""); err != nil || got != format.ChecksumNone {
		t.Errorf(`ParseChecksumMeta("") = %d, %v`, got, err)
	}
	for _, bad := range []string{"crc32", "Crc32", "crc64nvme", " CRC32", "CRC32 ", "CRC32,", "NONE", "none", "0", "1",
		"CRC32\x00", "SHA-256", "SHA256 ", "CRC", "XXHASH", "CRC32C-FULL_OBJECT", "\u212a"} {
		if got, err := format.ParseChecksumMeta(bad); !errors.Is(err, format.ErrMalformed) || got != format.ChecksumNone {
			t.Errorf("ParseChecksumMeta(%q) = %d, %v; want ErrMalformed", bad, got, err)
		}
	}
	if format.MetaChecksum != "X-Amz-Meta-S3seal-Ck" || textproto.CanonicalMIMEHeaderKey(format.MetaChecksum) != format.MetaChecksum ||
		!strings.HasPrefix(format.MetaChecksum, format.MetaPrefix) {
		t.Errorf("MetaChecksum %q", format.MetaChecksum)
	}
}

func TestMaxTrailerSize(t *testing.T) {
	k := newKey(t)
	longest := int64(0)
	for _, a := range allChecksums {
		s, err := k.SingleStreamOf(0, a)
		if err != nil {
			t.Fatal(err)
		}
		longest = max(longest, s.TrailerSize())
	}
	if longest != format.MaxTrailerSize || format.MaxTrailerSize != format.TrailerSize+64 {
		t.Fatalf("longest trailer %d, MaxTrailerSize %d", longest, format.MaxTrailerSize)
	}
}
