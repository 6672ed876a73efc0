package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/testenv"
)

// tlsMaterial is a self-signed server certificate for 127.0.0.1 and localhost, written to PEM
// files for the gateway (GATEWAY_TLS_*) and for clients (AWS_CA_BUNDLE), and as a pool for Go
// clients.
type tlsMaterial struct {
	CertFile string
	KeyFile  string
	Pool     *x509.CertPool
}

// newTLSMaterial generates a fresh ECDSA P-256 key and a self-signed certificate valid for an
// hour, usable as its own CA (clients trust exactly this certificate).
func newTLSMaterial(t *testing.T) tlsMaterial {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "s3seal integration test"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := tlsMaterial{
		CertFile: writeFile(t, dir, "cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyFile:  writeFile(t, dir, "key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		Pool:     x509.NewCertPool(),
	}
	m.Pool.AddCert(cert)
	return m
}

// Transport is an HTTP transport that trusts only this certificate.
func (m tlsMaterial) Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: m.Pool, MinVersion: tls.VersionTLS12}
	return tr
}

// startTLSGateway starts a gateway in front of the shared MinIO and the KMS emulator that serves
// HTTPS with a fresh self-signed certificate; the returned gateway's Endpoint is https://.
// extra is merged into the gateway's environment.
func startTLSGateway(t *testing.T, extra map[string]string) (*testenv.Gateway, *testenv.MinIO, tlsMaterial) {
	t.Helper()
	mat := newTLSMaterial(t)
	env := map[string]string{
		"GATEWAY_TLS_CERT_FILE": mat.CertFile,
		"GATEWAY_TLS_KEY_FILE":  mat.KeyFile,
	}
	for k, v := range extra {
		env[k] = v
	}
	gw, m, _, _ := testenv.StartGatewayMinIO(t, env)
	gw.Endpoint = "https://" + strings.TrimPrefix(gw.Endpoint, "http://")

	// The listener must really speak TLS with this certificate (and only that).
	resp, err := (&http.Client{Transport: mat.Transport(), Timeout: 10 * time.Second}).Get(gw.Endpoint + "/")
	if err != nil {
		t.Fatalf("TLS gateway %s: %v", gw.Endpoint, err)
	}
	resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatalf("TLS gateway %s answered without TLS", gw.Endpoint)
	}
	return gw, m, mat
}

// TestTLSMaterial: the generated certificate verifies for 127.0.0.1 against its own pool, and a
// client without that pool refuses it (so "the client trusts it via RootCAs" means something).
func TestTLSMaterial(t *testing.T) {
	mat := newTLSMaterial(t)
	pair, err := tls.LoadX509KeyPair(mat.CertFile, mat.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: mat.Pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("certificate does not verify for 127.0.0.1 against its pool: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: x509.NewCertPool(), DNSName: "127.0.0.1"}); err == nil {
		t.Error("certificate verifies against an empty pool")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: mat.Pool, DNSName: "example.com"}); err == nil {
		t.Error("certificate verifies for a name it was not issued for")
	}
}
