package keys

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestSplitVersion(t *testing.T) {
	for _, c := range []struct {
		in   string
		name string
		v    int
	}{
		{"k1", "k1", 1}, {"k1.v2", "k1", 2}, {"team.a.v10", "team.a", 10},
		{"k1.v1", "k1.v1", 1}, {"k1.v02", "k1.v02", 1}, {"k1.v", "k1.v", 1}, {".v3", ".v3", 1}, {"k.vx", "k.vx", 1},
	} {
		if n, v := splitVersion(c.in); n != c.name || v != c.v {
			t.Errorf("splitVersion(%q) = %q, %d; want %q, %d", c.in, n, v, c.name, c.v)
		}
	}
}

// TestLocalRotateRetire: after a rotation new data keys are made under the new version, old
// ones still open, the file on disk holds both, and retire refuses the newest version.
func TestLocalRotateRetire(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "keys.yaml")
	lf, err := CreateLocalFileWithKey(p, "team")
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	used1, dk1, w1, err := lf.GenerateDataKeyID(ctx, "", bucketCtx)
	if err != nil || used1 != "team" {
		t.Fatalf("first key: used %q, err %v", used1, err)
	}
	v, err := lf.RotateKey("team")
	if err != nil {
		t.Fatal(err)
	}
	if v.ID != "team.v2" || v.Version != 2 || !v.Active {
		t.Fatalf("rotate gave %+v", v)
	}
	for _, ask := range []string{"", "team"} {
		used, _, _, err := lf.GenerateDataKeyID(ctx, ask, bucketCtx)
		if err != nil || used != "team.v2" {
			t.Errorf("after rotate, key asked %q: used %q, err %v; want team.v2", ask, used, err)
		}
	}
	if used, _, _, err := lf.GenerateDataKeyID(ctx, "team", bucketCtx); err != nil || used != "team.v2" {
		t.Fatal(used, err)
	}
	got, err := lf.Decrypt(ctx, "team", w1, bucketCtx)
	if err != nil || string(got) != string(dk1) {
		t.Fatalf("old version does not open its data key after rotate: %v", err)
	}
	// The file on disk has both versions (a fresh open sees them).
	lf2, err := OpenLocalFile(p)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := lf2.KeyVersions()
	def := lf2.DefaultKeyID()
	lf2.Close()
	if err != nil || len(vs) != 2 || vs[0].ID != "team" || vs[1].ID != "team.v2" || vs[0].Active || !vs[1].Active || def != "team.v2" {
		t.Fatalf("versions on disk: %+v, %v", vs, err)
	}
	if err := lf.RetireKey("team.v2"); err == nil {
		t.Fatal("retiring the newest (active) version was allowed")
	}
	if err := lf.RetireKey("team"); err != nil {
		t.Fatal(err)
	}
	if _, err := lf.Decrypt(ctx, "team", w1, bucketCtx); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("retired version still opens: %v", err)
	}
	// A retired family name still resolves to its remaining newest version.
	if used, _, _, err := lf.GenerateDataKeyID(ctx, "team", bucketCtx); err != nil || used != "team.v2" {
		t.Fatalf("after retire: used %q, %v", used, err)
	}
	if _, err := lf.RotateKey("nosuch"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("rotate of an unknown key: %v", err)
	}
}

// TestLocalCreateKey: a second family does not become active; its name cannot look like a
// version; a rotation of a family that is not active leaves the active key alone.
func TestLocalCreateKey(t *testing.T) {
	ctx := context.Background()
	lf, err := CreateLocalFile(filepath.Join(t.TempDir(), "keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if _, err := lf.CreateKey("other.v2"); err == nil {
		t.Fatal("a name ending like a version was accepted")
	}
	if _, err := lf.CreateKey("k1"); err == nil {
		t.Fatal("an existing name was accepted")
	}
	if _, err := lf.CreateKey("other"); err != nil {
		t.Fatal(err)
	}
	if v, err := lf.RotateKey("other"); err != nil || !v.Active || v.ID != "other.v2" {
		t.Fatalf("rotate other: %+v %v", v, err)
	}
	if lf.DefaultKeyID() != "k1" {
		t.Fatalf("active key moved to %q", lf.DefaultKeyID())
	}
	if used, _, _, err := lf.GenerateDataKeyID(ctx, "other", bucketCtx); err != nil || used != "other.v2" {
		t.Fatalf("other: %q %v", used, err)
	}
	if used, _, _, err := lf.GenerateDataKeyID(ctx, "other", bucketCtx); err != nil || used != "other.v2" {
		t.Fatalf("other: %q %v", used, err)
	}
}
