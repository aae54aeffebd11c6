package dns

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// upstream is a miekg/dns test resolver on 127.0.0.1 (UDP and TCP on one
// port). It answers every A query with 192.0.2.80, "big." names with 100
// A records (truncated over UDP as a real server does), PTR queries with
// "upstream.example.", and records each query as "net name type".
type upstream struct {
	addr    string
	mu      sync.Mutex
	queries []string
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = pc.LocalAddr().String()
	ln, err := net.Listen("tcp", u.addr)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		q := req.Question[0]
		u.mu.Lock()
		u.queries = append(u.queries, w.RemoteAddr().Network()+" "+q.Name+" "+mdns.TypeToString[q.Qtype])
		u.mu.Unlock()
		m := new(mdns.Msg)
		m.SetReply(req)
		hdr := mdns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: mdns.ClassINET, Ttl: 30}
		switch {
		case q.Qtype == mdns.TypePTR:
			m.Answer = []mdns.RR{&mdns.PTR{Hdr: hdr, Ptr: "upstream.example."}}
		case q.Qtype == mdns.TypeA && strings.HasPrefix(q.Name, "big."):
			for i := range 100 {
				m.Answer = append(m.Answer, &mdns.A{Hdr: hdr, A: net.IPv4(192, 0, 2, byte(i+1))})
			}
		case q.Qtype == mdns.TypeA:
			m.Answer = []mdns.RR{&mdns.A{Hdr: hdr, A: net.IPv4(192, 0, 2, 80)}}
		}
		if w.RemoteAddr().Network() == "udp" {
			m.Truncate(mdns.MinMsgSize)
		}
		_ = w.WriteMsg(m)
	})
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return u
}

func (u *upstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := u.queries
	u.queries = nil
	return out
}

// deadAddr returns a loopback address where nothing listens (UDP or TCP).
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func startServer(t *testing.T, cfg Config, c *Catalog) string {
	t.Helper()
	srv := NewServer(cfg, c)
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return addr.String()
}

func ask(t *testing.T, network, addr, name string, qtype uint16, edns uint16) *mdns.Msg {
	t.Helper()
	q := new(mdns.Msg)
	q.SetQuestion(name, qtype)
	if edns != 0 {
		q.SetEdns0(edns, false)
	}
	c := &mdns.Client{Net: network, Timeout: 10 * time.Second, UDPSize: max(edns, mdns.MinMsgSize)}
	r, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", network, name, err)
	}
	return r
}

// TestForwardingToUpstreams: names outside the cluster domain, and reverse
// names of addresses that are not the cluster's, go to the configured
// upstreams in order, over the transport the query came on; a truncated
// UDP answer reaches the client truncated and the client's TCP retry is
// forwarded over TCP. Only the test's own resolvers on 127.0.0.1 are used.
func TestForwardingToUpstreams(t *testing.T) {
	up := startUpstream(t)
	addr := startServer(t, Config{Upstreams: []string{deadAddr(t), up.addr}, ForwardTimeout: 5 * time.Second}, testCatalog())
	tests := []struct {
		net, name string
		qtype     uint16
		answers   int
		tc        bool
		upstream  []string // queries the upstream saw
	}{
		{"udp", "www.example.org.", mdns.TypeA, 1, false, []string{"udp www.example.org. A"}},
		{"tcp", "www.example.org.", mdns.TypeA, 1, false, []string{"tcp www.example.org. A"}},
		{"udp", "big.example.org.", mdns.TypeA, -1, true, []string{"udp big.example.org. A"}},
		{"tcp", "big.example.org.", mdns.TypeA, 100, false, []string{"tcp big.example.org. A"}},
		{"udp", "1.2.0.192.in-addr.arpa.", mdns.TypePTR, 1, false, []string{"udp 1.2.0.192.in-addr.arpa. PTR"}},
		// Cluster names and cluster addresses never leave.
		{"udp", "web.default.svc.cluster.local.", mdns.TypeA, 1, false, nil},
		{"udp", "10.0.96.10.in-addr.arpa.", mdns.TypePTR, 1, false, nil},
	}
	for _, tt := range tests {
		r := ask(t, tt.net, addr, tt.name, tt.qtype, 0)
		if r.Rcode != mdns.RcodeSuccess || r.Truncated != tt.tc || (tt.answers >= 0 && len(r.Answer) != tt.answers) {
			t.Errorf("%s %s: rcode %s tc %v answers %d; want NOERROR tc %v answers %d", tt.net, tt.name,
				mdns.RcodeToString[r.Rcode], r.Truncated, len(r.Answer), tt.tc, tt.answers)
		}
		if got := up.seen(); fmt.Sprint(got) != fmt.Sprint(tt.upstream) {
			t.Errorf("%s %s: upstream saw %v, want %v", tt.net, tt.name, got, tt.upstream)
		}
	}
	// No upstream answers: SERVFAIL.
	dead := startServer(t, Config{Upstreams: []string{deadAddr(t)}}, testCatalog())
	for _, network := range []string{"udp", "tcp"} {
		if r := ask(t, network, dead, "www.example.org.", mdns.TypeA, 0); r.Rcode != mdns.RcodeServerFailure {
			t.Errorf("%s with dead upstreams: %s", network, mdns.RcodeToString[r.Rcode])
		}
	}
}

// TestTruncation: a headless Service with many endpoints does not fit a
// UDP answer: it is truncated to the client's buffer with the TC bit, and
// the same query over TCP gets every address.
func TestTruncation(t *testing.T) {
	c := NewCatalog()
	c.SetService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "many"},
		Spec: corev1.ServiceSpec{ClusterIP: "None"}})
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "many-1", Labels: map[string]string{discoveryv1.LabelServiceName: "many"}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for i := range 200 {
		a := netip.AddrFrom4([4]byte{10, 244, byte(i / 250), byte(i%250 + 1)})
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{a.String()}})
	}
	c.SetEndpointSlice(sl)
	addr := startServer(t, Config{}, c)
	const name = "many.default.svc.cluster.local."
	tests := []struct {
		net     string
		edns    uint16
		maxSize int
		tc      bool
	}{
		{"udp", 0, 512, true},
		{"udp", 4096, maxUDPSize, true}, // the server caps its UDP answers
		{"tcp", 0, 65535, false},
	}
	for _, tt := range tests {
		r := ask(t, tt.net, addr, name, mdns.TypeA, tt.edns)
		r.Compress = true // the size on the wire
		if r.Len() > tt.maxSize || r.Truncated != tt.tc {
			t.Errorf("%s edns %d: %d bytes, tc %v; want ≤ %d, tc %v", tt.net, tt.edns, r.Len(), r.Truncated, tt.maxSize, tt.tc)
		}
		if tt.tc && (len(r.Answer) == 0 || len(r.Answer) >= 200) {
			t.Errorf("%s edns %d: %d answers in a truncated reply", tt.net, tt.edns, len(r.Answer))
		}
		if !tt.tc && len(r.Answer) != 200 {
			t.Errorf("%s: %d answers, want 200", tt.net, len(r.Answer))
		}
		if tt.edns != 0 && r.IsEdns0() == nil {
			t.Errorf("%s edns %d: answer without OPT record", tt.net, tt.edns)
		}
	}
}
