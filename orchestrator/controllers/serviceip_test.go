package controllers

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func svc(name string, typ corev1.ServiceType, clusterIP string, nodePort int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{Type: typ, ClusterIP: clusterIP, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: 80, NodePort: nodePort, Protocol: corev1.ProtocolTCP}}}}
	if clusterIP != "" {
		s.Spec.ClusterIPs = []string{clusterIP}
	}
	return s
}

// TestServiceRepairCheck covers every finding of the repair check,
// including the ones the store cannot produce today (shared values).
func TestServiceRepairCheck(t *testing.T) {
	s, err := store.Open(t.Context(), store.Config{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	r := NewServiceRepair(Config{Store: s, Log: quietLog(), ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("fd00::/108")},
		NodePortRange: store.PortRange{Min: 30000, Max: 30010}})
	at := func(s *corev1.Service, sec int) *corev1.Service {
		s.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC))
		return s
	}
	v6 := svc("v6-out", corev1.ServiceTypeClusterIP, "fd01::1", 0)
	svcs := []*corev1.Service{
		at(svc("second", corev1.ServiceTypeNodePort, "10.96.0.10", 30001), 2), // shares first's IP and port
		at(svc("first", corev1.ServiceTypeNodePort, "10.96.0.10", 30001), 1),
		at(svc("out", corev1.ServiceTypeClusterIP, "10.97.0.1", 0), 3),
		at(svc("port-out", corev1.ServiceTypeNodePort, "10.96.0.11", 31000), 4),
		at(svc("bad", corev1.ServiceTypeClusterIP, "10.96.0.300", 0), 5),
		at(svc("headless", corev1.ServiceTypeClusterIP, corev1.ClusterIPNone, 0), 6),
		at(v6, 7),
		at(svc("ok", corev1.ServiceTypeClusterIP, "10.96.0.12", 0), 8),
	}
	type finding struct{ Name, Reason, Message string }
	var got []finding
	for _, f := range r.Check(svcs) {
		got = append(got, finding{f.Service.Name, f.Reason, f.Message})
	}
	want := []finding{
		{"second", "ClusterIPAlreadyAllocated", "Cluster IP [IPv4]:10.96.0.10 was assigned to multiple services; please recreate service"},
		{"second", "PortAlreadyAllocated", "Port 30001 was assigned to multiple services; please recreate service"},
		{"out", "ClusterIPOutOfRange", "Cluster IP [IPv4]:10.97.0.1 is not within the configured Service CIDR 10.96.0.0/16; please recreate service"},
		{"port-out", "PortOutOfRange", "Port 31000 is not within the port range 30000-30010; please recreate service"},
		{"bad", "ClusterIPNotValid", "Cluster IP 10.96.0.300 is not a valid IP; please recreate service"},
		{"v6-out", "ClusterIPOutOfRange", "Cluster IP [IPv6]:fd01::1 is not within the configured Service CIDR fd00::/108; please recreate service"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("findings (-want +got):\n%s", d)
	}
}

// TestServiceRepairEvents runs the controller over a store whose Services
// were allocated from a wider range than the one now configured (a
// restart with a smaller service CIDR and NodePort range): the Services
// outside get Warning events, the others none.
func TestServiceRepairEvents(t *testing.T) {
	e := newEnvWithStore(t, store.Config{ServiceCIDR: netip.MustParsePrefix("10.96.0.0/12")}, simnode.Options{Nodes: 1}, func(c Config) runner {
		c.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")}
		c.NodePortRange = store.PortRange{Min: 30000, Max: 30100}
		c.ServiceRepairInterval = time.Minute
		return NewServiceRepair(c)
	})
	mustCreate(e, svc("inside", corev1.ServiceTypeNodePort, "10.96.0.20", 30050))
	mustCreate(e, svc("outside", corev1.ServiceTypeNodePort, "10.100.0.20", 32000))
	// The first check may have run before the Services were listed; the
	// next interval sees them.
	e.clk.Step(time.Minute)
	e.waitFor("repair events", func() (bool, string) {
		evs, _, err := store.ListOf[*corev1.Event](e.ctx, e.s, "default", metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		reasons := map[string]bool{}
		var all []string
		for _, ev := range evs {
			if ev.InvolvedObject.Name == "inside" {
				t.Fatalf("event on a Service inside the ranges: %s %s", ev.Reason, ev.Message)
			}
			if ev.InvolvedObject.Name == "outside" && ev.Type == corev1.EventTypeWarning {
				reasons[ev.Reason] = true
			}
			all = append(all, ev.InvolvedObject.Name+" "+ev.Reason+": "+ev.Message)
		}
		if !reasons["ClusterIPOutOfRange"] || !reasons["PortOutOfRange"] {
			e.clk.Step(time.Minute)
			return false, strings.Join(all, "\n")
		}
		return true, ""
	})
}
