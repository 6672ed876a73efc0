package proxy

import (
	"net/url"
	"testing"
)

// TestHideReserved: entries under the reserved prefix are removed from every kind of listing,
// KeyCount follows, and pagination continues past them (markers under the prefix become
// reservedEnd; a truncated v1 page whose last key was removed gets a NextMarker).
func TestHideReserved(t *testing.T) {
	const rec = ".s3seal/uploads/u1/part/00001/ab/x"
	for _, c := range []struct {
		name, doc, want string
		urlEncoded      bool
	}{
		{"v2 with KeyCount and CommonPrefixes",
			`<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key></Contents><Contents><Key>` + rec + `</Key></Contents>` +
				`<CommonPrefixes><Prefix>.s3seal/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes><KeyCount>4</KeyCount></ListBucketResult>`,
			`<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key></Contents><CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes><KeyCount>2</KeyCount></ListBucketResult>`, false},
		{"v1 truncated, last key removed: NextMarker added",
			`<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>` + rec + `</Key></Contents></ListBucketResult>`,
			`<ListBucketResult><IsTruncated>true</IsTruncated><NextMarker>` + reservedEnd + `</NextMarker></ListBucketResult>`, false},
		{"v1 truncated, last key kept: unchanged but for the entry",
			`<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>` + rec + `</Key></Contents><Contents><Key>z</Key></Contents></ListBucketResult>`,
			`<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>z</Key></Contents></ListBucketResult>`, false},
		{"v1 with delimiter: NextMarker under the prefix",
			`<ListBucketResult><IsTruncated>true</IsTruncated><NextMarker>.s3seal/</NextMarker><CommonPrefixes><Prefix>.s3seal/</Prefix></CommonPrefixes></ListBucketResult>`,
			`<ListBucketResult><IsTruncated>true</IsTruncated><NextMarker>` + reservedEnd + `</NextMarker></ListBucketResult>`, false},
		{"versions: Version and DeleteMarker, NextKeyMarker, NextVersionIdMarker dropped",
			`<ListVersionsResult><IsTruncated>true</IsTruncated><NextKeyMarker>` + rec + `</NextKeyMarker><NextVersionIdMarker>v9</NextVersionIdMarker>` +
				`<Version><Key>a</Key></Version><Version><Key>` + rec + `</Key></Version><DeleteMarker><Key>` + rec + `</Key></DeleteMarker></ListVersionsResult>`,
			`<ListVersionsResult><IsTruncated>true</IsTruncated><NextKeyMarker>` + reservedEnd + `</NextKeyMarker><Version><Key>a</Key></Version></ListVersionsResult>`, false},
		{"url encoding",
			`<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><Contents><Key>` + url.QueryEscape(rec) + `</Key></Contents></ListBucketResult>`,
			`<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><NextMarker>` + url.QueryEscape(reservedEnd) + `</NextMarker></ListBucketResult>`, true},
		{"nothing reserved: byte for byte",
			`<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>.s3sea</Key></Contents><KeyCount>1</KeyCount></ListBucketResult>`,
			`<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>.s3sea</Key></Contents><KeyCount>1</KeyCount></ListBucketResult>`, false},
	} {
		got, err := hideReserved([]byte(c.doc), c.urlEncoded)
		if err != nil || string(got) != c.want {
			t.Errorf("%s:\n got %s (%v)\nwant %s", c.name, got, err, c.want)
		}
	}
}
