package specdecode

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestUploadRecordVectors opens the upload records of the format-2 vectors (FORMAT.md 3.5.3)
// from the spec alone: the part record's MD5 is the part's, its RK and AAD the vector's
// intermediate values; the id record yields the vector's upload id; a record moved to another
// upload, part, ETag or object does not open.
func TestUploadRecordVectors(t *testing.T) {
	b, err := os.ReadFile("../../testdata/format/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		V2 []struct {
			Name, OK, Bucket, Key string
			BackendUploadID       string `json:"backend_upload_id"`
			UploadID              string `json:"upload_id"`
			IDRecordKey           string `json:"id_record_key"`
			PartRecord            *struct {
				Part                     int
				BackendETag              string `json:"backend_etag"`
				Nonce, MD5, RK, AAD, Key string
			} `json:"part_record"`
		} `json:"multipart_v2"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range f.V2 {
		id, err := IDRecordSuffix(v.BackendUploadID, v.IDRecordKey)
		if err != nil || id != v.UploadID {
			t.Fatalf("%s: id record gives %q, %v", v.Name, id, err)
		}
		p := v.PartRecord
		if p == nil {
			continue
		}
		n++
		ok, _ := hex.DecodeString(v.OK)
		if got := hex.EncodeToString(hkdf32(ok, nil, "s3seal/2 part etag")); got != p.RK {
			t.Fatalf("%s: RK %s, vector %s", v.Name, got, p.RK)
		}
		part, etag, md5, err := OpenPartRecord(ok, v.Bucket, v.Key, v.BackendUploadID, p.Key)
		if err != nil || part != p.Part || etag != p.BackendETag || hex.EncodeToString(md5) != p.MD5 {
			t.Fatalf("%s: part %d etag %s md5 %x, %v", v.Name, part, etag, md5, err)
		}
		nonce, _ := hex.DecodeString(p.Nonce)
		if !strings.Contains(p.Key, "/"+p.BackendETag+"/"+base64.RawURLEncoding.EncodeToString(nonce)) {
			t.Fatalf("%s: record key %q does not carry its ETag and nonce", v.Name, p.Key)
		}
		rest := strings.TrimPrefix(p.Key, "\U0010FFFFs3seal/uploads/"+v.BackendUploadID+"/")
		for what, c := range map[string][3]string{
			"another upload": {v.Key, v.BackendUploadID + "x", "\U0010FFFFs3seal/uploads/" + v.BackendUploadID + "x/" + rest},
			"another part":   {v.Key, v.BackendUploadID, strings.Replace(p.Key, "/part/00001/", "/part/00002/", 1)},
			"another ETag":   {v.Key, v.BackendUploadID, strings.Replace(p.Key, "/"+p.BackendETag+"/", "/x"+p.BackendETag[1:]+"/", 1)},
			"another object": {v.Key + "x", v.BackendUploadID, p.Key},
		} {
			if _, _, _, err := OpenPartRecord(ok, v.Bucket, c[0], c[1], c[2]); err == nil {
				t.Errorf("%s: a record moved to %s opened", v.Name, what)
			}
		}
	}
	if n == 0 {
		t.Fatal("no vector with a part record")
	}
}
