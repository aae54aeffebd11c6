package netproxy

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/netproxy/dns"
	"github.com/tugboatdev/tugboat/netproxy/internal/nettest"
	"github.com/tugboatdev/tugboat/netproxy/lbipam"
	"github.com/tugboatdev/tugboat/store"
)

func TestMain(m *testing.M) {
	nettest.RunHelper()
	os.Exit(m.Run())
}

func ptr[T any](v T) *T { return &v }

func openStore(t testing.TB, cidr string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{ServiceCIDR: netip.MustParsePrefix(cidr), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func webService(ns, name, ip string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{ClusterIP: ip, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}}}
}

func webSlice(ns, svc, name string, port int32, ready map[string]bool) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	for _, a := range sortedKeys(ready) {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready[a])}})
	}
	return s
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// waitFor polls cond until it holds or the test's patience (10s) ends.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readyOf(p *Proxy, fe string) int {
	for _, s := range p.Table().Services() {
		if s.Frontend.String() == fe {
			return len(s.Ready())
		}
	}
	return -1
}

func runProxy(t *testing.T, p *Proxy, s store.Interface) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx, s) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-p.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("no initial sync")
	}
}

// newNetns makes a network namespace and a netlink handle in it, both
// removed at the test's end.
func newNetns(t *testing.T) (*nettest.Netns, *netlink.Handle) {
	t.Helper()
	ns := nettest.NewNetns(t)
	h, err := ns.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return ns, h
}

// newEBPFNetns needs eBPF and makes a network namespace with a netlink
// handle in it and a cgroup, all removed at the test's end.
func newEBPFNetns(t *testing.T) (*nettest.Netns, *netlink.Handle, string) {
	t.Helper()
	nettest.NeedEBPF(t)
	ns, h := newNetns(t)
	return ns, h, nettest.NewCgroup(t)
}

// newProxy makes a proxy from cfg and uninstalls it at the test's end,
// reporting a failed Uninstall.
func newProxy(t *testing.T, cfg Config) *Proxy {
	t.Helper()
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Uninstall(); err != nil {
			t.Errorf("Uninstall: %v", err)
		}
	})
	return p
}

// startClusterDNS serves the cluster DNS of s on listen inside ns (port 0:
// any free one) and registers it as the kube-dns Service on clusterIP,
// until the test ends.
func startClusterDNS(t *testing.T, s store.Interface, ns *nettest.Netns, listen, clusterIP string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cat := dns.NewCatalog()
	synced := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); dns.Sync(ctx, s, cat, nil, func() { close(synced) }) }()
	t.Cleanup(func() { cancel(); <-done })
	<-synced
	srv := dns.NewServer(dns.Config{}, cat)
	var addr netip.AddrPort
	if err := ns.Do(func() error {
		var err error
		addr, err = srv.Start(listen)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if _, err := dns.Register(ctx, s, dns.Registration{ClusterIP: clusterIP, Servers: []netip.AddrPort{addr}}); err != nil {
		t.Fatal(err)
	}
}

func TestSyncFromStoreEBPF(t *testing.T) {
	ctx := context.Background()
	ns, h, cg := newEBPFNetns(t)
	pin := nettest.NewBPFFS(t)
	s := openStore(t, "10.96.0.0/12")
	// One service exists before the proxy starts: the full resync programs it.
	if _, err := store.Create(ctx, s, webService("default", "early", "10.96.0.21")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, s, webSlice("default", "early", "early-1", 8080, map[string]bool{"127.0.0.4": true})); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	p := newProxy(t, Config{Mode: ModeAuto, Cgroup: cg, PinPath: pin, ServiceCIDR: nettest.ServiceCIDR, Netlink: h,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if p.Mode() != ModeEBPF || !strings.Contains(logs.String(), "mode=ebpf") {
		t.Fatalf("mode %s, log %q", p.Mode(), logs.String())
	}
	if ok, err := p.blackhole[0].Present(); !ok || err != nil {
		t.Fatalf("blackhole route in the test namespace: %v %v", ok, err)
	}
	for _, a := range []string{"127.0.0.2:8080", "127.0.0.3:8080", "127.0.0.4:8080"} {
		nettest.StartBackend(t, ns, "tcp", a)
	}
	runProxy(t, p, s)
	if got := readyOf(p, "10.96.0.21:80/TCP"); got != 1 {
		t.Fatalf("early service after resync: %d ready backends", got)
	}
	if _, err := store.Create(ctx, s, webService("default", "web", "10.96.0.20")); err != nil {
		t.Fatal(err)
	}
	sl, err := store.Create(ctx, s, webSlice("default", "web", "web-1", 8080, map[string]bool{"127.0.0.2": true, "127.0.0.3": true}))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two ready backends", func() bool { return readyOf(p, "10.96.0.20:80/TCP") == 2 })
	c := nettest.StartClient(t, ns, cg)
	seen := map[string]bool{}
	for range 40 {
		r := c.Do(t, "tcp 10.96.0.20:80")
		if r.Err != "" || r.Peer != "10.96.0.20:80" {
			t.Fatalf("connect: %+v", r)
		}
		seen[r.Backend] = true
	}
	if len(seen) != 2 {
		t.Errorf("backends %v", seen)
	}
	if r := c.Do(t, "tcp 10.96.0.21:80"); r.Backend != "127.0.0.4:8080" {
		t.Errorf("early service: %+v", r)
	}
	// Endpoint turns not ready in the store.
	sl = sl.DeepCopy()
	sl.Endpoints[1].Conditions.Ready = ptr(false)
	if _, err := store.Update(ctx, s, sl); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "one ready backend", func() bool { return readyOf(p, "10.96.0.20:80/TCP") == 1 })
	for range 20 {
		if r := c.Do(t, "tcp 10.96.0.20:80"); r.Backend != "127.0.0.2:8080" {
			t.Fatalf("after not-ready: %+v", r)
		}
	}
	// The slice goes away: the service refuses at once.
	if err := store.Delete[*discoveryv1.EndpointSlice](ctx, s, "default", "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no ready backend", func() bool { return readyOf(p, "10.96.0.20:80/TCP") == 0 })
	if r := c.Do(t, "tcp 10.96.0.20:80"); r.Err != "ECONNREFUSED" {
		t.Errorf("no endpoints: %+v", r)
	}
	// The service goes away.
	if err := store.Delete[*corev1.Service](ctx, s, "default", "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "service removed", func() bool { return readyOf(p, "10.96.0.20:80/TCP") == -1 })
	// The metrics show the same figures.
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(p.Collector()); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP tugboat_netproxy_frontends Programmed service frontends (address, port, protocol).
# TYPE tugboat_netproxy_frontends gauge
tugboat_netproxy_frontends 1
# HELP tugboat_netproxy_mode The data plane that runs (1 for the running mode).
# TYPE tugboat_netproxy_mode gauge
tugboat_netproxy_mode{mode="ebpf"} 1
# HELP tugboat_netproxy_sync_errors_total Data plane updates that failed (retried on the next change).
# TYPE tugboat_netproxy_sync_errors_total counter
tugboat_netproxy_sync_errors_total 0
`), "tugboat_netproxy_frontends", "tugboat_netproxy_mode", "tugboat_netproxy_sync_errors_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "tugboat_netproxy_sync_duration_seconds"); err != nil || n != 1 {
		t.Errorf("sync latency histogram: %d, %v", n, err)
	}
	st := p.Stats()
	if st.Mode != ModeEBPF || st.Frontends != 1 || st.FullResyncs != 1 || st.Syncs == 0 || st.SyncErrors != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestSyncFromStoreUserspaceFallback(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "127.96.0.0/16")
	var logs bytes.Buffer
	// No cgroup: eBPF is unavailable, the userspace proxy runs.
	p, err := New(ctx, Config{NodeIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Uninstall() })
	if p.Mode() != ModeUserspace || !strings.Contains(logs.String(), "mode=userspace") || !strings.Contains(logs.String(), "no cgroup configured") {
		t.Fatalf("mode %s, log %q", p.Mode(), logs.String())
	}
	b1 := nettest.StartBackend(t, nil, "tcp", "127.0.0.2:0")
	runProxy(t, p, s)
	svc := webService("default", "web", "127.96.0.20")
	svc.Spec.Type = corev1.ServiceTypeNodePort
	svc.Spec.Ports[0].NodePort = 32123
	if _, err := store.Create(ctx, s, svc); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, s, webSlice("default", "web", "web-1", int32(b1.Addr.Port()), map[string]bool{"127.0.0.2": true})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "backend", func() bool { return readyOf(p, "127.96.0.20:80/TCP") == 1 })
	for _, addr := range []string{"127.96.0.20:80", "127.0.0.1:32123"} { // ClusterIP and NodePort
		if got := dialGreeting(t, addr); got != b1.Addr.String() {
			t.Errorf("%s through the userspace proxy: %q, want %s", addr, got, b1.Addr)
		}
	}
}

// TestNodePortFromPodNamespace: a client in its own namespace (a pod)
// connects to the node's address and NodePort; the socket load balancer
// sends it to the backend on the node. A client in the same namespace but
// outside the served cgroup stands for a machine outside the node: the tc
// programs on the node's interface serve it.
func TestNodePortFromPodNamespace(t *testing.T) {
	nettest.NeedEBPF(t)
	ctx := context.Background()
	node := nettest.NewNetns(t)
	pod := nettest.NewNetns(t)
	pod.Blackhole(t, nettest.ServiceCIDR)
	nettest.Veth(t, node, "192.0.2.1/24", pod, "192.0.2.2/24")
	nettest.StartBackend(t, node, "tcp", "192.0.2.1:8080")
	cg := nettest.NewCgroup(t)
	s := openStore(t, "10.96.0.0/12")
	var p *Proxy
	if err := node.Do(func() error {
		var err error
		p, err = New(ctx, Config{Mode: ModeEBPF, Cgroup: cg, NodeIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
			ExternalInterfaces: []string{"tbveth-a"}, Logger: slog.New(slog.DiscardHandler)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Uninstall() })
	runProxy(t, p, s)
	svc := webService("default", "np", "10.96.0.40")
	svc.Spec.Type = corev1.ServiceTypeNodePort
	svc.Spec.Ports[0].NodePort = 30080
	if _, err := store.Create(ctx, s, svc); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, s, webSlice("default", "np", "np-1", 8080, map[string]bool{"192.0.2.1": true})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node port", func() bool { return readyOf(p, "192.0.2.1:30080/TCP") == 1 })
	c := nettest.StartClient(t, pod, cg)
	for _, addr := range []string{"192.0.2.1:30080", "10.96.0.40:80"} {
		r := c.Do(t, "tcp "+addr)
		if r.Err != "" || r.Backend != "192.0.2.1:8080" || r.Peer != addr {
			t.Errorf("%s: %+v", addr, r)
		}
	}
	outside := nettest.StartClient(t, pod, nettest.NewCgroup(t))
	if r := outside.Do(t, "tcp 192.0.2.1:30080"); r.Err != "" || r.Backend != "192.0.2.1:8080" || r.Peer != "192.0.2.1:30080" {
		t.Errorf("from outside the node: %+v", r)
	}
}

// TestClusterDNSThroughServiceVIP: the DNS server is published as the
// kube-dns Service; a client in the served cgroup asks the Service's
// ClusterIP and gets answers from the store, with the reply coming from the
// Service address.
func TestClusterDNSThroughServiceVIP(t *testing.T) {
	ctx := context.Background()
	ns, h, cg := newEBPFNetns(t)
	s := openStore(t, "10.96.0.0/12")
	p := newProxy(t, Config{Mode: ModeEBPF, Cgroup: cg, ServiceCIDR: nettest.ServiceCIDR, Netlink: h, Logger: slog.New(slog.DiscardHandler)})
	runProxy(t, p, s)
	startClusterDNS(t, s, ns, "127.0.0.53:0", "10.96.0.10")
	if _, err := store.Create(ctx, s, webService("default", "web", "10.96.0.20")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "kube-dns programmed", func() bool { return readyOf(p, "10.96.0.10:53/UDP") == 1 })
	c := nettest.StartClient(t, ns, cg)
	var r nettest.Result
	waitFor(t, "DNS answer", func() bool {
		r = c.Do(t, "dns 10.96.0.10:53 web.default.svc.cluster.local")
		return r.Err == ""
	})
	if r.Backend != "10.96.0.20" || r.Peer != "10.96.0.10:53" {
		t.Errorf("DNS through the VIP: %+v", r)
	}
	if r := c.Do(t, "dns 10.96.0.10:53 nothing.default.svc.cluster.local"); r.Err != "NXDOMAIN" {
		t.Errorf("unknown name: %+v", r)
	}
}

// TestRestartWithOpenConnections: the proxy stops (Close keeps the pinned
// programs and maps), a new one starts on the same pin path and resyncs from
// the store; an open connection and new ones work throughout, and a change
// made while no proxy ran is applied by the resync.
func TestRestartWithOpenConnections(t *testing.T) {
	ctx := context.Background()
	ns, h, cg := newEBPFNetns(t)
	pin := nettest.NewBPFFS(t)
	for _, a := range []string{"127.0.0.2:8080", "127.0.0.3:8080"} {
		nettest.StartBackend(t, ns, "tcp", a)
	}
	s := openStore(t, "10.96.0.0/12")
	if _, err := store.Create(ctx, s, webService("default", "web", "10.96.0.50")); err != nil {
		t.Fatal(err)
	}
	sl, err := store.Create(ctx, s, webSlice("default", "web", "web-1", 8080, map[string]bool{"127.0.0.2": true}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Mode: ModeEBPF, Cgroup: cg, PinPath: pin, ServiceCIDR: nettest.ServiceCIDR, Netlink: h, Logger: slog.New(slog.DiscardHandler)}
	start := func() (*Proxy, context.CancelFunc) {
		p, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = p.Run(runCtx, s) }()
		<-p.Synced()
		return p, func() { cancel(); <-done }
	}
	p1, stop1 := start()
	c := nettest.StartClient(t, ns, cg)
	if r := c.Do(t, "open a 10.96.0.50:80"); r.Err != "" || r.Backend != "127.0.0.2:8080" {
		t.Fatalf("open: %+v", r)
	}
	stop1()
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	// No proxy runs: the programs still translate, and the store changes.
	if r := c.Do(t, "tcp 10.96.0.50:80"); r.Backend != "127.0.0.2:8080" {
		t.Fatalf("while stopped: %+v", r)
	}
	sl = sl.DeepCopy()
	sl.Endpoints[0].Addresses = []string{"127.0.0.3"}
	if _, err := store.Update(ctx, s, sl); err != nil {
		t.Fatal(err)
	}
	p2, stop2 := start()
	t.Cleanup(func() { stop2(); p2.Uninstall() })
	for range 10 {
		if r := c.Do(t, "tcp 10.96.0.50:80"); r.Err != "" || r.Backend != "127.0.0.3:8080" {
			t.Fatalf("after restart: %+v", r)
		}
	}
	if r := c.Do(t, "ping a"); r.Err != "" || r.Backend != "127.0.0.2:8080" {
		t.Errorf("open connection across the restart: %+v", r)
	}
}

// TestLoadBalancerAddressFromPool: lbipam gives a LoadBalancer Service an
// address from its pool (inside the blackholed service range here) and the
// proxy serves it like an external IP.
func TestLoadBalancerAddressFromPool(t *testing.T) {
	nettest.NeedEBPF(t)
	ctx, cancel := context.WithCancel(context.Background())
	ns := nettest.NewNetns(t)
	ns.Blackhole(t, nettest.ServiceCIDR)
	cg := nettest.NewCgroup(t)
	nettest.StartBackend(t, ns, "tcp", "127.0.0.2:8080")
	s := openStore(t, "10.96.0.0/12")
	p := newProxy(t, Config{Mode: ModeEBPF, Cgroup: cg, Logger: slog.New(slog.DiscardHandler)})
	runProxy(t, p, s)
	done := make(chan error, 1)
	go func() {
		done <- lbipam.Run(ctx, s, lbipam.Config{Pool: []netip.Prefix{netip.MustParsePrefix("10.111.0.0/24")}})
	}()
	t.Cleanup(func() { cancel(); <-done })
	svc := webService("default", "lb", "10.96.0.60")
	svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	svc.Spec.Ports[0].NodePort = 30090
	if _, err := store.Create(context.Background(), s, svc); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(context.Background(), s, webSlice("default", "lb", "lb-1", 8080, map[string]bool{"127.0.0.2": true})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "load-balancer address served", func() bool { return readyOf(p, "10.111.0.1:80/TCP") == 1 })
	c := nettest.StartClient(t, ns, cg)
	if r := c.Do(t, "tcp 10.111.0.1:80"); r.Err != "" || r.Backend != "127.0.0.2:8080" || r.Peer != "10.111.0.1:80" {
		t.Errorf("through the load-balancer address: %+v", r)
	}
}

// TestIPv6AndDualStackFromStore: an IPv6-only Service (ipFamilies [IPv6])
// and a dual-stack one ([IPv6, IPv4]) written to the store are served on
// their IPv6 ClusterIPs by the eBPF programs, with IPv6 backends on ULA
// addresses inside the test namespace; both service ranges are blackholed
// there; the cluster DNS answers AAAA (and A for the dual-stack Service)
// through its own IPv6 ClusterIP.
func TestIPv6AndDualStackFromStore(t *testing.T) {
	ctx := context.Background()
	ns, h, cg := newEBPFNetns(t)
	for _, a := range []string{"fd00:db8::2/128", "fd00:db8::3/128", "fd00:db8::53/128"} {
		ns.AddAddr(t, "lo", a)
	}
	cidr6 := netip.MustParsePrefix("fd00:10:96::/108")
	s, err := store.Open(ctx, store.Config{ServiceCIDR: nettest.ServiceCIDR, SecondaryServiceCIDR: cidr6, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p := newProxy(t, Config{Mode: ModeEBPF, Cgroup: cg, ServiceCIDR: cidr6, ServiceCIDRs: []netip.Prefix{nettest.ServiceCIDR},
		Netlink: h, Logger: slog.New(slog.DiscardHandler)})
	if len(p.blackhole) != 2 {
		t.Fatalf("%d blackhole routes, want 2", len(p.blackhole))
	}
	for _, bh := range p.blackhole {
		if ok, err := bh.Present(); !ok || err != nil {
			t.Fatalf("blackhole route: %v %v", ok, err)
		}
	}
	for _, a := range []string{"[fd00:db8::2]:8080", "[fd00:db8::3]:8080", "127.0.0.2:8080"} {
		nettest.StartBackend(t, ns, "tcp", a)
	}
	runProxy(t, p, s)
	v6 := webService("default", "v6", "fd00:10:96::10")
	v6.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
	dual := webService("default", "dual", "fd00:10:96::20")
	dual.Spec.ClusterIPs = []string{"fd00:10:96::20", "10.96.0.20"}
	dual.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
	dual.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyPreferDualStack)
	slice6 := func(svc, name string, addrs ...string) *discoveryv1.EndpointSlice {
		ready := map[string]bool{}
		for _, a := range addrs {
			ready[a] = true
		}
		sl := webSlice("default", svc, name, 8080, ready)
		sl.AddressType = discoveryv1.AddressTypeIPv6
		return sl
	}
	for _, o := range []any{v6, dual,
		slice6("v6", "v6-1", "fd00:db8::2", "fd00:db8::3"),
		slice6("dual", "dual-6", "fd00:db8::3"),
		webSlice("default", "dual", "dual-4", 8080, map[string]bool{"127.0.0.2": true})} {
		var err error
		switch o := o.(type) {
		case *corev1.Service:
			_, err = store.Create(ctx, s, o)
		case *discoveryv1.EndpointSlice:
			_, err = store.Create(ctx, s, o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "services programmed", func() bool {
		return readyOf(p, "[fd00:10:96::10]:80/TCP") == 2 && readyOf(p, "[fd00:10:96::20]:80/TCP") == 1 && readyOf(p, "10.96.0.20:80/TCP") == 1
	})
	c := nettest.StartClient(t, ns, cg)
	seen := map[string]bool{}
	for range 30 {
		r := c.Do(t, "tcp [fd00:10:96::10]:80")
		if r.Err != "" || r.Peer != "[fd00:10:96::10]:80" {
			t.Fatalf("IPv6 service: %+v", r)
		}
		seen[r.Backend] = true
	}
	if diff := cmp.Diff(map[string]bool{"[fd00:db8::2]:8080": true, "[fd00:db8::3]:8080": true}, seen); diff != "" {
		t.Errorf("IPv6 backends chosen (-want +got):\n%s", diff)
	}
	for cmd, want := range map[string]nettest.Result{
		"tcp [fd00:10:96::20]:80": {Backend: "[fd00:db8::3]:8080", Peer: "[fd00:10:96::20]:80"},
		"tcp 10.96.0.20:80":       {Backend: "127.0.0.2:8080", Peer: "10.96.0.20:80"},
	} {
		if got := c.Do(t, cmd); got != want {
			t.Errorf("%s = %+v, want %+v", cmd, got, want)
		}
	}

	// Cluster DNS on an IPv6 ClusterIP.
	startClusterDNS(t, s, ns, "[fd00:db8::53]:0", "fd00:10:96::a")
	waitFor(t, "kube-dns programmed", func() bool { return readyOf(p, "[fd00:10:96::a]:53/UDP") == 1 })
	for _, tt := range []struct{ q, want string }{
		{"v6.default.svc.cluster.local AAAA", "fd00:10:96::10"},
		{"dual.default.svc.cluster.local AAAA", "fd00:10:96::20"},
		{"dual.default.svc.cluster.local A", "10.96.0.20"},
		{"0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa PTR", "dual.default.svc.cluster.local."},
	} {
		r := c.Do(t, "dns [fd00:10:96::a]:53 "+tt.q)
		if r.Err != "" || r.Backend != tt.want || r.Peer != "[fd00:10:96::a]:53" {
			t.Errorf("%s = %+v, want %s from [fd00:10:96::a]:53", tt.q, r, tt.want)
		}
	}
}
