package userspace

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/netproxy/dataplane"
	"github.com/tugboatdev/tugboat/netproxy/internal/nettest"
)

func newProxy(t *testing.T) (*Proxy, *dataplane.Table) {
	t.Helper()
	p := New(Config{})
	t.Cleanup(func() { p.Close() })
	return p, dataplane.NewTable(p)
}

func backends(t *testing.T, network string, addrs ...string) []dataplane.Backend {
	t.Helper()
	var out []dataplane.Backend
	for _, a := range addrs {
		b := nettest.StartBackend(t, nil, network, a)
		out = append(out, dataplane.Backend{Addr: b.Addr.Addr(), Port: b.Addr.Port(), Ready: true})
	}
	return out
}

func fe(s string, p dataplane.Protocol) dataplane.Frontend {
	ap := netip.MustParseAddrPort(s)
	return dataplane.Frontend{Addr: ap.Addr(), Port: ap.Port(), Proto: p}
}

// tcpBackend connects to addr and returns the backend's greeting.
func tcpBackend(t *testing.T, addr string) (string, net.Conn, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", nil, err
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return "", nil, err
	}
	return strings.TrimSpace(line), c, nil
}

func TestTCPRandomReadyAndRefusal(t *testing.T) {
	p, table := newProxy(t)
	ctx := context.Background()
	bes := backends(t, "tcp", "127.0.0.2:0", "127.0.0.3:0", "127.0.0.4:0")
	bes[2].Ready = false
	svc := dataplane.Service{Frontend: fe("127.96.0.10:8080", dataplane.TCP), Backends: bes}
	if err := table.Set(ctx, "default/web", []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for range 40 {
		b, c, err := tcpBackend(t, "127.96.0.10:8080")
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		seen[b]++
	}
	if len(seen) != 2 || seen[bes[0].AddrPort().String()] == 0 || seen[bes[1].AddrPort().String()] == 0 {
		t.Errorf("backends chosen %v, want the two ready ones", seen)
	}
	// An open connection survives endpoint changes.
	b, open, err := tcpBackend(t, "127.96.0.10:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	for i := range bes {
		bes[i].Ready = false
	}
	svc.Backends = bes
	if err := table.Set(ctx, "default/web", []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tcpBackend(t, "127.96.0.10:8080"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("no ready backend: err = %v, want ECONNREFUSED", err)
	}
	if _, err := open.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(open).ReadString('\n'); err != nil || strings.TrimSpace(line) != b {
		t.Errorf("open connection answered %q, %v; want %s", line, err, b)
	}
	if got := p.Programmed(); len(got) != 1 {
		t.Errorf("Programmed = %v", got)
	}
	if err := table.Remove(ctx, "default/web"); err != nil {
		t.Fatal(err)
	}
	if got := p.Programmed(); len(got) != 0 {
		t.Errorf("Programmed after remove = %v", got)
	}
}

func TestSessionAffinity(t *testing.T) {
	_, table := newProxy(t)
	ctx := context.Background()
	bes := backends(t, "tcp", "127.0.0.2:0", "127.0.0.3:0", "127.0.0.4:0")
	svc := dataplane.Service{Frontend: fe("127.96.0.11:8080", dataplane.TCP), Backends: bes, AffinityTimeout: time.Hour}
	if err := table.Set(ctx, "default/sticky", []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	first, c, err := tcpBackend(t, "127.96.0.11:8080")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	for range 15 {
		b, c, err := tcpBackend(t, "127.96.0.11:8080")
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if b != first {
			t.Fatalf("affinity broken: %s then %s", first, b)
		}
	}
}

func TestUDPRequestReply(t *testing.T) {
	_, table := newProxy(t)
	ctx := context.Background()
	bes := backends(t, "udp", "127.0.0.2:0", "127.0.0.3:0")
	svc := dataplane.Service{Frontend: fe("127.96.0.12:5353", dataplane.UDP), Backends: bes}
	if err := table.Set(ctx, "kube-system/dns", []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 30 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.WriteToUDPAddrPort([]byte("hi"), netip.MustParseAddrPort("127.96.0.12:5353")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if from.String() != "127.96.0.12:5353" {
			t.Errorf("reply from %s, want the service address", from)
		}
		seen[string(buf[:n])] = true
	}
	if len(seen) != 2 {
		t.Errorf("backends seen %v", seen)
	}
	// No ready backend: a connected UDP socket is refused.
	svc.Backends = nil
	if err := table.Set(ctx, "kube-system/dns", []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", "127.96.0.12:5353")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.Write([]byte("hi"))
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("no ready backend: err = %v, want ECONNREFUSED", err)
	}
}
