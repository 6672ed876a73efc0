// Package audit writes the key-use audit trail: one JSON object per line for every use of a data
// key on an object (write, read, copy, rewrap), as KMS users expect from CloudTrail, in a stream
// of its own (a file, stdout or stderr) that operators ship like any log.
//
// A record names the key and the data key (by the SHA-256 of its wrapped form) but never
// carries key bytes: the Record type has no field that could hold them. encoding/json does the
// encoding (it escapes control characters, so one record is always one line); what is written
// here is only the file handling: appending with one write per record so concurrent records
// never interleave, and reopening on request so logrotate can move the file away.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Record is one use of a data key on an object.
type Record struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	Action    string    `json:"action"`     // write, read, copy, rewrap
	AccessKey string    `json:"access_key"` // the client credential's access key id
	Bucket    string    `json:"bucket"`
	Object    string    `json:"object"`
	KeyID     string    `json:"key_id"` // KMS key ARN/id or local key name
	// WrappedKeySHA256 is the hex SHA-256 of the wrapped data key: it identifies the data key
	// (and the KMS call that made it) without revealing anything about it.
	WrappedKeySHA256 string `json:"wrapped_key_sha256"`
}

// Writer appends records to a stream. It is safe for concurrent use.
type Writer struct {
	mu   sync.Mutex
	w    io.Writer
	f    *os.File // set when the stream is a file Writer opened (and may reopen)
	path string
}

// Destinations other than a file path.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Open returns a Writer for dest: a file path (created with mode 0600 if missing, appended to),
// Stdout or Stderr.
func Open(dest string) (*Writer, error) {
	switch dest {
	case "":
		return nil, errors.New("audit: no destination")
	case Stdout:
		return New(os.Stdout), nil
	case Stderr:
		return New(os.Stderr), nil
	}
	f, err := openFile(dest)
	if err != nil {
		return nil, err
	}
	return &Writer{w: f, f: f, path: dest}, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return f, nil
}

// New returns a Writer on w.
func New(w io.Writer) *Writer { return &Writer{w: w} }

// Write appends r as one JSON line, in one write.
func (w *Writer) Write(r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	line = append(line, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.w.Write(line); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Reopen closes and reopens the file (after logrotate renamed it); for stdout/stderr it does
// nothing. On failure the old file stays in use.
func (w *Writer) Reopen() error {
	if w.path == "" {
		return nil
	}
	f, err := openFile(w.path)
	if err != nil {
		return err
	}
	w.mu.Lock()
	old := w.f
	w.w, w.f = f, f
	w.mu.Unlock()
	return old.Close()
}

// Close closes the file (not stdout/stderr).
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	w.w = io.Discard
	return err
}
