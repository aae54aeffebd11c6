package bpf

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/netproxy/dataplane"
	"github.com/tugboatdev/tugboat/netproxy/internal/nettest"
)

// BenchmarkUpsertEndpointChange measures the map writes of one endpoint
// change (a backend of a 10-backend service turns not ready or ready again)
// with 1,000 services programmed: the eBPF part of the proxy's
// endpoint-change latency. It reports the p50 and p99 of one Upsert.
func BenchmarkUpsertEndpointChange(b *testing.B) {
	nettest.NeedEBPF(b)
	lb, err := Open(context.Background(), Config{Cgroup: nettest.NewCgroup(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lb.Uninstall() })
	ctx := context.Background()
	const services = 1000
	svcs := make([]dataplane.Service, services)
	for i := range svcs {
		s := dataplane.Service{Frontend: dataplane.Frontend{Addr: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}), Port: 80, Proto: dataplane.TCP}}
		for j := range 10 {
			s.Backends = append(s.Backends, dataplane.Backend{Addr: netip.AddrFrom4([4]byte{10, 244, byte(i >> 8), byte(i)}), Port: uint16(8080 + j), Ready: true})
		}
		svcs[i] = s
	}
	for _, err := range lb.UpsertMany(ctx, svcs) {
		if err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		s := &svcs[i%services]
		bk := &s.Backends[(i/services)%10]
		bk.Ready = !bk.Ready
		start := time.Now()
		if err := lb.Upsert(ctx, *s); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
