package benchutil

import (
	"net/http"
	"net/http/httputil"
	"net/url"
)

// PassThrough is the baseline the gateway's CPU cost is compared with: a plain
// httputil.ReverseProxy to target that forwards requests as they come (the client signs for
// the backend; the Host header is kept, so the backend's signature check passes) and moves the
// bytes without looking at them.
func PassThrough(target *url.URL) http.Handler {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		Transport: tr,
	}
}
