package plugins

import (
	"context"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

func prio(p *v1.Pod, v int32) *v1.Pod {
	p.Spec.Priority = &v
	return p
}

// preempt runs filters and, when nothing fits, PostFilter.
func (e *env) preempt(t *testing.T, p *v1.Pod) (string, *framework.Status) {
	t.Helper()
	rej, state := e.filter(t, p)
	statuses := framework.NodeToStatus{}
	for n, msg := range rej {
		statuses[n] = framework.NewStatus(framework.Unschedulable, msg)
	}
	var pf framework.PostFilterPlugin
	for _, pl := range e.fw.Plugins() {
		if x, ok := pl.(framework.PostFilterPlugin); ok {
			pf = x
		}
	}
	res, st := pf.PostFilter(context.Background(), state, framework.NewPodInfo(p), statuses)
	if res == nil {
		return "", st
	}
	return res.NominatedNodeName, st
}

func TestDefaultPreemption(t *testing.T) {
	tests := []struct {
		name        string
		nodes       []*v1.Node
		existing    []*v1.Pod
		pdbs        []*policyv1.PodDisruptionBudget
		pod         *v1.Pod
		wantNode    string
		wantVictims []string
	}{
		{
			name:        "lowest priority victim",
			nodes:       []*v1.Node{node("n", "1", "4Gi", nil)},
			existing:    []*v1.Pod{prio(on(pod("low", "500m", ""), "n"), 0), prio(on(pod("mid", "500m", ""), "n"), 10)},
			pod:         prio(pod("high", "500m", ""), 100),
			wantNode:    "n",
			wantVictims: []string{"low"},
		},
		{
			name:     "PDB protects a pod",
			nodes:    []*v1.Node{node("n", "1", "4Gi", nil)},
			existing: []*v1.Pod{withLabels(prio(on(pod("low", "500m", ""), "n"), 0), "app", "guarded"), prio(on(pod("mid", "500m", ""), "n"), 10)},
			pdbs: []*policyv1.PodDisruptionBudget{{
				ObjectMeta: metav1.ObjectMeta{Name: "pdb", Namespace: "default"},
				Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "guarded"}}},
				Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 0},
			}},
			pod:         prio(pod("high", "500m", ""), 100),
			wantNode:    "n",
			wantVictims: []string{"mid"},
		},
		{
			name:  "node with lower priority victims wins",
			nodes: []*v1.Node{node("a", "1", "4Gi", nil), node("b", "1", "4Gi", nil)},
			existing: []*v1.Pod{
				prio(on(pod("a1", "1", ""), "a"), 50),
				prio(on(pod("b1", "1", ""), "b"), 5),
			},
			pod:         prio(pod("high", "1", ""), 100),
			wantNode:    "b",
			wantVictims: []string{"b1"},
		},
		{
			name:        "fewest victims",
			nodes:       []*v1.Node{node("a", "1", "4Gi", nil), node("b", "1", "4Gi", nil)},
			existing:    []*v1.Pod{prio(on(pod("a1", "500m", ""), "a"), 5), prio(on(pod("a2", "500m", ""), "a"), 5), prio(on(pod("b1", "1", ""), "b"), 5)},
			pod:         prio(pod("high", "1", ""), 100),
			wantNode:    "b",
			wantVictims: []string{"b1"},
		},
		{
			name:     "no lower priority pods",
			nodes:    []*v1.Node{node("n", "1", "4Gi", nil)},
			existing: []*v1.Pod{prio(on(pod("same", "1", ""), "n"), 100)},
			pod:      prio(pod("high", "1", ""), 100),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.nodes, tt.existing)
			e.cluster.pdbs = tt.pdbs
			got, st := e.preempt(t, tt.pod)
			if got != tt.wantNode {
				t.Fatalf("nominated %q, want %q (status %v)", got, tt.wantNode, st)
			}
			sort.Strings(e.cluster.deleted)
			if d := cmp.Diff(tt.wantVictims, e.cluster.deleted); d != "" {
				t.Errorf("victims (-want +got):\n%s", d)
			}
		})
	}
}

func TestPreemptionPolicyNever(t *testing.T) {
	e := newEnv(t, []*v1.Node{node("n", "1", "4Gi", nil)}, []*v1.Pod{prio(on(pod("low", "1", ""), "n"), 0)})
	p := prio(pod("high", "1", ""), 100)
	never := v1.PreemptNever
	p.Spec.PreemptionPolicy = &never
	if got, _ := e.preempt(t, p); got != "" || len(e.cluster.deleted) > 0 {
		t.Errorf("preempted with policy Never: node %q victims %v", got, e.cluster.deleted)
	}
}

// TestNominatedPodsKeepTheirRoom checks that a node's room is kept for a
// pod nominated there with at least the incoming pod's priority.
func TestNominatedPodsKeepTheirRoom(t *testing.T) {
	e := newEnv(t, []*v1.Node{node("n", "1", "4Gi", nil)}, nil)
	e.cluster.nominated["n"] = []*framework.PodInfo{framework.NewPodInfo(prio(pod("nominee", "800m", ""), 100))}
	ctx := context.Background()
	check := func(p *v1.Pod) bool {
		pi := framework.NewPodInfo(p)
		state := framework.NewCycleState()
		e.fw.RunPreFilterPlugins(ctx, state, pi)
		return e.fw.RunFilterPluginsWithNominatedPods(ctx, state, pi, e.snap.Get("n")).IsSuccess()
	}
	if check(prio(pod("low", "500m", ""), 10)) {
		t.Error("a lower-priority pod took the nominated pod's room")
	}
	if !check(prio(pod("higher", "500m", ""), 1000)) {
		t.Error("a higher-priority pod was blocked by a lower-priority nomination")
	}
	if !check(prio(pod("small", "100m", ""), 10)) {
		t.Error("a pod that fits next to the nominated pod was rejected")
	}
}
