package controllers

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func svc(name string, typ corev1.ServiceType, clusterIP string, nodePort int32) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{Type: typ, ClusterIP: clusterIP, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: 80, NodePort: nodePort, Protocol: corev1.ProtocolTCP}}}}
}

func TestServiceAllocator(t *testing.T) {
	a := NewServiceAllocator(netip.MustParsePrefix("10.0.0.0/28"), 30000, 30001)
	tests := []struct {
		name    string
		svc     *corev1.Service
		wantErr bool
		wantIP  string
	}{
		{"dynamic", svc("a", corev1.ServiceTypeClusterIP, "", 0), false, "10.0.0.1"},
		{"requested", svc("b", corev1.ServiceTypeClusterIP, "10.0.0.10", 0), false, "10.0.0.10"},
		{"requested-in-use", svc("c", corev1.ServiceTypeClusterIP, "10.0.0.10", 0), true, ""},
		{"out-of-range", svc("d", corev1.ServiceTypeClusterIP, "10.0.1.10", 0), true, ""},
		{"headless", svc("e", corev1.ServiceTypeClusterIP, "None", 0), false, "None"},
		{"nodeport", svc("f", corev1.ServiceTypeNodePort, "", 30001), false, "10.0.0.2"},
		{"nodeport-in-use", svc("g", corev1.ServiceTypeNodePort, "", 30001), true, ""},
		{"nodeport-out-of-range", svc("h", corev1.ServiceTypeNodePort, "", 31000), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := a.Allocate(tt.svc)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Allocate: err %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !apierrors.IsInvalid(err) {
				t.Errorf("error %v is not Invalid", err)
			}
			if !tt.wantErr && tt.svc.Spec.ClusterIP != tt.wantIP {
				t.Errorf("clusterIP %s, want %s", tt.svc.Spec.ClusterIP, tt.wantIP)
			}
		})
	}
	// A failed allocation leaves nothing behind: g's dynamic IP is free.
	if u := a.Used(netip.MustParseAddr("10.0.0.3")); u != "" {
		t.Errorf("10.0.0.3 held by %q after a failed allocation", u)
	}
	a.Release("default/b")
	if err := a.Allocate(svc("c", corev1.ServiceTypeClusterIP, "10.0.0.10", 0)); err != nil {
		t.Errorf("released IP not reusable: %v", err)
	}
	// Ports 30000..30001: one left.
	p := svc("i", corev1.ServiceTypeNodePort, "", 0)
	if err := a.Allocate(p); err != nil || p.Spec.Ports[0].NodePort != 30000 {
		t.Fatalf("nodeport %d err %v", p.Spec.Ports[0].NodePort, err)
	}
	if err := a.Allocate(svc("j", corev1.ServiceTypeNodePort, "", 0)); err == nil {
		t.Error("allocated from a full port range")
	}
}

func TestServiceAllocationControllerAndRepair(t *testing.T) {
	alloc := NewServiceAllocator(netip.MustParsePrefix("10.96.0.0/12"), 0, 0)
	e := newEnv(t, simnode.Options{Nodes: 1}, func(c Config) runner { return NewServiceAllocation(c, alloc) })
	mustCreate(e, svc("web", corev1.ServiceTypeNodePort, "", 0))
	mustCreate(e, svc("dns", corev1.ServiceTypeClusterIP, "10.96.0.10", 0))
	var web *corev1.Service
	e.waitFor("web allocated", func() (bool, string) {
		web, _ = store.Get[*corev1.Service](e.ctx, e.s, "default", "web")
		return web.Spec.ClusterIP != "" && web.Spec.Ports[0].NodePort >= 30000 && web.Spec.Ports[0].NodePort <= 32767, fmt.Sprint(web.Spec)
	})
	if !netip.MustParsePrefix(DefaultServiceCIDR).Contains(netip.MustParseAddr(web.Spec.ClusterIP)) {
		t.Errorf("clusterIP %s outside %s", web.Spec.ClusterIP, DefaultServiceCIDR)
	}
	e.waitFor("dns reserved", func() (bool, string) {
		return alloc.Used(netip.MustParseAddr("10.96.0.10")) == "default/dns", ""
	})
	// Restart: a fresh allocator rebuilt from the store holds the same values.
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	fresh := NewServiceAllocator(netip.Prefix{}, 0, 0)
	f := controller.NewFactory(e.s, quietLog())
	sa := NewServiceAllocation(Config{Store: e.s, Informers: f, Clock: e.clk, Log: quietLog()}, fresh)
	done := make(chan struct{})
	go func() { defer close(done); _ = f.For(sa.svcs.Inf.Resource()).Run(ctx) }()
	go func() { _ = sa.Run(ctx) }()
	e.waitFor("repaired", func() (bool, string) {
		return fresh.Used(netip.MustParseAddr(web.Spec.ClusterIP)) == "default/web" && fresh.Used(netip.MustParseAddr("10.96.0.10")) == "default/dns", ""
	})
	if err := fresh.Allocate(svc("clash", corev1.ServiceTypeNodePort, "", web.Spec.Ports[0].NodePort)); err == nil {
		t.Error("repaired allocator handed out web's nodePort")
	}
	cancel()
	<-done
	// Delete releases.
	if err := store.Delete[*corev1.Service](e.ctx, e.s, "default", "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("released", func() (bool, string) { return alloc.Used(netip.MustParseAddr(web.Spec.ClusterIP)) == "", "" })
}
