package plugins

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func spread(p *v1.Pod, key string, maxSkew int32, when v1.UnsatisfiableConstraintAction, minDomains *int32) *v1.Pod {
	p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, v1.TopologySpreadConstraint{
		MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: when, MinDomains: minDomains,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
	})
	return p
}

func TestPodTopologySpreadFilter(t *testing.T) {
	web := func(name, n string) *v1.Pod { return withLabels(on(pod(name, "", ""), n), "app", "web") }
	three := int32(3)
	tests := []struct {
		name     string
		existing []*v1.Pod
		pod      *v1.Pod
		want     []string
	}{
		{"balanced: any zone", nil, spread(withLabels(pod("p", "", ""), "app", "web"), "zone", 1, v1.DoNotSchedule, nil), []string{"a1", "a2", "b1"}},
		{"zone a ahead: only b", []*v1.Pod{web("w1", "a1")}, spread(withLabels(pod("p", "", ""), "app", "web"), "zone", 1, v1.DoNotSchedule, nil), []string{"b1"}},
		{"maxSkew 2 allows a", []*v1.Pod{web("w1", "a1")}, spread(withLabels(pod("p", "", ""), "app", "web"), "zone", 2, v1.DoNotSchedule, nil), []string{"a1", "a2", "b1"}},
		{"non-matching pods do not count", []*v1.Pod{withLabels(on(pod("x", "", ""), "a1"), "app", "db")}, spread(withLabels(pod("p", "", ""), "app", "web"), "zone", 1, v1.DoNotSchedule, nil), []string{"a1", "a2", "b1"}},
		{"hostname", []*v1.Pod{web("w1", "a1"), web("w2", "b1")}, spread(withLabels(pod("p", "", ""), "app", "web"), v1.LabelHostname, 1, v1.DoNotSchedule, nil), []string{"a2", "nozone"}},
		{"minDomains above domains makes min 0", []*v1.Pod{web("w1", "b1")}, spread(withLabels(pod("p", "", ""), "app", "web"), "zone", 1, v1.DoNotSchedule, &three), []string{"a1", "a2"}},
		{"ScheduleAnyway never filters", []*v1.Pod{web("w1", "a1"), web("w2", "a2")}, spread(withLabels(pod("p", "", ""), "app", "web"), "zone", 1, v1.ScheduleAnyway, nil), []string{"a1", "a2", "b1", "nozone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, newEnv(t, zoneNodes(), tt.existing).feasible(t, tt.pod)); d != "" {
				t.Error(d)
			}
		})
	}
	// With node affinity the counting is restricted to matching nodes.
	p := spread(withLabels(pod("p", "", ""), "app", "web"), "zone", 1, v1.DoNotSchedule, nil)
	p.Spec.NodeSelector = map[string]string{"zone": "a"}
	if d := cmp.Diff([]string{"a1", "a2"}, newEnv(t, zoneNodes(), []*v1.Pod{web("w", "b1")}).feasible(t, p)); d != "" {
		t.Errorf("with nodeSelector: %s", d)
	}
	rej, _ := newEnv(t, zoneNodes(), []*v1.Pod{web("w1", "a1")}).filter(t, spread(withLabels(pod("p", "", ""), "app", "web"), "zone", 1, v1.DoNotSchedule, nil))
	if d := cmp.Diff(map[string]string{"a1": ReasonSpreadConstraints, "a2": ReasonSpreadConstraints, "nozone": ReasonSpreadMissingLabel}, rej); d != "" {
		t.Errorf("reasons: %s", d)
	}
}

func TestPodTopologySpreadScore(t *testing.T) {
	nodes := zoneNodes()[:3]
	web := func(name, n string) *v1.Pod { return withLabels(on(pod(name, "", ""), n), "app", "web") }
	existing := []*v1.Pod{web("w1", "a1"), web("w2", "a2")}
	got := newEnv(t, nodes, existing).scores(t, spread(withLabels(pod("p", "", ""), "app", "web"), "zone", 1, v1.ScheduleAnyway, nil), PodTopologySpreadName)
	if got["b1"] != 100 || got["a1"] >= got["b1"] {
		t.Errorf("emptier zone should score highest: %v", got)
	}
	// Default spreading: a Service selecting the pod spreads by hostname.
	e := newEnv(t, nodes, []*v1.Pod{web("w1", "a1")})
	e.cluster.spread = labels.SelectorFromSet(labels.Set{"app": "web"})
	got = e.scores(t, withLabels(pod("p", "", ""), "app", "web"), PodTopologySpreadName)
	if got["a1"] >= got["a2"] || got["a2"] != got["b1"] {
		t.Errorf("default spreading should prefer nodes without replicas: %v", got)
	}
	e.cluster.spread = nil
	if got := e.scores(t, withLabels(pod("p", "", ""), "app", "web"), PodTopologySpreadName); got != nil {
		t.Errorf("no owner: no default spreading, got %v", got)
	}
}
