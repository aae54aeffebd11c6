package userspace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/tugboatdev/tugboat/netproxy/dataplane"
)

// Config configures [New].
type Config struct {
	// Logger receives errors and progress; nil discards them.
	Logger *slog.Logger
	// DialTimeout bounds the connection to a backend (default 2s).
	DialTimeout time.Duration
	// UDPIdleTimeout ends a UDP session without traffic (default 30s).
	UDPIdleTimeout time.Duration
}

// Proxy is the userspace data plane. It implements [dataplane.Programmer] and
// is safe for concurrent use.
type Proxy struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	fronts map[dataplane.Frontend]*frontend
	closed bool
}

// New returns an empty proxy.
func New(cfg Config) *Proxy {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.UDPIdleTimeout <= 0 {
		cfg.UDPIdleTimeout = 30 * time.Second
	}
	return &Proxy{cfg: cfg, log: cfg.Logger, fronts: map[dataplane.Frontend]*frontend{}}
}

// Mode returns "userspace".
func (p *Proxy) Mode() string { return "userspace" }

// Programmed lists the installed frontends.
func (p *Proxy) Programmed() []dataplane.Frontend {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]dataplane.Frontend, 0, len(p.fronts))
	for fe := range p.fronts {
		out = append(out, fe)
	}
	slices.SortFunc(out, dataplane.Frontend.Compare)
	return out
}

// frontend is one service address with its socket (when it has ready
// backends) and its selection state.
type frontend struct {
	p  *Proxy
	fe dataplane.Frontend

	mu       sync.Mutex
	ready    []netip.AddrPort
	affinity time.Duration
	sticky   map[netip.Addr]stickyEntry
	ln       net.Listener
	pc       *net.UDPConn
	sessions map[netip.AddrPort]*udpSession
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

type stickyEntry struct {
	backend netip.AddrPort
	last    time.Time
}

// Upsert installs or updates a frontend. Its socket is opened when it gains a
// ready backend and closed when it has none. Open TCP connections are kept
// when their backend leaves (as with the eBPF data plane); UDP sessions to a
// backend that is no longer ready are ended.
func (p *Proxy) Upsert(_ context.Context, svc dataplane.Service) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errors.New("userspace: proxy closed")
	}
	f := p.fronts[svc.Frontend]
	if f == nil {
		f = &frontend{p: p, fe: svc.Frontend, sticky: map[netip.Addr]stickyEntry{}, sessions: map[netip.AddrPort]*udpSession{}, conns: map[net.Conn]bool{}}
		p.fronts[svc.Frontend] = f
	}
	p.mu.Unlock()

	var ready []netip.AddrPort
	for _, b := range svc.Ready() {
		ready = append(ready, b.AddrPort())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = ready
	f.affinity = svc.AffinityTimeout
	for c, e := range f.sticky {
		if !slices.Contains(ready, e.backend) {
			delete(f.sticky, c)
		}
	}
	for c, s := range f.sessions {
		if !slices.Contains(ready, s.backend) {
			s.conn.Close()
			delete(f.sessions, c)
		}
	}
	if len(ready) == 0 {
		f.closeSocketLocked()
		return nil
	}
	return f.openSocketLocked()
}

// Delete removes a frontend: its socket is closed, open TCP connections stay.
func (p *Proxy) Delete(_ context.Context, fe dataplane.Frontend) error {
	p.mu.Lock()
	f := p.fronts[fe]
	delete(p.fronts, fe)
	p.mu.Unlock()
	if f == nil {
		return nil
	}
	f.mu.Lock()
	f.closeSocketLocked()
	for c, s := range f.sessions {
		s.conn.Close()
		delete(f.sessions, c)
	}
	f.mu.Unlock()
	return nil
}

// Close removes every frontend and ends all proxied connections.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	fronts := p.fronts
	p.fronts = map[dataplane.Frontend]*frontend{}
	p.mu.Unlock()
	for _, f := range fronts {
		f.mu.Lock()
		f.closeSocketLocked()
		for c, s := range f.sessions {
			s.conn.Close()
			delete(f.sessions, c)
		}
		for c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	}
	return nil
}

func (f *frontend) openSocketLocked() error {
	addr := netip.AddrPortFrom(f.fe.Addr, f.fe.Port)
	switch f.fe.Proto {
	case dataplane.TCP:
		if f.ln != nil {
			return nil
		}
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
		if err != nil {
			return fmt.Errorf("userspace: listen %s: %w", f.fe, err)
		}
		f.ln = ln
		f.wg.Add(1)
		go f.acceptLoop(ln)
	case dataplane.UDP:
		if f.pc != nil {
			return nil
		}
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return fmt.Errorf("userspace: listen %s: %w", f.fe, err)
		}
		f.pc = pc
		f.wg.Add(1)
		go f.udpLoop(pc)
	default:
		return fmt.Errorf("userspace: protocol %s not supported", f.fe.Proto)
	}
	return nil
}

func (f *frontend) closeSocketLocked() {
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
	if f.pc != nil {
		f.pc.Close()
		f.pc = nil
	}
}

// pick chooses a ready backend for client, honouring session affinity;
// exclude lists backends that already failed for this connection.
func (f *frontend) pick(client netip.Addr, exclude []netip.AddrPort) (netip.AddrPort, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if f.affinity > 0 {
		if e, ok := f.sticky[client]; ok && now.Sub(e.last) <= f.affinity && !slices.Contains(exclude, e.backend) {
			e.last = now
			f.sticky[client] = e
			return e.backend, true
		}
	}
	var cands []netip.AddrPort
	for _, b := range f.ready {
		if !slices.Contains(exclude, b) {
			cands = append(cands, b)
		}
	}
	if len(cands) == 0 {
		return netip.AddrPort{}, false
	}
	b := cands[rand.IntN(len(cands))]
	if f.affinity > 0 {
		f.sticky[client] = stickyEntry{backend: b, last: now}
	}
	return b, true
}

func (f *frontend) acceptLoop(ln net.Listener) {
	defer f.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns[c] = true
		f.mu.Unlock()
		f.wg.Add(1)
		go f.serveTCP(c)
	}
}

func (f *frontend) serveTCP(c net.Conn) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		c.Close()
	}()
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	var failed []netip.AddrPort
	var bc net.Conn
	for {
		b, ok := f.pick(client, failed)
		if !ok {
			f.p.log.Debug("no backend reachable", "frontend", f.fe, "failed", failed)
			return
		}
		var err error
		bc, err = net.DialTimeout("tcp", b.String(), f.p.cfg.DialTimeout)
		if err == nil {
			break
		}
		f.p.log.Debug("backend dial failed", "frontend", f.fe, "backend", b, "err", err)
		failed = append(failed, b)
	}
	f.mu.Lock()
	f.conns[bc] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, bc)
		f.mu.Unlock()
		bc.Close()
	}()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(bc, c)
	go pipe(c, bc)
	<-done
	<-done
}

type udpSession struct {
	backend netip.AddrPort
	conn    *net.UDPConn
}

func (f *frontend) udpLoop(pc *net.UDPConn) {
	defer f.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		f.mu.Lock()
		s := f.sessions[from]
		f.mu.Unlock()
		if s == nil {
			b, ok := f.pick(from.Addr(), nil)
			if !ok {
				continue
			}
			bc, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(b))
			if err != nil {
				f.p.log.Debug("udp backend dial failed", "frontend", f.fe, "backend", b, "err", err)
				continue
			}
			s = &udpSession{backend: b, conn: bc}
			f.mu.Lock()
			f.sessions[from] = s
			f.mu.Unlock()
			f.wg.Add(1)
			go f.udpReplies(pc, from, s)
		}
		_, _ = s.conn.Write(buf[:n])
	}
}

// udpReplies relays a backend's replies to the client from the frontend
// socket, so they come from the service address.
func (f *frontend) udpReplies(pc *net.UDPConn, client netip.AddrPort, s *udpSession) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		if f.sessions[client] == s {
			delete(f.sessions, client)
		}
		f.mu.Unlock()
		s.conn.Close()
	}()
	buf := make([]byte, 65535)
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(f.p.cfg.UDPIdleTimeout))
		n, err := s.conn.Read(buf)
		if err != nil {
			return
		}
		if _, err := pc.WriteToUDPAddrPort(buf[:n], client); err != nil {
			return
		}
	}
}
