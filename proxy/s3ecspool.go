package proxy

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// spoolArea is the bounded temporary area where S3 Encryption Client objects' ciphertext waits
// between verification and decryption (s3ec.Open). Space is reserved up front for a whole
// object and given back when its spoolFile is closed; the total of all reservations never
// exceeds max. Files are created 0600 and unlinked at once, so nothing is left behind after a
// crash; only ciphertext is ever written.
type spoolArea struct {
	dir string
	max int64

	mu   sync.Mutex
	used int64
}

// Reservation failures.
var (
	// errSpoolTooLarge: the object is larger than the whole area; retrying cannot help.
	errSpoolTooLarge = errors.New("s3ec spool: object larger than the spool")
	// errSpoolBusy: the area is in use by other requests now; a retry later may succeed.
	errSpoolBusy = errors.New("s3ec spool: no space free now")
)

// reserve returns an open, already unlinked file with room for n bytes.
func (a *spoolArea) reserve(n int64) (*spoolFile, error) {
	if n > a.max {
		return nil, fmt.Errorf("%w: %d bytes, spool of %d", errSpoolTooLarge, n, a.max)
	}
	a.mu.Lock()
	if a.used+n > a.max {
		a.mu.Unlock()
		return nil, errSpoolBusy
	}
	a.used += n
	a.mu.Unlock()
	f, err := os.CreateTemp(a.dir, "s3seal-s3ec-*") // mode 0600
	if err == nil {
		if err = os.Remove(f.Name()); err != nil {
			f.Close()
		}
	}
	if err != nil {
		a.release(n)
		return nil, fmt.Errorf("s3ec spool: %w", err)
	}
	return &spoolFile{area: a, f: f, size: n}, nil
}

func (a *spoolArea) release(n int64) {
	a.mu.Lock()
	a.used -= n
	a.mu.Unlock()
}

// inUse reports the bytes reserved now.
func (a *spoolArea) inUse() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used
}

// spoolFile is one object's reservation: written once, in order, up to its size, then read at
// any offset (an s3ec.Spool). Close gives the space back; it is safe to call more than once.
type spoolFile struct {
	area    *spoolArea
	f       *os.File
	size    int64
	written int64
	once    sync.Once
}

func (s *spoolFile) Write(p []byte) (int, error) {
	if int64(len(p)) > s.size-s.written {
		return 0, fmt.Errorf("s3ec spool: write beyond the %d bytes reserved", s.size)
	}
	n, err := s.f.Write(p)
	s.written += int64(n)
	return n, err
}

func (s *spoolFile) ReadAt(p []byte, off int64) (int, error) {
	return s.f.ReadAt(p, off)
}

// Close closes the (unlinked) file, which frees its disk space, and releases the reservation.
func (s *spoolFile) Close() error {
	var err error
	s.once.Do(func() {
		err = s.f.Close()
		s.area.release(s.size)
	})
	return err
}
