package dns

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

// testCatalog holds a ClusterIP service with named ports, a headless
// service with ready and unready endpoints, an ExternalName service and a
// pod with hostname and subdomain.
func testCatalog() *Catalog {
	c := NewCatalog()
	c.SetService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10", "fd00::10"}, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 9000}}}})
	c.SetService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "pg"},
		Spec: corev1.ServiceSpec{ClusterIP: "None", Ports: []corev1.ServicePort{{Name: "sql", Port: 5432, Protocol: corev1.ProtocolTCP}}}})
	c.SetEndpointSlice(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "db", Name: "pg-abc", Labels: map[string]string{discoveryv1.LabelServiceName: "pg"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("sql"), Port: ptr[int32](5433), Protocol: ptr(corev1.ProtocolTCP)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.5"}, Hostname: ptr("pg-0"), Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}},
			{Addresses: []string{"10.244.0.6"}, Conditions: discoveryv1.EndpointConditions{Ready: nil}},
			{Addresses: []string{"10.244.0.7"}, Hostname: ptr("pg-2"), Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
		},
	})
	c.SetService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.org"}})
	c.SetPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "worker"},
		Spec:   corev1.PodSpec{Hostname: "w1", Subdomain: "pg"},
		Status: corev1.PodStatus{PodIP: "10.244.1.9"}})
	return c
}

// rrStrings renders records without TTL-independent noise, sorted.
func rrStrings(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	slices.Sort(out)
	return out
}

func TestAnswers(t *testing.T) {
	srv := NewServer(Config{}, testCatalog())
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tests := []struct {
		name  string
		qtype uint16
		rcode int
		ans   []string
		extra []string
	}{
		{"web.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10"}, nil},
		{"WEB.default.svc.cluster.local.", mdns.TypeAAAA, mdns.RcodeSuccess, []string{"web.default.svc.cluster.local. 5 IN AAAA fd00::10"}, nil},
		{"pg.db.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"pg.db.svc.cluster.local. 5 IN A 10.244.0.5", "pg.db.svc.cluster.local. 5 IN A 10.244.0.6"}, nil},
		{"_http._tcp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess,
			[]string{"_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."},
			[]string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10", "web.default.svc.cluster.local. 5 IN AAAA fd00::10"}},
		{"_dns._udp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess,
			[]string{"_dns._udp.web.default.svc.cluster.local. 5 IN SRV 0 100 53 web.default.svc.cluster.local."},
			[]string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10", "web.default.svc.cluster.local. 5 IN AAAA fd00::10"}},
		{"_dns._tcp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeNameError, nil, nil},
		{"_sql._tcp.pg.db.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess,
			[]string{"_sql._tcp.pg.db.svc.cluster.local. 5 IN SRV 0 100 5433 10-244-0-6.pg.db.svc.cluster.local.", "_sql._tcp.pg.db.svc.cluster.local. 5 IN SRV 0 100 5433 pg-0.pg.db.svc.cluster.local."},
			[]string{"10-244-0-6.pg.db.svc.cluster.local. 5 IN A 10.244.0.6", "pg-0.pg.db.svc.cluster.local. 5 IN A 10.244.0.5"}},
		{"pg-0.pg.db.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"pg-0.pg.db.svc.cluster.local. 5 IN A 10.244.0.5"}, nil},
		{"pg-2.pg.db.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil}, // not ready
		{"w1.pg.db.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"w1.pg.db.svc.cluster.local. 5 IN A 10.244.1.9"}, nil},
		{"ext.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"ext.default.svc.cluster.local. 5 IN CNAME db.example.org."}, nil},
		{"10-244-3-4.db.pod.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"10-244-3-4.db.pod.cluster.local. 5 IN A 10.244.3.4"}, nil},
		{"nope.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
		{"web.nons.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
		{"a.b.c.d.e.f.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
		{"default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, nil, nil},
		{"foo.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
		{"example.org.", mdns.TypeA, mdns.RcodeRefused, nil, nil}, // forwarding off
	}
	for _, network := range []string{"udp", "tcp"} {
		c := &mdns.Client{Net: network}
		for _, tt := range tests {
			t.Run(network+"/"+tt.name+"/"+mdns.TypeToString[tt.qtype], func(t *testing.T) {
				q := new(mdns.Msg)
				q.SetQuestion(tt.name, tt.qtype)
				r, _, err := c.Exchange(q, addr.String())
				if err != nil {
					t.Fatal(err)
				}
				if r.Rcode != tt.rcode {
					t.Errorf("rcode = %s, want %s", mdns.RcodeToString[r.Rcode], mdns.RcodeToString[tt.rcode])
				}
				if diff := cmp.Diff(tt.ans, rrStrings(r.Answer)); diff != "" {
					t.Errorf("answer (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.extra, rrStrings(r.Extra)); diff != "" {
					t.Errorf("extra (-want +got):\n%s", diff)
				}
				if r.Rcode != mdns.RcodeRefused && len(r.Answer) == 0 && (len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != mdns.TypeSOA) {
					t.Errorf("negative answer without SOA: %v", r.Ns)
				}
			})
		}
	}
}

func TestForwarding(t *testing.T) {
	// An "upstream" on loopback that knows example.org.
	up := NewServer(Config{Domain: "example.org"}, NewCatalog())
	upAddr, err := up.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	srv := NewServer(Config{Domain: "cluster.local", Upstreams: []string{upAddr.String()}}, testCatalog())
	q := new(mdns.Msg)
	q.SetQuestion("svc.example.org.", mdns.TypeA)
	r := srv.Answer(context.Background(), q)
	if r.Rcode != mdns.RcodeSuccess || !r.Authoritative || len(r.Ns) != 1 || r.Ns[0].Header().Name != "example.org." {
		t.Errorf("forwarded answer = %v", r)
	}
}

func TestPublishNotReadyAddresses(t *testing.T) {
	c := testCatalog()
	svc := c.services[nsName{"db", "pg"}].DeepCopy()
	svc.Spec.PublishNotReadyAddresses = true
	c.SetService(svc)
	q := new(mdns.Msg)
	q.SetQuestion("pg-2.pg.db.svc.cluster.local.", mdns.TypeA)
	r := NewServer(Config{}, c).Answer(context.Background(), q)
	if diff := cmp.Diff([]string{"pg-2.pg.db.svc.cluster.local. 5 IN A 10.244.0.7"}, rrStrings(r.Answer)); diff != "" {
		t.Errorf("not-ready endpoint with publishNotReadyAddresses (-want +got):\n%s", diff)
	}
}

func TestCatalogDeletes(t *testing.T) {
	c := testCatalog()
	srv := NewServer(Config{Domain: "Cluster.Local"}, c)
	ask := func(name string) int {
		q := new(mdns.Msg)
		q.SetQuestion(name, mdns.TypeA)
		return srv.Answer(context.Background(), q).Rcode
	}
	if rc := ask("pg-0.pg.db.svc.cluster.local."); rc != mdns.RcodeSuccess {
		t.Fatalf("rcode %d", rc)
	}
	c.DeleteEndpointSlice("db", "pg-abc")
	c.DeletePod("db", "worker")
	if rc := ask("pg-0.pg.db.svc.cluster.local."); rc != mdns.RcodeNameError {
		t.Errorf("after slice delete rcode %d", rc)
	}
	if rc := ask("w1.pg.db.svc.cluster.local."); rc != mdns.RcodeNameError {
		t.Errorf("after pod delete rcode %d", rc)
	}
	c.DeleteService("default", "web")
	c.DeleteService("default", "ext")
	if rc := ask("default.svc.cluster.local."); rc != mdns.RcodeNameError {
		t.Errorf("empty namespace rcode %d", rc)
	}
}

func FuzzAnswer(f *testing.F) {
	for _, s := range []string{"web.default.svc.cluster.local.", "_sql._tcp.pg.db.svc.cluster.local.", "1-2-3-4.x.pod.cluster.local.", "..", "_._.svc.cluster.local.", "5.0.244.10.in-addr.arpa.", "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", "in-addr.arpa."} {
		q := new(mdns.Msg)
		q.SetQuestion(s, mdns.TypeSRV)
		b, _ := q.Pack()
		f.Add(b)
	}
	srv := NewServer(Config{}, testCatalog())
	f.Fuzz(func(t *testing.T, data []byte) {
		req := new(mdns.Msg)
		if err := req.Unpack(data); err != nil {
			return
		}
		resp := srv.Answer(context.Background(), req)
		if _, err := resp.Pack(); err != nil && len(req.Question) == 1 && mdns.IsFqdn(req.Question[0].Name) {
			t.Logf("pack: %v", err) // odd names may not pack; the server must not panic
		}
	})
}

// TestListenPairSamePort checks that the UDP and TCP listeners share one
// port, and that a port named explicitly whose TCP side is taken fails
// rather than moving to another port.
func TestListenPairSamePort(t *testing.T) {
	pc, ln, err := listenPair("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpPort := pc.LocalAddr().(*net.UDPAddr).Port
	tcpPort := ln.Addr().(*net.TCPAddr).Port
	pc.Close()
	ln.Close()
	if udpPort != tcpPort {
		t.Fatalf("udp port %d, tcp port %d", udpPort, tcpPort)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if pc, ln, err := listenPair(taken.Addr().String()); err == nil {
		pc.Close()
		ln.Close()
		t.Fatalf("listenPair(%s) succeeded with its TCP port taken", taken.Addr())
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("listenPair(%s): %v, want address in use", taken.Addr(), err)
	}
}
