// Command passproxy is the pass-through baseline of scripts/bench: a plain httputil reverse
// proxy (benchutil.PassThrough) listening on -listen and forwarding to -target, run as its own
// process so that its CPU time can be read from /proc/PID/stat like the gateway's.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/url"
	"time"

	"github.com/s3seal/s3seal/internal/benchutil"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	target := flag.String("target", "", "backend base URL, e.g. http://127.0.0.1:9000")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		log.Fatalf("passproxy: -target %q is not a base URL", *target)
	}
	srv := &http.Server{Addr: *listen, Handler: benchutil.PassThrough(u), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
