//go:build cgo

package keys

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// pkcs11PoolWait bounds the wait for a free session of the pool.
const pkcs11PoolWait = 10 * time.Second

// PKCS11 is a key provider whose key-encryption keys are non-extractable AES-256 keys in a
// PKCS#11 token (an HSM, or SoftHSM2 in the tests), used through
// github.com/ThalesGroup/crypto11, which pools the sessions and keeps the login. It is safe for
// concurrent use.
//
// The token is opened lazily and reopened after it went away; see the package documentation
// for the rules (retry interval, wrong PINs, error classes).
type PKCS11 struct {
	cfg   PKCS11Config // holds the PIN: never printed
	retry time.Duration

	changing sync.RWMutex // held exclusively while token objects are created or destroyed

	mu       sync.Mutex
	conn     *p11conn // nil when not connected
	lastTry  time.Time
	lastErr  error // why the last attempt to connect failed, or why the connection was dropped
	pinError error // a refused PIN: not tried again until the gateway restarts
	newest   map[string]int
	closed   bool
	attempts int // connection attempts (C_Login included), for the tests
}

// p11conn is one crypto11 context with a count of the calls using it, so that a dropped context
// is closed only once the last call is done with it.
type p11conn struct {
	ctx   *crypto11.Context
	probe *pkcs11.Ctx // the same library, for C_GetTokenInfo (see tokenGone)
	refs  int
	dead  bool
}

// close closes the crypto11 context (which finalises the library when it is the last one in the
// process), then drops the probe's reference to the library. The probe never initialises or
// finalises the library: it is used only while ctx is open.
func (c *p11conn) close() error {
	err := c.ctx.Close()
	c.probe.Destroy()
	return err
}

// OpenPKCS11 builds a PKCS#11 provider and tries once to open the token. Only a configuration
// error fails it (no module file, no token label, a module that does not load); a missing
// token or a wrong PIN does not, so that the gateway starts and answers S3 errors, as during a
// KMS outage. The PIN is used for C_Login only.
func OpenPKCS11(c PKCS11Config) (*PKCS11, error) {
	if c.Module == "" {
		return nil, errors.New("keys: pkcs11: no module (path of the PKCS#11 library) configured")
	}
	st, err := os.Stat(c.Module)
	if err != nil {
		return nil, fmt.Errorf("keys: pkcs11 module: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: pkcs11 module %s is not a regular file", c.Module)
	}
	if c.TokenLabel == "" {
		return nil, errors.New("keys: pkcs11: no token label configured")
	}
	if c.Key != "" {
		if err := validKeyName(c.Key); err != nil {
			return nil, fmt.Errorf("keys: pkcs11 key: %w", err)
		}
	}
	if c.Sessions < 0 {
		return nil, errors.New("keys: pkcs11 sessions must not be negative")
	}
	if c.Sessions == 0 {
		c.Sessions = DefaultPKCS11Sessions
	}
	p := &PKCS11{cfg: c, retry: DefaultPKCS11RetryInterval, newest: map[string]int{}}
	conn, err := p.acquire()
	if err != nil {
		if errors.Is(err, errPKCS11Module) {
			return nil, err
		}
		return p, nil // a token error: reported by every call until the token is back
	}
	p.release(conn, nil)
	return p, nil
}

// errPKCS11Module marks a PKCS#11 library that does not load or initialise.
var errPKCS11Module = errors.New("keys: pkcs11 module does not load")

// acquire returns the connection to the token, connecting first if needed (at most once per
// p.retry). Callers pass the connection and the outcome of their call to release.
func (p *PKCS11) acquire() (*p11conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if p.conn != nil {
		p.conn.refs++
		return p.conn, nil
	}
	if p.pinError != nil {
		return nil, p.pinError
	}
	if !p.lastTry.IsZero() && time.Since(p.lastTry) < p.retry && p.lastErr != nil {
		return nil, p.lastErr
	}
	p.lastTry = time.Now()
	p.attempts++
	ctx, err := crypto11.Configure(&crypto11.Config{
		Path:            p.cfg.Module,
		TokenLabel:      p.cfg.TokenLabel,
		Pin:             p.cfg.PIN,
		MaxSessions:     p.cfg.Sessions + 1, // crypto11 keeps one more session logged in
		PoolWaitTimeout: pkcs11PoolWait,
	})
	if err != nil {
		e := p.connectError(err)
		p.lastErr = e
		if isPINError(err) {
			p.pinError = e
		}
		return nil, e
	}
	probe := pkcs11.New(p.cfg.Module)
	if probe == nil {
		_ = ctx.Close()
		p.lastErr = fmt.Errorf("keys: pkcs11 module %s: %w", p.cfg.Module, errPKCS11Module)
		return nil, p.lastErr
	}
	p.conn = &p11conn{ctx: ctx, probe: probe, refs: 1}
	p.lastErr = nil
	return p.conn, nil
}

// release ends a call's use of c. When the call's error says that the token went away or
// that the session or login was lost, the connection is dropped, so that a later call
// reconnects and finds a token that came back. The retry interval counts from the last
// connection attempt, so a connection that keeps being lost is not logged in again more often
// than that. A generic failure (CKR_GENERAL_ERROR, ...) drops it only when the token is gone.
func (p *PKCS11) release(c *p11conn, err error) {
	drop := err != nil && p.lostConnection(c, err)
	p.mu.Lock()
	c.refs--
	if drop && p.conn == c {
		p.conn = nil
		c.dead = true
		p.lastErr = err
	}
	closeNow := c.dead && c.refs == 0
	p.mu.Unlock()
	if closeNow {
		_ = c.close()
	}
}

// lostConnection reports whether err (of a call that used c) means that c is of no more use.
func (p *PKCS11) lostConnection(c *p11conn, err error) bool {
	switch pkcs11Code(err) {
	case "CKR_USER_NOT_LOGGED_IN", "CKR_DEVICE_REMOVED", "CKR_TOKEN_NOT_PRESENT", "CKR_TOKEN_NOT_RECOGNIZED",
		"CKR_SESSION_CLOSED", "CKR_SESSION_HANDLE_INVALID", "CKR_SLOT_ID_INVALID", "CKR_CRYPTOKI_NOT_INITIALIZED":
		return true
	}
	if !errors.Is(err, ErrUnavailable) {
		return false
	}
	return p.tokenGone(c) != nil
}

// Close closes the connection to the token (once the calls in progress are done). Later calls
// fail with ErrClosed.
func (p *PKCS11) Close() error {
	p.mu.Lock()
	p.closed = true
	c := p.conn
	p.conn = nil
	closeNow := false
	if c != nil {
		c.dead = true
		closeNow = c.refs == 0
	}
	p.mu.Unlock()
	if closeNow {
		return c.close()
	}
	return nil
}

// tokenGone reports, as an ErrUnavailable error, that the token is no longer in any slot, or
// nil when it still is. A token that went away can leave the library answering searches with
// nothing found (SoftHSM2 does so when its token directory is deleted); this check keeps that
// from being reported as ErrKeyNotFound, which would say the key was retired.
func (p *PKCS11) tokenGone(c *p11conn) error {
	slots, err := c.probe.GetSlotList(true)
	if err != nil {
		return pkcs11Error("list slots", "", err)
	}
	for _, s := range slots {
		ti, err := c.probe.GetTokenInfo(s)
		if err == nil && ti.Label == p.cfg.TokenLabel && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 {
			return nil
		}
	}
	return fmt.Errorf("keys: pkcs11 token %q is no longer present: %w", p.cfg.TokenLabel, ErrUnavailable)
}

// connectError classifies an error of crypto11.Configure.
func (p *PKCS11) connectError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "failed to open module") || strings.Contains(msg, "failed to initialize module"):
		return fmt.Errorf("keys: pkcs11 module %s: %w: %v", p.cfg.Module, errPKCS11Module, err)
	case strings.Contains(msg, "could not find PKCS#11 token"):
		return fmt.Errorf("keys: pkcs11 token %q not found: %w", p.cfg.TokenLabel, ErrUnavailable)
	case isPINError(err):
		return fmt.Errorf("keys: pkcs11 token %q refused the PIN (%s; not tried again until restart): %w",
			p.cfg.TokenLabel, pkcs11Code(err), ErrAccessDenied)
	}
	return pkcs11Error("open token "+p.cfg.TokenLabel, "", err)
}

// isPINError reports a C_Login refusal of the PIN itself, which retrying cannot fix and which
// brings a real token closer to locking itself.
func isPINError(err error) bool {
	switch pkcs11Code(err) {
	case "CKR_PIN_INCORRECT", "CKR_PIN_LEN_RANGE", "CKR_PIN_LOCKED", "CKR_PIN_EXPIRED", "CKR_PIN_INVALID":
		return true
	}
	return false
}

var ckrPattern = regexp.MustCompile(`CKR_[A-Z0-9_]+`)

// pkcs11Code is the CKR_ name of a PKCS#11 return value in err, or "". crypto11 keeps the
// pkcs11.Error in some chains and formats it into the message (with %v) in others, so the
// message is read when the chain has none.
func pkcs11Code(err error) string {
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		if m := ckrPattern.FindString(pe.Error()); m != "" {
			return m
		}
	}
	return ckrPattern.FindString(err.Error())
}

// classifyPKCS11 maps a PKCS#11 error onto a sentinel error, or nil.
func classifyPKCS11(err error) error {
	switch pkcs11Code(err) {
	case "CKR_DEVICE_REMOVED", "CKR_DEVICE_ERROR", "CKR_DEVICE_MEMORY", "CKR_TOKEN_NOT_PRESENT",
		"CKR_TOKEN_NOT_RECOGNIZED", "CKR_SESSION_CLOSED", "CKR_SESSION_HANDLE_INVALID",
		"CKR_SESSION_COUNT", "CKR_SLOT_ID_INVALID", "CKR_CRYPTOKI_NOT_INITIALIZED",
		"CKR_GENERAL_ERROR", "CKR_FUNCTION_FAILED", "CKR_HOST_MEMORY":
		return ErrUnavailable
	case "CKR_PIN_INCORRECT", "CKR_PIN_LEN_RANGE", "CKR_PIN_LOCKED", "CKR_PIN_EXPIRED",
		"CKR_PIN_INVALID", "CKR_USER_NOT_LOGGED_IN", "CKR_USER_PIN_NOT_INITIALIZED":
		return ErrAccessDenied
	case "CKR_OBJECT_HANDLE_INVALID", "CKR_KEY_HANDLE_INVALID":
		return ErrKeyNotFound
	case "CKR_KEY_FUNCTION_NOT_PERMITTED", "CKR_KEY_TYPE_INCONSISTENT":
		return ErrKeyDisabled
	case "CKR_ENCRYPTED_DATA_INVALID", "CKR_ENCRYPTED_DATA_LEN_RANGE":
		return ErrInvalidCiphertext
	case "":
		msg := err.Error()
		if strings.Contains(msg, "context is closed") || strings.Contains(msg, "context deadline exceeded") {
			return ErrUnavailable // a context dropped under the call, or no free session
		}
	}
	return nil
}

// pkcs11Error wraps err with its sentinel error, keeping crypto11's message (which carries no
// key bytes and no PIN) in the chain.
func pkcs11Error(op, keyID string, err error) error {
	where := "keys: pkcs11 " + op
	if keyID != "" {
		where += fmt.Sprintf(" key %q", keyID)
	}
	if s := classifyPKCS11(err); s != nil {
		return fmt.Errorf("%s: %w: %w", where, s, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}
