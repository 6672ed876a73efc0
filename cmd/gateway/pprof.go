package main

import (
	"net/http"
	"net/http/pprof"
	"os"
)

// opsHandler is the metrics listener's handler, plus net/http/pprof under /debug/pprof/ when
// GATEWAY_DEBUG_PPROF=1. That is for the benchmark's profiles (scripts/bench --profile): off
// by default, never on the S3 port, and only where the metrics listener is configured.
func opsHandler(h http.Handler) http.Handler {
	if os.Getenv("GATEWAY_DEBUG_PPROF") != "1" {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}
