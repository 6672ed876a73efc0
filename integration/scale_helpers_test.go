package integration

// Helpers of the scale-out tests (scale_*_test.go, issue 16): N gateways with the same
// configuration, client credentials and KMS key, on the same MinIO, behind one HAProxy.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// scaleCluster is n gateways behind HAProxy.
type scaleCluster struct {
	m     *testenv.MinIO
	keyID string
	env   []map[string]string // each gateway's environment, to restart it on the same ports
	gws   []*testenv.Gateway
	ops   []string                // each gateway's metrics base URL (http://127.0.0.1:PORT)
	names []string                // HAProxy server names: gw1, gw2, ...
	srv   []testenv.HAProxyServer // the gateways as HAProxy servers
	lb    *testenv.HAProxy
	front *testenv.Gateway // the HAProxy frontend as clients see it (same credentials)
}

func scaleHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newScaleCluster starts n gateways on the shared MinIO with one new KMS key at the shared KMS
// emulator, reached at kmsEndpoint (the emulator itself when ""), each with its own metrics
// listener, all with the same client credentials, and HAProxy in front of them.
func newScaleCluster(t testing.TB, n int, kmsEndpoint string) *scaleCluster {
	t.Helper()
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	if kmsEndpoint == "" {
		kmsEndpoint = k.Endpoint
	}
	c := &scaleCluster{m: m, keyID: k.CreateKey(t)}
	access, secret := "AKSCALE"+scaleHex(t, 6), scaleHex(t, 20)
	var servers []testenv.HAProxyServer
	for i := range n {
		listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		metricsPort := testenv.FreePort(t)
		metrics := fmt.Sprintf("127.0.0.1:%d", metricsPort)
		env := coreGatewayEnv(m, m.Endpoint, kmsEndpoint, c.keyID, map[string]string{
			"GATEWAY_LISTEN":            listen,
			"GATEWAY_METRICS_LISTEN":    metrics,
			"GATEWAY_ACCESS_KEY_ID":     access,
			"GATEWAY_SECRET_ACCESS_KEY": secret,
		})
		c.env = append(c.env, env)
		c.gws = append(c.gws, testenv.StartGateway(t, env))
		c.ops = append(c.ops, "http://"+metrics)
		c.names = append(c.names, fmt.Sprintf("gw%d", i+1))
		servers = append(servers, testenv.HAProxyServer{Name: c.names[i], Addr: listen, CheckPort: metricsPort})
	}
	c.srv = servers
	c.lb = testenv.StartHAProxy(t, servers)
	c.front = c.lb.Gateway(c.gws[0])
	return c
}

// restart starts gateway i again with the same environment (same ports) after it stopped.
func (c *scaleCluster) restart(t testing.TB, i int) {
	t.Helper()
	c.gws[i] = testenv.StartGateway(t, c.env[i])
}

// sessions returns HAProxy's request count per server, in gateway order.
func (c *scaleCluster) sessions(t testing.TB) []int64 {
	t.Helper()
	st := c.lb.Stats(t)
	out := make([]int64, len(c.names))
	for i, name := range c.names {
		out[i] = st[name].Sessions
	}
	return out
}

// scaleCountingClient counts the HTTP attempts an SDK client makes (retries included).
type scaleCountingClient struct {
	inner    *awshttp.BuildableClient
	attempts *atomic.Int64
}

func (c scaleCountingClient) Do(r *http.Request) (*http.Response, error) {
	c.attempts.Add(1)
	return c.inner.Do(r)
}

// scaleRetryClient is an S3 client for g with the SDK's standard retryer (up to 10 attempts,
// backoff up to 1 s, no client-side retry quota: 32 clients retry at once when a gateway dies)
// and a 30 s limit per attempt; attempts counts every HTTP attempt.
func scaleRetryClient(t testing.TB, g *testenv.Gateway, attempts *atomic.Int64) *s3.Client {
	t.Helper()
	return g.Client(t, func(o *s3.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 10
			so.MaxBackoff = time.Second
			so.RateLimiter = ratelimit.None
		})
		o.HTTPClient = scaleCountingClient{inner: awshttp.NewBuildableClient().WithTimeout(30 * time.Second), attempts: attempts}
	})
}
