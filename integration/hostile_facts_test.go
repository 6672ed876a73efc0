package integration

// Issue 21: what readers without the SSE-C key see of SSE-C objects, the sizes shown with the
// key, and facts of one stored version never served for another, against MinIO.

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// hideKey is an SSE-C key as the SDK's request fields take it.
type hideKey struct{ alg, key, md5 *string }

func newHideKey(t *testing.T) hideKey {
	_, k, m := ssecKey(t)
	return hideKey{aws.String("AES256"), aws.String(k), aws.String(m)}
}

// hideMD5 is the hex MD5 of b (S3's single-part ETag without quotes).
func hideMD5(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// hideMultipartETag is S3's multipart ETag of parts, without quotes.
func hideMultipartETag(parts ...[]byte) string {
	var all []byte
	for _, p := range parts {
		s := md5.Sum(p)
		all = append(all, s[:]...)
	}
	return fmt.Sprintf("%s-%d", hideMD5(all), len(parts))
}

// TestSSECHiddenWithoutKey: for SSE-C objects (multipart and single-part) written through the
// gateway, ListObjects v1/v2 and ListObjectVersions never show the plaintext ETag (not after
// CompleteMultipartUpload, not after HEAD and GET with the key), GetObjectAttributes needs the
// key (400 InvalidRequest without, 403 AccessDenied with another, the attributes with it),
// HEAD without the key is 400, and ListParts of an open SSE-C upload shows the parts' plaintext
// MD5s only with the key.
func TestSSECHiddenWithoutKey(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, map[string]string{"GATEWAY_SSEC_ALLOW_HTTP": "true"})
	bucket := m.NewBucket(t)
	ctx := context.Background()
	c := gw.Client(t)
	if _, err := m.Client(t).PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &bucket,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	k, other := newHideKey(t), newHideKey(t)
	p1, p2 := testenv.RandomBytes(t, 5<<20, marker), testenv.RandomBytes(t, 70000, marker)
	single := testenv.RandomBytes(t, 1000, marker)

	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp"),
		SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, p := range [][]byte{p1, p2} {
		r, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("mp"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p),
			SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: r.ETag})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
		SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("single"), Body: bytes.NewReader(single),
		SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5}); err != nil {
		t.Fatal(err)
	}
	plain := map[string]string{"mp": hideMultipartETag(p1, p2), "single": hideMD5(single)}
	sizes := map[string]int64{"mp": int64(len(p1) + len(p2)), "single": int64(len(single))}

	check := func(when string) {
		t.Helper()
		seen := map[string][2]string{}
		v2, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range v2.Contents {
			seen["v2 "+aws.ToString(o.Key)] = [2]string{aws.ToString(o.ETag), strconv.FormatInt(aws.ToInt64(o.Size), 10)}
		}
		v1, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: &bucket})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range v1.Contents {
			seen["v1 "+aws.ToString(o.Key)] = [2]string{aws.ToString(o.ETag), strconv.FormatInt(aws.ToInt64(o.Size), 10)}
		}
		vs, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range vs.Versions {
			seen["versions "+aws.ToString(o.Key)] = [2]string{aws.ToString(o.ETag), strconv.FormatInt(aws.ToInt64(o.Size), 10)}
		}
		for _, list := range []string{"v1", "v2", "versions"} {
			for key, etag := range plain {
				e, ok := seen[list+" "+key]
				if !ok {
					t.Fatalf("%s: %s listing lacks %s", when, list, key)
				}
				if strings.Trim(e[0], `"`) == etag {
					t.Errorf("%s: %s listing shows the plaintext ETag %s of SSE-C object %s", when, list, e[0], key)
				}
				if e[1] != strconv.FormatInt(sizes[key], 10) {
					t.Errorf("%s: %s listing: size of %s %s, want %d", when, list, key, e[1], sizes[key])
				}
			}
		}
	}
	check("after the writes")
	for key := range plain {
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key),
			SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5})
		if err != nil || aws.ToInt64(h.ContentLength) != sizes[key] {
			t.Fatalf("HEAD %s with the key: %v", key, err)
		}
		if key == "mp" && strings.Trim(aws.ToString(h.ETag), `"`) != plain[key] {
			t.Errorf("HEAD mp with the key: ETag %s, want the plaintext multipart ETag %s (as before)", aws.ToString(h.ETag), plain[key])
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key)}); err == nil {
			t.Errorf("HEAD %s without the key succeeded", key)
		} else if _, status := apiErr(err); status != http.StatusBadRequest {
			t.Errorf("HEAD %s without the key: %v, want 400", key, err)
		}
	}
	check("after HEAD with the key")

	attrs := []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesObjectSize, types.ObjectAttributesObjectParts}
	for key := range plain {
		_, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: &bucket, Key: aws.String(key), ObjectAttributes: attrs})
		if code, status := apiErr(err); status != http.StatusBadRequest || code != "InvalidRequest" {
			t.Errorf("GetObjectAttributes %s without the key: %v, want 400 InvalidRequest", key, err)
		}
		_, err = c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: &bucket, Key: aws.String(key), ObjectAttributes: attrs,
			SSECustomerAlgorithm: other.alg, SSECustomerKey: other.key, SSECustomerKeyMD5: other.md5})
		if code, status := apiErr(err); status != http.StatusForbidden || code != "AccessDenied" {
			t.Errorf("GetObjectAttributes %s with another key: %v, want 403 AccessDenied", key, err)
		}
		a, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: &bucket, Key: aws.String(key), ObjectAttributes: attrs,
			SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5})
		if err != nil || aws.ToInt64(a.ObjectSize) != sizes[key] {
			t.Errorf("GetObjectAttributes %s with the key: %v", key, err)
		}
	}

	// ListParts of an open SSE-C upload: part 1 of 5 MiB is a backend part, part 2 (1,000
	// bytes) is held aside until Complete (FORMAT.md 3.6.2). Without the key no listed part
	// shows a plaintext MD5 (the records that hold them are sealed under the upload's key).
	big := testenv.RandomBytes(t, 5<<20, marker)
	lp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("open"),
		SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5})
	if err != nil {
		t.Fatal(err)
	}
	for i, body := range [][]byte{big, single} {
		if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("open"), UploadId: lp.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(body),
			SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5}); err != nil {
			t.Fatal(err)
		}
	}
	plainMD5 := map[string]bool{hideMD5(big): true, hideMD5(single): true}
	parts, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: aws.String("open"), UploadId: lp.UploadId})
	if err != nil || len(parts.Parts) == 0 || aws.ToInt32(parts.Parts[0].PartNumber) != 1 {
		t.Fatalf("ListParts without the key: %v, %d parts (want part 1 at least)", err, len(parts.Parts))
	}
	for _, p := range parts.Parts {
		if plainMD5[strings.Trim(aws.ToString(p.ETag), `"`)] {
			t.Errorf("ListParts without the key shows part %d's plaintext MD5", aws.ToInt32(p.PartNumber))
		}
	}
	parts, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: aws.String("open"), UploadId: lp.UploadId,
		SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5})
	if err != nil || len(parts.Parts) != 2 ||
		strings.Trim(aws.ToString(parts.Parts[0].ETag), `"`) != hideMD5(big) || aws.ToInt64(parts.Parts[0].Size) != int64(len(big)) ||
		strings.Trim(aws.ToString(parts.Parts[1].ETag), `"`) != hideMD5(single) || aws.ToInt64(parts.Parts[1].Size) != int64(len(single)) {
		t.Errorf("ListParts with the key: %v, %d parts, want parts 1 and 2 with ETags %s and %s", err, len(parts.Parts), hideMD5(big), hideMD5(single))
	}
}

// TestSSECListPartsHeldWithoutKey: ListParts of an open SSE-C upload without the key lists
// every part uploaded, a held one (under 5 MiB, FORMAT.md 3.6.2) too, as S3 does (it needs no
// key for ListParts), with its size and an ETag that is not its plaintext MD5.
func TestSSECListPartsHeldWithoutKey(t *testing.T) {
	gw, m, _, _ := testenv.StartGatewayMinIO(t, map[string]string{"GATEWAY_SSEC_ALLOW_HTTP": "true"})
	bucket := m.NewBucket(t)
	ctx := context.Background()
	c := gw.Client(t)
	k := newHideKey(t)
	body := testenv.RandomBytes(t, 1000, marker)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("open"),
		SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("open"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(body),
		SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5}); err != nil {
		t.Fatal(err)
	}
	parts, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: aws.String("open"), UploadId: up.UploadId})
	if err != nil || len(parts.Parts) != 1 || aws.ToInt32(parts.Parts[0].PartNumber) != 1 || aws.ToInt64(parts.Parts[0].Size) != int64(len(body)) {
		n := 0
		if parts != nil {
			n = len(parts.Parts)
		}
		t.Fatalf("ListParts without the key of an upload with one held part: %v, %d parts, want part 1 of %d bytes", err, n, len(body))
	}
	if strings.Trim(aws.ToString(parts.Parts[0].ETag), `"`) == hideMD5(body) {
		t.Errorf("ListParts without the key shows the held part's plaintext MD5")
	}
}

var hideRangeRE = regexp.MustCompile(`^(bytes \d+-\d+/)\d+$`)

// TestHostileSSECSizeClaim: a backend that claims a huge stored size (Content-Range of ranged
// reads, Content-Length of HEAD) does not make HEAD or a ranged GET with the key report it for
// a 1,000-byte SSE-C object: the gateway reports 1,000 bytes or refuses.
func TestHostileSSECSizeClaim(t *testing.T) {
	for _, etag := range []string{"plaintext", "backend"} {
		t.Run(etag, func(t *testing.T) {
			env := map[string]string{"GATEWAY_SSEC_ALLOW_HTTP": "true", "GATEWAY_ETAG": etag}
			gw, h, m := testenv.StartGatewayHostile(t, env)
			// The reader is another gateway on the same backend: its facts cache is cold.
			env["GATEWAY_BACKEND_ENDPOINT"] = h.URL
			reader, _, _, _ := testenv.StartGatewayMinIO(t, env)
			bucket := m.NewBucket(t)
			ctx := context.Background()
			c := gw.Client(t)
			k := newHideKey(t)
			body := testenv.RandomBytes(t, 1000, marker)
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("obj"), Body: bytes.NewReader(body),
				SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5}); err != nil {
				t.Fatal(err)
			}
			const lie = 999_999_999
			path := testenv.ObjectPath(bucket, "obj")
			h.Hook(func(req testenv.BackendRequest, resp *http.Response) error {
				if req.Path != path {
					return nil
				}
				if mm := hideRangeRE.FindStringSubmatch(resp.Header.Get("Content-Range")); mm != nil {
					resp.Header.Set("Content-Range", mm[1]+strconv.Itoa(lie))
				}
				if req.Method == http.MethodHead && resp.StatusCode == http.StatusOK {
					resp.Header.Set("Content-Length", strconv.Itoa(lie))
					resp.ContentLength = lie
				}
				return nil
			})
			c = reader.Client(t)
			hd, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("obj"),
				SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5})
			if err == nil && aws.ToInt64(hd.ContentLength) != int64(len(body)) {
				t.Errorf("HEAD with the key: Content-Length %d, want %d (the backend claimed %d stored bytes)", aws.ToInt64(hd.ContentLength), len(body), lie)
			}
			g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("obj"), Range: aws.String("bytes=0-9"),
				SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5})
			if err == nil {
				g.Body.Close()
				if cr := aws.ToString(g.ContentRange); cr != fmt.Sprintf("bytes 0-9/%d", len(body)) {
					t.Errorf("ranged GET with the key: Content-Range %s, want bytes 0-9/%d", cr, len(body))
				}
			}
		})
	}
}

// TestHostileFactsVersionSwap: the backend puts an older version's stored bytes and metadata
// back at the key and answers with the newest version's ETag; the gateway, which has the
// newest version's facts cached, must not serve them for it: HEAD and GET show the old
// version's size and ETag (it is an authentic old version: rollback is out of scope), or fail.
func TestHostileFactsVersionSwap(t *testing.T) {
	gw, h, m := testenv.StartGatewayHostile(t, nil)
	bucket := m.NewBucket(t)
	ctx := context.Background()
	c, direct := gw.Client(t), m.Client(t)
	oldBody, newBody := testenv.RandomBytes(t, 3000, marker), testenv.RandomBytes(t, 3000, marker)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: bytes.NewReader(oldBody)}); err != nil {
		t.Fatal(err)
	}
	// The attacker keeps the old version (its bytes and metadata) aside.
	if _, err := direct.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("stash"),
		CopySource: aws.String(bucket + "/k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: bytes.NewReader(newBody)}); err != nil {
		t.Fatal(err)
	}
	hd, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if err != nil || strings.Trim(aws.ToString(hd.ETag), `"`) != hideMD5(newBody) {
		t.Fatalf("HEAD of the new version: %v", err)
	}
	nb, err := direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	newETag := aws.ToString(nb.ETag)
	if _, err := direct.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("k"),
		CopySource: aws.String(bucket + "/stash")}); err != nil {
		t.Fatal(err)
	}
	path := testenv.ObjectPath(bucket, "k")
	h.Hook(func(req testenv.BackendRequest, resp *http.Response) error {
		if req.Path == path && resp.Header.Get("ETag") != "" {
			resp.Header.Set("ETag", newETag)
		}
		return nil
	})
	hd, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if err == nil && strings.Trim(aws.ToString(hd.ETag), `"`) != hideMD5(oldBody) {
		t.Errorf("HEAD of the swapped-in old version: ETag %s, want the old version's %s (new: %s)", aws.ToString(hd.ETag), hideMD5(oldBody), hideMD5(newBody))
	}
	g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if err == nil {
		defer g.Body.Close()
		if strings.Trim(aws.ToString(g.ETag), `"`) != hideMD5(oldBody) {
			t.Errorf("GET of the swapped-in old version: ETag %s, want the old version's %s", aws.ToString(g.ETag), hideMD5(oldBody))
		}
	}
}
