package embedded

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// CredentialsFile is the name of the client credentials file inside the data dir.
const CredentialsFile = "credentials.yaml"

const (
	upperAlnum   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	secretAlnum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	secretLength = 40
)

// CredentialsError reports a credentials file that cannot be used.
type CredentialsError struct {
	Path    string
	Problem string
}

func (e *CredentialsError) Error() string {
	return "embedded: credentials file " + e.Path + ": " + e.Problem
}

type credentialsYAML struct {
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
}

// LoadOrCreateCredentials returns the client credentials of the zero-config gateway, kept in
// <dir>/credentials.yaml (0600). On first run it creates the file with a random access key
// id ("AK" + 18 upper-case alphanumerics) and a random 40-character alphanumeric secret (238
// bits); later runs read it back. A file readable or writable by group or others is refused,
// as ssh does with private keys. Creation is atomic (temp file, fsync, link), so a crash never
// leaves a half-written file and two processes starting together agree on one secret.
func LoadOrCreateCredentials(dir string) (accessKeyID, secretAccessKey string, created bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", false, err
	}
	path := filepath.Join(dir, CredentialsFile)
	id, secret, err := readCredentials(path)
	if err == nil {
		return id, secret, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", "", false, err
	}
	c := credentialsYAML{AccessKeyID: "AK" + randomString(upperAlnum, 18), SecretAccessKey: randomString(secretAlnum, secretLength)}
	body, err := yaml.Marshal(c)
	if err != nil {
		return "", "", false, err
	}
	body = append([]byte("# Client credentials of the s3seal gateway in zero-config mode. Keep this file secret.\n"), body...)
	if err := writeExclusive(path, body); err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race: use its file
			id, secret, err := readCredentials(path)
			return id, secret, false, err
		}
		return "", "", false, err
	}
	return c.AccessKeyID, c.SecretAccessKey, true, nil
}

func readCredentials(path string) (string, string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", "", err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", "", &CredentialsError{Path: path, Problem: fmt.Sprintf("mode %04o is too open, want 0600", st.Mode().Perm())}
	}
	body, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	var c credentialsYAML
	if err := yaml.Unmarshal(body, &c); err != nil {
		return "", "", &CredentialsError{Path: path, Problem: "not valid YAML"} // the parser's message may quote the secret
	}
	if !validCredential(c.AccessKeyID) || !validCredential(c.SecretAccessKey) {
		return "", "", &CredentialsError{Path: path, Problem: "access_key_id and secret_access_key must be non-empty printable ASCII without spaces"}
	}
	return c.AccessKeyID, c.SecretAccessKey, nil
}

func validCredential(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// writeExclusive writes body to path only if path does not exist yet, atomically.
func writeExclusive(path string, body []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".credentials-*") // created 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Link(tmp, path)
}

// randomString draws n characters uniformly from alphabet (at most 256 characters) with
// crypto/rand, rejecting the bytes that would bias the draw.
func randomString(alphabet string, n int) string {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		_, _ = rand.Read(buf[:]) // never fails since Go 1.24
		for _, c := range buf {
			if int(c) < limit && len(out) < n {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out)
}
