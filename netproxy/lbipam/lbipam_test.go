package lbipam

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/store"
)

func TestAllocator(t *testing.T) {
	a := NewAllocator([]netip.Prefix{netip.MustParsePrefix("10.111.0.0/30"), netip.MustParsePrefix("10.111.1.7/32")})
	var got []string
	for _, o := range []string{"a", "b", "c"} {
		ip, err := a.Next(o)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ip.String())
	}
	if diff := cmp.Diff([]string{"10.111.0.1", "10.111.0.2", "10.111.1.7"}, got); diff != "" {
		t.Errorf("Next (-want +got):\n%s", diff)
	}
	if _, err := a.Next("d"); err == nil {
		t.Error("pool not exhausted")
	}
	if err := a.Assign("d", netip.MustParseAddr("10.111.0.1")); err == nil {
		t.Error("Assign of a used address succeeded")
	}
	a.Release("a")
	if ip, err := a.Next("d"); err != nil || ip.String() != "10.111.0.1" {
		t.Errorf("after release: %v %v", ip, err)
	}
}

func TestRunAssignsFromPool(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := store.Open(ctx, store.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	done := make(chan error, 1)
	go func() { done <- Run(ctx, s, Config{Pool: []netip.Prefix{netip.MustParsePrefix("10.111.0.0/30")}}) }()
	t.Cleanup(func() { cancel(); <-done })
	lb := func(name, want string) {
		t.Helper()
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: want, Ports: []corev1.ServicePort{{Port: 80}}}}
		if _, err := store.Create(ctx, s, svc); err != nil {
			t.Fatal(err)
		}
	}
	ingress := func(name string) string {
		svc, err := store.Get[*corev1.Service](ctx, s, "default", name)
		if err != nil || len(svc.Status.LoadBalancer.Ingress) == 0 {
			return ""
		}
		return svc.Status.LoadBalancer.Ingress[0].IP
	}
	waitIngress := func(name, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for ingress(name) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: ingress %q, want %q", name, ingress(name), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	lb("b", "10.111.0.2")
	waitIngress("b", "10.111.0.2")
	lb("a", "")
	waitIngress("a", "10.111.0.1")
	lb("c", "")
	time.Sleep(50 * time.Millisecond)
	if got := ingress("c"); got != "" {
		t.Fatalf("c got %s from an exhausted pool", got)
	}
	if err := store.Delete[*corev1.Service](ctx, s, "default", "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress("c", "10.111.0.1")
	// A Service that stops being a LoadBalancer loses its address.
	svc, err := store.Get[*corev1.Service](ctx, s, "default", "b")
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	svc.Spec.LoadBalancerIP = ""
	for i := range svc.Spec.Ports {
		svc.Spec.Ports[i].NodePort = 0
	}
	if _, err := store.Update(ctx, s, svc); err != nil {
		t.Fatal(err)
	}
	waitIngress("b", "")
}
