package proxy

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// listingDoc is a ListObjectsV2 answer of n keys as MinIO writes it.
func listingDoc(n int) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bench</Name><Prefix></Prefix><KeyCount>` + strconv.Itoa(n) + `</KeyCount><MaxKeys>1000</MaxKeys><Delimiter></Delimiter><IsTruncated>false</IsTruncated>`)
	for i := range n {
		fmt.Fprintf(&b, `<Contents><Key>list/key-%06d</Key><LastModified>2026-12-02T07:00:00.000Z</LastModified><ETag>&#34;0123456789abcdef0123456789ab%04x&#34;</ETag><Size>4128</Size><Owner><ID>02d6176db174dc93cb1b899f7c6078f08654445fe8cf1b6ce98d8855f66bdbf4</ID><DisplayName>minio</DisplayName></Owner><StorageClass>STANDARD</StorageClass><ChecksumAlgorithm>CRC32C</ChecksumAlgorithm></Contents>`, i, i)
	}
	b.WriteString(`<EncodingType></EncodingType></ListBucketResult>`)
	return []byte(b.String())
}

// BenchmarkParseListing measures the gateway's own work on a warm listing of 1,000 keys:
// hiding the reserved prefix and finding each entry's Size and ETag (issue 14, warm listing).
func BenchmarkParseListing(b *testing.B) {
	doc := listingDoc(1000)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		d, err := hideReserved(doc, false)
		if err != nil {
			b.Fatal(err)
		}
		entries, _, err := parseListing(d)
		if err != nil || len(entries) != 1000 {
			b.Fatal(len(entries), err)
		}
	}
}
