// Command fakegw stands in for cmd/gateway in the tests of internal/testenv itself: it speaks
// the gateway's process interface (GATEWAY_LISTEN, signals, logging to stdout/stderr) and
// just enough S3 to check how clients are configured. It is not a gateway and encrypts nothing.
//
// Knobs: FAKEGW_EXIT=N exits with status N before listening; FAKEGW_IGNORE_TERM=1 ignores
// SIGTERM. Endpoints: GET /env returns the process environment as JSON; GET / answers
// ListBuckets with the caller's access key as owner; HEAD /exists is 200, other HEADs 404.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	wd, _ := os.Getwd()
	fmt.Printf("fakegw: args %q cwd %s\n", os.Args[1:], wd)
	fmt.Fprintln(os.Stderr, "fakegw: stderr works")
	if s := os.Getenv("FAKEGW_EXIT"); s != "" {
		code, _ := strconv.Atoi(s)
		fmt.Fprintf(os.Stderr, "fakegw: exiting with status %d as asked\n", code)
		os.Exit(code)
	}
	sigs := make(chan os.Signal, 1)
	if os.Getenv("FAKEGW_IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(sigs, syscall.SIGTERM)
	}
	l, err := net.Listen("tcp", os.Getenv("GATEWAY_LISTEN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakegw:", err)
		os.Exit(1)
	}
	fmt.Printf("fakegw: listening on %s\n", l.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(handle)}
	go func() {
		<-sigs
		fmt.Println("fakegw: got SIGTERM, shutting down")
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(l); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "fakegw:", err)
		os.Exit(1)
	}
}

func handle(w http.ResponseWriter, r *http.Request) {
	fmt.Printf("fakegw: %s %s\n", r.Method, r.URL.Path)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/env":
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(env)
	case r.Method == http.MethodGet && r.URL.Path == "/":
		ak := accessKey(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>%s</ID><DisplayName>%s</DisplayName></Owner><Buckets><Bucket><Name>exists</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>`, ak, ak)
	case r.Method == http.MethodHead && r.URL.Path == "/exists":
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func accessKey(auth string) string {
	m := regexp.MustCompile(`Credential=([A-Za-z0-9]+)/`).FindStringSubmatch(auth)
	if m == nil {
		return "anonymous"
	}
	return m[1]
}
