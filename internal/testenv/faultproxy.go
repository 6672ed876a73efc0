package testenv

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FaultProxy is a TCP proxy on a loopback port in front of a service (MinIO, moto_server, a
// Hostile proxy) that injects transport faults, for tests of what the gateway does when the
// network or the service misbehaves below HTTP (Hostile works at the HTTP level):
//
//   - Down: every open connection is reset (RST) and every new one is accepted and reset at
//     once, until Up: an outage as the client sees it;
//   - ResetAll: reset every open connection once;
//   - CutUp(n) / CutDown(n): reset the connection that carries the n-th byte from now on, from
//     the client to the service (a body cut mid-upload) or back (mid-download), once;
//   - SetDelay(d): hold back each response d: the first bytes from the service after bytes
//     from the client on a connection wait d before they are passed on (a slow service).
//
// Bytes are otherwise passed on unchanged, so signatures stay valid (the Host header is the
// proxy's address, as the client signed it). It is stopped at the end of the test.
type FaultProxy struct {
	Addr string // 127.0.0.1:PORT
	URL  string // http://Addr

	upstream string
	ln       net.Listener

	mu      sync.Mutex
	down    bool
	delay   time.Duration
	cutUp   int64 // bytes client->service still allowed before a reset; <0: no cut
	cutDown int64 // the same, service->client
	conns   map[*faultConn]struct{}

	accepted atomic.Int64 // connections accepted, including those reset at once
	resets   atomic.Int64 // connections reset by a fault
	wg       sync.WaitGroup
}

// faultConn is one proxied connection: the client's and the service's side.
type faultConn struct {
	client, service net.Conn
	turn            atomic.Bool // the client sent bytes since the last response bytes
	once            sync.Once
}

// NewFaultProxy starts a FaultProxy in front of upstream ("127.0.0.1:PORT" or a URL such as
// "http://127.0.0.1:PORT"), passing everything through until a fault is set.
func NewFaultProxy(t testing.TB, upstream string) *FaultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: FaultProxy: %v", err)
	}
	p := &FaultProxy{
		Addr: ln.Addr().String(), upstream: hostPort(upstream), ln: ln,
		cutUp: -1, cutDown: -1, conns: map[*faultConn]struct{}{},
	}
	p.URL = "http://" + p.Addr
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// hostPort strips a scheme and path from a URL, leaving host:port.
func hostPort(s string) string {
	for _, scheme := range []string{"http://", "https://"} {
		if len(s) > len(scheme) && s[:len(scheme)] == scheme {
			s = s[len(scheme):]
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i]
		}
	}
	return s
}

// Down starts an outage: open connections are reset now, and new ones as soon as they are
// accepted, until Up.
func (p *FaultProxy) Down() {
	p.mu.Lock()
	p.down = true
	p.mu.Unlock()
	p.ResetAll()
}

// Up ends an outage: connections are passed on again.
func (p *FaultProxy) Up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// ResetAll resets every open connection (both sides, with RST).
func (p *FaultProxy) ResetAll() {
	p.mu.Lock()
	conns := make([]*faultConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		p.reset(c)
	}
}

// CutUp resets the connection that carries the n-th byte sent from now on by any client to
// the service (n >= 1); the bytes before it are passed on. One cut; a later call replaces it.
func (p *FaultProxy) CutUp(n int64) {
	p.mu.Lock()
	p.cutUp = n
	p.mu.Unlock()
}

// CutDown is CutUp for the bytes from the service to the clients.
func (p *FaultProxy) CutDown(n int64) {
	p.mu.Lock()
	p.cutDown = n
	p.mu.Unlock()
}

// SetDelay makes every later response wait d before its first byte is passed on (0: none).
func (p *FaultProxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Accepted is the number of connections accepted so far (including those reset at once).
func (p *FaultProxy) Accepted() int64 { return p.accepted.Load() }

// Resets is the number of connections reset by a fault so far.
func (p *FaultProxy) Resets() int64 { return p.resets.Load() }

func (p *FaultProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.accepted.Add(1)
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			p.resets.Add(1)
			abort(c)
			continue
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

func (p *FaultProxy) handle(client net.Conn) {
	defer p.wg.Done()
	service, err := net.DialTimeout("tcp", p.upstream, 10*time.Second)
	if err != nil {
		abort(client)
		return
	}
	c := &faultConn{client: client, service: service}
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); p.pump(c, true) }()
	go func() { defer pumps.Done(); p.pump(c, false) }()
	pumps.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.client.Close()
	c.service.Close()
}

// pump copies one direction of c: client to service when up, else service to client. At the
// end of its source it half-closes the destination, so the other direction can finish.
func (p *FaultProxy) pump(c *faultConn, up bool) {
	src, dst := c.service, c.client
	if up {
		src, dst = c.client, c.service
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if up {
				c.turn.Store(true)
			} else if c.turn.Swap(false) {
				p.mu.Lock()
				d := p.delay
				p.mu.Unlock()
				if d > 0 {
					time.Sleep(d)
				}
			}
			keep, cut := p.budget(up, n)
			if keep > 0 {
				if _, werr := dst.Write(buf[:keep]); werr != nil {
					p.reset(c)
					return
				}
			}
			if cut {
				p.resets.Add(1)
				p.reset(c)
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			p.reset(c)
			return
		}
	}
}

// budget takes n bytes of one direction from its cut budget: it returns how many to pass on
// and whether the connection is to be reset after them.
func (p *FaultProxy) budget(up bool, n int) (keep int, cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	left := &p.cutDown
	if up {
		left = &p.cutUp
	}
	if *left < 0 {
		return n, false
	}
	if int64(n) < *left {
		*left -= int64(n)
		return n, false
	}
	keep = int(*left - 1)
	*left = -1
	return keep, true
}

// reset closes both sides of c with RST (once).
func (p *FaultProxy) reset(c *faultConn) {
	c.once.Do(func() {
		abort(c.client)
		abort(c.service)
	})
}

// abort closes a TCP connection with RST instead of FIN.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *FaultProxy) close() {
	_ = p.ln.Close()
	p.ResetAll()
	p.wg.Wait()
}
