// Command gateway runs s3seal, the S3-compatible encrypting gateway.
//
// With no configuration it starts on 127.0.0.1:8080 with an embedded S3 store on local disk and
// a local key file, and prints how to point aws-cli at it. `-config FILE` (and GATEWAY_*
// environment variables) switch to a real S3 backend and AWS KMS; see config.example.yaml.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/s3seal/s3seal/config"
	"github.com/s3seal/s3seal/metrics"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process globals, so that it can be tested.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if code, ok := runTool(args, getenv, stdout, stderr); ok { // presign, rewrap, migrate, decrypt, keys
		return code
	}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration file (see config.example.yaml); GATEWAY_* environment variables override it")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gateway [-config FILE]\n"+
			"       gateway presign|rewrap|migrate|decrypt|keys [flags] ... (see gateway <command> -h)\n\n"+
			"Runs the s3seal encrypting S3 gateway.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gateway: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := config.Load(*configPath, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		return 2
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log, stdout); err != nil {
		log.Error("gateway stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level %q: %w", c.Level, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// serve builds the gateway, serves until ctx is done, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish for cfg.Server.ShutdownTimeout, then aborts the rest
// (their contexts are canceled and their connections closed, so a backend upload in progress
// fails and no partial object is stored) and waits for their handlers before releasing the
// key provider and the embedded store.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	app, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	var opsLn net.Listener
	if cfg.Metrics.Listen != "" {
		if opsLn, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			_ = ln.Close()
			return fmt.Errorf("metrics listener: %w", err)
		}
	}
	// SIGHUP reloads the TLS certificate and reopens the audit file (handlers below); with
	// neither configured it must not terminate the process (systemd ExecReload, logrotate).
	signal.Ignore(syscall.SIGHUP)
	baseCtx, abortRequests := context.WithCancel(context.Background())
	defer abortRequests()
	lim := newLimits(app.handler, cfg.Server.MaxConcurrentRequests, cfg.Server.BodyReadTimeout,
		cfg.Server.BodyWriteTimeout, app.metrics, log)
	srv := &http.Server{
		Handler:           lim,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		// The gateway refuses headers over the configured size with an S3 error; the server's
		// own cut-off (a bare 431) is twice that, to bound memory.
		MaxHeaderBytes: 2 * cfg.Server.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return baseCtx },
	}
	scheme := "http"
	if cfg.TLS.CertFile != "" {
		certs, err := newCertReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			_ = ln.Close()
			if opsLn != nil {
				_ = opsLn.Close()
			}
			return err
		}
		stopReload := certs.reloadOnSIGHUP(log)
		defer stopReload()
		ln = tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get})
		scheme = "https"
	}
	if app.audit != nil {
		defer reopenAuditOnSIGHUP(app.audit, log)()
	}
	endpoint := scheme + "://" + ln.Addr().String()
	log.Info("gateway listening", "endpoint", endpoint, "mode", cfg.Mode, "backend", app.backendName,
		"key_provider", cfg.Keys.Provider, "key_id", app.keyID)
	errc := make(chan error, 2)
	var ops *http.Server
	if opsLn != nil {
		ops = &http.Server{
			Handler:           opsHandler(metrics.Handler(app.metrics, app.health)),
			ReadHeaderTimeout: 10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       cfg.Server.IdleTimeout,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		log.Info("metrics listening", "endpoint", "http://"+opsLn.Addr().String(), "paths", "/metrics /healthz /readyz")
		go func() { errc <- fmt.Errorf("metrics listener: %w", ops.Serve(opsLn)) }()
	}
	if app.embeddedCred != nil {
		printEmbeddedHelp(stdout, endpoint, cfg, app.embeddedCred)
	}
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return shutdown(srv, ops, lim, abortRequests, cfg.Server.ShutdownTimeout, log)
}

// handlerGrace is how long aborted handlers get to return after their connections were closed.
const handlerGrace = 10 * time.Second

// shutdown stops srv gracefully within timeout, then aborts what is left.
func shutdown(srv, ops *http.Server, lim *limits, abortRequests context.CancelFunc, timeout time.Duration, log *slog.Logger) error {
	log.Info("shutting down: no new connections; waiting for in-flight requests", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if ops != nil {
		_ = ops.Close()
	}
	if err == nil {
		log.Info("shutdown complete")
		return nil
	}
	log.Warn("shutdown deadline passed: aborting the requests still in flight", "timeout", timeout)
	abortRequests()
	_ = srv.Close()
	if !lim.wait(handlerGrace) {
		return fmt.Errorf("shutdown: handlers still running %v after aborting them", handlerGrace)
	}
	log.Info("shutdown complete; in-flight requests were aborted")
	return nil
}

// printEmbeddedHelp prints, once, the lines that point aws-cli at the embedded gateway.
func printEmbeddedHelp(w io.Writer, endpoint string, cfg *config.Config, c *config.Credential) {
	fmt.Fprintf(w, `
s3seal is running in embedded mode: objects are encrypted with the local key file
  %s
and stored under
  %s

Point aws-cli at it by pasting:

export AWS_ACCESS_KEY_ID=%s
export AWS_SECRET_ACCESS_KEY=%s
export AWS_DEFAULT_REGION=%s
aws --endpoint-url %s s3 ls

`, cfg.Keys.Local.File, cfg.DataDir, c.AccessKeyID, c.SecretAccessKey, cfg.Region, endpoint)
}
