package specdecode

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
)

// Upload records (section 3.5.3): zero-byte objects under U+10FFFF "s3seal/uploads/<backend upload
// id>/" whose names carry an open upload's client id suffix and its parts' sealed MD5s (format 2;
// format 3's part records, which also carry each part's salt and size, are in multipart3.go).

// OpenPartRecord parses the name of a format-2 part record of the backend upload backendID,
//
//	U+10FFFF s3seal/uploads/<backendID>/part/<5-digit part number>/<backend ETag>/<sealed>
//
// and opens its sealed MD5 under the object key ok for bucket and key. It returns the part
// number, the backend ETag and the MD5.
func OpenPartRecord(ok []byte, bucket, key, backendID, name string) (part int, etag string, md5 []byte, err error) {
	rest, found := strings.CutPrefix(name, "\U0010FFFFs3seal/uploads/"+backendID+"/part/")
	f := strings.Split(rest, "/")
	if !found || len(f) != 3 || len(f[0]) != 5 || strings.Trim(f[0], "0123456789") != "" {
		return 0, "", nil, errors.New("part record: not a part record of this upload")
	}
	part, _ = strconv.Atoi(f[0])
	if part < 1 || part > 10000 || f[1] == "" || len(f[1]) > 64 ||
		strings.Trim(f[1], "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "" {
		return 0, "", nil, errors.New("part record: invalid part number or ETag")
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(f[2])
	if err != nil || len(sealed) != 12+16+16 || base64.RawURLEncoding.EncodeToString(sealed) != f[2] {
		return 0, "", nil, errors.New("part record: invalid sealed MD5")
	}
	rk := hkdf32(ok, nil, "s3seal/2 part etag")
	aad := append([]byte("s3seal/2 part etag"), lp(bucket)...)
	aad = append(aad, lp(key)...)
	aad = append(aad, lp(backendID)...)
	aad = binary.BigEndian.AppendUint32(aad, uint32(part))
	aad = append(aad, lp(f[1])...)
	md5, err = gcm(rk).Open(nil, sealed[:12], sealed[12:], aad)
	if err != nil {
		return 0, "", nil, errors.New("part record: sealed MD5 does not open")
	}
	return part, f[1], md5, nil
}

// IDRecordSuffix parses the name of the id record of the backend upload backendID,
// U+10FFFF "s3seal/uploads/<backendID>/id/<suffix cut into 200-character segments by '/'>", and
// returns the client's upload id backendID ‖ suffix after checking that it is a format-2 or
// format-3 upload id of that backend id.
func IDRecordSuffix(backendID, name string) (string, error) {
	rest, found := strings.CutPrefix(name, "\U0010FFFFs3seal/uploads/"+backendID+"/id/")
	if !found {
		return "", errors.New("id record: not an id record of this upload")
	}
	segs := strings.Split(rest, "/")
	for i, s := range segs {
		if s == "" || len(s) > 200 || (i < len(segs)-1 && len(s) != 200) {
			return "", errors.New("id record: suffix not cut every 200 characters")
		}
	}
	suffix := strings.Join(segs, "")
	u, err := ParseUploadID(backendID + suffix)
	if err != nil || u.Backend != backendID {
		return "", errors.New("id record: not a format-2 or format-3 upload id of this upload")
	}
	return backendID + suffix, nil
}
