package bpf

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/netproxy/dataplane"
	"github.com/tugboatdev/tugboat/netproxy/internal/nettest"
)

// The tc programs are run on packets built here with BPF_PROG_TEST_RUN: no
// packet is sent anywhere.

func csum(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// l4sum returns the checksum of an L4 segment with its pseudo header.
func l4sum(src, dst netip.Addr, proto uint8, seg []byte) uint16 {
	s, d := src.As4(), dst.As4()
	sum := csum(0, s[:])
	sum = csum(sum, d[:])
	sum += uint32(proto) + uint32(len(seg))
	return fold(csum(sum, seg))
}

// packet builds an Ethernet/IPv4/TCP-or-UDP packet with valid checksums
// (or a zero UDP checksum when zeroUDP).
func packet(src, dst netip.AddrPort, proto uint8, zeroUDP bool) []byte {
	payload := []byte("hello")
	l4len := 20
	if proto == 17 {
		l4len = 8
	}
	b := make([]byte, 14+20+l4len+len(payload))
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+l4len+len(payload)))
	ip[8] = 64
	ip[9] = proto
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], fold(csum(0, ip)))
	l4 := b[34:]
	binary.BigEndian.PutUint16(l4[0:], src.Port())
	binary.BigEndian.PutUint16(l4[2:], dst.Port())
	copy(l4[l4len:], payload)
	if proto == 6 {
		l4[12] = 5 << 4
		l4[13] = 0x02 // SYN
		binary.BigEndian.PutUint16(l4[16:], l4sum(src.Addr(), dst.Addr(), proto, l4))
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		if !zeroUDP {
			binary.BigEndian.PutUint16(l4[6:], l4sum(src.Addr(), dst.Addr(), proto, l4))
		}
	}
	return b
}

type parsed struct {
	src, dst      netip.AddrPort
	ipOK, l4OK    bool
	udpZeroCsum   bool
	payloadIntact bool
}

func parse(t *testing.T, b []byte) parsed {
	t.Helper()
	ip := b[14:34]
	l4 := b[34:]
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(l4[0:]))
	dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(l4[2:]))
	p := parsed{src: src, dst: dst, ipOK: fold(csum(0, ip)) == 0}
	if ip[9] == 17 && binary.BigEndian.Uint16(l4[6:]) == 0 {
		p.udpZeroCsum, p.l4OK = true, true
	} else {
		p.l4OK = l4sum(src.Addr(), dst.Addr(), ip[9], l4) == 0
	}
	p.payloadIntact = string(b[len(b)-5:]) == "hello"
	return p
}

func runProg(t *testing.T, prog *ebpf.Program, in []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(in)+256)
	opts := &ebpf.RunOptions{Data: in, DataOut: out}
	ret, err := prog.Run(opts)
	if err != nil {
		t.Fatalf("test run: %v", err)
	}
	return ret, opts.DataOut
}

const tcActOK = 0

func TestNodePortRewriteKeepsChecksumsValid(t *testing.T) {
	nettest.NeedEBPF(t)
	lb := open(t, nettest.NewCgroup(t), "")
	t.Cleanup(func() { lb.Uninstall() })
	ctx := context.Background()
	backend := netip.MustParseAddrPort("10.244.0.5:8080")
	for _, proto := range []dataplane.Protocol{dataplane.TCP, dataplane.UDP} {
		if err := lb.Upsert(ctx, dataplane.Service{Frontend: fe("192.0.2.1:30080", proto),
			Backends: []dataplane.Backend{{Addr: backend.Addr(), Port: backend.Port(), Ready: true}}}); err != nil {
			t.Fatal(err)
		}
	}
	client := netip.MustParseAddrPort("198.51.100.7:40000")
	frontend := netip.MustParseAddrPort("192.0.2.1:30080")
	tests := []struct {
		name    string
		proto   uint8
		zeroUDP bool
	}{{"tcp", 6, false}, {"udp", 17, false}, {"udp without checksum", 17, true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ret, out := runProg(t, lb.objs.TugboatNodeportIngress, packet(client, frontend, tt.proto, tt.zeroUDP))
			p := parse(t, out)
			if ret != tcActOK || p.src != client || p.dst != backend || !p.ipOK || !p.l4OK || !p.payloadIntact || p.udpZeroCsum != tt.zeroUDP {
				t.Errorf("ingress: ret %d, %+v", ret, p)
			}
			ret, out = runProg(t, lb.objs.TugboatNodeportEgress, packet(backend, client, tt.proto, tt.zeroUDP))
			p = parse(t, out)
			if ret != tcActOK || p.src != frontend || p.dst != client || !p.ipOK || !p.l4OK || !p.payloadIntact || p.udpZeroCsum != tt.zeroUDP {
				t.Errorf("egress: ret %d, %+v", ret, p)
			}
		})
	}
	// Other traffic passes unchanged.
	other := packet(client, netip.MustParseAddrPort("192.0.2.1:22"), 6, false)
	if ret, out := runProg(t, lb.objs.TugboatNodeportIngress, other); ret != tcActOK || string(out) != string(other) {
		t.Errorf("unrelated packet changed: ret %d", ret)
	}
}

// FuzzNodePortIngress runs the tc parser on arbitrary frames: it must pass
// or drop them, never fail, and must leave frames that are not for a
// frontend unchanged.
func FuzzNodePortIngress(f *testing.F) {
	f.Add(packet(netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddrPort("192.0.2.1:30080"), 6, false))
	f.Add(packet(netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddrPort("192.0.2.1:30080"), 17, true))
	f.Add(make([]byte, 14))
	f.Add(packet6(netip.MustParseAddrPort("[fd00:198::7]:40000"), netip.MustParseAddrPort("[fd00:192::1]:30080"), 6))
	f.Add(packet6(netip.MustParseAddrPort("[fd00:198::7]:40000"), netip.MustParseAddrPort("[fd00:192::1]:30080"), 17)[:60])
	nettest.NeedEBPF(f)
	lb, err := Open(context.Background(), Config{Cgroup: nettest.NewCgroup(f)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { lb.Uninstall() })
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > 1500 {
			return
		}
		out := make([]byte, len(frame)+256)
		opts := &ebpf.RunOptions{Data: frame, DataOut: out}
		ret, err := lb.objs.TugboatNodeportIngress.Run(opts)
		if errors.Is(err, unix.EINVAL) {
			return // the kernel's test harness refused the frame (e.g. an IPv4 frame too short for its header)
		}
		if err != nil {
			t.Fatalf("test run: %v", err)
		}
		if ret != tcActOK {
			t.Fatalf("ret %d for a frame with no frontend programmed", ret)
		}
		if string(opts.DataOut) != string(frame) {
			t.Fatalf("frame changed without a frontend")
		}
	})
}

// FuzzNodePortChecksums translates packets from arbitrary clients to a
// frontend and back: addresses and ports must be rewritten and every
// checksum must stay valid.
func FuzzNodePortChecksums(f *testing.F) {
	f.Add(uint32(0xc6336407), uint16(40000), true)
	f.Add(uint32(0xffffffff), uint16(65535), false)
	f.Add(uint32(1), uint16(1), true)
	nettest.NeedEBPF(f)
	lb, err := Open(context.Background(), Config{Cgroup: nettest.NewCgroup(f)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { lb.Uninstall() })
	backend := netip.MustParseAddrPort("10.244.0.5:8080")
	frontend := netip.MustParseAddrPort("192.0.2.1:30080")
	for _, proto := range []dataplane.Protocol{dataplane.TCP, dataplane.UDP} {
		if err := lb.Upsert(context.Background(), dataplane.Service{Frontend: fe(frontend.String(), proto),
			Backends: []dataplane.Backend{{Addr: backend.Addr(), Port: backend.Port(), Ready: true}}}); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, ip uint32, port uint16, tcp bool) {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], ip)
		client := netip.AddrPortFrom(netip.AddrFrom4(a), port)
		proto := uint8(17)
		if tcp {
			proto = 6
		}
		_, out := runProg(t, lb.objs.TugboatNodeportIngress, packet(client, frontend, proto, false))
		if p := parse(t, out); p.src != client || p.dst != backend || !p.ipOK || !p.l4OK {
			t.Fatalf("ingress %+v", p)
		}
		_, out = runProg(t, lb.objs.TugboatNodeportEgress, packet(backend, client, proto, false))
		if p := parse(t, out); p.src != frontend || p.dst != client || !p.ipOK || !p.l4OK {
			t.Fatalf("egress %+v", p)
		}
	})
}

// tcxPrograms counts the tcx programs attached to interface name of ns in
// direction attach.
func tcxPrograms(t *testing.T, ns *nettest.Netns, name string, attach ebpf.AttachType) int {
	t.Helper()
	var n int
	if err := ns.Do(func() error {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		res, err := link.QueryPrograms(link.QueryOptions{Target: ifc.Index, Attach: attach})
		if err != nil {
			return err
		}
		n = len(res.Programs)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func attachExternal(t *testing.T, ns *nettest.Netns, lb *LoadBalancer, names ...string) {
	t.Helper()
	if err := ns.Do(func() error {
		for _, name := range names {
			ifc, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			if err := lb.AttachExternal(ifc.Index); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestNodePortSNATToRemoteBackend: three namespaces, a client, the node
// (forwarding, tc programs on both interfaces) and a remote host with the
// backends. The remote host has no route to the client: with
// externalTrafficPolicy Cluster the node source-NATs the connections to its
// own address, so the backend sees the node and answers it, and the node
// translates the answers back. With KeepSource (externalTrafficPolicy
// Local) the backend sees the client's own address (and needs a route back
// through the node).
func TestNodePortSNATToRemoteBackend(t *testing.T) {
	w := newWorld(t) // w.ns is the node
	ctx := context.Background()
	client := nettest.NewNetns(t)
	remote := nettest.NewNetns(t)
	nettest.Veth(t, w.ns, "192.0.2.1/24", client, "192.0.2.2/24")       // node: tbveth-a
	nettest.Veth(t, remote, "198.51.100.2/24", w.ns, "198.51.100.1/24") // node: tbveth-b
	w.ns.Sysctl(t, "net/ipv4/ip_forward", "1")
	tcp := nettest.StartPeerBackend(t, remote, "tcp", "198.51.100.2:8080")
	udp := nettest.StartPeerBackend(t, remote, "udp", "198.51.100.2:5353")
	be := func(b *nettest.Backend) []dataplane.Backend {
		return []dataplane.Backend{{Addr: b.Addr.Addr(), Port: b.Addr.Port(), Ready: true}}
	}
	if err := w.table.Set(ctx, "default/np", []dataplane.Service{
		{Frontend: fe("192.0.2.1:30080", dataplane.TCP), Backends: be(tcp)},
		{Frontend: fe("192.0.2.1:30053", dataplane.UDP), Backends: be(udp)},
		{Frontend: fe("192.0.2.1:30090", dataplane.TCP), Backends: be(tcp), KeepSource: true},
	}); err != nil {
		t.Fatal(err)
	}
	attachExternal(t, w.ns, w.lb, "tbveth-a", "tbveth-b")
	c := nettest.StartClient(t, client, nettest.NewCgroup(t))
	isNode := func(s string) bool {
		ap, err := netip.ParseAddrPort(s)
		return err == nil && ap.Addr() == netip.MustParseAddr("198.51.100.1")
	}
	for range 5 {
		r := c.Do(t, "tcp 192.0.2.1:30080")
		if r.Err != "" || r.Peer != "192.0.2.1:30080" || !isNode(r.Backend) {
			t.Fatalf("SNAT TCP: %+v, want the backend to see the node 198.51.100.1", r)
		}
	}
	if r := c.Do(t, "open a 192.0.2.1:30080"); r.Err != "" {
		t.Fatal(r.Err)
	}
	for range 3 {
		if r := c.Do(t, "ping a"); r.Err != "" || !isNode(r.Backend) {
			t.Fatalf("packets of one source-NATed connection: %+v", r)
		}
	}
	if r := c.Do(t, "udp 192.0.2.1:30053"); r.Err != "" || r.Peer != "192.0.2.1:30053" || !isNode(r.Backend) {
		t.Errorf("SNAT UDP: %+v", r)
	}
	// externalTrafficPolicy Local: the source stays the client's.
	remote.Route(t, "192.0.2.0/24", "198.51.100.1")
	r := c.Do(t, "tcp 192.0.2.1:30090")
	if ap, err := netip.ParseAddrPort(r.Backend); r.Err != "" || r.Peer != "192.0.2.1:30090" || err != nil || ap.Addr() != netip.MustParseAddr("192.0.2.2") {
		t.Errorf("KeepSource: %+v, want the backend to see the client 192.0.2.2", r)
	}
}

// TestNodePortLinksPinned: with a PinPath the tc links outlive the proxy,
// keep serving while it is down, are re-adopted (not attached twice) by the
// next one and removed by Uninstall.
func TestNodePortLinksPinned(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ext := nettest.NewNetns(t)
	nettest.Veth(t, w.ns, "192.0.2.1/24", ext, "192.0.2.2/24")
	tcp := backends(t, w.ns, "tcp", "192.0.2.1:8080")
	if err := w.table.Set(ctx, "default/np", []dataplane.Service{{Frontend: fe("192.0.2.1:30080", dataplane.TCP), Backends: tcp}}); err != nil {
		t.Fatal(err)
	}
	attachExternal(t, w.ns, w.lb, "tbveth-a")
	c := nettest.StartClient(t, ext, nettest.NewCgroup(t))
	if r := c.Do(t, "open a 192.0.2.1:30080"); r.Err != "" {
		t.Fatal(r.Err)
	}
	if err := w.lb.Close(); err != nil {
		t.Fatal(err)
	}
	if r := c.Do(t, "tcp 192.0.2.1:30080"); r.Err != "" || r.Backend != "192.0.2.1:8080" {
		t.Fatalf("while the proxy is down: %+v", r)
	}
	w.lb = open(t, w.cg, w.pin)
	attachExternal(t, w.ns, w.lb, "tbveth-a")
	for _, a := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
		if n := tcxPrograms(t, w.ns, "tbveth-a", a); n != 1 {
			t.Errorf("%v: %d programs after re-adoption, want 1", a, n)
		}
	}
	if r := c.Do(t, "ping a"); r.Err != "" || r.Backend != "192.0.2.1:8080" {
		t.Errorf("open connection across restart: %+v", r)
	}
	if r := c.Do(t, "tcp 192.0.2.1:30080"); r.Err != "" || r.Peer != "192.0.2.1:30080" {
		t.Errorf("after restart: %+v", r)
	}
	if err := w.lb.Uninstall(); err != nil {
		t.Fatal(err)
	}
	w.lb = open(t, w.cg, "") // for the world's cleanup
	for _, a := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
		if n := tcxPrograms(t, w.ns, "tbveth-a", a); n != 0 {
			t.Errorf("%v: %d programs after Uninstall, want 0", a, n)
		}
	}
	if pins, _ := filepath.Glob(filepath.Join(w.pin, "[^.]*[^g]")); len(pins) != 0 { // bpffs's own maps.debug and progs.debug stay
		t.Errorf("pins left after Uninstall: %v", pins)
	}
}

// packet6 builds an Ethernet/IPv6/TCP-or-UDP packet with a valid checksum.
func packet6(src, dst netip.AddrPort, proto uint8) []byte {
	payload := []byte("hello")
	l4len := 20
	if proto == 17 {
		l4len = 8
	}
	b := make([]byte, 14+40+l4len+len(payload))
	binary.BigEndian.PutUint16(b[12:], 0x86dd)
	ip := b[14:54]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(l4len+len(payload)))
	ip[6] = proto
	ip[7] = 64
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(ip[8:], s[:])
	copy(ip[24:], d[:])
	l4 := b[54:]
	binary.BigEndian.PutUint16(l4[0:], src.Port())
	binary.BigEndian.PutUint16(l4[2:], dst.Port())
	copy(l4[l4len:], payload)
	off := 6
	if proto == 6 {
		l4[12] = 5 << 4
		l4[13] = 0x02 // SYN
		off = 16
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	}
	binary.BigEndian.PutUint16(l4[off:], l4sum6(src.Addr(), dst.Addr(), proto, l4))
	return b
}

// l4sum6 returns the checksum of an L4 segment with its IPv6 pseudo header.
func l4sum6(src, dst netip.Addr, proto uint8, seg []byte) uint16 {
	s, d := src.As16(), dst.As16()
	sum := csum(0, s[:])
	sum = csum(sum, d[:])
	sum += uint32(proto) + uint32(len(seg))
	return fold(csum(sum, seg))
}

func parse6(t *testing.T, b []byte) (src, dst netip.AddrPort, l4OK bool) {
	t.Helper()
	ip := b[14:54]
	l4 := b[54:]
	src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(ip[8:24])), binary.BigEndian.Uint16(l4[0:]))
	dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(ip[24:40])), binary.BigEndian.Uint16(l4[2:]))
	return src, dst, l4sum6(src.Addr(), dst.Addr(), ip[6], l4) == 0
}

func TestNodePortIPv6RewriteKeepsChecksumsValid(t *testing.T) {
	nettest.NeedEBPF(t)
	lb := open(t, nettest.NewCgroup(t), "")
	t.Cleanup(func() { lb.Uninstall() })
	backend := netip.MustParseAddrPort("[fd00:244::5]:8080")
	frontend := netip.MustParseAddrPort("[fd00:192::1]:30080")
	client := netip.MustParseAddrPort("[fd00:198:51:100::7]:40000")
	for _, proto := range []dataplane.Protocol{dataplane.TCP, dataplane.UDP} {
		if err := lb.Upsert(context.Background(), dataplane.Service{Frontend: fe(frontend.String(), proto),
			Backends: []dataplane.Backend{{Addr: backend.Addr(), Port: backend.Port(), Ready: true}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, proto := range []uint8{6, 17} {
		ret, out := runProg(t, lb.objs.TugboatNodeportIngress, packet6(client, frontend, proto))
		if src, dst, ok := parse6(t, out); ret != tcActOK || src != client || dst != backend || !ok || string(out[len(out)-5:]) != "hello" {
			t.Errorf("ingress proto %d: ret %d, %s -> %s, checksum ok %v", proto, ret, src, dst, ok)
		}
		ret, out = runProg(t, lb.objs.TugboatNodeportEgress, packet6(backend, client, proto))
		if src, dst, ok := parse6(t, out); ret != tcActOK || src != frontend || dst != client || !ok {
			t.Errorf("egress proto %d: ret %d, %s -> %s, checksum ok %v", proto, ret, src, dst, ok)
		}
	}
	other := packet6(client, netip.MustParseAddrPort("[fd00:192::1]:22"), 6)
	if ret, out := runProg(t, lb.objs.TugboatNodeportIngress, other); ret != tcActOK || string(out) != string(other) {
		t.Errorf("unrelated IPv6 packet changed: ret %d", ret)
	}
}

// TestNodePortIPv6FromOutside: IPv6 NodePorts from a client namespace, to
// a backend on the node (the client's address is seen) and to one on a
// remote host without a route back (source NAT to the node's address).
func TestNodePortIPv6FromOutside(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	client := nettest.NewNetns(t)
	remote := nettest.NewNetns(t)
	for _, ns := range []*nettest.Netns{w.ns, client, remote} {
		ns.Sysctl(t, "net/ipv6/conf/default/accept_dad", "0") // link-local addresses usable at once
	}
	nettest.Veth(t, w.ns, "fd00:192::1/64", client, "fd00:192::2/64") // node: tbveth-a
	nettest.Veth(t, remote, "fd00:198::2/64", w.ns, "fd00:198::1/64") // node: tbveth-b
	w.ns.Sysctl(t, "net/ipv6/conf/all/forwarding", "1")
	local := nettest.StartPeerBackend(t, w.ns, "tcp", "[fd00:192::1]:8080")
	far := nettest.StartPeerBackend(t, remote, "tcp", "[fd00:198::2]:8080")
	farUDP := nettest.StartPeerBackend(t, remote, "udp", "[fd00:198::2]:5353")
	be := func(b *nettest.Backend) []dataplane.Backend {
		return []dataplane.Backend{{Addr: b.Addr.Addr(), Port: b.Addr.Port(), Ready: true}}
	}
	if err := w.table.Set(ctx, "default/np6", []dataplane.Service{
		{Frontend: fe("[fd00:192::1]:30080", dataplane.TCP), Backends: be(local)},
		{Frontend: fe("[fd00:192::1]:30081", dataplane.TCP), Backends: be(far)},
		{Frontend: fe("[fd00:192::1]:30053", dataplane.UDP), Backends: be(farUDP)},
		{Frontend: fe("[fd00:192::1]:30082", dataplane.TCP)},
	}); err != nil {
		t.Fatal(err)
	}
	attachExternal(t, w.ns, w.lb, "tbveth-a", "tbveth-b")
	c := nettest.StartClient(t, client, nettest.NewCgroup(t))
	seenBy := func(r nettest.Result) netip.Addr {
		ap, err := netip.ParseAddrPort(r.Backend)
		if err != nil {
			return netip.Addr{}
		}
		return ap.Addr()
	}
	tests := []struct {
		cmd, peer string
		seen      string // the source address the backend saw
	}{
		{"tcp [fd00:192::1]:30080", "[fd00:192::1]:30080", "fd00:192::2"},
		{"tcp [fd00:192::1]:30081", "[fd00:192::1]:30081", "fd00:198::1"},
		{"udp [fd00:192::1]:30053", "[fd00:192::1]:30053", "fd00:198::1"},
	}
	for _, tt := range tests {
		for range 3 {
			r := c.Do(t, tt.cmd)
			if r.Err != "" || r.Peer != tt.peer || seenBy(r) != netip.MustParseAddr(tt.seen) {
				t.Fatalf("%s: %+v, want peer %s and the backend to see %s", tt.cmd, r, tt.peer, tt.seen)
			}
		}
	}
	if r := c.Do(t, "tcp [fd00:192::1]:30082"); r.Err != "ECONNREFUSED" {
		t.Errorf("no ready backend: %+v", r)
	}
}
