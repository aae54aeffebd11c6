package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// recorder is a Programmer that records calls.
type recorder struct {
	calls []string
	state map[Frontend]Service
	fail  map[Frontend]bool
}

func newRecorder() *recorder {
	return &recorder{state: map[Frontend]Service{}, fail: map[Frontend]bool{}}
}

func (r *recorder) Mode() string { return "recorder" }
func (r *recorder) Upsert(_ context.Context, s Service) error {
	r.calls = append(r.calls, "upsert "+s.Frontend.String())
	if r.fail[s.Frontend] {
		return errors.New("boom")
	}
	r.state[s.Frontend] = s
	return nil
}
func (r *recorder) Delete(_ context.Context, fe Frontend) error {
	r.calls = append(r.calls, "delete "+fe.String())
	delete(r.state, fe)
	return nil
}
func (r *recorder) Programmed() []Frontend {
	var out []Frontend
	for fe := range r.state {
		out = append(out, fe)
	}
	return out
}

func svc(addr string, port uint16, backends ...string) Service {
	s := Service{Frontend: Frontend{Addr: netip.MustParseAddr(addr), Port: port, Proto: TCP}}
	for _, b := range backends {
		ap := netip.MustParseAddrPort(b)
		s.Backends = append(s.Backends, Backend{Addr: ap.Addr(), Port: ap.Port(), Ready: true})
	}
	return s
}

func TestTableIncremental(t *testing.T) {
	ctx := context.Background()
	r := newRecorder()
	tb := NewTable(r)
	a := svc("10.96.0.1", 80, "10.0.0.1:8080")
	b := svc("10.96.0.1", 443, "10.0.0.1:8443")
	steps := []struct {
		name  string
		do    func() error
		calls []string
	}{
		{"add two", func() error { return tb.Set(ctx, "ns/a", []Service{a, b}) }, []string{"upsert 10.96.0.1:80/TCP", "upsert 10.96.0.1:443/TCP"}},
		{"unchanged", func() error { return tb.Set(ctx, "ns/a", []Service{a, b}) }, nil},
		{"backend order does not matter", func() error {
			a2 := svc("10.96.0.1", 80, "10.0.0.2:8080", "10.0.0.1:8080")
			a2.Backends[0].Ready = false
			if err := tb.Set(ctx, "ns/a", []Service{a2, b}); err != nil {
				return err
			}
			return tb.Set(ctx, "ns/a", []Service{svc("10.96.0.1", 80, "10.0.0.1:8080", "10.0.0.2:8080"), b})
		}, []string{"upsert 10.96.0.1:80/TCP", "upsert 10.96.0.1:80/TCP"}},
		{"port removed", func() error { return tb.Set(ctx, "ns/a", []Service{b}) }, []string{"delete 10.96.0.1:80/TCP"}},
		{"owner removed", func() error { return tb.Remove(ctx, "ns/a") }, []string{"delete 10.96.0.1:443/TCP"}},
	}
	for _, st := range steps {
		r.calls = nil
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if diff := cmp.Diff(st.calls, r.calls); diff != "" {
			t.Errorf("%s: calls (-want +got):\n%s", st.name, diff)
		}
	}
}

func TestTableResyncRemovesStaleAndRetriesFailures(t *testing.T) {
	ctx := context.Background()
	r := newRecorder()
	stale := svc("10.96.0.9", 80)
	r.state[stale.Frontend] = stale // left by an earlier process
	tb := NewTable(r)
	a := svc("10.96.0.1", 80, "10.0.0.1:8080")
	r.fail[a.Frontend] = true
	if err := tb.Resync(ctx, map[string][]Service{"ns/a": {a}}); err == nil {
		t.Fatal("Resync succeeded despite a failing upsert")
	}
	if _, ok := r.state[stale.Frontend]; ok {
		t.Error("stale frontend not removed")
	}
	delete(r.fail, a.Frontend)
	r.calls = nil
	if err := tb.Set(ctx, "ns/a", []Service{a}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"upsert 10.96.0.1:80/TCP"}, r.calls); diff != "" {
		t.Errorf("failed upsert not retried (-want +got):\n%s", diff)
	}
	if f, b, ready := tb.Stats(); f != 1 || b != 1 || ready != 1 {
		t.Errorf("Stats = %d %d %d", f, b, ready)
	}
}

func ptr[T any](v T) *T { return &v }

func TestFromService(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "default", Name: "web"}
	slice := func(family discoveryv1.AddressType, port int32, portName string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{AddressType: family, Endpoints: eps,
			Ports: []discoveryv1.EndpointPort{{Name: ptr(portName), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)}}}
	}
	ep := func(ready *bool, addrs ...string) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	}
	be := func(s string, ready bool) Backend {
		ap := netip.MustParseAddrPort(s)
		return Backend{Addr: ap.Addr(), Port: ap.Port(), Ready: ready}
	}
	fe := func(s string) Frontend {
		ap := netip.MustParseAddrPort(s)
		return Frontend{Addr: ap.Addr(), Port: ap.Port(), Proto: TCP}
	}
	tests := []struct {
		name   string
		svc    *corev1.Service
		slices []*discoveryv1.EndpointSlice
		opts   Options
		want   []Service
	}{
		{
			name: "cluster IP, named target port resolved per slice, readiness",
			svc: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.5",
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("web")}}}},
			slices: []*discoveryv1.EndpointSlice{
				slice(discoveryv1.AddressTypeIPv4, 8080, "http", ep(nil, "10.0.0.1"), ep(ptr(false), "10.0.0.2")),
				slice(discoveryv1.AddressTypeIPv4, 9090, "http", ep(ptr(true), "10.0.0.3")),
				slice(discoveryv1.AddressTypeIPv4, 1, "other", ep(ptr(true), "10.0.0.4")),
			},
			want: []Service{{Frontend: fe("10.96.0.5:80"), Name: "default/web:http", Backends: []Backend{
				be("10.0.0.1:8080", true), be("10.0.0.2:8080", false), be("10.0.0.3:9090", true)}}},
		},
		{
			name: "NodePort, external IP, load balancer ingress, ClientIP affinity with default timeout",
			svc: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.6",
				ExternalIPs: []string{"192.0.2.1"}, SessionAffinity: corev1.ServiceAffinityClientIP,
				Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}}},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.100"}}}}},
			slices: []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, 8080, "", ep(nil, "10.0.0.1"))},
			opts:   Options{NodeIPs: []netip.Addr{netip.MustParseAddr("172.16.0.1")}},
			want: func() []Service {
				var out []Service
				for _, f := range []string{"10.96.0.6:80", "192.0.2.1:80", "192.0.2.100:80", "172.16.0.1:30080"} {
					out = append(out, Service{Frontend: fe(f), Name: "default/web:80", Backends: []Backend{be("10.0.0.1:8080", true)}, AffinityTimeout: DefaultAffinityTimeout})
				}
				return out
			}(),
		},
		{
			name: "affinity timeout from the spec, UDP",
			svc: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.7", SessionAffinity: corev1.ServiceAffinityClientIP,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr[int32](60)}},
				Ports:                 []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}},
			want: []Service{{Frontend: Frontend{Addr: netip.MustParseAddr("10.96.0.7"), Port: 53, Proto: UDP}, Name: "default/web:dns", AffinityTimeout: time.Minute, Backends: []Backend{}}},
		},
		{
			name: "terminating but serving endpoints take over when none is ready",
			svc: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.9",
				Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
			slices: []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, 8080, "http",
				discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true)}},
				discoveryv1.Endpoint{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(false), Terminating: ptr(true)}},
			)},
			want: []Service{{Frontend: fe("10.96.0.9:80"), Name: "default/web:http", Backends: []Backend{be("10.0.0.1:8080", true), be("10.0.0.2:8080", false)}}},
		},
		{
			name: "traffic policies Local keep this node's endpoints",
			svc: func() *corev1.Service {
				local := corev1.ServiceInternalTrafficPolicyLocal
				return &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.3",
					ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal, InternalTrafficPolicy: &local,
					Ports: []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}}}}
			}(),
			slices: []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, 8080, "http",
				discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, NodeName: ptr("n1")},
				discoveryv1.Endpoint{Addresses: []string{"10.0.0.2"}, NodeName: ptr("n2")},
			)},
			opts: Options{NodeName: "n1", NodeIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
			want: []Service{
				{Frontend: fe("10.96.0.3:80"), Name: "default/web:http", Backends: []Backend{be("10.0.0.1:8080", true)}},
				// externalTrafficPolicy Local keeps the client's source
				// address on connections from outside.
				{Frontend: fe("192.0.2.1:30080"), Name: "default/web:http", Backends: []Backend{be("10.0.0.1:8080", true)}, KeepSource: true},
			},
		},
		{
			name: "dual stack: each ClusterIP gets the endpoints of its family",
			svc: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: "fd00:10:96::5", ClusterIPs: []string{"fd00:10:96::5", "10.96.0.5"},
				IPFamilies: []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol},
				Ports:      []corev1.ServicePort{{Name: "http", Port: 80}}}},
			slices: []*discoveryv1.EndpointSlice{
				slice(discoveryv1.AddressTypeIPv4, 8080, "http", discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}}),
				slice(discoveryv1.AddressTypeIPv6, 8080, "http", discoveryv1.Endpoint{Addresses: []string{"fd00:244::1"}}),
			},
			want: []Service{
				{Frontend: fe("[fd00:10:96::5]:80"), Name: "default/web:http", Backends: []Backend{be("[fd00:244::1]:8080", true)}},
				{Frontend: fe("10.96.0.5:80"), Name: "default/web:http", Backends: []Backend{be("10.0.0.1:8080", true)}},
			},
		},
		{name: "headless", svc: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: "None", Ports: []corev1.ServicePort{{Port: 80}}}}},
		{name: "ExternalName", svc: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.org"}}},
		{name: "SCTP ignored", svc: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.8", Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolSCTP}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromService(tt.svc, tt.slices, tt.opts)
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b []Backend) bool {
				return fmt.Sprint(a) == fmt.Sprint(b)
			})); diff != "" {
				t.Errorf("FromService (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzFromService feeds arbitrary addresses, ports and names through the
// translation: it must not panic, and every entry it makes must have a
// valid frontend and only valid backends.
func FuzzFromService(f *testing.F) {
	f.Add("10.96.0.1", "10.0.0.1", "http", "http", int32(80), int32(8080), int32(30080), "ClientIP", int32(0))
	f.Add("None", "fd00::1", "", "x", int32(0), int32(-1), int32(0), "", int32(-5))
	f.Fuzz(func(t *testing.T, clusterIP, epAddr, portName, slicePortName string, port, targetPort, nodePort int32, affinity string, timeout int32) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: clusterIP, ExternalIPs: []string{epAddr},
				SessionAffinity:       corev1.ServiceAffinity(affinity),
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &timeout}},
				Ports:                 []corev1.ServicePort{{Name: portName, Port: port, NodePort: nodePort}}},
		}
		sl := &discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4,
			Ports:     []discoveryv1.EndpointPort{{Name: &slicePortName, Port: &targetPort}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{epAddr, clusterIP}}}}
		for _, s := range FromService(svc, []*discoveryv1.EndpointSlice{sl, nil}, Options{NodeIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}) {
			if !s.Frontend.Addr.IsValid() || s.Frontend.Port == 0 || s.AffinityTimeout < 0 {
				t.Errorf("bad entry %+v", s)
			}
			for _, b := range s.Backends {
				if !b.Addr.IsValid() || b.Port == 0 {
					t.Errorf("bad backend %+v", b)
				}
			}
		}
	})
}

func TestUnsupported(t *testing.T) {
	local := corev1.ServiceInternalTrafficPolicyLocal
	svc := &corev1.Service{Spec: corev1.ServiceSpec{ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
		InternalTrafficPolicy: &local, Ports: []corev1.ServicePort{{Name: "s", Port: 1, Protocol: corev1.ProtocolSCTP}, {Port: 2}}}}
	want := []string{
		"spec.externalTrafficPolicy: Local is served as Cluster (no node name configured)",
		"spec.internalTrafficPolicy: Local is served as Cluster (no node name configured)",
		"spec.ports[s].protocol SCTP is not served",
	}
	if diff := cmp.Diff(want, Unsupported(svc, Options{})); diff != "" {
		t.Errorf("Unsupported (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[2:], Unsupported(svc, Options{NodeName: "n1"})); diff != "" {
		t.Errorf("Unsupported with a node name (-want +got):\n%s", diff)
	}
	if got := Unsupported(&corev1.Service{}, Options{}); got != nil {
		t.Errorf("plain service: %v", got)
	}
}
