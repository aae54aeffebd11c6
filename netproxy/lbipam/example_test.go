package lbipam_test

import (
	"fmt"
	"net/netip"

	"github.com/tugboatdev/tugboat/netproxy/lbipam"
)

// Addresses are handed out lowest first, skipping a prefix's network and
// broadcast addresses.
func ExampleAllocator() {
	a := lbipam.NewAllocator([]netip.Prefix{netip.MustParsePrefix("10.111.0.0/30")})
	for _, svc := range []string{"default/web", "default/api", "default/db"} {
		ip, err := a.Next(svc)
		fmt.Println(svc, ip, err)
	}
	// Output:
	// default/web 10.111.0.1 <nil>
	// default/api 10.111.0.2 <nil>
	// default/db invalid IP lbipam: pool exhausted
}
