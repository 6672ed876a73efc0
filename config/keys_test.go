package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPKCS11PIN: the PIN comes from pin_file (white space trimmed), else from the variable
// pin_env names, else from GATEWAY_PKCS11_PIN; it is never read from the YAML, a pin_file that
// cannot be read is an error, and Redacted hides it, for keys.pkcs11 and keys.providers alike.
func TestPKCS11PIN(t *testing.T) {
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte("  1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(t *testing.T, yml string, vars map[string]string) (*Config, error) {
		t.Helper()
		file := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{"HOME": "/h", "GATEWAY_ACCESS_KEY_ID": "AK", "GATEWAY_SECRET_ACCESS_KEY": "SK",
			"GATEWAY_BACKEND_ENDPOINT": "http://127.0.0.1:9", "GATEWAY_BACKEND_ACCESS_KEY_ID": "bk", "GATEWAY_BACKEND_SECRET_ACCESS_KEY": "bs"}
		for k, v := range vars {
			m[k] = v
		}
		return Load(file, env(m))
	}
	single := func(extra string) string {
		return "keys:\n  provider: pkcs11\n  pkcs11:\n    module: /lib/p11.so\n    token_label: t\n" + extra
	}
	cases := []struct {
		name, yml string
		vars      map[string]string
		want      string
	}{
		{"pin_file", single("    pin_file: " + pinFile + "\n"), map[string]string{DefaultPINEnv: "ignored"}, "1234"},
		{"pin_env", single("    pin_env: MY_PIN\n"), map[string]string{"MY_PIN": "5678", DefaultPINEnv: "ignored"}, "5678"},
		{"default variable", single(""), map[string]string{DefaultPINEnv: "9999"}, "9999"},
		{"none", single(""), nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.yml, tc.vars)
			if err != nil {
				t.Fatal(err)
			}
			if c.Keys.PKCS11.PIN != tc.want {
				t.Fatalf("PIN %q, want %q", c.Keys.PKCS11.PIN, tc.want)
			}
			if r := c.Redacted(); tc.want != "" && r.Keys.PKCS11.PIN != "REDACTED" {
				t.Fatalf("Redacted shows the PIN as %q", r.Keys.PKCS11.PIN)
			}
		})
	}
	t.Run("providers entry", func(t *testing.T) {
		yml := "keys:\n  provider: hsm\n  providers:\n    hsm:\n      type: pkcs11\n      pkcs11:\n        module: /lib/p11.so\n        token_label: t\n        pin_file: " + pinFile + "\n"
		c, err := load(t, yml, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Keys.Providers["hsm"].PKCS11.PIN; got != "1234" {
			t.Fatalf("providers.hsm PIN %q, want 1234", got)
		}
		if got := c.Redacted().Keys.Providers["hsm"].PKCS11.PIN; got != "REDACTED" {
			t.Fatalf("Redacted shows providers.hsm's PIN as %q", got)
		}
		if c.Keys.Providers["hsm"].PKCS11.PIN != "1234" {
			t.Fatal("Redacted changed the configuration it copied")
		}
	})
	t.Run("pin in the YAML is refused", func(t *testing.T) {
		if _, err := load(t, single("    pin: \"1234\"\n"), nil); err == nil || !strings.Contains(err.Error(), "field pin ") {
			t.Fatalf("a pin key in the YAML: %v, want an error naming it", err)
		}
	})
	t.Run("unreadable pin_file", func(t *testing.T) {
		_, err := load(t, single("    pin_file: "+filepath.Join(dir, "missing")+"\n"), map[string]string{DefaultPINEnv: "9999"})
		if err == nil || !strings.Contains(err.Error(), "pin_file") {
			t.Fatalf("a missing pin_file: %v, want an error naming pin_file (not a fall-back to the variable)", err)
		}
	})
}
