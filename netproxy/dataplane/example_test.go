package dataplane_test

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/netproxy/dataplane"
)

// printer is a Programmer that prints what it is asked to do.
type printer struct{}

func (printer) Mode() string { return "print" }
func (printer) Upsert(_ context.Context, s dataplane.Service) error {
	fmt.Printf("upsert %s -> %d ready of %d\n", s.Frontend, len(s.Ready()), len(s.Backends))
	return nil
}
func (printer) Delete(_ context.Context, fe dataplane.Frontend) error {
	fmt.Println("delete", fe)
	return nil
}
func (printer) Programmed() []dataplane.Frontend { return nil }

// A Service with two ports and one EndpointSlice becomes two frontends; the
// Table programs only what changes.
func Example() {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
		}},
	}
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	http, dns := "http", "dns"
	p8080, p5353 := int32(8080), int32(5353)
	notReady := false
	slice := &discoveryv1.EndpointSlice{
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: &http, Port: &p8080, Protocol: &tcp},
			{Name: &dns, Port: &p5353, Protocol: &udp},
		},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.5"}},
			{Addresses: []string{"10.244.0.6"}, Conditions: discoveryv1.EndpointConditions{Ready: &notReady}},
		},
	}
	svcs := dataplane.FromService(svc, []*discoveryv1.EndpointSlice{slice}, dataplane.Options{NodeIPs: []netip.Addr{netip.MustParseAddr("192.168.1.2")}})
	for _, s := range svcs {
		fmt.Println(s.Name, s.Frontend, s.Backends)
	}
	t := dataplane.NewTable(printer{})
	ctx := context.Background()
	_ = t.Set(ctx, "default/web", svcs)
	_ = t.Set(ctx, "default/web", svcs[:1]) // the UDP port is gone
	// Output:
	// default/web:http 10.96.0.10:80/TCP [{10.244.0.5 8080 true} {10.244.0.6 8080 false}]
	// default/web:dns 10.96.0.10:53/UDP [{10.244.0.5 5353 true} {10.244.0.6 5353 false}]
	// upsert 10.96.0.10:80/TCP -> 1 ready of 2
	// upsert 10.96.0.10:53/UDP -> 1 ready of 2
	// delete 10.96.0.10:53/UDP
}
