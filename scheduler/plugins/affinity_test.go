package plugins

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func term(key string, sel map[string]string) v1.PodAffinityTerm {
	return v1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{MatchLabels: sel}, TopologyKey: key}
}

func withAffinity(p *v1.Pod, required, anti []v1.PodAffinityTerm) *v1.Pod {
	p.Spec.Affinity = &v1.Affinity{}
	if required != nil {
		p.Spec.Affinity.PodAffinity = &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: required}
	}
	if anti != nil {
		p.Spec.Affinity.PodAntiAffinity = &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: anti}
	}
	return p
}

func zoneNodes() []*v1.Node {
	return []*v1.Node{
		node("a1", "4", "4Gi", map[string]string{"zone": "a"}),
		node("a2", "4", "4Gi", map[string]string{"zone": "a"}),
		node("b1", "4", "4Gi", map[string]string{"zone": "b"}),
		node("nozone", "4", "4Gi", nil),
	}
}

func TestInterPodAffinityFilter(t *testing.T) {
	db := withLabels(on(pod("db", "", ""), "a1"), "app", "db")
	otherNS := withLabels(on(pod("cache", "", ""), "b1"), "app", "cache")
	otherNS.Namespace = "team"
	antiWeb := withAffinity(withLabels(on(pod("web0", "", ""), "b1"), "app", "web"), nil, []v1.PodAffinityTerm{term("zone", map[string]string{"app": "web"})})
	tests := []struct {
		name     string
		existing []*v1.Pod
		pod      *v1.Pod
		want     []string
	}{
		{"affinity to zone of db", []*v1.Pod{db}, withAffinity(pod("p", "", ""), []v1.PodAffinityTerm{term("zone", map[string]string{"app": "db"})}, nil), []string{"a1", "a2"}},
		{"affinity by hostname", []*v1.Pod{db}, withAffinity(pod("p", "", ""), []v1.PodAffinityTerm{term(v1.LabelHostname, map[string]string{"app": "db"})}, nil), []string{"a1"}},
		{"affinity nothing matches: nowhere", nil, withAffinity(pod("p", "", ""), []v1.PodAffinityTerm{term("zone", map[string]string{"app": "db"})}, nil), nil},
		{"affinity to itself when nothing matches", nil, withAffinity(withLabels(pod("p", "", ""), "app", "db"), []v1.PodAffinityTerm{term("zone", map[string]string{"app": "db"})}, nil), []string{"a1", "a2", "b1"}},
		{"anti-affinity to zone of db", []*v1.Pod{db}, withAffinity(pod("p", "", ""), nil, []v1.PodAffinityTerm{term("zone", map[string]string{"app": "db"})}), []string{"b1", "nozone"}},
		{"existing pod's anti-affinity", []*v1.Pod{antiWeb}, withLabels(pod("p", "", ""), "app", "web"), []string{"a1", "a2", "nozone"}},
		{"existing anti-affinity does not match", []*v1.Pod{antiWeb}, withLabels(pod("p", "", ""), "app", "api"), []string{"a1", "a2", "b1", "nozone"}},
		{"other namespace not selected by default", []*v1.Pod{otherNS}, withAffinity(pod("p", "", ""), nil, []v1.PodAffinityTerm{term("zone", map[string]string{"app": "cache"})}), []string{"a1", "a2", "b1", "nozone"}},
		{"namespaces list", []*v1.Pod{otherNS}, func() *v1.Pod {
			tm := term("zone", map[string]string{"app": "cache"})
			tm.Namespaces = []string{"team"}
			return withAffinity(pod("p", "", ""), nil, []v1.PodAffinityTerm{tm})
		}(), []string{"a1", "a2", "nozone"}},
		{"namespaceSelector", []*v1.Pod{otherNS}, func() *v1.Pod {
			tm := term("zone", map[string]string{"app": "cache"})
			tm.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "backend"}}
			return withAffinity(pod("p", "", ""), nil, []v1.PodAffinityTerm{tm})
		}(), []string{"a1", "a2", "nozone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, zoneNodes(), tt.existing)
			e.cluster.nsLabels["team"] = labels.Set{"tier": "backend"}
			if d := cmp.Diff(tt.want, e.feasible(t, tt.pod)); d != "" {
				t.Error(d)
			}
		})
	}
	e := newEnv(t, zoneNodes(), []*v1.Pod{antiWeb})
	rej, _ := e.filter(t, withLabels(pod("p", "", ""), "app", "web"))
	if rej["b1"] != ReasonExistingAntiAffinity {
		t.Errorf("reason = %q", rej["b1"])
	}
}

func TestInterPodAffinityScore(t *testing.T) {
	existing := []*v1.Pod{
		withLabels(on(pod("db", "", ""), "a1"), "app", "db"),
		withLabels(on(pod("noisy", "", ""), "b1"), "app", "noisy"),
	}
	p := pod("p", "", "")
	p.Spec.Affinity = &v1.Affinity{
		PodAffinity: &v1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{
			{Weight: 10, PodAffinityTerm: term("zone", map[string]string{"app": "db"})},
		}},
		PodAntiAffinity: &v1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{
			{Weight: 10, PodAffinityTerm: term("zone", map[string]string{"app": "noisy"})},
		}},
	}
	nodes := zoneNodes()[:3]
	got := newEnv(t, nodes, existing).scores(t, p, InterPodAffinityName)
	if d := cmp.Diff(map[string]int64{"a1": 100, "a2": 100, "b1": 0}, got); d != "" {
		t.Errorf("scores (-want +got):\n%s", d)
	}
	// An existing pod's preferred affinity pulls matching pods near it.
	attract := withLabels(on(pod("attract", "", ""), "b1"), "app", "x")
	attract.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{
		{Weight: 5, PodAffinityTerm: term("zone", map[string]string{"app": "y"})},
	}}}
	got = newEnv(t, nodes, []*v1.Pod{attract}).scores(t, withLabels(pod("p", "", ""), "app", "y"), InterPodAffinityName)
	if d := cmp.Diff(map[string]int64{"a1": 0, "a2": 0, "b1": 100}, got); d != "" {
		t.Errorf("symmetric scores (-want +got):\n%s", d)
	}
}
