package bpf

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/tugboatdev/tugboat/netproxy/dataplane"
)

// TestPlanWritesOnlyChangedSlots checks the map writes an endpoint change
// costs (no kernel needed: plans are computed in memory).
func TestPlanWritesOnlyChangedSlots(t *testing.T) {
	lb := &LoadBalancer{svcs: map[dataplane.Frontend]*svcState{}, nextSvc: 1, nextBe: 1}
	mk := func(ready map[int]bool, n int) dataplane.Service {
		s := dataplane.Service{Frontend: fe("10.96.0.1:80", dataplane.TCP)}
		for i := range n {
			s.Backends = append(s.Backends, dataplane.Backend{Addr: netip.MustParseAddr(fmt.Sprintf("10.0.0.%d", i+1)), Port: 8080, Ready: ready[i]})
		}
		return s
	}
	all := map[int]bool{}
	for i := range 10 {
		all[i] = true
	}
	apply := func(s dataplane.Service) *plan {
		t.Helper()
		p, err := lb.prepare(s)
		if err != nil {
			t.Fatal(err)
		}
		if p != nil {
			lb.svcs[p.fe] = p.st // what finish records, without the maps
		}
		return p
	}
	p := apply(mk(all, 10))
	if len(p.beKeys) != 10 || len(p.slotKeys) != 10 || p.svcSame {
		t.Fatalf("first plan: %d backends, %d slots, svcSame %v", len(p.beKeys), len(p.slotKeys), p.svcSame)
	}
	if p := apply(mk(all, 10)); p != nil {
		t.Errorf("unchanged service planned writes: %+v", p)
	}
	// Backend 3 turns not ready: the last slot's backend moves into its
	// slot; one slot write, one stale slot, one stale backend, the service
	// entry's count changes.
	r := map[int]bool{}
	for i := range 10 {
		r[i] = i != 3
	}
	p = apply(mk(r, 10))
	if len(p.beKeys) != 0 || len(p.slotKeys) != 1 || p.slotKeys[0].Slot != 4 || len(p.staleSlot) != 1 || p.staleSlot[0].Slot != 10 || len(p.staleBe) != 1 || p.svcSame {
		t.Errorf("not-ready plan: backends %v slots %v stale slots %v stale backends %v svcSame %v", p.beKeys, p.slotKeys, p.staleSlot, p.staleBe, p.svcSame)
	}
	// Backend 3 back and backend 5 gone at once: the new backend takes the
	// freed slot; the service entry is not rewritten.
	r[3], r[5] = true, false
	p = apply(mk(r, 10))
	if len(p.beKeys) != 1 || len(p.slotKeys) != 1 || len(p.staleSlot) != 0 || len(p.staleBe) != 1 || !p.svcSame {
		t.Errorf("swap plan: backends %v slots %v stale slots %v stale backends %v svcSame %v", p.beKeys, p.slotKeys, p.staleSlot, p.staleBe, p.svcSame)
	}
	// The slots always hold exactly the ready backends.
	got := map[netip.AddrPort]bool{}
	for _, b := range lb.svcs[fe("10.96.0.1:80", dataplane.TCP)].backends {
		got[b.ap] = true
	}
	for i := range 10 {
		if ap := netip.MustParseAddrPort(fmt.Sprintf("10.0.0.%d:8080", i+1)); got[ap] != r[i] {
			t.Errorf("backend %s in slots: %v, ready %v", ap, got[ap], r[i])
		}
	}
	if n := len(lb.svcs[fe("10.96.0.1:80", dataplane.TCP)].backends); n != 9 {
		t.Errorf("%d slots, want 9", n)
	}
}
