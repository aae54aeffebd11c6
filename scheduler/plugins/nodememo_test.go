package plugins

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// TestNodeAffinityMemoFollowsLabels schedules pods sharing a selector
// while node labels change: the memoized verdicts must follow the labels.
func TestNodeAffinityMemoFollowsLabels(t *testing.T) {
	zoned := func(name, zone string) *v1.Node {
		return node(name, "4", "8Gi", map[string]string{"zone": zone})
	}
	withAffinity := func(name string) *v1.Pod {
		p := pod(name, "100m", "100Mi")
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
			NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "zone", Operator: v1.NodeSelectorOpIn, Values: []string{"a"}}}}},
		}}}
		return p
	}
	e := newEnv(t, []*v1.Node{zoned("n1", "a"), zoned("n2", "b"), zoned("n3", "a")}, nil)
	if diff := cmp.Diff([]string{"n1", "n3"}, e.feasible(t, withAffinity("p1"))); diff != "" {
		t.Errorf("first pod (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"n1", "n3"}, e.feasible(t, withAffinity("p2"))); diff != "" {
		t.Errorf("second pod, from the memo (-want +got):\n%s", diff)
	}
	// n1 moves to zone b and n2 to zone a.
	for name, zone := range map[string]string{"n1": "b", "n2": "a"} {
		ni := framework.NewNodeInfo()
		ni.SetNode(zoned(name, zone))
		e.snap.Set(name, ni)
	}
	e.snap.Commit(e.snap.Generation + 1)
	if diff := cmp.Diff([]string{"n2", "n3"}, e.feasible(t, withAffinity("p3"))); diff != "" {
		t.Errorf("after the label change (-want +got):\n%s", diff)
	}
	// The same selector spelled by nodeSelector is another memo, with the
	// same verdicts.
	ns := withAffinity("p4")
	ns.Spec.Affinity = nil
	ns.Spec.NodeSelector = map[string]string{"zone": "a"}
	if diff := cmp.Diff([]string{"n2", "n3"}, e.feasible(t, ns)); diff != "" {
		t.Errorf("nodeSelector pod (-want +got):\n%s", diff)
	}
}

func TestNodeSelectorKey(t *testing.T) {
	term := func(rs ...v1.NodeSelectorRequirement) v1.NodeSelectorTerm {
		return v1.NodeSelectorTerm{MatchExpressions: rs}
	}
	in := func(k string, vs ...string) v1.NodeSelectorRequirement {
		return v1.NodeSelectorRequirement{Key: k, Operator: v1.NodeSelectorOpIn, Values: vs}
	}
	sel := func(ts ...v1.NodeSelectorTerm) *v1.NodeSelector { return &v1.NodeSelector{NodeSelectorTerms: ts} }
	type input struct {
		sel map[string]string
		req *v1.NodeSelector
	}
	// Every input selects differently, so every key must differ.
	inputs := []input{
		{nil, nil},
		{map[string]string{"a": "b"}, nil},
		{map[string]string{"a": "b", "c": "d"}, nil},
		{map[string]string{"ab": ""}, nil},
		{map[string]string{"a": "b"}, sel()},
		{nil, sel(term(in("a", "b")))},
		{nil, sel(term(in("a", "b", "c")))},
		{nil, sel(term(in("a", "bc")))},
		{nil, sel(term(in("a", "b"), in("c", "d")))},
		{nil, sel(term(in("a", "b")), term(in("c", "d")))},
		{nil, sel(term(), term(in("a", "b")))},
		{nil, sel(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{in("a", "b")}})},
		{nil, sel(term(v1.NodeSelectorRequirement{Key: "a", Operator: v1.NodeSelectorOpNotIn, Values: []string{"b"}}))},
	}
	seen := map[string]int{}
	for i, in := range inputs {
		k := nodeSelectorKey(in.sel, in.req)
		if j, dup := seen[k]; dup {
			t.Errorf("inputs %d and %d share the key %q", j, i, k)
		}
		seen[k] = i
	}
	// The key does not depend on the map's iteration order.
	m := map[string]string{}
	for i := range 20 {
		m[string(rune('a'+i))] = "v"
	}
	first := nodeSelectorKey(m, nil)
	for range 10 {
		if k := nodeSelectorKey(m, nil); k != first {
			t.Fatalf("key changed between calls: %q then %q", first, k)
		}
	}
}
