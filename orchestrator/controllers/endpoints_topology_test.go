package controllers

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func TestZoneHints(t *testing.T) {
	// eps: one ready endpoint per node name given; zoneOf maps nodes to zones.
	mk := func(nodes ...string) []podEndpoint {
		var out []podEndpoint
		for i, n := range nodes {
			out = append(out, podEndpoint{ready: true, pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("p", i)}, Spec: corev1.PodSpec{NodeName: n}}})
		}
		return out
	}
	zoneOf := map[string]string{"a1": "a", "a2": "a", "b1": "b", "c1": "c"}
	equal := map[string]int64{"a": 4000, "b": 4000, "c": 4000}
	for _, tc := range []struct {
		name string
		mode string
		eps  []podEndpoint
		cpu  map[string]int64
		want map[int]string
	}{
		{"off", "", mk("a1", "b1", "c1"), equal, nil},
		{"auto, one per zone", "auto", mk("a1", "b1", "c1"), equal, map[int]string{0: "a", 1: "b", 2: "c"}},
		{"auto, surplus moves to a short zone", "auto", mk("a1", "a1", "a2", "a2", "b1", "b1"), equal,
			map[int]string{0: "a", 1: "a", 2: "c", 3: "c", 4: "b", 5: "b"}},
		{"auto, fewer endpoints than zones", "auto", mk("a1", "b1"), equal, nil},
		{"auto, endpoint without zone", "auto", mk("a1", "b1", "c1", "x"), equal, nil},
		{"auto, 4 endpoints for 3 equal zones overload one", "auto", mk("a1", "a2", "b1", "c1"), equal, nil},
		{"auto, a zone with too little CPU for any endpoint", "auto", mk("a1", "b1", "c1"), map[string]int64{"a": 100000, "b": 1, "c": 1}, nil},
		{"auto, proportional to CPU", "auto", mk("a1", "a2", "a1", "b1"), map[string]int64{"a": 3000, "b": 1000}, map[int]string{0: "a", 1: "a", 2: "a", 3: "b"}},
		{"close, own zone; no zone, no hint", "close", mk("a1", "a2", "x"), equal, map[int]string{0: "a", 1: "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := zoneHints(tc.mode, tc.eps, zoneOf, tc.cpu)
			if len(got) == 0 {
				got = nil
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("hints (-want +got):\n%s", d)
			}
		})
	}
}

// slicesOf lists a Service's slices as "family: addr(zone→hint) ..." sorted.
func (e *env) slicesOf(svc string) []string {
	sls, _, err := store.ListOf[*discoveryv1.EndpointSlice](e.ctx, e.s, "default", metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, s := range sls {
		var eps []string
		for _, ep := range s.Endpoints {
			d := ep.Addresses[0]
			if ep.Zone != nil {
				d += "@" + *ep.Zone
			}
			if ep.Hints != nil {
				for _, z := range ep.Hints.ForZones {
					d += "→" + z.Name
				}
			}
			eps = append(eps, d)
		}
		sort.Strings(eps)
		out = append(out, string(s.AddressType)+": "+strings.Join(eps, " "))
	}
	sort.Strings(out)
	return out
}

func TestEndpointSlicesDualStack(t *testing.T) {
	e := newEnvWithStore(t, store.Config{SecondaryServiceCIDR: netip.MustParsePrefix("fd00:96::/108")},
		simnode.Options{Nodes: 1, DualStack: true}, withEndpoints)
	mustCreate(e, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, ClusterIP: corev1.ClusterIPNone,
			IPFamilies:     []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
			IPFamilyPolicy: ptr(corev1.IPFamilyPolicyPreferDualStack),
			Ports:          []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}})
	mustCreate(e, webPod("a", 8080))
	var v4, v6 string
	e.waitFor("pod running", func() (bool, string) {
		p, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "a")
		if len(p.Status.PodIPs) == 2 {
			v4, v6 = p.Status.PodIPs[0].IP, p.Status.PodIPs[1].IP
			return true, ""
		}
		return false, fmt.Sprint(p.Status.PodIPs)
	})
	want := []string{"IPv4: " + v4, "IPv6: " + v6}
	e.waitFor("one slice per family", func() (bool, string) { got := e.slicesOf("web"); return cmp.Equal(want, got), fmt.Sprint(got) })
	ep, err := store.Get[*corev1.Endpoints](e.ctx, e.s, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 1 || ep.Subsets[0].Addresses[0].IP != v4 {
		t.Errorf("Endpoints should hold the primary (IPv4) address only: %+v", ep.Subsets)
	}
	// IPv6 only: the IPv4 slice goes.
	update(e, "default", "web", func(s *corev1.Service) {
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
		s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicySingleStack)
	})
	want = []string{"IPv6: " + v6}
	e.waitFor("IPv6 slice only", func() (bool, string) { got := e.slicesOf("web"); return cmp.Equal(want, got), fmt.Sprint(got) })
	e.waitFor("Endpoints with the IPv6 address", func() (bool, string) {
		ep, err := store.Get[*corev1.Endpoints](e.ctx, e.s, "default", "web")
		return err == nil && len(ep.Subsets) == 1 && ep.Subsets[0].Addresses[0].IP == v6, fmt.Sprint(ep.Subsets)
	})
}

func TestEndpointSliceTopologyHints(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 3}, withEndpoints)
	for i, z := range []string{"zone-a", "zone-b", "zone-c"} {
		update(e, "", fmt.Sprintf("sim-node-%d", i), func(n *corev1.Node) { n.Labels[corev1.LabelTopologyZone] = z })
	}
	mustCreate(e, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web",
		Annotations: map[string]string{AnnotationTopologyMode: "Auto"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}})
	// Nine pods, round-robin over the three nodes: three per zone.
	for i := range 9 {
		mustCreate(e, webPod(fmt.Sprint("w", i), 8080))
	}
	ownZone := func(got []string) bool {
		if len(got) != 1 || strings.Count(got[0], "→") != 9 {
			return false
		}
		for _, ep := range strings.Fields(strings.TrimPrefix(got[0], "IPv4: ")) {
			at, hint, _ := strings.Cut(ep[strings.Index(ep, "@")+1:], "→")
			if at != hint {
				return false
			}
		}
		return true
	}
	e.waitFor("every endpoint hinted for its own zone", func() (bool, string) { got := e.slicesOf("web"); return ownZone(got), fmt.Sprint(got) })
	// Zone c's node doubles its CPU: of 9 endpoints it should get 4.5 and
	// needs at least ceil(4.5/1.2) = 4, so one endpoint of another zone
	// serves zone c.
	n, err := store.Get[*corev1.Node](e.ctx, e.s, "", "sim-node-2")
	if err != nil {
		t.Fatal(err)
	}
	n = n.DeepCopy()
	n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse("8")
	if _, err := store.UpdateStatus(e.ctx, e.s, n); err != nil {
		t.Fatal(err)
	}
	e.waitFor("an endpoint lent to zone c", func() (bool, string) {
		got := e.slicesOf("web")
		return len(got) == 1 && strings.Count(got[0], "→zone-c") == 4 && strings.Count(got[0], "@zone-c→zone-c") == 3, fmt.Sprint(got)
	})
	// PreferClose without the annotation: own zone again.
	update(e, "default", "web", func(s *corev1.Service) {
		s.Annotations = nil
		s.Spec.TrafficDistribution = ptr(corev1.ServiceTrafficDistributionPreferClose)
	})
	e.waitFor("PreferClose: own zone", func() (bool, string) { got := e.slicesOf("web"); return ownZone(got), fmt.Sprint(got) })
	// Neither: no hints, zones stay.
	update(e, "default", "web", func(s *corev1.Service) { s.Spec.TrafficDistribution = nil })
	e.waitFor("no hints", func() (bool, string) {
		got := e.slicesOf("web")
		return len(got) == 1 && !strings.Contains(got[0], "→") && strings.Count(got[0], "@zone-") == 9, fmt.Sprint(got)
	})
}
