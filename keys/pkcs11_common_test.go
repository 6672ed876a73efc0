package keys

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestParsePKCS11KeyID(t *testing.T) {
	for _, c := range []struct {
		id   string
		want pkcs11KeyRef
	}{
		{"k", pkcs11KeyRef{name: "k"}},
		{"k/v1", pkcs11KeyRef{name: "k", version: 1}},
		{"my-key.2_x/v42/gcm", pkcs11KeyRef{name: "my-key.2_x", version: 42, mech: "gcm"}},
		{"k/v2147483647/gcm", pkcs11KeyRef{name: "k", version: 2147483647, mech: "gcm"}},
	} {
		got, err := parsePKCS11KeyID(c.id)
		if err != nil || got != c.want {
			t.Errorf("parse(%q) = %+v, %v; want %+v", c.id, got, err, c.want)
		}
	}
	for _, id := range []string{"", "/v1", "k/", "k/v", "k/v0", "k/v01", "k/1", "k/V1", "k/v-1", "k/v1x",
		"k/v2147483648", "k/v99999999999", "k/v1/", "k/v1/kwp", "k/v1/GCM", "k/v1/gcm/x", "a b", "k\x00"} {
		if got, err := parsePKCS11KeyID(id); err == nil {
			t.Errorf("parse(%q) = %+v, want an error", id, got)
		}
	}
	if id := pkcs11KeyID("k", 7, PKCS11MechGCM); id != "k/v7/gcm" {
		t.Errorf("pkcs11KeyID = %q", id)
	}
	if l := pkcs11Label("k", 7); l != "k/v7" {
		t.Errorf("pkcs11Label = %q", l)
	}
}

// TestPKCS11AAD checks that the additional data separates key ids and contexts that a naive
// concatenation would confuse, and does not depend on the map's order.
func TestPKCS11AAD(t *testing.T) {
	base := pkcs11AAD("k/v1/gcm", map[string]string{"a": "b", "c": "d"})
	if !bytes.Equal(base, pkcs11AAD("k/v1/gcm", map[string]string{"c": "d", "a": "b"})) {
		t.Error("the AAD depends on the map order")
	}
	if want := "s3seal/1 pkcs11\x00\x00\x00\x08k/v1/gcm\x00\x00\x00\x01a\x00\x00\x00\x01b\x00\x00\x00\x01c\x00\x00\x00\x01d"; string(base) != want {
		t.Errorf("AAD = %q, want %q", base, want)
	}
	if l := map[string]string{"x": "y"}; !bytes.Equal(contextAAD(localAADPrefix, "k1", l), localAAD("k1", l)) {
		t.Error("contextAAD with the local prefix differs from localAAD")
	}
	others := [][]byte{
		pkcs11AAD("k/v2/gcm", map[string]string{"a": "b", "c": "d"}),
		pkcs11AAD("k/v1/gcm", map[string]string{"a": "bc", "": "d"}),
		pkcs11AAD("k/v1/gcm", map[string]string{"ab": "", "c": "d"}),
		pkcs11AAD("k/v1/gcm", map[string]string{"a": "b"}),
		pkcs11AAD("k/v1/gcm", nil),
		localAAD("k/v1/gcm", map[string]string{"a": "b", "c": "d"}),
	}
	for i, o := range others {
		if bytes.Equal(base, o) {
			t.Errorf("case %d: same AAD as the base", i)
		}
	}
}

func TestSortKeyVersions(t *testing.T) {
	vs := []KeyVersion{{Name: "k", Version: 10}, {Name: "b", Version: 1}, {Name: "k", Version: 2}, {Name: "k", Version: 9}}
	sortKeyVersions(vs)
	want := []KeyVersion{{Name: "b", Version: 1, Active: true}, {Name: "k", Version: 2}, {Name: "k", Version: 9}, {Name: "k", Version: 10, Active: true}}
	if !slices.Equal(vs, want) {
		t.Errorf("sorted = %+v, want %+v", vs, want)
	}
}

func TestPKCS11ConfigHidesPIN(t *testing.T) {
	c := PKCS11Config{Module: "/lib/x.so", TokenLabel: "tok", PIN: "s3cr3t-PIN", Key: "k", Sessions: 3}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("open", "cfg", c)
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", &c), logged.String()} {
		if strings.Contains(out, c.PIN) {
			t.Errorf("the PIN is shown: %s", out)
		}
		if !strings.Contains(out, "tok") || !strings.Contains(out, "(redacted)") {
			t.Errorf("not the configuration: %s", out)
		}
	}
}
