package route

import (
	"errors"
	"golang.org/x/sys/unix"
	"net/netip"
	"testing"

	"github.com/tugboatdev/tugboat/netproxy/internal/nettest"
)

func TestBlackholeInTestNamespace(t *testing.T) {
	ns := nettest.NewNetns(t)
	h, err := ns.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	cidr := netip.MustParsePrefix("10.96.0.0/12")
	b, err := InstallBlackhole(h, cidr)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Present(); err != nil || !ok {
		t.Fatalf("Present = %v, %v after install", ok, err)
	}
	// Installing twice replaces the route.
	if _, err := InstallBlackhole(h, cidr); err != nil {
		t.Fatal(err)
	}
	// The kernel answers a route lookup for a VIP with EINVAL: the packet
	// would be discarded, not routed.
	if rs, err := h.RouteGet(netip.MustParseAddr("10.96.0.10").AsSlice()); !errors.Is(err, unix.EINVAL) {
		t.Errorf("route to VIP = %+v, %v; want EINVAL from the blackhole", rs, err)
	}
	if err := b.Remove(); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Present(); err != nil || ok {
		t.Errorf("Present = %v, %v after remove", ok, err)
	}
	if err := b.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}
