package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// certReloader serves the listener's certificate and replaces it when the files change and
// the process gets SIGHUP (certificate rotation without a restart).
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) load() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	r.cert.Store(&c)
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// reloadOnSIGHUP reloads the certificate on every SIGHUP until the returned stop is called. A
// failed reload keeps the previous certificate.
func (r *certReloader) reloadOnSIGHUP(log *slog.Logger) (stop func()) {
	return onSIGHUP(func() {
		if err := r.load(); err != nil {
			log.Error("certificate reload failed; keeping the previous certificate", "err", err)
		} else {
			log.Info("certificate reloaded", "file", r.certFile)
		}
	})
}

// onSIGHUP calls f on every SIGHUP until the returned stop is called.
func onSIGHUP(f func()) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				f()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
