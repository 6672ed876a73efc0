package format_test

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// TestVectorsUploadRecords re-creates the upload records of the format-2 vectors (the part
// record with its recorded nonce, the id record) and opens the part record again.
func TestVectorsUploadRecords(t *testing.T) {
	n := 0
	for _, v := range loadVectorFile(t).MultipartV2 {
		env, err := format.DecodeEnvelope(v.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		idKey, ok := format.IDRecordKey(format.UploadID{Backend: v.BackendUploadID, Envelope: env, Context: v.Context})
		if !ok || idKey != v.IDRecordKey || strings.ReplaceAll(strings.TrimPrefix(idKey, format.IDRecordsOf(v.BackendUploadID)), "/", "") != v.UploadIDSuffix {
			t.Fatalf("%s: id record %q, vector %q", v.Name, idKey, v.IDRecordKey)
		}
		r, err := format.ParseUploadRecord(v.BackendUploadID, v.IDRecordKey)
		if err != nil || r.IDSuffix != v.UploadIDSuffix || r.Part != 0 {
			t.Fatalf("%s: id record parsed as %+v, %v", v.Name, r, err)
		}
		// The suffix is cut every 200 characters (MinIO refuses longer path segments); any
		// other cut is refused.
		rest := strings.TrimPrefix(v.IDRecordKey, format.IDRecordsOf(v.BackendUploadID))
		for _, seg := range strings.Split(rest, "/") {
			if len(seg) > 200 {
				t.Fatalf("%s: id record segment of %d characters", v.Name, len(seg))
			}
		}
		joined := format.IDRecordsOf(v.BackendUploadID) + v.UploadIDSuffix
		recut := format.IDRecordsOf(v.BackendUploadID) + v.UploadIDSuffix[:100] + "/" + v.UploadIDSuffix[100:]
		for _, bad := range []string{joined, recut, v.IDRecordKey + "/", strings.Replace(v.IDRecordKey, "/id/", "/id//", 1)} {
			if _, err := format.ParseUploadRecord(v.BackendUploadID, bad); !errors.Is(err, format.ErrMalformed) {
				t.Errorf("%s: id record cut otherwise accepted: %q", v.Name, bad)
			}
		}
		p := v.PartRecord
		if p == nil {
			continue
		}
		n++
		k := checkEnvelopeVector(t, v.EnvelopeVector)
		name, fits, err := format.PartRecordKeyWithRand(k, bytes.NewReader(unhex(t, p.Nonce)), v.Bucket, v.Key, v.BackendUploadID, p.Part, `"`+p.BackendETag+`"`, format.PartFacts{MD5: unhex(t, p.MD5)})
		if err != nil || !fits || name != p.Key {
			t.Fatalf("%s: part record %q, vector %q (%v)", v.Name, name, p.Key, err)
		}
		r, err = format.ParseUploadRecord(v.BackendUploadID, p.Key)
		if err != nil || r.Part != p.Part || r.ETag != p.BackendETag {
			t.Fatalf("%s: part record parsed as %+v, %v", v.Name, r, err)
		}
		f, err := k.OpenPartRecord(v.Bucket, v.Key, v.BackendUploadID, r)
		if err != nil || !bytes.Equal(f.MD5, unhex(t, p.MD5)) || f.PlainSize != 0 || f.Salt != [32]byte{} {
			t.Fatalf("%s: part record opens to %+v, %v", v.Name, f, err)
		}
	}
	if n < 2 {
		t.Fatalf("%d vectors with a part record", n)
	}
}

// TestPartRecordBinding: a part record opens only for the bucket, key, backend upload, part
// number and backend ETag it was sealed for, and under its own object key; an altered sealed
// value does not open. Format 2 (the MD5 alone) and format 3 (MD5, salt and size).
func TestPartRecordBinding(t *testing.T) {
	for _, ver := range []int{format.Version2, format.Version3} {
		t.Run(fmt.Sprint("format ", ver), func(t *testing.T) { testPartRecordBinding(t, ver) })
	}
}

func testPartRecordBinding(t *testing.T, ver int) {
	k := format.AsVersion(fuzzKey(t), ver)
	sum := md5.Sum([]byte("part one"))
	facts := format.PartFacts{MD5: sum[:]}
	if ver == format.Version3 {
		facts.PlainSize = 5<<20 + 1
		copy(facts.Salt[:], randomBytes(t, 32))
	}
	name, fits, err := k.PartRecordKey("b", "dir/obj", "up-1", 7, `"0123abcd"`, facts)
	if err != nil || !fits {
		t.Fatal(fits, err)
	}
	if !strings.HasPrefix(name, format.PartRecordsOf("up-1")+"00007/0123abcd/") || !format.IsReserved(name) {
		t.Fatalf("record name %q", name)
	}
	if sealed := name[strings.LastIndexByte(name, '/')+1:]; (ver == format.Version2 && len(sealed) != 59) || (ver == format.Version3 && len(sealed) != 112) {
		t.Fatalf("format-%d record of %d characters", ver, len(sealed))
	}
	open := func(name, bucket, key, upload string) error {
		r, err := format.ParseUploadRecord(upload, name)
		if err != nil {
			return err
		}
		got, err := k.OpenPartRecord(bucket, key, upload, r)
		if err == nil && (!bytes.Equal(got.MD5, facts.MD5) || got.PlainSize != facts.PlainSize || got.Salt != facts.Salt) {
			t.Fatalf("opened to %+v, sealed %+v", got, facts)
		}
		return err
	}
	if err := open(name, "b", "dir/obj", "up-1"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ what, bucket, key string }{
		{"another bucket", "b2", "dir/obj"},
		{"another key", "b", "dir/obj2"},
	} {
		if err := open(name, c.bucket, c.key, "up-1"); !errors.Is(err, format.ErrAuth) {
			t.Errorf("%s: %v, want ErrAuth", c.what, err)
		}
	}
	rest := strings.TrimPrefix(name, format.UploadRecordsOf("up-1"))
	moved := map[string]string{
		"another upload": format.UploadRecordsOf("up-2") + rest,
		"another part":   strings.Replace(name, "/00007/", "/00008/", 1),
		"another ETag":   strings.Replace(name, "/0123abcd/", "/0123abce/", 1),
	}
	for what, n := range moved {
		upload := "up-1"
		if what == "another upload" {
			upload = "up-2"
		}
		if err := open(n, "b", "dir/obj", upload); !errors.Is(err, format.ErrAuth) {
			t.Errorf("%s: %v, want ErrAuth", what, err)
		}
	}
	// Every character of the sealed value changed in turn.
	sealedAt := strings.LastIndexByte(name, '/') + 1
	for i := sealedAt; i < len(name); i++ {
		b := []byte(name)
		b[i] = "AB"[map[bool]int{true: 1}[b[i] == 'A']]
		if err := open(string(b), "b", "dir/obj", "up-1"); err == nil {
			t.Fatalf("altered at %d: opened", i)
		}
	}
	other := format.AsVersion(newKey(t), ver)
	r, _ := format.ParseUploadRecord("up-1", name)
	if _, err := other.OpenPartRecord("b", "dir/obj", "up-1", r); !errors.Is(err, format.ErrAuth) {
		t.Errorf("under another object key: %v", err)
	}
}

// TestUploadRecordRefusals: names that are not records of the upload are refused, typed.
func TestUploadRecordRefusals(t *testing.T) {
	k := fuzzKey(t)
	sum := md5.Sum(nil)
	good, _, err := k.PartRecordKey("b", "k", "up", 1, "abc", format.PartFacts{MD5: sum[:]})
	if err != nil {
		t.Fatal(err)
	}
	sealed := good[strings.LastIndexByte(good, '/')+1:]
	p := format.PartRecordsOf("up")
	for _, name := range []string{
		"", "up/part/00001/abc/" + sealed, format.UploadRecordsOf("up2") + "part/00001/abc/" + sealed,
		p + "0001/abc/" + sealed, p + "00000/abc/" + sealed, p + "10001/abc/" + sealed,
		p + "+0001/abc/" + sealed, p + "-0001/abc/" + sealed, p + "00001/a.c/" + sealed,
		p + "00001//" + sealed, p + "00001/abc/" + sealed + "A", p + "00001/abc/" + sealed[1:],
		p + "00001/abc/" + sealed + "/x", p + "00001/" + strings.Repeat("a", 65) + "/" + sealed,
		p + "00001/abc/" + strings.ReplaceAll(sealed, sealed[:1], "+"),
		format.IDRecordsOf("up") + "", format.IDRecordsOf("up") + ".s2AAAA", format.IDRecordsOf("up") + "x.s2",
		format.UploadRecordsOf("up") + "other/1",
	} {
		if _, err := format.ParseUploadRecord("up", name); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("%q: %v, want ErrMalformed", name, err)
		}
	}
	if _, ok := format.RecordETag(`"a/b"`); ok {
		t.Error("an ETag with a slash accepted")
	}
	if _, fits, err := k.PartRecordKey("b", "k", strings.Repeat("u", 1000), 1, "abc", format.PartFacts{MD5: sum[:]}); err != nil || fits {
		t.Errorf("a record above 1024 bytes: fits %v, %v", fits, err)
	}
	if _, fits, err := k.PartRecordKey("b", "k", "up", 1, `"a b"`, format.PartFacts{MD5: sum[:]}); err != nil || fits {
		t.Errorf("an ETag with a space: fits %v, %v", fits, err)
	}
}

// FuzzParseUploadRecord: any name ParseUploadRecord accepts is canonical, rebuilt exactly
// from what was parsed (an id record from its upload id, a part record from its number, ETag
// and the sealed MD5's text), and only typed errors come back.
func FuzzParseUploadRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, backendID, name string) {
		r, err := format.ParseUploadRecord(backendID, name)
		if err != nil {
			if !errors.Is(err, format.ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if r.Part == 0 {
			u, err := format.ParseUploadID(backendID + r.IDSuffix)
			if err != nil || u.Backend != backendID {
				t.Fatalf("id record %q: upload id %+v, %v", name, u, err)
			}
			if again, _ := format.IDRecordKey(u); again != name {
				t.Fatalf("id record %q rebuilt as %q", name, again)
			}
			return
		}
		if r.Part < 1 || r.Part > format.MaxPartNumber || r.IDSuffix != "" {
			t.Fatalf("record %q parsed as %+v", name, r)
		}
		sealed := name[strings.LastIndexByte(name, '/')+1:]
		if again := fmt.Sprintf("%s%05d/%s/%s", format.PartRecordsOf(backendID), r.Part, r.ETag, sealed); again != name {
			t.Fatalf("part record %q rebuilt as %q", name, again)
		}
	})
}
