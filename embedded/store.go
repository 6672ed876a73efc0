package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	bolt "go.etcd.io/bbolt"
)

// Options configures Start.
type Options struct {
	Dir    string       // data dir; created 0700 if missing
	Logger *slog.Logger // gofakes3 log lines go here at Debug, never bodies
}

// Store is a running embedded S3 store.
type Store struct {
	dir       string
	sock      string
	srv       *http.Server
	transport *http.Transport
	lock      *os.File
	db        *bolt.DB
	served    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

const (
	endpointHost = "s3seal-embedded"
	// maxSockPath: sun_path holds 108 bytes on Linux, 104 on the BSDs, NUL included.
	maxSockPath = 103
)

// Start opens (or creates) the data dir, takes its lock, and serves the store on
// <dir>/run/s3.sock. Layout of the data dir:
//
//	lock          held (flock) while a Store runs on the dir
//	meta.db       bbolt: buckets, object records, multipart uploads in progress
//	bodies/<id>   object bodies and multipart parts, named by random id
//	tmp/          bodies being received; emptied at every Start
//	run/s3.sock   the socket (dir 0700, socket 0600)
//
// A data dir written by an earlier version (s3afero's objects/ tree) is migrated at Start;
// see migrate.go.
func Start(o Options) (*Store, error) {
	if o.Dir == "" {
		return nil, errors.New("embedded: Options.Dir is empty")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded: creating data dir: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, lock: lock, served: make(chan struct{})}
	if err := s.start(log); err != nil {
		_ = lock.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) start(log *slog.Logger) error {
	tmp := filepath.Join(s.dir, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("embedded: clearing %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	f := &files{bodies: filepath.Join(s.dir, "bodies"), tmp: tmp}
	if err := os.MkdirAll(f.bodies, 0o700); err != nil {
		return err
	}
	db, err := openDB(filepath.Join(s.dir, "meta.db"))
	if err != nil {
		return err
	}
	s.db = db
	be := &backend{db: db, files: f, log: log, now: time.Now}
	if err := migrate(be, filepath.Join(s.dir, "objects")); err != nil {
		_ = db.Close()
		return err
	}
	if err := sweep(db, f); err != nil {
		_ = db.Close()
		return fmt.Errorf("embedded: %w", err)
	}
	faker := gofakes3.New(be,
		gofakes3.WithLogger(slogLogger{log}),
		gofakes3.WithMetadataSizeLimit(maxAllMeta),
		gofakes3.WithTimeSkewLimit(0), // no authentication here, so nothing to protect from replay
	)

	l, err := s.listen()
	if err != nil {
		_ = db.Close()
		return err
	}
	s.srv = &http.Server{
		Handler:           &handler{next: faker.Server(), be: be},
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	sock := s.sock
	s.transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("embedded: store stopped serving", "err", err)
		}
	}()
	log.Debug("embedded: store started", "dir", s.dir, "socket", s.sock)
	return nil
}

// listen creates <dir>/run/s3.sock.
func (s *Store) listen() (net.Listener, error) {
	run := filepath.Join(s.dir, "run")
	if err := os.MkdirAll(run, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(run, 0o700); err != nil {
		return nil, err
	}
	s.sock = filepath.Join(run, "s3.sock")
	if len(s.sock) > maxSockPath {
		return nil, fmt.Errorf("embedded: socket path %s is longer than %d bytes; use a shorter data dir", s.sock, maxSockPath)
	}
	// A socket left by a process that died: ours to remove, we hold the lock.
	if err := os.Remove(s.sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", s.sock)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	if err := os.Chmod(s.sock, 0o600); err != nil {
		_ = l.Close()
		return nil, err
	}
	return l, nil
}

// Endpoint is the URL for path-style requests. The host name is never resolved: Transport
// dials the socket whatever the address.
func (s *Store) Endpoint() string { return "http://" + endpointHost }

// Transport returns the *http.Transport whose DialContext dials the unix socket.
func (s *Store) Transport() http.RoundTripper { return s.transport }

// SocketPath is the path of the unix socket the store listens on.
func (s *Store) SocketPath() string { return s.sock }

// Close stops serving (waiting up to 10 s for requests in flight), removes the socket and
// releases the data dir.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(err, s.srv.Close())
		}
		<-s.served
		s.transport.CloseIdleConnections()
		if rmErr := os.Remove(s.sock); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			err = errors.Join(err, rmErr)
		}
		_ = os.RemoveAll(filepath.Join(s.dir, "tmp"))
		s.closeErr = errors.Join(err, s.db.Close(), s.lock.Close())
	})
	return s.closeErr
}

// slogLogger adapts gofakes3's logger. gofakes3 logs operation names, bucket and key names
// and errors, never bodies.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Print(level gofakes3.LogLevel, v ...any) {
	if !s.l.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	s.l.Debug(strings.TrimSuffix(fmt.Sprintln(v...), "\n"), "component", "gofakes3", "gofakes3_level", string(level))
}
