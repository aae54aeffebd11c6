package store_test

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/store"
)

func svc(name string, typ corev1.ServiceType, mut ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{Type: typ, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: 80}}},
	}
	for _, m := range mut {
		m(s)
	}
	return s
}

// TestServiceAllocationAtCreate checks that a Service gets its clusterIP
// and node ports when it is created, that requested ones must be free and
// in range (else the create fails with Invalid naming the field, and
// nothing is written), and that deletion releases them.
func TestServiceAllocationAtCreate(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{ServiceCIDR: netip.MustParsePrefix("10.96.0.0/24"), NodePortRange: store.PortRange{Min: 30000, Max: 30002}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	a, err := store.Create(ctx, s, svc("a", corev1.ServiceTypeNodePort))
	if err != nil {
		t.Fatal(err)
	}
	if ip, err := netip.ParseAddr(a.Spec.ClusterIP); err != nil || !netip.MustParsePrefix("10.96.0.0/24").Contains(ip) {
		t.Fatalf("clusterIP %q is not from the service CIDR", a.Spec.ClusterIP)
	}
	if len(a.Spec.ClusterIPs) != 1 || a.Spec.ClusterIPs[0] != a.Spec.ClusterIP || len(a.Spec.IPFamilies) != 1 || a.Spec.IPFamilies[0] != corev1.IPv4Protocol || *a.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
		t.Errorf("clusterIPs %v, families %v, policy %v", a.Spec.ClusterIPs, a.Spec.IPFamilies, a.Spec.IPFamilyPolicy)
	}
	if np := a.Spec.Ports[0].NodePort; np < 30000 || np > 30002 {
		t.Errorf("nodePort %d outside 30000-30002", np)
	}

	tests := []struct {
		name string
		in   *corev1.Service
		want string
	}{
		{"taken clusterIP", svc("b", corev1.ServiceTypeClusterIP, func(s *corev1.Service) { s.Spec.ClusterIP = a.Spec.ClusterIP }),
			"spec.clusterIPs[0]: Invalid value: \"" + a.Spec.ClusterIP + "\": failed to allocate IP " + a.Spec.ClusterIP + ": provided IP is already allocated"},
		{"clusterIP out of range", svc("b", corev1.ServiceTypeClusterIP, func(s *corev1.Service) { s.Spec.ClusterIP = "10.97.0.1" }),
			"spec.clusterIP: Invalid value: \"10.97.0.1\": provided IP is not in the valid range"},
		{"taken nodePort", svc("b", corev1.ServiceTypeNodePort, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = a.Spec.Ports[0].NodePort }),
			"spec.ports[0].nodePort: Invalid value: " + itoa(a.Spec.Ports[0].NodePort) + ": provided port is already allocated"},
		{"nodePort out of range", svc("b", corev1.ServiceTypeNodePort, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 31000 }),
			"spec.ports[0].nodePort: Invalid value: 31000: provided port is not in the valid range. The range of valid ports is 30000-30002"},
		{"dual-stack on a single-stack cluster", svc("b", corev1.ServiceTypeClusterIP, func(s *corev1.Service) {
			p := corev1.IPFamilyPolicyRequireDualStack
			s.Spec.IPFamilyPolicy = &p
		}), "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"},
		{"family not configured", svc("b", corev1.ServiceTypeClusterIP, func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol} }),
			"spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := store.Create(ctx, s, tc.in)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("create: %v\nwant Invalid containing %q", err, tc.want)
			}
			if _, err := store.Get[*corev1.Service](ctx, s, "default", "b"); !apierrors.IsNotFound(err) {
				t.Errorf("a failed create left the Service behind: %v", err)
			}
		})
	}

	// A requested free address is granted; the cluster DNS address in the
	// low band stays free for whoever asks for it by name.
	dns, err := store.Create(ctx, s, svc("dns", corev1.ServiceTypeClusterIP, func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.10" }))
	if err != nil || dns.Spec.ClusterIP != "10.96.0.10" {
		t.Fatalf("requested free clusterIP: %v %v", dns.Spec.ClusterIP, err)
	}
	// Headless Services get None and no address.
	h, err := store.Create(ctx, s, svc("headless", corev1.ServiceTypeClusterIP, func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }))
	if err != nil || h.Spec.ClusterIP != corev1.ClusterIPNone || len(h.Spec.ClusterIPs) != 1 || h.Spec.ClusterIPs[0] != corev1.ClusterIPNone {
		t.Fatalf("headless: %v %v %v", h.Spec.ClusterIP, h.Spec.ClusterIPs, err)
	}
	// The node port range holds three ports: a and two more.
	b, err := store.Create(ctx, s, svc("b", corev1.ServiceTypeNodePort, func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, s, svc("c", corev1.ServiceTypeNodePort)); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "range 30000-30002 is full") {
		t.Fatalf("full node port range: %v", err)
	}
	// An update that leaves the allocated values out keeps them.
	upd := b.DeepCopy()
	upd.Spec.ClusterIP, upd.Spec.ClusterIPs = "", nil
	for i := range upd.Spec.Ports {
		upd.Spec.Ports[i].NodePort = 0
	}
	got, err := store.Update(ctx, s, upd)
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.ClusterIP != b.Spec.ClusterIP || got.Spec.Ports[0].NodePort != b.Spec.Ports[0].NodePort || got.Spec.Ports[1].NodePort != b.Spec.Ports[1].NodePort {
		t.Errorf("update lost allocations: %v %v, was %v %v", got.Spec.ClusterIP, got.Spec.Ports, b.Spec.ClusterIP, b.Spec.Ports)
	}
	// Switching b to ClusterIP releases its node ports; deleting a
	// releases its address and port.
	got.Spec.Type = corev1.ServiceTypeClusterIP
	for i := range got.Spec.Ports {
		got.Spec.Ports[i].NodePort = 0
	}
	if _, err := store.Update(ctx, s, got); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete[*corev1.Service](ctx, s, "default", "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	reuse, err := store.Create(ctx, s, svc("reuse", corev1.ServiceTypeNodePort, func(s *corev1.Service) {
		s.Spec.ClusterIP = a.Spec.ClusterIP
		s.Spec.Ports[0].NodePort = a.Spec.Ports[0].NodePort
	}))
	if err != nil {
		t.Fatalf("released address and port are not free again: %v", err)
	}
	if _, err := store.Create(ctx, s, svc("c", corev1.ServiceTypeNodePort, func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 81}}
	})); err != nil {
		t.Fatalf("b's released node ports: %v", err)
	}
	// A dry run checks but holds nothing.
	if _, err := s.Create(ctx, svc("dry", corev1.ServiceTypeClusterIP, func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.11" }), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, s, svc("wet", corev1.ServiceTypeClusterIP, func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.11" })); err != nil {
		t.Fatalf("a dry run held an address: %v", err)
	}
	_ = reuse
}

// TestServiceAllocationDualStack allocates both families with a
// secondary (IPv6) service CIDR.
func TestServiceAllocationDualStack(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{ServiceCIDR: netip.MustParsePrefix("10.96.0.0/16"), SecondaryServiceCIDR: netip.MustParsePrefix("fd00:10:96::/108")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	prefer := corev1.IPFamilyPolicyPreferDualStack
	d, err := store.Create(ctx, s, svc("dual", corev1.ServiceTypeClusterIP, func(s *corev1.Service) { s.Spec.IPFamilyPolicy = &prefer }))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Spec.ClusterIPs) != 2 || !netip.MustParseAddr(d.Spec.ClusterIPs[0]).Is4() || !netip.MustParsePrefix("fd00:10:96::/108").Contains(netip.MustParseAddr(d.Spec.ClusterIPs[1])) {
		t.Fatalf("dual-stack clusterIPs %v", d.Spec.ClusterIPs)
	}
	if len(d.Spec.IPFamilies) != 2 || d.Spec.IPFamilies[0] != corev1.IPv4Protocol || d.Spec.IPFamilies[1] != corev1.IPv6Protocol {
		t.Errorf("families %v", d.Spec.IPFamilies)
	}
	v6, err := store.Create(ctx, s, svc("v6", corev1.ServiceTypeClusterIP, func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol} }))
	if err != nil {
		t.Fatal(err)
	}
	if !netip.MustParseAddr(v6.Spec.ClusterIP).Is6() || len(v6.Spec.ClusterIPs) != 1 {
		t.Errorf("IPv6-only Service got %v", v6.Spec.ClusterIPs)
	}
	if _, err := store.Create(ctx, s, svc("v6b", corev1.ServiceTypeClusterIP, func(s *corev1.Service) { s.Spec.ClusterIP = v6.Spec.ClusterIP })); !apierrors.IsInvalid(err) {
		t.Errorf("taken IPv6 address: %v", err)
	}
}

// TestServiceAllocationSurvivesRestart reopens a durable store: the
// allocations are rebuilt, so a taken address still conflicts.
func TestServiceAllocationSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := store.Open(ctx, store.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	a, err := store.Create(ctx, s, svc("a", corev1.ServiceTypeNodePort))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	r, err := store.Open(ctx, store.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := store.Create(ctx, r, svc("b", corev1.ServiceTypeClusterIP, func(s *corev1.Service) { s.Spec.ClusterIP = a.Spec.ClusterIP })); !apierrors.IsInvalid(err) {
		t.Errorf("after restart, a taken clusterIP: %v", err)
	}
	if _, err := store.Create(ctx, r, svc("c", corev1.ServiceTypeNodePort, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = a.Spec.Ports[0].NodePort })); !apierrors.IsInvalid(err) {
		t.Errorf("after restart, a taken nodePort: %v", err)
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }
