package userspace_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/tugboatdev/tugboat/netproxy/dataplane"
	"github.com/tugboatdev/tugboat/netproxy/userspace"
)

// A service address on loopback forwards to a backend; with no ready
// backend it is refused.
func Example() {
	backend, _ := net.Listen("tcp", "127.0.0.1:0")
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(c, "hello from the backend")
			c.Close()
		}
	}()
	be := backend.Addr().(*net.TCPAddr).AddrPort()

	p := userspace.New(userspace.Config{})
	defer p.Close()
	fe := dataplane.Frontend{Addr: netip.MustParseAddr("127.96.0.99"), Port: 8080, Proto: dataplane.TCP}
	ctx := context.Background()
	_ = p.Upsert(ctx, dataplane.Service{Frontend: fe, Backends: []dataplane.Backend{{Addr: be.Addr(), Port: be.Port(), Ready: true}}})

	c, err := net.Dial("tcp", "127.96.0.99:8080")
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := io.ReadAll(c)
	c.Close()
	fmt.Println(string(b))

	_ = p.Upsert(ctx, dataplane.Service{Frontend: fe, Backends: []dataplane.Backend{{Addr: be.Addr(), Port: be.Port(), Ready: false}}})
	_, err = net.Dial("tcp", "127.96.0.99:8080")
	fmt.Println(err != nil)
	// Output:
	// hello from the backend
	// true
}
