package integration

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/s3seal/s3seal/config"
)

// The compose file's shape, as far as the test reads it.
type opsCompose struct {
	Name     string                       `yaml:"name"`
	Services map[string]opsComposeService `yaml:"services"`
	Volumes  map[string]any               `yaml:"volumes"`
}

type opsComposeService struct {
	Build       any               `yaml:"build"`
	Image       string            `yaml:"image"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   opsDependsOn      `yaml:"depends_on"`
}

// opsDependsOn is a service's depends_on: service name -> condition. The short form (a list of
// names) means condition service_started.
type opsDependsOn map[string]string

// UnmarshalYAML reads either form of depends_on.
func (d *opsDependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = opsDependsOn{}
	switch n.Kind {
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, name := range names {
			(*d)[name] = "service_started"
		}
	case yaml.MappingNode:
		var long map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&long); err != nil {
			return err
		}
		for name, c := range long {
			(*d)[name] = cmp.Or(c.Condition, "service_started")
		}
	default:
		return fmt.Errorf("line %d: depends_on is neither a list nor a mapping", n.Line)
	}
	return nil
}

// opsConfigEnvNames are the GATEWAY_* variables the config package reads, taken from its
// source, and those config.example.yaml documents.
func opsConfigEnvNames(t *testing.T) (read, documented map[string]bool) {
	t.Helper()
	re := regexp.MustCompile(`GATEWAY_[A-Z0-9_]+`)
	collect := func(file string) map[string]bool {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, n := range re.FindAllString(string(b), -1) {
			m[n] = true
		}
		return m
	}
	return collect("../config/config.go"), collect("../config.example.yaml")
}

// opsPortMapping splits "[host_ip:]host_port:container_port" into host address and container port.
func opsPortMapping(t *testing.T, p string) (host, container string) {
	t.Helper()
	i := strings.LastIndexByte(p, ':')
	if i < 0 {
		t.Fatalf("port mapping %q has no container port", p)
	}
	return p[:i], p[i+1:]
}

// opsVolume splits "source:target[:mode]".
func opsVolume(t *testing.T, v string) (source, target string) {
	t.Helper()
	parts := strings.Split(v, ":")
	if len(parts) < 2 {
		t.Fatalf("volume %q: want source:target", v)
	}
	return parts[0], parts[1]
}

// TestOpsComposeMatchesConfig parses docker-compose.yml and checks it against the gateway's
// configuration: every GATEWAY_* variable exists in package config and is documented; the whole
// environment loads and validates; published ports are the listen addresses; the backend and
// KMS endpoints name services of the file on the ports they listen on, with the backend's
// credentials and the seeded KMS alias; volumes are declared and cover the paths the services
// write (MinIO data, the audit file). No Docker engine is needed (or available on CI).
func TestOpsComposeMatchesConfig(t *testing.T) {
	data, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf opsCompose
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, s := range []string{"gateway", "minio", "kms"} {
		if _, ok := cf.Services[s]; !ok {
			t.Fatalf("service %q missing; have %v", s, cf.Services)
		}
	}
	gw, minio, kms := cf.Services["gateway"], cf.Services["minio"], cf.Services["kms"]

	// Environment: names exist in config and its documentation, and the whole loads.
	read, documented := opsConfigEnvNames(t)
	for name := range gw.Environment {
		if !strings.HasPrefix(name, "GATEWAY_") {
			t.Errorf("gateway environment %s: not a gateway setting", name)
			continue
		}
		if !read[name] {
			t.Errorf("gateway environment %s: package config does not read it", name)
		}
		if !documented[name] {
			t.Errorf("gateway environment %s: config.example.yaml does not document it", name)
		}
	}
	// The container's environment: the image's ENV (Dockerfile), then the compose file's.
	env := opsDockerfileEnv(t)
	for k, v := range gw.Environment {
		env[k] = v
	}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the gateway's compose environment does not load: %v", err)
	}
	if cfg.Mode != config.ModeS3 || cfg.Keys.Provider != config.ProviderKMS {
		t.Errorf("mode %s with key provider %s: the trial is meant to show S3 + KMS", cfg.Mode, cfg.Keys.Provider)
	}

	// Ports: each published container port is one of the gateway's listeners, bound to every
	// interface inside the container; both listeners are published.
	listens := map[string]string{"listen": cfg.Listen, "metrics.listen": cfg.Metrics.Listen}
	published := map[string]bool{}
	for _, p := range gw.Ports {
		host, cport := opsPortMapping(t, p)
		published[cport] = true
		if !strings.HasPrefix(host, "127.0.0.1:") {
			t.Errorf("port %q is published beyond the host's loopback: a trial with demo secrets should not be", p)
		}
	}
	for what, addr := range listens {
		h, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("%s %q: %v", what, addr, err)
			continue
		}
		if h != "0.0.0.0" && h != "" {
			t.Errorf("%s %q: inside a container it must listen on every interface", what, addr)
		}
		if !published[port] {
			t.Errorf("%s port %s is not published (ports %v)", what, port, gw.Ports)
		}
	}
	if len(published) != len(listens) {
		t.Errorf("published container ports %v, gateway listeners %v", published, listens)
	}

	// Backend: the minio service, on the port its command listens on, with its root credentials.
	bu, err := url.Parse(cfg.Backend.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if bu.Hostname() != "minio" || minio.Image == "" {
		t.Errorf("backend endpoint %s: want the minio service", cfg.Backend.Endpoint)
	}
	i := slices.Index(minio.Command, "--address")
	if i < 0 || i+1 >= len(minio.Command) {
		t.Fatalf("minio command %v has no --address", minio.Command)
	}
	if _, port, _ := net.SplitHostPort(minio.Command[i+1]); port != bu.Port() {
		t.Errorf("backend port %s, MinIO listens on %s", bu.Port(), minio.Command[i+1])
	}
	if !cfg.Backend.PathStyle {
		t.Error("MinIO by service name needs path-style addressing")
	}
	opsCheckBackendUser(t, cf, cfg)

	// KMS: the kms service, on its PORT, in its region, with the key alias its seed creates.
	ku, err := url.Parse(cfg.Keys.KMS.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := gw.DependsOn["kms"]; ku.Hostname() != "kms" || !ok {
		t.Errorf("KMS endpoint %s: want the kms service (and depends_on it)", cfg.Keys.KMS.Endpoint)
	}
	if ku.Port() != kms.Environment["PORT"] {
		t.Errorf("KMS port %s, local-kms PORT %s", ku.Port(), kms.Environment["PORT"])
	}
	if cfg.Keys.KMS.Region != kms.Environment["KMS_REGION"] {
		t.Errorf("KMS region %s, local-kms KMS_REGION %s (keys are stored under the region's ARN)", cfg.Keys.KMS.Region, kms.Environment["KMS_REGION"])
	}
	seedPath := kms.Environment["KMS_SEED_PATH"]
	seedFile := opsRepoFile(t, kms, seedPath)
	seedData, err := os.ReadFile(seedFile)
	if err != nil {
		t.Fatalf("KMS seed: %v", err)
	}
	var seed struct {
		Keys struct {
			Symmetric struct {
				Aes []struct {
					Metadata struct {
						KeyId string `yaml:"KeyId"`
					} `yaml:"Metadata"`
					BackingKeys []string `yaml:"BackingKeys"`
				} `yaml:"Aes"`
			} `yaml:"Symmetric"`
		} `yaml:"Keys"`
		Aliases []struct {
			AliasName   string `yaml:"AliasName"`
			TargetKeyId string `yaml:"TargetKeyId"`
		} `yaml:"Aliases"`
	}
	if err := yaml.Unmarshal(seedData, &seed); err != nil {
		t.Fatalf("KMS seed %s: %v", seedFile, err)
	}
	keyIDs := map[string]bool{}
	for _, k := range seed.Keys.Symmetric.Aes {
		keyIDs[k.Metadata.KeyId] = len(k.BackingKeys) > 0
	}
	found := false
	for _, a := range seed.Aliases {
		if "alias/"+strings.TrimPrefix(a.AliasName, "alias/") == cfg.Keys.KMS.KeyID {
			found = true
			if !keyIDs[a.TargetKeyId] {
				t.Errorf("alias %s targets %s, which the seed does not create with key material", a.AliasName, a.TargetKeyId)
			}
		}
	}
	if !found && !keyIDs[cfg.Keys.KMS.KeyID] {
		t.Errorf("KMS key id %s is neither a seeded alias nor a seeded key", cfg.Keys.KMS.KeyID)
	}

	// Volumes: named ones declared at the top level; bind mounts exist in the repository; the
	// paths services write to are on volumes.
	targets := map[string]map[string]bool{}
	for name, s := range cf.Services {
		targets[name] = map[string]bool{}
		for _, v := range s.Volumes {
			src, dst := opsVolume(t, v)
			targets[name][dst] = true
			if strings.HasPrefix(src, "./") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
				continue
			}
			if _, ok := cf.Volumes[src]; !ok {
				t.Errorf("service %s uses volume %q, not declared under volumes:", name, src)
			}
		}
	}
	if dir := path.Dir(cfg.Audit.File); cfg.Audit.File == "" || !targets["gateway"][dir] {
		t.Errorf("audit file %q is not on a gateway volume (%v): it would vanish with the container", cfg.Audit.File, gw.Volumes)
	}
	if minio.Command[1] == "" || !targets["minio"][minio.Command[1]] {
		t.Errorf("MinIO data dir %q is not a volume", minio.Command[1])
	}
	if gw.Build == nil {
		t.Error("the gateway service is not built from this repository (build: .)")
	}
}

// opsDockerfileEnv is the GATEWAY_* environment the Dockerfile's ENV sets.
func opsDockerfileEnv(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(GATEWAY_[A-Z0-9_]+)=(\S+)`).FindAllStringSubmatch(string(b), -1) {
		env[m[1]] = m[2]
	}
	return env
}

// TestOpsDockerfile checks the Dockerfile's promises that the compose file and docs rely on:
// multi-stage, static (CGO_ENABLED=0) binary, non-root user, the ports the gateway listens on,
// and GATEWAY_* defaults that config reads.
func TestOpsDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if n := strings.Count(df, "\nFROM "); n < 2 {
		t.Errorf("%d FROM lines: want a multi-stage build", n)
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER 65532", "EXPOSE 8080 9090", "./cmd/gateway"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	read, documented := opsConfigEnvNames(t)
	for _, n := range regexp.MustCompile(`GATEWAY_[A-Z0-9_]+`).FindAllString(df, -1) {
		if !read[n] || !documented[n] {
			t.Errorf("Dockerfile names %s, which config does not read or document", n)
		}
	}
	m := regexp.MustCompile(`GATEWAY_LISTEN=0\.0\.0\.0:(\d+)`).FindStringSubmatch(df)
	if m == nil || !strings.Contains(df, "EXPOSE "+m[1]) {
		t.Errorf("the image's GATEWAY_LISTEN port is not exposed")
	}
}

// opsRepoFile is the repository file that service svc sees at path inside its container,
// through a bind mount of the repository (a test fails when none provides it).
func opsRepoFile(t *testing.T, svc opsComposeService, path string) string {
	t.Helper()
	for _, v := range svc.Volumes {
		src, dst := opsVolume(t, v)
		if strings.HasPrefix(path, dst+"/") && strings.HasPrefix(src, "./") {
			return filepath.Join("..", src, strings.TrimPrefix(path, dst+"/"))
		}
	}
	t.Fatalf("no bind mount of the repository provides %s", path)
	return ""
}
