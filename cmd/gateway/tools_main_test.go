package main

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/config"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunToolDispatch(t *testing.T) {
	var out, errb bytes.Buffer
	if _, ok := runTool(nil, envOf(nil), &out, &errb); ok {
		t.Error("no arguments ran a tool")
	}
	if _, ok := runTool([]string{"-config", "x"}, envOf(nil), &out, &errb); ok {
		t.Error("gateway flags ran a tool")
	}
	for _, name := range []string{"presign", "rewrap", "migrate", "decrypt"} {
		errb.Reset()
		code, ok := runTool([]string{name, "-h"}, envOf(map[string]string{"HOME": t.TempDir()}), &out, &errb)
		if !ok || code != exitOK || !strings.Contains(errb.String(), "Usage: gateway "+name) {
			t.Errorf("%s -h: ok %v, exit %d, usage %q", name, ok, code, errb.String())
		}
	}
	code, _ := runTool([]string{"rewrap", "s3://bucket/p", "-concurrency", "0"}, envOf(map[string]string{"HOME": t.TempDir()}), &out, &errb)
	if code != exitUsage {
		t.Errorf("rewrap -concurrency 0 after the URI: exit %d, want %d", code, exitUsage)
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a := fs.Bool("a", false, "")
	n := fs.Int("n", 0, "")
	pos, err := parseInterspersed(fs, []string{"one", "-a", "two", "-n", "3"})
	if err != nil || !*a || *n != 3 || strings.Join(pos, ",") != "one,two" {
		t.Errorf("got %v %v %v %v", pos, err, *a, *n)
	}
}

func TestDefaultEndpoint(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		":9000":          "http://127.0.0.1:9000",
		"0.0.0.0:80":     "http://127.0.0.1:80",
		"[::]:443":       "http://127.0.0.1:443",
		"[::1]:8443":     "http://[::1]:8443",
		"gw.local:8080":  "http://gw.local:8080",
	} {
		if got := defaultEndpoint(&config.Config{Listen: listen}); got != want {
			t.Errorf("listen %q: %q, want %q", listen, got, want)
		}
	}
	c := &config.Config{Listen: "127.0.0.1:8443", TLS: config.TLS{CertFile: "c", KeyFile: "k"}}
	if got := defaultEndpoint(c); got != "https://127.0.0.1:8443" {
		t.Errorf("TLS: %q", got)
	}
}

func TestPresignCredential(t *testing.T) {
	cfg := &config.Config{Mode: config.ModeS3, Credentials: []config.Credential{
		{AccessKeyID: "A1", SecretAccessKey: "s1"}, {AccessKeyID: "A2", SecretAccessKey: "s2"},
	}}
	for _, c := range []struct{ want, env, id, secret string }{
		{"", "", "A1", "s1"}, {"A2", "", "A2", "s2"}, {"", "A2", "A2", "s2"},
	} {
		id, secret, err := presignCredential(cfg, c.want, envOf(map[string]string{"GATEWAY_ACCESS_KEY_ID": c.env}))
		if err != nil || id != c.id || secret != c.secret {
			t.Errorf("want %q env %q: %q %q %v", c.want, c.env, id, secret, err)
		}
	}
	if _, _, err := presignCredential(cfg, "A3", envOf(nil)); err == nil {
		t.Error("an unknown credential was accepted")
	}
	if _, _, err := presignCredential(&config.Config{Mode: config.ModeS3}, "", envOf(nil)); err == nil {
		t.Error("no credential: accepted")
	}
}

func TestLoadToolConfigTolerates(t *testing.T) {
	// What only a serving gateway needs (client credentials, a default KMS key) is not required.
	env := map[string]string{"HOME": t.TempDir(), "GATEWAY_BACKEND_ENDPOINT": "http://127.0.0.1:1", "GATEWAY_KEY_PROVIDER": "kms"}
	cfg, err := loadToolConfig("", envOf(env))
	if err != nil || cfg.Mode != config.ModeS3 || cfg.Keys.Provider != config.ProviderKMS {
		t.Fatalf("got %+v, %v", cfg, err)
	}
	// What the tools use is still checked.
	env["GATEWAY_KEY_PROVIDER"] = "vault"
	if _, err := loadToolConfig("", envOf(env)); err == nil {
		t.Error("unknown provider accepted")
	}
	env["GATEWAY_KEY_PROVIDER"] = "kms"
	env["GATEWAY_BACKEND_ACCESS_KEY_ID"] = "only-the-id"
	if _, err := loadToolConfig("", envOf(env)); err == nil {
		t.Error("half a backend credential accepted")
	}
}
