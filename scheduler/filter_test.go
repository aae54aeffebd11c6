package scheduler

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

func TestNumFeasibleNodesToFind(t *testing.T) {
	tests := []struct {
		pct   int32
		nodes int
		want  int
	}{
		{0, 50, 50},       // small clusters: all nodes
		{0, 1000, 420},    // 50 - 1000/125 = 42%
		{0, 5000, 500},    // 50 - 40 = 10%
		{0, 10000, 500},   // floor of 5%
		{0, 150, 100},     // never fewer than 100
		{30, 1000, 300},   // configured
		{100, 5000, 5000}, // everything
	}
	for _, tt := range tests {
		if got := NumFeasibleNodesToFind(tt.pct, tt.nodes); got != tt.want {
			t.Errorf("NumFeasibleNodesToFind(%d, %d) = %d, want %d", tt.pct, tt.nodes, got, tt.want)
		}
	}
}

// TestFilterRotationAndParallelism checks that the search starts where
// the previous one stopped, and that two filter workers find exactly the
// nodes one worker finds.
func TestFilterRotationAndParallelism(t *testing.T) {
	plain := func(r int) *v1.Pod { return makePod("default", fmt.Sprint(r), "100m", "") }
	seq := filterRounds(t, 1, plain)
	for r, names := range seq {
		if len(names) != 420 {
			t.Fatalf("round %d: %d feasible, want 420", r, len(names))
		}
	}
	if seq[0][0] != "n0001" || seq[1][0] == seq[0][0] {
		t.Errorf("rotation: round starts %s, %s", seq[0][0], seq[1][0])
	}
	if d := cmp.Diff(seq, filterRounds(t, 2, plain)); d != "" {
		t.Errorf("parallel differs from sequential (-seq +par):\n%s", d)
	}
}

// TestFilterParallelMemos runs pods with a nodeSelector and a zone spread
// constraint, whose filters read and fill the snapshot's per-node memos
// (NodeMemo, MatchCounts.CountOn), with one and with two filter workers:
// both must find the same nodes (and -race must find no race).
func TestFilterParallelMemos(t *testing.T) {
	constrained := func(r int) *v1.Pod {
		p := makePod("default", fmt.Sprint(r), "100m", "")
		p.Labels = map[string]string{"app": "memo"}
		p.Spec.NodeSelector = map[string]string{"zone": "a"}
		p.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: v1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "memo"}},
		}}
		return p
	}
	seq := filterRounds(t, 1, constrained)
	for r, names := range seq {
		if len(names) == 0 {
			t.Fatalf("round %d: no feasible node", r)
		}
		for _, n := range names {
			var i int
			if _, err := fmt.Sscanf(n, "n%04d", &i); err != nil || i%2 != 0 {
				t.Errorf("round %d: %s is not in zone a", r, n)
			}
		}
	}
	if d := cmp.Diff(seq, filterRounds(t, 2, constrained)); d != "" {
		t.Errorf("parallel differs from sequential (-seq +par):\n%s", d)
	}
}

// filterRounds builds a scheduler with the given filter parallelism over
// 1000 nodes (every third tainted; even ones in zone a, odd ones in zone
// b, every seventh without a zone) and returns the feasible nodes found
// for three pods made by newPod, looking for 420 each.
func filterRounds(t *testing.T, parallelism int, newPod func(r int) *v1.Pod) [][]string {
	t.Helper()
	ctx := context.Background()
	s, err := New(ctx, nil, Config{Parallelism: parallelism, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		lbls := map[string]string{"zone": []string{"a", "b"}[i%2]}
		if i%7 == 0 {
			lbls = nil
		}
		n := makeNode(fmt.Sprintf("n%04d", i), "4", "8Gi", 110, lbls)
		if i%3 == 0 {
			n.Spec.Taints = []v1.Taint{{Key: "k", Effect: v1.TaintEffectNoSchedule}}
		}
		s.cache.AddNode(n)
	}
	s.cache.UpdateSnapshot(s.snap)
	var rounds [][]string
	for r := range 3 {
		pi := framework.NewPodInfo(newPod(r))
		state := framework.NewCycleState()
		if _, st := s.fw.RunPreFilterPlugins(ctx, state, pi); !st.IsSuccess() {
			t.Fatal(st)
		}
		feasible, _, _, st := s.findFeasible(ctx, s.fw, state, pi, s.snap.List(), 420)
		if st != nil {
			t.Fatal(st)
		}
		var names []string
		for _, n := range feasible {
			names = append(names, n.Name())
		}
		rounds = append(rounds, names)
	}
	return rounds
}
