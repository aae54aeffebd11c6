package bpf

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/netproxy/dataplane"
	"github.com/tugboatdev/tugboat/netproxy/internal/nettest"
)

func TestMain(m *testing.M) {
	nettest.RunHelper()
	os.Exit(m.Run())
}

type world struct {
	ns     *nettest.Netns
	cg     string
	pin    string
	lb     *LoadBalancer
	table  *dataplane.Table
	client *nettest.Client
}

func open(t *testing.T, cg, pin string) *LoadBalancer {
	t.Helper()
	lb, err := Open(context.Background(), Config{Cgroup: cg, PinPath: pin})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return lb
}

func newWorld(t *testing.T) *world {
	t.Helper()
	nettest.NeedEBPF(t)
	w := &world{ns: nettest.NewNetns(t)}
	w.ns.Blackhole(t, nettest.ServiceCIDR)
	w.cg = nettest.NewCgroup(t)
	w.pin = nettest.NewBPFFS(t)
	w.lb = open(t, w.cg, w.pin)
	t.Cleanup(func() {
		if err := w.lb.Uninstall(); err != nil {
			t.Errorf("Uninstall: %v", err)
		}
	})
	w.table = dataplane.NewTable(w.lb)
	return w
}

func (w *world) start(t *testing.T) { w.client = nettest.StartClient(t, w.ns, w.cg) }

func backends(t *testing.T, ns *nettest.Netns, network string, addrs ...string) []dataplane.Backend {
	t.Helper()
	var out []dataplane.Backend
	for _, a := range addrs {
		b := nettest.StartBackend(t, ns, network, a)
		out = append(out, dataplane.Backend{Addr: b.Addr.Addr(), Port: b.Addr.Port(), Ready: true})
	}
	return out
}

func fe(s string, p dataplane.Protocol) dataplane.Frontend {
	ap := netip.MustParseAddrPort(s)
	return dataplane.Frontend{Addr: ap.Addr(), Port: ap.Port(), Proto: p}
}

func TestRandomOverReadyBackendsWithReverseTranslation(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	bes := backends(t, w.ns, "tcp", "127.0.0.2:8080", "127.0.0.3:8080", "127.0.0.4:8080")
	svc := dataplane.Service{Frontend: fe("10.96.0.10:80", dataplane.TCP), Name: "default/web:http", Backends: bes}
	if err := w.table.Set(ctx, "default/web", []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	w.start(t)
	seen := map[string]int{}
	for range 60 {
		r := w.client.Do(t, "tcp 10.96.0.10:80")
		if r.Err != "" {
			t.Fatalf("connect through VIP: %s", r.Err)
		}
		if r.Peer != "10.96.0.10:80" {
			t.Errorf("getpeername = %s, want the service address 10.96.0.10:80", r.Peer)
		}
		seen[r.Backend]++
	}
	for _, b := range bes {
		if seen[b.AddrPort().String()] == 0 {
			t.Errorf("backend %s never chosen in 60 connections: %v", b.AddrPort(), seen)
		}
	}
	// A destination that is no service is left alone.
	if r := w.client.Do(t, "tcp 127.0.0.3:8080"); r.Err != "" || r.Backend != "127.0.0.3:8080" || r.Peer != "127.0.0.3:8080" {
		t.Errorf("direct connection = %+v", r)
	}
	n, nb, _, err := w.lb.Stats()
	if err != nil || n != 1 || nb != 3 {
		t.Errorf("Stats = %d services, %d backends, %v; want 1, 3", n, nb, err)
	}
}

func TestNoReadyBackendRefusesAtOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	bes := backends(t, w.ns, "tcp", "127.0.0.2:8080")
	bes[0].Ready = false
	svcs := []dataplane.Service{
		{Frontend: fe("10.96.0.11:80", dataplane.TCP), Backends: bes},
		{Frontend: fe("10.96.0.11:53", dataplane.UDP)},
	}
	if err := w.table.Set(ctx, "default/down", svcs); err != nil {
		t.Fatal(err)
	}
	w.start(t)
	for _, cmd := range []string{"tcp 10.96.0.11:80", "udp 10.96.0.11:53", "cudp 10.96.0.11:53"} {
		start := time.Now()
		r := w.client.Do(t, cmd)
		if r.Err != "ECONNREFUSED" {
			t.Errorf("%s: err = %q, want ECONNREFUSED", cmd, r.Err)
		}
		t.Logf("%s refused after %v", cmd, time.Since(start))
	}
}

func TestEndpointChangesWithOpenConnections(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	bes := backends(t, w.ns, "tcp", "127.0.0.2:8080", "127.0.0.3:8080", "127.0.0.4:8080")
	svc := dataplane.Service{Frontend: fe("10.96.0.12:80", dataplane.TCP), Backends: bes[:1]}
	if err := w.table.Set(ctx, "default/web", []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	w.start(t)
	if r := w.client.Do(t, "open a 10.96.0.12:80"); r.Err != "" || r.Backend != "127.0.0.2:8080" {
		t.Fatalf("open = %+v", r)
	}
	// Replace the backend: the open connection keeps its backend, new ones
	// go only to the new ready backend; a not-ready backend is never chosen.
	b3 := bes[2]
	b3.Ready = false
	svc.Backends = []dataplane.Backend{bes[1], b3}
	if err := w.table.Set(ctx, "default/web", []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if r := w.client.Do(t, "tcp 10.96.0.12:80"); r.Err != "" || r.Backend != "127.0.0.3:8080" {
			t.Fatalf("after change: %+v, want 127.0.0.3:8080", r)
		}
	}
	if r := w.client.Do(t, "ping a"); r.Err != "" || r.Backend != "127.0.0.2:8080" {
		t.Errorf("open connection after change = %+v", r)
	}
	// Turn the third ready: both are chosen.
	svc.Backends[1].Ready = true
	if err := w.table.Set(ctx, "default/web", []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 40 {
		seen[w.client.Do(t, "tcp 10.96.0.12:80").Backend] = true
	}
	if !seen["127.0.0.3:8080"] || !seen["127.0.0.4:8080"] || len(seen) != 2 {
		t.Errorf("backends chosen = %v", seen)
	}
	// Removing the service: the VIP is blackholed again.
	if err := w.table.Remove(ctx, "default/web"); err != nil {
		t.Fatal(err)
	}
	if r := w.client.Do(t, "tcp 10.96.0.12:80"); r.Err == "" {
		t.Errorf("connect to removed service succeeded: %+v", r)
	}
	if r := w.client.Do(t, "ping a"); r.Err != "" || r.Backend != "127.0.0.2:8080" {
		t.Errorf("open connection after service removal = %+v", r)
	}
}

func TestSessionAffinity(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	bes := backends(t, w.ns, "tcp", "127.0.0.2:8080", "127.0.0.3:8080", "127.0.0.4:8080")
	svc := dataplane.Service{Frontend: fe("10.96.0.13:80", dataplane.TCP), Backends: bes, AffinityTimeout: dataplane.DefaultAffinityTimeout}
	if err := w.table.Set(ctx, "default/sticky", []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	w.start(t)
	first := w.client.Do(t, "tcp 10.96.0.13:80")
	if first.Err != "" {
		t.Fatal(first.Err)
	}
	for range 20 {
		if r := w.client.Do(t, "tcp 10.96.0.13:80"); r.Backend != first.Backend {
			t.Fatalf("affinity broken: %s then %s", first.Backend, r.Backend)
		}
	}
	// The chosen backend leaves: the client moves to another one and sticks.
	var rest []dataplane.Backend
	for _, b := range bes {
		if b.AddrPort().String() != first.Backend {
			rest = append(rest, b)
		}
	}
	svc.Backends = rest
	if err := w.table.Set(ctx, "default/sticky", []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	second := w.client.Do(t, "tcp 10.96.0.13:80")
	if second.Err != "" || second.Backend == first.Backend {
		t.Fatalf("after backend removal: %+v (first %s)", second, first.Backend)
	}
	for range 10 {
		if r := w.client.Do(t, "tcp 10.96.0.13:80"); r.Backend != second.Backend {
			t.Fatalf("affinity broken after move: %s then %s", second.Backend, r.Backend)
		}
	}
	if _, _, aff, err := w.lb.Stats(); err != nil || aff != 1 {
		t.Errorf("affinity entries = %d, %v; want 1", aff, err)
	}
}

func TestUDPRequestReply(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	bes := backends(t, w.ns, "udp", "127.0.0.2:5353", "127.0.0.3:5353")
	svc := dataplane.Service{Frontend: fe("10.96.0.10:53", dataplane.UDP), Backends: bes}
	if err := w.table.Set(ctx, "kube-system/dns", []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	w.start(t)
	for _, mode := range []string{"udp", "cudp"} {
		seen := map[string]bool{}
		for range 30 {
			r := w.client.Do(t, mode+" 10.96.0.10:53")
			if r.Err != "" {
				t.Fatalf("%s: %s", mode, r.Err)
			}
			if r.Peer != "10.96.0.10:53" {
				t.Errorf("%s: reply from %s, want the service address", mode, r.Peer)
			}
			seen[r.Backend] = true
		}
		if len(seen) != 2 {
			t.Errorf("%s: backends seen %v, want both", mode, seen)
		}
	}
}

func TestIPv6SocketsWithMappedAddresses(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	tcp := backends(t, w.ns, "tcp", "127.0.0.2:8080")
	udp := backends(t, w.ns, "udp", "127.0.0.2:5353")
	if err := w.table.Set(ctx, "default/dual", []dataplane.Service{
		{Frontend: fe("10.96.0.16:80", dataplane.TCP), Backends: tcp},
		{Frontend: fe("10.96.0.16:53", dataplane.UDP), Backends: udp},
		{Frontend: fe("10.96.0.17:80", dataplane.TCP)},
	}); err != nil {
		t.Fatal(err)
	}
	w.start(t)
	tests := []struct {
		cmd  string
		want nettest.Result
	}{
		{"tcp [::ffff:10.96.0.16]:80", nettest.Result{Backend: "127.0.0.2:8080", Peer: "[::ffff:10.96.0.16]:80"}},
		{"udp [::ffff:10.96.0.16]:53", nettest.Result{Backend: "127.0.0.2:5353", Peer: "[::ffff:10.96.0.16]:53"}},
		{"cudp [::ffff:10.96.0.16]:53", nettest.Result{Backend: "127.0.0.2:5353", Peer: "[::ffff:10.96.0.16]:53"}},
		{"tcp [::ffff:10.96.0.17]:80", nettest.Result{Err: "ECONNREFUSED"}},
		{"tcp [::ffff:127.0.0.2]:8080", nettest.Result{Backend: "127.0.0.2:8080", Peer: "[::ffff:127.0.0.2]:8080"}},
	}
	for _, tt := range tests {
		if got := w.client.Do(t, tt.cmd); got != tt.want {
			t.Errorf("%s = %+v, want %+v", tt.cmd, got, tt.want)
		}
	}
}

func TestRestartKeepsProgramsAndState(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	bes := backends(t, w.ns, "tcp", "127.0.0.2:8080", "127.0.0.3:8080")
	web := dataplane.Service{Frontend: fe("10.96.0.14:80", dataplane.TCP), Backends: bes[:1]}
	old := dataplane.Service{Frontend: fe("10.96.0.15:80", dataplane.TCP), Backends: bes[1:]}
	if err := w.table.Resync(ctx, map[string][]dataplane.Service{"default/web": {web}, "default/old": {old}}); err != nil {
		t.Fatal(err)
	}
	w.start(t)
	if r := w.client.Do(t, "open a 10.96.0.14:80"); r.Err != "" {
		t.Fatal(r.Err)
	}
	// The proxy stops: programs stay attached through the pinned links.
	if err := w.lb.Close(); err != nil {
		t.Fatal(err)
	}
	if r := w.client.Do(t, "tcp 10.96.0.14:80"); r.Err != "" || r.Backend != "127.0.0.2:8080" {
		t.Fatalf("while the proxy is down: %+v", r)
	}
	// A new proxy finds the state, and a resync removes what is gone.
	w.lb = open(t, w.cg, w.pin)
	want := []dataplane.Frontend{web.Frontend, old.Frontend}
	if got := w.lb.Programmed(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("recovered %v, want %v", got, want)
	}
	w.table = dataplane.NewTable(w.lb)
	web.Backends = bes
	if err := w.table.Resync(ctx, map[string][]dataplane.Service{"default/web": {web}}); err != nil {
		t.Fatal(err)
	}
	if got := w.lb.Programmed(); len(got) != 1 || got[0] != web.Frontend {
		t.Errorf("after resync %v", got)
	}
	if r := w.client.Do(t, "ping a"); r.Err != "" || r.Backend != "127.0.0.2:8080" {
		t.Errorf("open connection across restart = %+v", r)
	}
	seen := map[string]bool{}
	for range 30 {
		seen[w.client.Do(t, "tcp 10.96.0.14:80").Backend] = true
	}
	if len(seen) != 2 {
		t.Errorf("after resync backends %v, want both", seen)
	}
}

func TestRefusesRootCgroup(t *testing.T) {
	nettest.NeedEBPF(t)
	for _, cg := range []string{"", nettest.CgroupRoot, "/sys/fs/cgroup"} {
		if lb, err := Open(context.Background(), Config{Cgroup: cg}); err == nil {
			lb.Uninstall()
			t.Errorf("Open(%q) succeeded", cg)
		}
	}
}

func TestOpenReplacesIncompatiblePinnedMaps(t *testing.T) {
	nettest.NeedEBPF(t)
	cg := nettest.NewCgroup(t)
	pin := nettest.NewBPFFS(t)
	old, err := ebpf.NewMap(&ebpf.MapSpec{Name: "services", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Pin(filepath.Join(pin, "services")); err != nil {
		t.Fatal(err)
	}
	old.Close()
	lb := open(t, cg, pin)
	defer lb.Uninstall()
	if err := lb.Upsert(context.Background(), dataplane.Service{Frontend: fe("10.96.0.18:80", dataplane.TCP)}); err != nil {
		t.Fatal(err)
	}
	if n, _, _, err := lb.Stats(); err != nil || n != 1 {
		t.Errorf("services map has %d entries, %v", n, err)
	}
}

// TestNodePortFromOutside: a client in another namespace, outside the
// served cgroup, reaches NodePorts on the node's address through the tc
// programs on the node's interface.
func TestNodePortFromOutside(t *testing.T) {
	w := newWorld(t) // w.ns is the node
	ctx := context.Background()
	ext := nettest.NewNetns(t)
	nettest.Veth(t, w.ns, "192.0.2.1/24", ext, "192.0.2.2/24")
	tcp := backends(t, w.ns, "tcp", "192.0.2.1:8080", "192.0.2.1:8081")
	udp := backends(t, w.ns, "udp", "192.0.2.1:5353")
	if err := w.table.Set(ctx, "default/np", []dataplane.Service{
		{Frontend: fe("192.0.2.1:30080", dataplane.TCP), Backends: tcp},
		{Frontend: fe("192.0.2.1:30053", dataplane.UDP), Backends: udp},
		{Frontend: fe("192.0.2.1:30081", dataplane.TCP)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.ns.Do(func() error {
		ifc, err := net.InterfaceByName("tbveth-a")
		if err != nil {
			return err
		}
		return w.lb.AttachExternal(ifc.Index)
	}); err != nil {
		t.Fatal(err)
	}
	c := nettest.StartClient(t, ext, nettest.NewCgroup(t)) // a cgroup without programs
	seen := map[string]bool{}
	for range 30 {
		r := c.Do(t, "tcp 192.0.2.1:30080")
		if r.Err != "" || r.Peer != "192.0.2.1:30080" {
			t.Fatalf("external connection: %+v", r)
		}
		seen[r.Backend] = true
	}
	if len(seen) != 2 {
		t.Errorf("backends %v, want both", seen)
	}
	if r := c.Do(t, "open a 192.0.2.1:30080"); r.Err != "" {
		t.Fatal(r.Err)
	}
	for range 3 {
		if r := c.Do(t, "ping a"); r.Err != "" || r.Backend == "" {
			t.Fatalf("packets of one connection: %+v", r)
		}
	}
	if r := c.Do(t, "udp 192.0.2.1:30053"); r.Err != "" || r.Backend != "192.0.2.1:5353" || r.Peer != "192.0.2.1:30053" {
		t.Errorf("external UDP: %+v", r)
	}
	if r := c.Do(t, "tcp 192.0.2.1:30081"); r.Err != "ECONNREFUSED" {
		t.Errorf("no ready backend from outside: %+v", r)
	}
}

func TestSessionAffinityExpires(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	bes := backends(t, w.ns, "tcp", "127.0.0.2:8080", "127.0.0.3:8080", "127.0.0.4:8080")
	svc := dataplane.Service{Frontend: fe("10.96.0.19:80", dataplane.TCP), Backends: bes, AffinityTimeout: time.Second}
	if err := w.table.Set(ctx, "default/short", []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	w.start(t)
	// Connections closer together than the timeout keep the backend; after
	// an idle period longer than it, the choice is random again (20
	// connections to 3 backends all landing on one: probability 3^-19).
	// Two connections are surely closer than the timeout when the second
	// one's request ended less than the timeout after the first one's
	// began; on a loaded machine a pair may not be, and the run of 20
	// starts again from the later one.
	var prevStart time.Time
	prev, inRow := "", 0
	for i := 0; inRow < 19; i++ {
		if i == 200 {
			t.Fatalf("no 20 connections in a row less than the timeout apart in %d tries", i)
		}
		time.Sleep(1100 * time.Millisecond / 20) // > timeout in total, < timeout apart
		start := time.Now()
		r := w.client.Do(t, "tcp 10.96.0.19:80")
		if r.Err != "" {
			t.Fatalf("connection %d failed: %s", i, r.Err)
		}
		if prev == "" || time.Since(prevStart) >= svc.AffinityTimeout {
			inRow = 0
		} else if r.Backend != prev {
			t.Fatalf("within the timeout: backend %s then %s", prev, r.Backend)
		} else {
			inRow++
		}
		prev, prevStart = r.Backend, start
	}
	seen := map[string]bool{}
	for range 20 {
		time.Sleep(1100 * time.Millisecond)
		seen[w.client.Do(t, "tcp 10.96.0.19:80").Backend] = true
		if len(seen) > 1 {
			return
		}
	}
	t.Errorf("after the timeout: always %v", seen)
}

// serviceCIDR6 is the IPv6 service range of the tests, blackholed inside
// the test namespace only.
var serviceCIDR6 = netip.MustParsePrefix("fd00:10:96::/108")

// TestIPv6Services: IPv6 frontends (ipFamilies [IPv6]) and both families of
// a dual-stack service are translated by the *6 hooks to IPv6 backends on
// ::1 and ULA addresses inside the test namespace, with reverse translation
// for getpeername() and UDP replies.
func TestIPv6Services(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.ns.Blackhole(t, serviceCIDR6)
	w.ns.AddAddr(t, "lo", "fd00:db8::2/128")
	w.ns.AddAddr(t, "lo", "fd00:db8::3/128")
	tcp6 := backends(t, w.ns, "tcp", "[::1]:8080", "[fd00:db8::2]:8080", "[fd00:db8::3]:8080")
	udp6 := backends(t, w.ns, "udp", "[fd00:db8::2]:5353", "[fd00:db8::3]:5353")
	tcp4 := backends(t, w.ns, "tcp", "127.0.0.2:8080")
	if err := w.table.Set(ctx, "default/v6", []dataplane.Service{
		{Frontend: fe("[fd00:10:96::10]:80", dataplane.TCP), Backends: tcp6},
		{Frontend: fe("[fd00:10:96::10]:53", dataplane.UDP), Backends: udp6},
		{Frontend: fe("[fd00:10:96::11]:80", dataplane.TCP)},
	}); err != nil {
		t.Fatal(err)
	}
	// Dual stack: one service, a VIP of each family, backends of each
	// family (a frontend only ever gets backends of its own family).
	dual := append(slices.Clone(tcp4), tcp6[1])
	if err := w.table.Set(ctx, "default/dual", []dataplane.Service{
		{Frontend: fe("10.96.0.20:80", dataplane.TCP), Backends: dual},
		{Frontend: fe("[fd00:10:96::20]:80", dataplane.TCP), Backends: dual},
	}); err != nil {
		t.Fatal(err)
	}
	w.start(t)
	for _, mode := range []string{"tcp", "udp", "cudp"} {
		port, want := "80", tcp6
		if mode != "tcp" {
			port, want = "53", udp6
		}
		seen := map[string]bool{}
		for range 40 {
			r := w.client.Do(t, mode+" [fd00:10:96::10]:"+port)
			if r.Err != "" || r.Peer != "[fd00:10:96::10]:"+port {
				t.Fatalf("%s through the IPv6 VIP: %+v", mode, r)
			}
			seen[r.Backend] = true
		}
		for _, b := range want {
			if !seen[b.AddrPort().String()] {
				t.Errorf("%s: backend %s never chosen: %v", mode, b.AddrPort(), seen)
			}
		}
	}
	tests := []struct {
		cmd  string
		want nettest.Result
	}{
		{"tcp [fd00:10:96::11]:80", nettest.Result{Err: "ECONNREFUSED"}},
		{"tcp 10.96.0.20:80", nettest.Result{Backend: "127.0.0.2:8080", Peer: "10.96.0.20:80"}},
		{"tcp [::ffff:10.96.0.20]:80", nettest.Result{Backend: "127.0.0.2:8080", Peer: "[::ffff:10.96.0.20]:80"}},
		{"tcp [fd00:10:96::20]:80", nettest.Result{Backend: "[fd00:db8::2]:8080", Peer: "[fd00:10:96::20]:80"}},
		// Not a service: untouched.
		{"tcp [fd00:db8::3]:8080", nettest.Result{Backend: "[fd00:db8::3]:8080", Peer: "[fd00:db8::3]:8080"}},
	}
	for _, tt := range tests {
		if got := w.client.Do(t, tt.cmd); got != tt.want {
			t.Errorf("%s = %+v, want %+v", tt.cmd, got, tt.want)
		}
	}
	// The maps hold the IPv6 state across a restart.
	if err := w.lb.Close(); err != nil {
		t.Fatal(err)
	}
	w.lb = open(t, w.cg, w.pin)
	var v6 []string
	for _, f := range w.lb.Programmed() {
		if f.Addr.Is6() {
			v6 = append(v6, f.String())
		}
	}
	wantV6 := []string{"[fd00:10:96::10]:53/UDP", "[fd00:10:96::10]:80/TCP", "[fd00:10:96::11]:80/TCP", "[fd00:10:96::20]:80/TCP"}
	if diff := cmp.Diff(wantV6, v6); diff != "" {
		t.Errorf("recovered IPv6 frontends (-want +got):\n%s", diff)
	}
	// Removing the IPv6 service: its VIP is blackholed again.
	w.table = dataplane.NewTable(w.lb)
	if err := w.table.Resync(ctx, map[string][]dataplane.Service{}); err != nil {
		t.Fatal(err)
	}
	if r := w.client.Do(t, "tcp [fd00:10:96::10]:80"); r.Err == "" {
		t.Errorf("connect to a removed IPv6 service succeeded: %+v", r)
	}
}

// TestOpenRefusesRootCgroup checks the safety belt: without ServeHost,
// Open refuses the machine's root cgroups before loading anything.
func TestOpenRefusesRootCgroup(t *testing.T) {
	for _, cg := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/unified/", "", "/sys/fs/cgroup/unified/../unified"} {
		lb, err := Open(t.Context(), Config{Cgroup: cg})
		if err == nil {
			_ = lb.Close()
			t.Fatalf("Open(%q) attached, want a refusal", cg)
		}
		t.Logf("Open(%q): %v", cg, err)
	}
}
