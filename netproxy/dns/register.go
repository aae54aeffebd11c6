package dns

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/store"
)

// Registration describes how the cluster reaches its DNS servers.
type Registration struct {
	// ClusterIP is the address of the kube-dns Service (the nameserver pods
	// get in resolv.conf), inside the service CIDR; empty lets the store
	// allocate one.
	ClusterIP string
	// Servers are the addresses the DNS servers listen on (UDP and TCP on
	// the same port, all of one address family), for example the node's
	// address and port 53.
	Servers []netip.AddrPort
}

// Register creates or updates the kube-dns Service in kube-system (ports
// "dns" UDP 53 and "dns-tcp" TCP 53) and its EndpointSlice pointing at
// reg.Servers, so the service proxy routes the Service's address to the
// servers. It returns the Service as stored.
func Register(ctx context.Context, s store.Interface, reg Registration) (*corev1.Service, error) {
	if len(reg.Servers) == 0 {
		return nil, fmt.Errorf("dns: no servers to register")
	}
	port := reg.Servers[0].Port()
	v6 := reg.Servers[0].Addr().Unmap().Is6()
	for _, a := range reg.Servers {
		if a.Port() != port {
			return nil, fmt.Errorf("dns: servers listen on different ports (%d, %d)", port, a.Port())
		}
		if a.Addr().Unmap().Is6() != v6 {
			return nil, fmt.Errorf("dns: servers of both address families (%s, %s)", reg.Servers[0], a)
		}
	}
	family := discoveryv1.AddressTypeIPv4
	if v6 {
		family = discoveryv1.AddressTypeIPv6
	}
	const ns, name = "kube-system", "kube-dns"
	labels := map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.ServiceSpec{
			ClusterIP: reg.ClusterIP,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(int32(port))},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(int32(port))},
			},
		},
	}
	out, err := store.Create(ctx, s, svc)
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := store.Get[*corev1.Service](ctx, s, ns, name)
		if gerr != nil {
			return nil, fmt.Errorf("dns: %w", gerr)
		}
		upd := cur.DeepCopy()
		upd.Spec.Ports = svc.Spec.Ports
		out, err = store.Update(ctx, s, upd)
	}
	if err != nil {
		return nil, fmt.Errorf("dns: kube-dns Service: %w", err)
	}
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	dnsName, tcpName := "dns", "dns-tcp"
	p := int32(port)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kube-dns-tugboat",
			Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "tugboat-dns"}},
		AddressType: family,
		Ports:       []discoveryv1.EndpointPort{{Name: &dnsName, Port: &p, Protocol: &udp}, {Name: &tcpName, Port: &p, Protocol: &tcp}},
	}
	ready := true
	for _, a := range reg.Servers {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{a.Addr().Unmap().String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	if _, err := store.Create(ctx, s, slice); apierrors.IsAlreadyExists(err) {
		cur, gerr := store.Get[*discoveryv1.EndpointSlice](ctx, s, ns, slice.Name)
		if gerr != nil {
			return nil, fmt.Errorf("dns: %w", gerr)
		}
		upd := cur.DeepCopy()
		upd.Ports, upd.Endpoints = slice.Ports, slice.Endpoints
		if _, err := store.Update(ctx, s, upd); err != nil {
			return nil, fmt.Errorf("dns: kube-dns EndpointSlice: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("dns: kube-dns EndpointSlice: %w", err)
	}
	return out, nil
}
