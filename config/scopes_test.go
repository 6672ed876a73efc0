package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// encryption.allow_unencrypted: fail closed by default; the old boolean form still reads; a
// list of scopes; the environment overrides with a boolean or comma-separated scopes.
func TestAllowUnencryptedScopes(t *testing.T) {
	base := "mode: s3\ncredentials: [{access_key_id: a, secret_access_key: b}]\n"
	cases := []struct {
		name, yaml, env string
		want            Scopes
		wantErr         string
	}{
		{name: "default", want: nil},
		{name: "yaml true", yaml: "encryption: {allow_unencrypted: true}", want: Scopes{"*"}},
		{name: "yaml false", yaml: "encryption: {allow_unencrypted: false}", want: nil},
		{name: "yaml list", yaml: "encryption: {allow_unencrypted: [legacy, media/2019/]}", want: Scopes{"legacy", "media/2019/"}},
		{name: "yaml empty list", yaml: "encryption: {allow_unencrypted: []}", want: nil},
		{name: "yaml not a bool", yaml: "encryption: {allow_unencrypted: sometimes}", wantErr: "allow_unencrypted"},
		{name: "env true over yaml list", yaml: "encryption: {allow_unencrypted: [a]}", env: "true", want: Scopes{"*"}},
		{name: "env false over yaml true", yaml: "encryption: {allow_unencrypted: true}", env: "false", want: nil},
		{name: "env scopes", env: "legacy, media/2019/", want: Scopes{"legacy", "media/2019/"}},
		{name: "empty scope", env: "a,,b", wantErr: "scope"},
		{name: "prefix without bucket", yaml: "encryption: {allow_unencrypted: [/x]}", wantErr: "scope"},
		{name: "wildcard inside", env: "logs/*", wantErr: "scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(base+c.yaml+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path, env(map[string]string{"HOME": "/home/x", "GATEWAY_ALLOW_UNENCRYPTED": c.env}))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Encryption.AllowUnencrypted, c.want) {
				t.Errorf("allow_unencrypted = %#v, want %#v", got.Encryption.AllowUnencrypted, c.want)
			}
		})
	}
}
