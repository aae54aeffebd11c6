package bpf

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
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
