package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Ping checks that the backend is reachable and accepts the gateway's credentials: one signed
// ListBuckets. AccessDenied counts as reachable (credentials valid, but allowed only some
// buckets, as with a bucket-scoped IAM policy); any other error, or no answer, does not.
func (g *Gateway) Ping(ctx context.Context) error {
	resp, err := g.backend.send(ctx, http.MethodGet, target{}, nil, nil, 0, "")
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	e := backendErrorOf(resp, target{})
	if e.Code == "AccessDenied" {
		return nil
	}
	return fmt.Errorf("backend answered %d %s", resp.StatusCode, e.Code)
}
