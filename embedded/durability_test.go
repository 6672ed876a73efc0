package embedded

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

// TestMultipartSurvivesRestart: parts uploaded before a restart are listed after it, more
// parts can be added, and Complete makes the right object.
func TestMultipartSurvivesRestart(t *testing.T) {
	dir := shortDir(t)
	s, err := Start(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(s, false)
	ctx := context.Background()
	mustBucket(t, c, "mpu")
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("dir/obj"),
		Metadata: map[string]string{"m": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{randBytes(100_000), randBytes(100_000), randBytes(777)}
	var done []types.CompletedPart
	upload := func(c *s3.Client, n int) {
		t.Helper()
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("dir/obj"), UploadId: cr.UploadId,
			PartNumber: aws.Int32(int32(n)), Body: bytes.NewReader(parts[n-1]), ContentLength: aws.Int64(int64(len(parts[n-1])))})
		if err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(n)), ETag: out.ETag})
	}
	upload(c, 1)
	upload(c, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := startStore(t, dir)
	c2 := newClient(s2, false)
	lu, err := c2.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu")})
	if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != aws.ToString(cr.UploadId) {
		t.Fatalf("uploads after restart: %v %+v", err, lu)
	}
	lp, err := c2.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("dir/obj"), UploadId: cr.UploadId})
	if err != nil || len(lp.Parts) != 2 || aws.ToString(lp.Parts[1].ETag) != aws.ToString(done[1].ETag) {
		t.Fatalf("parts after restart: %v %+v", err, lp)
	}
	upload(c2, 3)
	if _, err := c2.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("dir/obj"),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	got, out := get(t, c2, "mpu", "dir/obj", "")
	if !bytes.Equal(got, bytes.Join(parts, nil)) || out.Metadata["m"] != "v" || !strings.HasSuffix(aws.ToString(out.ETag), `-3"`) {
		t.Errorf("completed object: %d bytes, %v, %s", len(got), out.Metadata, aws.ToString(out.ETag))
	}
	if n := bodyFiles(t, s2); n != 1 {
		t.Errorf("%d body files after Complete, want the object's only", n)
	}
}

// TestObjectTagging: tagging round trip, tags set on PUT, kept by copy, dropped by an
// overwrite, S3's limits; and PUT/DELETE ?tagging never touch the object's body.
func TestObjectTagging(t *testing.T) {
	s := startStore(t, shortDir(t))
	c := newClient(s, false)
	ctx := context.Background()
	mustBucket(t, c, "tags")
	body := randBytes(1000)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tags"), Key: aws.String("k"), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(1000), Tagging: aws.String("a=1&b=two%20words")}); err != nil {
		t.Fatal(err)
	}
	tagsOf := func(key string) string {
		t.Helper()
		out, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GetObjectTagging %s: %v", key, err)
		}
		var kv []string
		for _, tg := range out.TagSet {
			kv = append(kv, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
		return strings.Join(kv, ",")
	}
	if got := tagsOf("k"); got != "a=1,b=two words" {
		t.Errorf("tags from x-amz-tagging: %q", got)
	}
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("z"), Value: aws.String("")}, {Key: aws.String("ключ"), Value: aws.String("значение")}}}}); err != nil {
		t.Fatal(err)
	}
	if got := tagsOf("k"); got != "z=,ключ=значение" {
		t.Errorf("tags after PutObjectTagging: %q", got)
	}
	if got, out := get(t, c, "tags", "k", ""); !bytes.Equal(got, body) || aws.ToInt32(out.TagCount) != 2 {
		t.Errorf("object after PutObjectTagging: %d bytes, tag count %d", len(got), aws.ToInt32(out.TagCount))
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("tags"), Key: aws.String("copy"), CopySource: aws.String("tags/k")}); err != nil {
		t.Fatal(err)
	}
	if got := tagsOf("copy"); got != "z=,ключ=значение" {
		t.Errorf("tags of a copy: %q", got)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("tags"), Key: aws.String("copy2"), CopySource: aws.String("tags/k"),
		TaggingDirective: types.TaggingDirectiveReplace, Tagging: aws.String("new=tag")}); err != nil {
		t.Fatal(err)
	}
	if got := tagsOf("copy2"); got != "new=tag" {
		t.Errorf("tags of a copy with REPLACE: %q", got)
	}
	var eleven []types.Tag
	for i := range 11 {
		eleven = append(eleven, types.Tag{Key: aws.String(fmt.Sprint("t", i)), Value: aws.String("v")})
	}
	_, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k"), Tagging: &types.Tagging{TagSet: eleven}})
	if errCode(err) != "BadRequest" {
		t.Errorf("11 tags: %v, want BadRequest", err)
	}
	_, err = c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String(strings.Repeat("k", 129)), Value: aws.String("v")}}}})
	if errCode(err) != "InvalidTag" {
		t.Errorf("129-character tag key: %v, want InvalidTag", err)
	}
	_, err = c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("missing")})
	if errCode(err) != "NoSuchKey" {
		t.Errorf("tags of a missing key: %v", err)
	}
	if _, err := c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if got := tagsOf("k"); got != "" {
		t.Errorf("tags after DeleteObjectTagging: %q", got)
	}
	if got, _ := get(t, c, "tags", "k", ""); !bytes.Equal(got, body) {
		t.Error("DeleteObjectTagging changed the object")
	}
	put(t, c, "tags", "copy", []byte("new"), nil)
	if got := tagsOf("copy"); got != "" {
		t.Errorf("tags after an overwrite without x-amz-tagging: %q", got)
	}
	// Sub-resources gofakes3 does not know are refused, not served as object requests.
	resp := rawDo(t, s, http.MethodPut, "/tags/k?acl", nil, strings.NewReader("<AccessControlPolicy/>"))
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("PUT ?acl answered %d", resp.StatusCode)
	}
	if got, _ := get(t, c, "tags", "k", ""); !bytes.Equal(got, body) {
		t.Error("PUT ?acl changed the object")
	}
}

// writeOldLayout writes a data dir as the s3afero-based versions did, with s3afero itself,
// including a multipart object's internal metadata.
func writeOldLayout(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	objects := filepath.Join(dir, "objects")
	fs, err := s3afero.FsPath(objects, s3afero.FsPathCreateAll)
	if err != nil {
		t.Fatal(err)
	}
	old, err := s3afero.MultiBucket(fs)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.CreateBucket("old"); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"a": randBytes(5000), "dir/b": randBytes(300), "empty": {}, "mp": randBytes(3000)}
	for k, v := range want {
		meta := map[string]string{"X-Amz-Meta-K": k, "Content-Type": "x/y", lastModified: "Mon, 02 Jan 2006 15:04:05 GMT"}
		if k == "mp" {
			meta[metaParts], meta[metaETag] = "1000,2000", `"0123456789abcdef0123456789abcdef-2"`
		}
		if _, err := old.PutObject("old", k, meta, bytes.NewReader(v), int64(len(v)), nil); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

// TestMigrateOldLayout: objects of a data dir written by an earlier version are all there
// after Start, with their metadata, ETags and multipart layout, and the old tree is gone.
func TestMigrateOldLayout(t *testing.T) {
	dir := shortDir(t)
	want := writeOldLayout(t, dir)
	s := startStore(t, dir)
	c := newClient(s, false)
	keys, _ := listAll(t, c, "old", "", "")
	if strings.Join(keys, ",") != "a,dir/b,empty,mp" {
		t.Errorf("migrated keys: %q", keys)
	}
	for k, v := range want {
		got, out := get(t, c, "old", k, "")
		if !bytes.Equal(got, v) || out.Metadata["k"] != k || aws.ToString(out.ContentType) != "x/y" ||
			aws.ToTime(out.LastModified).Year() != 2006 {
			t.Errorf("%s after migration: %d bytes, %v, %s, %v", k, len(got), out.Metadata, aws.ToString(out.ContentType), out.LastModified)
		}
		wantETag := `"` + md5hex(v) + `"`
		if k == "mp" {
			wantETag = `"0123456789abcdef0123456789abcdef-2"`
		}
		if aws.ToString(out.ETag) != wantETag {
			t.Errorf("%s: ETag %s, want %s", k, aws.ToString(out.ETag), wantETag)
		}
	}
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("old"), Key: aws.String("mp"), PartNumber: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(p2, want["mp"][1000:]) || aws.ToInt32(out.PartsCount) != 2 {
		t.Errorf("part 2 of the migrated multipart object: %d bytes, %d parts", len(p2), aws.ToInt32(out.PartsCount))
	}
	if _, err := os.Stat(filepath.Join(dir, "objects")); !os.IsNotExist(err) {
		t.Errorf("old tree still there after migration: %v", err)
	}
}

// TestMigrationFailureChangesNothing: an old tree that cannot be read stops Start with an
// error that says what to do, and leaves the old tree as it was.
func TestMigrationFailureChangesNothing(t *testing.T) {
	dir := shortDir(t)
	writeOldLayout(t, dir)
	var metaFile string
	_ = filepath.WalkDir(filepath.Join(dir, "objects", "metadata"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && metaFile == "" {
			metaFile = p
		}
		return nil
	})
	if metaFile == "" {
		t.Fatal("s3afero wrote no metadata file")
	}
	if err := os.WriteFile(metaFile, []byte("{damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := treeSums(t, filepath.Join(dir, "objects"))
	_, err := Start(Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "move ") {
		t.Fatalf("Start on a damaged old tree: %v", err)
	}
	t.Logf("Start refused: %v", err)
	if after := treeSums(t, filepath.Join(dir, "objects")); after != before {
		t.Errorf("old tree changed by the failed migration:\n%s\n%s", before, after)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "bodies")); len(ents) != 0 {
		t.Errorf("%d body files left by the failed migration", len(ents))
	}
}

func treeSums(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		sum := md5.Sum(data)
		fmt.Fprintf(&b, "%s %s\n", p, hex.EncodeToString(sum[:]))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
