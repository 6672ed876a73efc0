package proxy

import (
	"net/url"
	"testing"

	"github.com/s3seal/s3seal/format"
)

// TestHideReserved: entries under the reserved prefix are removed from every kind of listing,
// KeyCount follows, and a page that held one is made the last page (reserved keys sort after
// every other key): IsTruncated false, no Next* markers.
func TestHideReserved(t *testing.T) {
	const rec = format.ReservedPrefix + "s3seal/uploads/u1/part/00001/ab/x"
	for _, c := range []struct {
		name, doc, want string
		urlEncoded      bool
	}{
		{"v2 with KeyCount and CommonPrefixes",
			`<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key></Contents><Contents><Key>` + rec + `</Key></Contents>` +
				`<CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>` + format.ReservedPrefix + `s3seal/</Prefix></CommonPrefixes><KeyCount>4</KeyCount></ListBucketResult>`,
			`<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key></Contents><CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes><KeyCount>2</KeyCount></ListBucketResult>`, false},
		{"v2 truncated: the last page",
			`<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken><Contents><Key>z</Key></Contents><Contents><Key>` + rec + `</Key></Contents><KeyCount>2</KeyCount></ListBucketResult>`,
			`<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>z</Key></Contents><KeyCount>1</KeyCount></ListBucketResult>`, false},
		{"v1 truncated, only a record: an empty last page",
			`<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>` + rec + `</Key></Contents></ListBucketResult>`,
			`<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>`, false},
		{"v1 with delimiter: NextMarker goes",
			`<ListBucketResult><IsTruncated>true</IsTruncated><NextMarker>` + format.ReservedPrefix + `s3seal/</NextMarker><CommonPrefixes><Prefix>` + format.ReservedPrefix + `s3seal/</Prefix></CommonPrefixes></ListBucketResult>`,
			`<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>`, false},
		{"versions: Version and DeleteMarker, NextKeyMarker, NextVersionIdMarker dropped",
			`<ListVersionsResult><IsTruncated>true</IsTruncated><NextKeyMarker>` + rec + `</NextKeyMarker><NextVersionIdMarker>v9</NextVersionIdMarker>` +
				`<Version><Key>a</Key></Version><Version><Key>` + rec + `</Key></Version><DeleteMarker><Key>` + rec + `</Key></DeleteMarker></ListVersionsResult>`,
			`<ListVersionsResult><IsTruncated>false</IsTruncated><Version><Key>a</Key></Version></ListVersionsResult>`, false},
		{"url encoding",
			`<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><Contents><Key>` + url.QueryEscape(rec) + `</Key></Contents></ListBucketResult>`,
			`<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated></ListBucketResult>`, true},
		{"a character reference",
			`<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a</Key></Contents><Contents><Key>&#x10fFfF;s3seal/x</Key></Contents><Contents><Key>&#1114111;s3seal/y</Key></Contents></ListBucketResult>`,
			`<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key></Contents></ListBucketResult>`, false},
		{"lower-case url encoding",
			`<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated><Contents><Key>%f4%8f%bf%bfs3seal%2Fx</Key></Contents></ListBucketResult>`,
			`<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated></ListBucketResult>`, true},
		{"nothing reserved: byte for byte",
			`<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>.s3seal/x</Key></Contents><Contents><Key>􏿾</Key></Contents><KeyCount>2</KeyCount></ListBucketResult>`,
			`<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>.s3seal/x</Key></Contents><Contents><Key>􏿾</Key></Contents><KeyCount>2</KeyCount></ListBucketResult>`, false},
	} {
		got, err := hideReserved([]byte(c.doc), c.urlEncoded)
		if err != nil || string(got) != c.want {
			t.Errorf("%s:\n got %s (%v)\nwant %s", c.name, got, err, c.want)
		}
	}
}

// TestMayNameReserved: the quick check before parsing finds the reserved prefix in each of its
// forms, and lets a listing with none (MinIO escapes ETag quotes as &#34;) through unparsed.
func TestMayNameReserved(t *testing.T) {
	for doc, want := range map[string]bool{
		`<Contents><Key>a%2Fb</Key><ETag>&#34;e&#34;</ETag></Contents>`:         false,
		`<Contents><Key>` + format.ReservedPrefix + `s3seal/x</Key></Contents>`: true,
		`<Contents><Key>%F4%8F%BF%BFs3seal%2Fx</Key></Contents>`:                true,
		`<Contents><Key>%f4%8F%bf%BFs3seal</Key></Contents>`:                    true,
		`<Contents><Key>&#X10FFFF;s</Key></Contents>`:                           true,
		`<Contents><Key>&#0001114111;s</Key></Contents>`:                        true,
		`<Contents><Key>&#x10FFFE;s</Key></Contents>`:                           false,
		`<Contents><Key>%F4%8F%BF</Key><Key>%BF</Key></Contents>`:               false,
	} {
		if got := mayNameReserved([]byte(doc)); got != want {
			t.Errorf("mayNameReserved(%s) = %v, want %v", doc, got, want)
		}
	}
}
