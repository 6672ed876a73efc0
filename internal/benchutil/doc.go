// Package benchutil holds what the end-to-end benchmark (integration BenchmarkFigures, run by
// scripts/bench) needs besides the services: CPU time and peak RSS of a process from /proc,
// medians and percentiles, the table of figures with their targets (MET/MISSED), the plain
// httputil reverse proxy that is the pass-through baseline, and the throughput plot.
//
// It is benchmark code only: nothing in the gateway imports it.
package benchutil
