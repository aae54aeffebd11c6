package bpf_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/tugboatdev/tugboat/netproxy/bpf"
	"github.com/tugboatdev/tugboat/netproxy/dataplane"
)

// Attach the load balancer to a cgroup of your own (never the root cgroup),
// program a service and remove everything again. Needs root and cgroup v2.
func Example() {
	ctx := context.Background()
	lb, err := bpf.Open(ctx, bpf.Config{
		Cgroup:  "/sys/fs/cgroup/unified/my-pods", // created by the caller
		PinPath: "/sys/fs/bpf/tugboat",            // on a bpffs mount
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lb.Uninstall() // Close instead keeps the programs and maps pinned for a restart
	table := dataplane.NewTable(lb)
	err = table.Set(ctx, "default/web", []dataplane.Service{{
		Frontend: dataplane.Frontend{Addr: netip.MustParseAddr("10.96.0.10"), Port: 80, Proto: dataplane.TCP},
		Backends: []dataplane.Backend{{Addr: netip.MustParseAddr("10.244.0.5"), Port: 8080, Ready: true}},
	}})
	fmt.Println(err)
}
