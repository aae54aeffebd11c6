package netproxy_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/netproxy"
	"github.com/tugboatdev/tugboat/store"
)

// Run the proxy against an in-memory store. Without a cgroup the userspace
// mode runs, so the service CIDR is a loopback range.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := store.Open(ctx, store.Config{ServiceCIDR: netip.MustParsePrefix("127.96.0.0/16"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	backend, _ := net.Listen("tcp", "127.0.0.1:0")
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "hello from the backend")
			c.Close()
		}
	}()
	port := int32(backend.Addr().(*net.TCPAddr).Port)

	p, err := netproxy.New(ctx, netproxy.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Uninstall()
	fmt.Println("mode:", p.Mode())
	go p.Run(ctx, s)
	<-p.Synced()

	name, proto := "http", corev1.ProtocolTCP
	_, _ = store.Create(ctx, s, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:       corev1.ServiceSpec{ClusterIP: "127.96.0.10", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	})
	_, _ = store.Create(ctx, s, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}}},
	})
	for { // wait until the proxy has programmed the endpoint
		if st := p.Stats(); st.ReadyBackends == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	c, err := net.Dial("tcp", "127.96.0.10:80")
	if err != nil {
		fmt.Println(err)
		return
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	fmt.Print(line)
	// Output:
	// mode: userspace
	// hello from the backend
}
