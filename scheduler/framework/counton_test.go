package framework

import (
	"fmt"
	"math/rand/v2"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// TestMatchCountsCountOnAgreesWithCounts changes a snapshot at random
// (nodes added, removed, relabelled; matching and other pods added and
// removed) and checks after every round that CountOn answers, for every
// node, what a lookup of Counts by the node's label value gives.
func TestMatchCountsCountOnAgreesWithCounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	zones := []string{"z1", "z2", "z3", "z4"}
	term := AffinityTerm{
		Namespaces:  map[string]struct{}{"default": {}},
		Selector:    labels.SelectorFromSet(labels.Set{"app": "x"}),
		TopologyKey: "zone",
		Key:         "test-term",
	}
	s := NewSnapshot()
	infos := map[string]*NodeInfo{}
	gen := int64(0)
	nodeWith := func(name string, lbls map[string]string, pods []*PodInfo) *NodeInfo {
		ni := NewNodeInfo(pods...)
		ni.SetNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}})
		return ni
	}
	randomLabels := func() map[string]string {
		if rng.IntN(5) == 0 {
			return map[string]string{"other": "v"} // lacks the key
		}
		return map[string]string{"zone": zones[rng.IntN(len(zones))]}
	}
	podN := 0
	randomPod := func() *PodInfo {
		podN++
		app := "x"
		if rng.IntN(3) == 0 {
			app = "y"
		}
		return NewPodInfo(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", podN), Namespace: "default", UID: types.UID(fmt.Sprintf("u%d", podN)), Labels: map[string]string{"app": app}}})
	}
	var m *MatchCounts
	for round := range 300 {
		name := fmt.Sprintf("n%d", rng.IntN(12))
		old := infos[name]
		switch op := rng.IntN(4); {
		case old == nil || op == 0: // add or replace with new labels
			var pods []*PodInfo
			if old != nil {
				pods = old.Pods
			}
			infos[name] = nodeWith(name, randomLabels(), pods)
		case op == 1: // remove
			delete(infos, name)
			s.Set(name, nil)
			gen++
			s.Commit(gen)
			if round == 0 {
				m = s.MatchCounts(&term, true)
			}
			continue
		case op == 2: // add a pod
			ni := old.Clone()
			ni.AddPodInfo(randomPod())
			infos[name] = ni
		default: // remove a pod
			if len(old.Pods) == 0 {
				continue
			}
			ni := old.Clone()
			if err := ni.RemovePod(old.Pods[rng.IntN(len(old.Pods))].Pod); err != nil {
				t.Fatal(err)
			}
			infos[name] = ni
		}
		s.Set(name, infos[name].Clone())
		gen++
		s.Commit(gen)
		if m == nil {
			m = s.MatchCounts(&term, true)
		}
		for _, ni := range s.List() {
			v, wantHas := ni.Labels["zone"]
			want := m.Counts[v]
			if !wantHas {
				want = 0
			}
			got, has, ok := m.CountOn(ni)
			if !ok || got != want || has != wantHas {
				t.Fatalf("round %d, node %s (zone %q): CountOn = %d, %v, %v; Counts says %d, %v", round, ni.Name(), v, got, has, ok, want, wantHas)
			}
			if _, _, ok := m.CountOn(ni.Clone()); ok {
				t.Fatalf("round %d: CountOn answered for a clone", round)
			}
		}
	}
	if _, _, ok := NewMatchCounts(term, true).CountOn(s.List()[0]); ok {
		t.Error("counts not kept by a snapshot answered CountOn")
	}
}
