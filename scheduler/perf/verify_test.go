package perf

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/store"
)

// bound returns a copy of p bound to node.
func bound(p *v1.Pod, node string) *v1.Pod {
	p = p.DeepCopy()
	p.Spec.NodeName = node
	return p
}

// once counts one binding for each of pods.
func once(pods ...*v1.Pod) map[string]int {
	m := map[string]int{}
	for _, p := range pods {
		m[BindKey(p.Namespace, p.Name)] = 1
	}
	return m
}

func TestVerifyPlacementFindsViolations(t *testing.T) {
	n0, n1 := Node("node-0", nil), Node("node-1", nil)
	z := func(i int, zone string) *v1.Node {
		return Node(fmt.Sprintf("node-%d", i), map[string]string{v1.LabelTopologyZone: zone, LegacyZoneLabel: zone})
	}
	big := Pod("big")
	big.Spec.Containers[0].Resources.Requests[v1.ResourceCPU] = *n0.Status.Allocatable.Cpu()
	a, b := bound(Pod("a"), n0.Name), bound(Pod("b"), n0.Name)
	x, y := AntiAffinityPod("x"), AntiAffinityPod("y")
	sx, sy := SpreadPod("x"), SpreadPod("y")
	ax, ay := NodeAffinityPod("x"), NodeAffinityPod("y")
	zones := []*v1.Node{z(0, "moon-1"), z(1, "moon-2"), z(2, "moon-3")}
	tests := []struct {
		name  string
		nodes []*v1.Node
		pods  []*v1.Pod
		binds map[string]int
		check Check
		want  string // "" means no error
	}{
		{"fine", []*v1.Node{n0, n1}, []*v1.Pod{a, b}, once(a, b), nil, ""},
		{"unbound", []*v1.Node{n0}, []*v1.Pod{Pod("c")}, nil, nil, "pod default/c is not bound"},
		{"bound twice", []*v1.Node{n0}, []*v1.Pod{a}, map[string]int{"default/a": 2}, nil, "bound 2 times"},
		{"bound without a binding", []*v1.Node{n0}, []*v1.Pod{a}, nil, nil, "bound 0 times"},
		{"over-committed cpu", []*v1.Node{n0}, []*v1.Pod{a, bound(big, n0.Name)}, once(a, big), nil, "over-committed"},
		{"unknown node", []*v1.Node{n1}, []*v1.Pod{a}, once(a), nil, "not a node"},
		{"anti-affinity", []*v1.Node{n0}, []*v1.Pod{bound(x, n0.Name), bound(y, n0.Name)},
			once(x, y), CheckAntiAffinity, "anti-affinity violated"},
		{"anti-affinity holds", []*v1.Node{n0, n1}, []*v1.Pod{bound(x, n0.Name), bound(y, n1.Name)},
			once(x, y), CheckAntiAffinity, ""},
		{"spread", zones, []*v1.Pod{bound(sx, "node-0"), bound(sy, "node-0")},
			once(sx, sy), CheckSpread, "topology spread violated"},
		{"spread holds", zones, []*v1.Pod{bound(sx, "node-0"), bound(sy, "node-1")},
			once(sx, sy), CheckSpread, ""},
		{"node affinity", []*v1.Node{z(0, AffinityZone), z(1, OtherZone)}, []*v1.Pod{bound(ax, "node-0"), bound(ay, "node-1")},
			once(ax, ay), CheckNodeAffinity, "node affinity violated: y on node-1"},
		{"node affinity holds", []*v1.Node{z(0, AffinityZone), z(1, OtherZone)}, []*v1.Pod{bound(ax, "node-0"), bound(ay, "node-0")},
			once(ax, ay), CheckNodeAffinity, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyPlacement(tt.nodes, tt.pods, tt.binds, tt.check)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("VerifyPlacement: %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("VerifyPlacement: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestVerifyPlacementBoundsReport(t *testing.T) {
	var pods []*v1.Pod
	for i := range 3 * MaxReported {
		pods = append(pods, Pod(fmt.Sprintf("p-%d", i)))
	}
	err := VerifyPlacement(nil, pods, nil, nil)
	if err == nil {
		t.Fatal("VerifyPlacement of unbound pods: no error")
	}
	if got := strings.Count(err.Error(), "is not bound"); got != MaxReported {
		t.Errorf("VerifyPlacement reported %d violations, want %d:\n%v", got, MaxReported, err)
	}
}

func TestBuilders(t *testing.T) {
	n := Node("n", map[string]string{"extra": "x"})
	gotNode := map[string]string{
		"cpu": n.Status.Allocatable.Cpu().String(), "memory": n.Status.Allocatable.Memory().String(),
		"pods": n.Status.Allocatable.Pods().String(), "hostname": n.Labels[v1.LabelHostname], "extra": n.Labels["extra"],
	}
	if diff := cmp.Diff(map[string]string{"cpu": "4", "memory": "32Gi", "pods": "110", "hostname": "n", "extra": "x"}, gotNode); diff != "" {
		t.Errorf("Node (-want +got):\n%s", diff)
	}
	for _, p := range []*v1.Pod{Pod("p"), AntiAffinityPod("p"), SpreadPod("p"), NodeAffinityPod("p")} {
		r := p.Spec.Containers[0].Resources.Requests
		got := []string{p.Namespace, p.Name, r.Cpu().String(), r.Memory().String()}
		if diff := cmp.Diff([]string{"default", "p", "100m", "500Mi"}, got); diff != "" {
			t.Errorf("pod (-want +got):\n%s", diff)
		}
	}
	var zones, affinity []string
	for i := range 6 {
		zones = append(zones, SpreadZone(i))
	}
	for i := range 5 {
		affinity = append(affinity, NodeAffinityZone(i))
	}
	if diff := cmp.Diff([]string{"moon-1", "moon-2", "moon-3", "moon-1", "moon-2", "moon-3"}, zones); diff != "" {
		t.Errorf("SpreadZone (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"zone1", "zone1", "zone1", "zone1", "zone2"}, affinity); diff != "" {
		t.Errorf("NodeAffinityZone (-want +got):\n%s", diff)
	}
}

func TestVerifyListsTheStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := store.Create(ctx, st, Node("node-0", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, st, bound(Pod("a"), "node-0")); err != nil {
		t.Fatal(err)
	}
	if err := Verify(ctx, st, map[string]int{"default/a": 1}, nil); err != nil {
		t.Errorf("Verify of a correct placement: %v", err)
	}
	if err := Verify(ctx, st, map[string]int{"default/a": 2}, nil); err == nil || !strings.Contains(err.Error(), "bound 2 times") {
		t.Errorf("Verify of a pod bound twice: %v, want an error saying so", err)
	}
}
