package netproxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/netproxy/dataplane"
	"github.com/tugboatdev/tugboat/netproxy/internal/nettest"
	"github.com/tugboatdev/tugboat/store"
)

// vip returns the i-th service address inside base (a /12 or /16).
func vip(base netip.Addr, i int) netip.Addr {
	b := base.As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n += uint32(i) + 1
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// tenBackends are 127.0.0.2-11:8080.
var tenBackends = func() []netip.AddrPort {
	var out []netip.AddrPort
	for j := range 10 {
		out = append(out, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + j)}), 8080))
	}
	return out
}()

// model returns n services on port 80 of consecutive VIPs after base, each
// with the given backends.
func model(base netip.Addr, n int, backends []netip.AddrPort) map[string][]dataplane.Service {
	all := make(map[string][]dataplane.Service, n)
	for i := range n {
		s := dataplane.Service{Frontend: dataplane.Frontend{Addr: vip(base, i), Port: 80, Proto: dataplane.TCP}, Name: fmt.Sprintf("bench/s%d:http", i)}
		for _, ap := range backends {
			s.Backends = append(s.Backends, dataplane.Backend{Addr: ap.Addr(), Port: ap.Port(), Ready: true})
		}
		all[fmt.Sprintf("bench/s%d", i)] = []dataplane.Service{s}
	}
	return all
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// benchConnects runs b.N rounds of connect()+first read+close() in client
// c, interleaved over the named addresses, and reports the client-side time
// per connection for each name, and the overhead of the first over the
// second in percent, of the means and of the medians (the median is not
// moved by preemption spikes on a loaded machine).
func benchConnects(b *testing.B, c *nettest.Client, names []string, addrs ...string) {
	b.Helper()
	b.ResetTimer()
	r := c.Do(b, fmt.Sprintf("bench %d %s", b.N, strings.Join(addrs, " ")))
	b.StopTimer()
	if r.Err != "" {
		b.Fatalf("bench %v: %s", addrs, r.Err)
	}
	var per []float64
	for i, f := range strings.Fields(r.Backend) {
		ns, _ := strconv.ParseInt(f, 10, 64)
		per = append(per, float64(ns)/float64(b.N))
		b.ReportMetric(per[i], names[i]+"-ns/conn")
	}
	if len(per) >= 2 {
		b.ReportMetric(100*(per[0]-per[1])/per[1], "overhead-%")
	}
	var med []float64
	for _, f := range strings.Fields(r.Peer) {
		ns, _ := strconv.ParseInt(f, 10, 64)
		med = append(med, float64(ns))
	}
	if len(med) >= 2 && med[1] > 0 {
		b.ReportMetric(100*(med[0]-med[1])/med[1], "median-overhead-%")
	}
}

// BenchmarkConnect measures connect()+close() from a client process through
// a service VIP and straight to a backend, in eBPF mode (client in the
// attached cgroup; "direct-nobpf" from a cgroup without programs) and in
// userspace mode, with 10 and 10,000 services programmed.
func BenchmarkConnect(b *testing.B) {
	b.Run("ebpf", func(b *testing.B) {
		nettest.NeedEBPF(b)
		ns := nettest.NewNetns(b)
		for j := range 10 {
			nettest.StartBackend(b, ns, "tcp", fmt.Sprintf("127.0.0.%d:8080", 2+j))
		}
		cg := nettest.NewCgroup(b)
		plain := nettest.NewCgroup(b)
		pin := nettest.NewBPFFS(b)
		h, err := ns.Netlink()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(h.Close)
		p, err := New(context.Background(), Config{Mode: ModeEBPF, Cgroup: cg, PinPath: pin, ServiceCIDR: nettest.ServiceCIDR, Netlink: h, Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Uninstall() })
		c := nettest.StartClient(b, ns, cg)
		cPlain := nettest.StartClient(b, ns, plain)
		base := netip.MustParseAddr("10.96.0.0")
		for _, n := range []int{10, 10000} {
			if err := p.Table().Resync(context.Background(), model(base, n, tenBackends)); err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
				benchConnects(b, c, []string{"vip", "direct"}, vip(base, 0).String()+":80", "127.0.0.2:8080")
			})
			b.Run(fmt.Sprintf("services=%d/outside-cgroup", n), func(b *testing.B) {
				benchConnects(b, cPlain, []string{"direct"}, "127.0.0.2:8080")
			})
		}
		// An IPv6 service (fd00:10:96::/108, blackholed in the namespace)
		// with one backend on ::1, next to the 10,000 IPv4 ones.
		h6 := netip.MustParsePrefix("fd00:10:96::/108")
		ns.Blackhole(b, h6)
		be6 := nettest.StartBackend(b, ns, "tcp", "[::1]:8080")
		if err := p.Table().Set(context.Background(), "bench/v6", []dataplane.Service{{
			Frontend: dataplane.Frontend{Addr: netip.MustParseAddr("fd00:10:96::10"), Port: 80, Proto: dataplane.TCP},
			Backends: []dataplane.Backend{{Addr: be6.Addr.Addr(), Port: be6.Addr.Port(), Ready: true}}}}); err != nil {
			b.Fatal(err)
		}
		b.Run("services=10000/ipv6", func(b *testing.B) {
			benchConnects(b, c, []string{"vip", "direct"}, "[fd00:10:96::10]:80", be6.Addr.String())
		})
	})
	b.Run("userspace", func(b *testing.B) {
		// The userspace proxy serves the namespace it runs in: backends,
		// proxy and client are all in the test's own namespace, on loopback.
		nettest.NeedEBPF(b) // the client runs in a test cgroup
		var bes []netip.AddrPort
		for j := range 10 {
			bes = append(bes, nettest.StartBackend(b, nil, "tcp", fmt.Sprintf("127.0.0.%d:0", 2+j)).Addr)
		}
		cg := nettest.NewCgroup(b)
		p, err := New(context.Background(), Config{Mode: ModeUserspace, Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Uninstall() })
		c := nettest.StartClient(b, nil, cg)
		base := netip.MustParseAddr("127.96.0.0")
		for _, n := range []int{10, 10000} {
			if err := p.Table().Resync(context.Background(), model(base, n, bes)); err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
				benchConnects(b, c, []string{"vip", "direct"}, vip(base, 0).String()+":80", bes[0].String())
			})
		}
	})
}

// BenchmarkProgram measures programming 10,000 services × 10 endpoints into
// an empty data plane (one op = the whole set).
func BenchmarkProgram(b *testing.B) {
	all := model(netip.MustParseAddr("10.96.0.0"), 10000, tenBackends)
	b.Run("ebpf/10000x10", func(b *testing.B) {
		nettest.NeedEBPF(b)
		cg := nettest.NewCgroup(b)
		for range b.N {
			b.StopTimer()
			p, err := New(context.Background(), Config{Mode: ModeEBPF, Cgroup: cg, Logger: quiet()})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := p.Table().Resync(context.Background(), all); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := p.Uninstall(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("userspace/10000x10", func(b *testing.B) {
		uall := model(netip.MustParseAddr("127.96.0.0"), 10000, tenBackends)
		for range b.N {
			b.StopTimer()
			p, err := New(context.Background(), Config{Mode: ModeUserspace, Logger: quiet()})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := p.Table().Resync(context.Background(), uall); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			p.Uninstall()
			b.StartTimer()
		}
	})
}

func fillStore(b *testing.B, s *store.Store, base netip.Addr, n int) {
	b.Helper()
	ctx := context.Background()
	if _, err := store.Create(ctx, s, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		if _, err := store.Create(ctx, s, webService("bench", name, vip(base, i).String())); err != nil {
			b.Fatal(err)
		}
		ready := map[string]bool{}
		for j := range 10 {
			ready[fmt.Sprintf("127.0.0.%d", 2+j)] = true
		}
		if _, err := store.Create(ctx, s, webSlice("bench", name, name+"-1", 8080, ready)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEndpointChange measures the time from an EndpointSlice write to
// the store until the data plane has been programmed with it, with 1,000 and
// 10,000 services × 10 endpoints synced. It reports p50 and p99 over b.N
// changes, and the p99 of the two parts: store-write (store.Update until it
// returns) and proxy (from the proxy receiving the watch event to the end of
// programming).
func BenchmarkEndpointChange(b *testing.B) {
	run := func(b *testing.B, cfg Config, base netip.Addr, services int) {
		s := openStore(b, map[bool]string{true: "127.96.0.0/16", false: "10.96.0.0/12"}[base.IsLoopback()])
		fillStore(b, s, base, services)
		p, err := New(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Uninstall() })
		type setEvent struct {
			owner string
			took  time.Duration // from receiving the watch event
		}
		done := make(chan setEvent, 16)
		p.afterSet = func(owner string, received time.Time) { done <- setEvent{owner, time.Since(received)} }
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			_ = p.Run(ctx, s)
		}()
		b.Cleanup(func() { cancel(); <-stopped })
		<-p.Synced()
		slicesNow := make([]*discoveryv1.EndpointSlice, services)
		for i := range services {
			sl, err := store.Get[*discoveryv1.EndpointSlice](ctx, s, "bench", fmt.Sprintf("s%d-1", i))
			if err != nil {
				b.Fatal(err)
			}
			slicesNow[i] = sl
		}
		lat := make([]time.Duration, 0, b.N)
		inProxy := make([]time.Duration, 0, b.N)
		writes := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			k := i % services
			sl := slicesNow[k].DeepCopy()
			e := &sl.Endpoints[i%10]
			e.Conditions.Ready = ptr(e.Conditions.Ready != nil && !*e.Conditions.Ready)
			start := time.Now()
			upd, err := store.Update(ctx, s, sl)
			if err != nil {
				b.Fatal(err)
			}
			writes = append(writes, time.Since(start))
			want := "bench/s" + strconv.Itoa(k)
			for ev := range done {
				if ev.owner == want {
					inProxy = append(inProxy, ev.took)
					break
				}
			}
			lat = append(lat, time.Since(start))
			slicesNow[k] = upd
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		slices.Sort(inProxy)
		b.ReportMetric(float64(inProxy[len(inProxy)*99/100].Nanoseconds()), "proxy-p99-ns")
		slices.Sort(writes)
		b.ReportMetric(float64(writes[len(writes)*99/100].Nanoseconds()), "store-write-p99-ns")
	}
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("ebpf/services=%d", n), func(b *testing.B) {
			nettest.NeedEBPF(b)
			cg := nettest.NewCgroup(b)
			run(b, Config{Mode: ModeEBPF, Cgroup: cg, Logger: quiet()}, netip.MustParseAddr("10.96.0.0"), n)
		})
		b.Run(fmt.Sprintf("userspace/services=%d", n), func(b *testing.B) {
			run(b, Config{Mode: ModeUserspace, Logger: quiet()}, netip.MustParseAddr("127.96.0.0"), n)
		})
	}
}

// BenchmarkInitialSync measures a proxy starting against a store holding
// 10,000 services × 10 endpoints: from New until the first full resync has
// programmed everything (one op = one start).
func BenchmarkInitialSync(b *testing.B) {
	run := func(b *testing.B, cfg func() Config, cidr string, base netip.Addr) {
		s := openStore(b, cidr)
		fillStore(b, s, base, 10000)
		runtime.GC() // leave the garbage of filling the store out of the figure
		b.ResetTimer()
		for range b.N {
			p, err := New(context.Background(), cfg())
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			stopped := make(chan struct{})
			go func() { defer close(stopped); _ = p.Run(ctx, s) }()
			<-p.Synced()
			b.StopTimer()
			if f, _, _ := p.Table().Stats(); f != 10000 {
				b.Fatalf("%d frontends programmed", f)
			}
			cancel()
			<-stopped
			if err := p.Uninstall(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.Run("ebpf/10000x10", func(b *testing.B) {
		nettest.NeedEBPF(b)
		cg := nettest.NewCgroup(b)
		run(b, func() Config { return Config{Mode: ModeEBPF, Cgroup: cg, Logger: quiet()} }, "10.96.0.0/12", netip.MustParseAddr("10.96.0.0"))
	})
	b.Run("userspace/10000x10", func(b *testing.B) {
		run(b, func() Config { return Config{Mode: ModeUserspace, Logger: quiet()} }, "127.96.0.0/16", netip.MustParseAddr("127.96.0.0"))
	})
}
