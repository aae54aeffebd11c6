package route_test

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/tugboatdev/tugboat/netproxy/route"
)

// Install the service CIDR's blackhole route in a network namespace of your
// own. Needs root.
func Example() {
	ns, err := netns.GetFromPath("/var/run/netns/mynode") // created by the caller
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	bh, err := route.InstallBlackhole(h, netip.MustParsePrefix("10.96.0.0/12"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bh.Remove()
}
