package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// Config configures a [Server].
type Config struct {
	// Domain is the cluster domain (default "cluster.local").
	Domain string
	// TTL of the answers in seconds (default 5).
	TTL uint32
	// Upstreams are "host:port" resolvers for names outside the cluster
	// domain (and reverse names of addresses that are not the cluster's),
	// tried in order; a query is forwarded over the transport it arrived
	// on. Empty (the default) turns forwarding off: such names are answered
	// with REFUSED (reverse names with NXDOMAIN).
	Upstreams []string
	// ForwardTimeout bounds each attempt at an upstream (default 2s).
	ForwardTimeout time.Duration
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
}

// Server answers DNS queries for the cluster domain from a [Catalog].
type Server struct {
	cfg  Config
	zone string // "cluster.local."
	cat  *Catalog
	log  *slog.Logger

	mu      sync.Mutex
	servers []*mdns.Server
}

// NewServer returns a server answering from cat.
func NewServer(cfg Config, cat *Catalog) *Server {
	if cfg.Domain == "" {
		cfg.Domain = "cluster.local"
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ForwardTimeout <= 0 {
		cfg.ForwardTimeout = 2 * time.Second
	}
	return &Server{cfg: cfg, zone: mdns.Fqdn(strings.ToLower(cfg.Domain)), cat: cat, log: cfg.Logger}
}

// Start serves DNS over UDP and TCP on addr ("127.0.0.1:0" picks a free
// port, the same for both). It returns the bound address; [Server.Close]
// stops serving.
func (s *Server) Start(addr string) (netip.AddrPort, error) {
	pc, ln, err := listenPair(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	bound := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	udp := &mdns.Server{PacketConn: pc, Handler: s}
	tcp := &mdns.Server{Listener: ln, Handler: s}
	s.mu.Lock()
	s.servers = append(s.servers, udp, tcp)
	s.mu.Unlock()
	for _, srv := range []*mdns.Server{udp, tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				s.log.Error("dns server stopped", "err", err)
			}
		}()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			s.Close()
			return netip.AddrPort{}, errors.New("dns: server did not start")
		}
	}
	return bound, nil
}

// listenPair listens on addr for UDP and then for TCP on the same port.
// When addr leaves the port to the kernel (port 0), the UDP port it picks
// may be taken for TCP by another process; then another port is tried.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns: %w", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || !errors.Is(err, syscall.EADDRINUSE) || attempt == 9 {
			return nil, nil, fmt.Errorf("dns: %w", err)
		}
	}
}

// Close stops all listeners.
func (s *Server) Close() error {
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// maxUDPSize is the largest UDP answer the server sends, whatever a
// client's EDNS0 buffer size says (the DNS flag day 2020 figure).
const maxUDPSize = 1232

// ServeDNS implements [mdns.Handler]. Answers over UDP that do not fit the
// client's buffer (512 bytes, or its EDNS0 size up to 1232) are truncated
// with the TC bit set, so the client asks again over TCP.
func (s *Server) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	tcp := w.RemoteAddr() != nil && w.RemoteAddr().Network() == "tcp"
	resp := s.answer(context.Background(), req, tcp)
	if !tcp {
		size := mdns.MinMsgSize
		if o := req.IsEdns0(); o != nil {
			size = min(max(int(o.UDPSize()), mdns.MinMsgSize), maxUDPSize)
		}
		resp.Truncate(size)
	}
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debug("dns write", "err", err)
	}
}

// Answer computes the response to a query as if it arrived over UDP
// (forwarded over UDP), without truncation.
func (s *Server) Answer(ctx context.Context, req *mdns.Msg) *mdns.Msg {
	return s.answer(ctx, req, false)
}

func (s *Server) answer(ctx context.Context, req *mdns.Msg, tcp bool) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Compress = true
	if req.Opcode != mdns.OpcodeQuery || len(req.Question) != 1 {
		m.Rcode = mdns.RcodeNotImplemented
		if req.Opcode == mdns.OpcodeQuery {
			m.Rcode = mdns.RcodeFormatError
		}
		return m
	}
	if o := req.IsEdns0(); o != nil {
		m.SetEdns0(maxUDPSize, o.Do())
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if zone, ok := isReverse(name); ok && q.Qclass == mdns.ClassINET {
		ans, found := s.reverse(name, q.Qtype)
		if !found && len(s.cfg.Upstreams) > 0 {
			return s.forward(ctx, req, tcp)
		}
		m.Authoritative = true
		m.Answer = ans
		if !found {
			m.Rcode = mdns.RcodeNameError
		}
		if len(ans) == 0 {
			m.Ns = []mdns.RR{s.soaFor(zone)}
		}
		return m
	}
	if q.Qclass != mdns.ClassINET || !mdns.IsSubDomain(s.zone, name) {
		if len(s.cfg.Upstreams) > 0 {
			return s.forward(ctx, req, tcp)
		}
		m.Rcode = mdns.RcodeRefused
		return m
	}
	m.Authoritative = true
	ans, extra, rcode := s.resolve(name, q.Qtype)
	m.Rcode = rcode
	m.Answer = ans
	m.Extra = append(m.Extra, extra...)
	if len(ans) == 0 {
		m.Ns = []mdns.RR{s.soa()}
	}
	return m
}

// forward asks the upstreams in turn, over TCP when the query came over
// TCP; a truncated UDP answer is passed on as it is (the client then asks
// again over TCP, which is forwarded over TCP). SERVFAIL when no upstream
// answers.
func (s *Server) forward(ctx context.Context, req *mdns.Msg, tcp bool) *mdns.Msg {
	c := &mdns.Client{Net: "udp", Timeout: s.cfg.ForwardTimeout}
	if tcp {
		c.Net = "tcp"
	} else if o := req.IsEdns0(); o != nil {
		c.UDPSize = o.UDPSize()
	}
	for _, up := range s.cfg.Upstreams {
		resp, _, err := c.ExchangeContext(ctx, req, up)
		if err == nil {
			resp.Id = req.Id
			return resp
		}
		s.log.Debug("dns forward failed", "upstream", up, "net", c.Net, "err", err)
	}
	m := new(mdns.Msg)
	m.SetRcode(req, mdns.RcodeServerFailure)
	return m
}

func (s *Server) soa() mdns.RR { return s.soaFor(s.zone) }

// soaFor returns the SOA record of zone (the cluster domain or a reverse
// zone), for negative answers.
func (s *Server) soaFor(zone string) mdns.RR {
	return &mdns.SOA{
		Hdr:     mdns.RR_Header{Name: zone, Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: s.cfg.TTL},
		Ns:      "ns.dns." + s.zone,
		Mbox:    "hostmaster." + s.zone,
		Serial:  1,
		Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: s.cfg.TTL,
	}
}

func (s *Server) hdr(name string, t uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: t, Class: mdns.ClassINET, Ttl: s.cfg.TTL}
}

// addrRR returns an A or AAAA record for ip if it matches qtype.
func (s *Server) addrRR(name string, qtype uint16, ip netip.Addr) mdns.RR {
	switch {
	case ip.Is4() && (qtype == mdns.TypeA || qtype == mdns.TypeANY):
		return &mdns.A{Hdr: s.hdr(name, mdns.TypeA), A: ip.AsSlice()}
	case ip.Is6() && (qtype == mdns.TypeAAAA || qtype == mdns.TypeANY):
		return &mdns.AAAA{Hdr: s.hdr(name, mdns.TypeAAAA), AAAA: ip.AsSlice()}
	}
	return nil
}

func isHeadless(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == corev1.ClusterIPNone
}

// endpointName is the DNS label of a headless endpoint: its hostname, or its
// address with dashes.
func endpointName(e endpoint) string {
	if e.hostname != "" {
		return e.hostname
	}
	return strings.NewReplacer(".", "-", ":", "-").Replace(e.addr.String())
}

// resolve answers a question inside the cluster domain. name is lower case
// and fully qualified.
func (s *Server) resolve(name string, qtype uint16) (ans, extra []mdns.RR, rcode int) {
	rel := strings.TrimSuffix(strings.TrimSuffix(name, s.zone), ".")
	var labels []string
	if rel != "" {
		labels = strings.Split(rel, ".")
	}
	n := len(labels)
	// The zone itself and "svc"/"pod": empty non-terminals.
	if n == 0 || (n == 1 && (labels[0] == "svc" || labels[0] == "pod")) {
		return nil, nil, mdns.RcodeSuccess
	}
	switch labels[n-1] {
	case "svc":
	case "pod":
		if n == 3 {
			// <a-b-c-d>.<ns>.pod.<zone>
			ip, err := netip.ParseAddr(strings.ReplaceAll(labels[0], "-", "."))
			if err != nil || !ip.Is4() {
				ip, err = netip.ParseAddr(strings.ReplaceAll(labels[0], "-", ":"))
			}
			if err == nil {
				if rr := s.addrRR(name, qtype, ip); rr != nil {
					return []mdns.RR{rr}, nil, mdns.RcodeSuccess
				}
				return nil, nil, mdns.RcodeSuccess
			}
		}
		if n == 2 {
			return nil, nil, mdns.RcodeSuccess
		}
		return nil, nil, mdns.RcodeNameError
	default:
		return nil, nil, mdns.RcodeNameError
	}
	c := s.cat
	c.mu.RLock()
	defer c.mu.RUnlock()
	if n == 2 { // <ns>.svc
		if c.nsCount[labels[0]] > 0 {
			return nil, nil, mdns.RcodeSuccess
		}
		return nil, nil, mdns.RcodeNameError
	}
	ns, svcName := labels[n-2], labels[n-3]
	svc := c.services[nsName{ns, svcName}]
	if svc == nil {
		return nil, nil, mdns.RcodeNameError
	}
	svcFQDN := svcName + "." + ns + ".svc." + s.zone
	switch n {
	case 3: // <svc>.<ns>.svc
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			target := mdns.Fqdn(svc.Spec.ExternalName)
			return []mdns.RR{&mdns.CNAME{Hdr: s.hdr(name, mdns.TypeCNAME), Target: target}}, nil, mdns.RcodeSuccess
		}
		if qtype == mdns.TypeSRV {
			srvs := s.srvAll(c, svc, svcFQDN, "", "")
			for _, rr := range srvs {
				rr.Header().Name = name
			}
			return srvs, nil, mdns.RcodeSuccess
		}
		return s.serviceAddrs(c, svc, name, qtype), nil, mdns.RcodeSuccess
	case 4: // <hostname>.<svc>.<ns>.svc or the empty non-terminal _<proto>.<svc>...
		if strings.HasPrefix(labels[0], "_") {
			return nil, nil, mdns.RcodeSuccess
		}
		if !isHeadless(svc) {
			return nil, nil, mdns.RcodeNameError
		}
		ips := s.hostAddrs(c, ns, svcName, labels[0])
		if len(ips) == 0 {
			return nil, nil, mdns.RcodeNameError
		}
		for _, ip := range ips {
			if rr := s.addrRR(name, qtype, ip); rr != nil {
				ans = append(ans, rr)
			}
		}
		return ans, nil, mdns.RcodeSuccess
	case 5: // _<port>._<proto>.<svc>.<ns>.svc
		if !strings.HasPrefix(labels[0], "_") || !strings.HasPrefix(labels[1], "_") {
			return nil, nil, mdns.RcodeNameError
		}
		srvs := s.srvAll(c, svc, svcFQDN, labels[0][1:], labels[1][1:])
		if len(srvs) == 0 {
			return nil, nil, mdns.RcodeNameError
		}
		if qtype != mdns.TypeSRV && qtype != mdns.TypeANY {
			return nil, nil, mdns.RcodeSuccess
		}
		for _, rr := range srvs {
			rr.Header().Name = name
			ans = append(ans, rr)
			target := rr.(*mdns.SRV).Target
			extra = append(extra, s.targetAddrs(c, svc, ns, svcName, svcFQDN, target)...)
		}
		return ans, extra, mdns.RcodeSuccess
	}
	return nil, nil, mdns.RcodeNameError
}

// serviceAddrs returns the ClusterIPs of a service, or the ready endpoint
// addresses of a headless one.
func (s *Server) serviceAddrs(c *Catalog, svc *corev1.Service, name string, qtype uint16) []mdns.RR {
	var out []mdns.RR
	if isHeadless(svc) {
		seen := map[netip.Addr]bool{}
		for _, e := range c.readyEndpoints(svc.Namespace, svc.Name) {
			if seen[e.addr] {
				continue
			}
			seen[e.addr] = true
			if rr := s.addrRR(name, qtype, e.addr); rr != nil {
				out = append(out, rr)
			}
		}
		return out
	}
	ips := append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...)
	seen := map[netip.Addr]bool{}
	for _, a := range ips {
		ip, err := netip.ParseAddr(a)
		if err != nil || seen[ip] {
			continue
		}
		seen[ip] = true
		if rr := s.addrRR(name, qtype, ip.Unmap()); rr != nil {
			out = append(out, rr)
		}
	}
	return out
}

// hostAddrs finds the addresses named <host>.<svc>: endpoints with that
// hostname (or dashed address) and pods with that hostname and subdomain.
func (s *Server) hostAddrs(c *Catalog, ns, svc, host string) []netip.Addr {
	var out []netip.Addr
	for _, e := range c.readyEndpoints(ns, svc) {
		if endpointName(e) == host {
			out = append(out, e.addr)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, p := range c.pods {
		if p.Namespace != ns || strings.ToLower(p.Spec.Hostname) != host || strings.ToLower(p.Spec.Subdomain) != svc {
			continue
		}
		for _, ip := range p.Status.PodIPs {
			if a, err := netip.ParseAddr(ip.IP); err == nil {
				out = append(out, a)
			}
		}
		if len(p.Status.PodIPs) == 0 {
			if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
				out = append(out, a)
			}
		}
	}
	return out
}

// srvAll returns SRV records for the named ports of svc matching port and
// proto (lower case, "" matches all).
func (s *Server) srvAll(c *Catalog, svc *corev1.Service, svcFQDN, port, proto string) []mdns.RR {
	var out []mdns.RR
	for _, sp := range svc.Spec.Ports {
		if sp.Name == "" {
			continue
		}
		p := strings.ToLower(string(sp.Protocol))
		if p == "" {
			p = "tcp"
		}
		if (port != "" && strings.ToLower(sp.Name) != port) || (proto != "" && p != proto) {
			continue
		}
		owner := "_" + strings.ToLower(sp.Name) + "._" + p + "." + svcFQDN
		if !isHeadless(svc) {
			out = append(out, &mdns.SRV{Hdr: s.hdr(owner, mdns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(sp.Port), Target: svcFQDN})
			continue
		}
		for _, e := range c.readyEndpoints(svc.Namespace, svc.Name) {
			for _, ep := range e.ports {
				if ep.Name == nil || *ep.Name != sp.Name || ep.Port == nil {
					continue
				}
				out = append(out, &mdns.SRV{Hdr: s.hdr(owner, mdns.TypeSRV), Priority: 0, Weight: 100,
					Port: uint16(*ep.Port), Target: endpointName(e) + "." + svcFQDN})
			}
		}
	}
	return out
}

// targetAddrs returns the address records for an SRV target, for the
// additional section.
func (s *Server) targetAddrs(c *Catalog, svc *corev1.Service, ns, svcName, svcFQDN, target string) []mdns.RR {
	var out []mdns.RR
	if target == svcFQDN {
		out = append(out, s.serviceAddrs(c, svc, target, mdns.TypeA)...)
		return append(out, s.serviceAddrs(c, svc, target, mdns.TypeAAAA)...)
	}
	host := strings.TrimSuffix(target, "."+svcFQDN)
	for _, ip := range s.hostAddrs(c, ns, svcName, host) {
		out = append(out, s.addrRR(target, mdns.TypeANY, ip))
	}
	return out
}
