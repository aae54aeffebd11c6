package plugins

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// TestFilterSkips checks that NodeUnschedulable and TaintToleration skip
// their filters exactly when they could reject no node, and that the
// outcome of filtering is the same either way.
func TestFilterSkips(t *testing.T) {
	cordoned := node("cordoned", "4", "8Gi", nil)
	cordoned.Spec.Unschedulable = true
	tainted := node("tainted", "4", "8Gi", nil)
	tainted.Spec.Taints = []v1.Taint{{Key: "dedicated", Value: "db", Effect: v1.TaintEffectNoSchedule}}
	soft := node("soft", "4", "8Gi", nil)
	soft.Spec.Taints = []v1.Taint{{Key: "spot", Effect: v1.TaintEffectPreferNoSchedule}}
	plain := node("plain", "4", "8Gi", nil)

	tolerateCordon := pod("tolerant", "100m", "")
	tolerateCordon.Spec.Tolerations = []v1.Toleration{{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}

	tests := []struct {
		name     string
		nodes    []*v1.Node
		pod      *v1.Pod
		skipped  []string
		feasible []string
	}{
		{"plain nodes: both skip", []*v1.Node{plain, soft}, pod("p", "100m", ""), []string{NodeUnschedulableName, TaintTolerationName}, []string{"plain", "soft"}},
		{"a cordoned node", []*v1.Node{plain, cordoned}, pod("p", "100m", ""), []string{TaintTolerationName}, []string{"plain"}},
		{"a cordoned node, tolerated", []*v1.Node{plain, cordoned}, tolerateCordon, []string{NodeUnschedulableName, TaintTolerationName}, []string{"cordoned", "plain"}},
		{"a NoSchedule taint", []*v1.Node{plain, tainted}, pod("p", "100m", ""), []string{NodeUnschedulableName}, []string{"plain"}},
		{"both", []*v1.Node{plain, tainted, cordoned}, pod("p", "100m", ""), nil, []string{"plain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.nodes, nil)
			_, state := e.filter(t, tt.pod)
			var skipped []string
			for _, name := range []string{NodeUnschedulableName, TaintTolerationName} {
				if _, ok := state.SkipFilterPlugins[name]; ok {
					skipped = append(skipped, name)
				}
			}
			if diff := cmp.Diff(tt.skipped, skipped); diff != "" {
				t.Errorf("skipped filters (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.feasible, e.feasible(t, tt.pod)); diff != "" {
				t.Errorf("feasible nodes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSnapshotCountsCordonedAndTainted checks that the snapshot's counts
// follow nodes being cordoned, tainted, cleared and removed.
func TestSnapshotCountsCordonedAndTainted(t *testing.T) {
	snap := framework.NewSnapshot()
	set := func(n *v1.Node) {
		ni := framework.NewNodeInfo()
		ni.SetNode(n)
		snap.Set(n.Name, ni)
		snap.Commit(snap.Generation + 1)
	}
	check := func(step string, unschedulable, tainted int) {
		t.Helper()
		if got := [2]int{snap.UnschedulableNodes(), snap.TaintedNodes()}; got != [2]int{unschedulable, tainted} {
			t.Errorf("%s: (cordoned, tainted) = %v, want %v", step, got, [2]int{unschedulable, tainted})
		}
	}
	a, b := node("a", "1", "1Gi", nil), node("b", "1", "1Gi", nil)
	set(a)
	set(b)
	check("plain", 0, 0)
	a2 := a.DeepCopy()
	a2.Spec.Unschedulable = true
	a2.Spec.Taints = []v1.Taint{{Key: "k", Effect: v1.TaintEffectNoExecute}}
	set(a2)
	check("a cordoned and tainted", 1, 1)
	b2 := b.DeepCopy()
	b2.Spec.Taints = []v1.Taint{{Key: "k", Effect: v1.TaintEffectPreferNoSchedule}}
	set(b2)
	check("b soft-tainted", 1, 1)
	set(a)
	check("a cleared", 0, 0)
	set(a2)
	snap.Set("a", nil)
	snap.Commit(snap.Generation + 1)
	check("a removed", 0, 0)
}
