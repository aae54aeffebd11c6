package route

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Blackhole is a blackhole route for one CIDR, installed through a netlink
// handle (which chooses the network namespace).
type Blackhole struct {
	h     *netlink.Handle
	route netlink.Route
}

func toIPNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// InstallBlackhole adds (or replaces) a blackhole route for cidr in the main
// routing table of h's namespace. A nil h uses the namespace of the calling
// thread, which for a real node is the host: tests must pass a handle of a
// namespace they created.
func InstallBlackhole(h *netlink.Handle, cidr netip.Prefix) (*Blackhole, error) {
	if !cidr.IsValid() {
		return nil, errors.New("route: invalid CIDR")
	}
	if h == nil {
		var err error
		if h, err = netlink.NewHandle(); err != nil {
			return nil, fmt.Errorf("route: netlink: %w", err)
		}
	}
	b := &Blackhole{h: h, route: netlink.Route{Dst: toIPNet(cidr), Type: unix.RTN_BLACKHOLE, Table: unix.RT_TABLE_MAIN}}
	if err := h.RouteReplace(&b.route); err != nil {
		return nil, fmt.Errorf("route: blackhole %s: %w", cidr, err)
	}
	return b, nil
}

// Remove deletes the route; a route already gone is no error.
func (b *Blackhole) Remove() error {
	if err := b.h.RouteDel(&b.route); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("route: remove blackhole %s: %w", b.route.Dst, err)
	}
	return nil
}

// Present reports whether the blackhole route is installed.
func (b *Blackhole) Present() (bool, error) {
	routes, err := b.h.RouteListFiltered(unix.AF_UNSPEC, &netlink.Route{Dst: b.route.Dst, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return false, fmt.Errorf("route: list: %w", err)
	}
	for _, r := range routes {
		if r.Type == unix.RTN_BLACKHOLE {
			return true, nil
		}
	}
	return false, nil
}
