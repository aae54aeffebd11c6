package dns

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/store"
)

func TestSyncFromStore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := store.Open(ctx, store.Config{ServiceCIDR: netip.MustParsePrefix("10.96.0.0/12"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := store.Create(ctx, s, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.30", Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}); err != nil {
		t.Fatal(err)
	}
	cat := NewCatalog()
	synced := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); Sync(ctx, s, cat, nil, func() { close(synced) }) }()
	t.Cleanup(func() { cancel(); <-done })
	<-synced
	srv := NewServer(Config{}, cat)
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ask := func(name string) (int, []string) {
		q := new(mdns.Msg)
		q.SetQuestion(name, mdns.TypeA)
		r, _, err := new(mdns.Client).Exchange(q, addr.String())
		if err != nil {
			t.Fatal(err)
		}
		return r.Rcode, rrStrings(r.Answer)
	}
	waitAnswer := func(name string, rcode int, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			rc, ans := ask(name)
			if rc == rcode && len(ans) == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: rcode %d answers %v; want rcode %d with %d answers", name, rc, ans, rcode, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitAnswer("web.default.svc.cluster.local.", mdns.RcodeSuccess, 1)
	// A headless service and its endpoints appear after the start.
	if _, err := store.Create(ctx, s, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec: corev1.ServiceSpec{ClusterIP: "None", Ports: []corev1.ServicePort{{Name: "sql", Port: 5432, Protocol: corev1.ProtocolTCP}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, s, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "db-1", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.10"}, Hostname: ptr("db-0")},
			{Addresses: []string{"10.244.0.11"}, Hostname: ptr("db-1")},
		},
	}); err != nil {
		t.Fatal(err)
	}
	waitAnswer("db.default.svc.cluster.local.", mdns.RcodeSuccess, 2)
	waitAnswer("db-1.db.default.svc.cluster.local.", mdns.RcodeSuccess, 1)
	if err := store.Delete[*corev1.Service](ctx, s, "default", "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAnswer("web.default.svc.cluster.local.", mdns.RcodeNameError, 0)
}

func TestRegister(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{ServiceCIDR: netip.MustParsePrefix("10.96.0.0/12"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, servers := range [][]netip.AddrPort{
		{netip.MustParseAddrPort("127.0.0.1:5353")},
		{netip.MustParseAddrPort("127.0.0.1:5354"), netip.MustParseAddrPort("127.0.0.2:5354")}, // updated
	} {
		svc, err := Register(ctx, s, Registration{ClusterIP: "10.96.0.10", Servers: servers})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.ClusterIP != "10.96.0.10" || len(svc.Spec.Ports) != 2 || svc.Spec.Ports[0].TargetPort.IntValue() != int(servers[0].Port()) {
			t.Errorf("Service %+v", svc.Spec)
		}
		sl, err := store.Get[*discoveryv1.EndpointSlice](ctx, s, "kube-system", "kube-dns-tugboat")
		if err != nil {
			t.Fatal(err)
		}
		if len(sl.Endpoints) != len(servers) || *sl.Ports[0].Port != int32(servers[0].Port()) {
			t.Errorf("EndpointSlice %+v", sl)
		}
	}
}
