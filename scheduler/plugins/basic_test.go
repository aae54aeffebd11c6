package plugins

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
)

func TestNodeUnschedulableAndNodeName(t *testing.T) {
	cordoned := node("cordoned", "4", "4Gi", nil)
	cordoned.Spec.Unschedulable = true
	nodes := []*v1.Node{cordoned, node("ok", "4", "4Gi", nil)}
	tolerating := pod("t", "", "")
	tolerating.Spec.Tolerations = []v1.Toleration{{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}
	named := pod("n", "", "")
	named.Spec.NodeName = "ok"
	tests := []struct {
		name string
		pod  *v1.Pod
		want []string
	}{
		{"cordoned node skipped", pod("p", "", ""), []string{"ok"}},
		{"toleration of unschedulable taint", tolerating, []string{"cordoned", "ok"}},
		{"nodeName", named, []string{"ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, newEnv(t, nodes, nil).feasible(t, tt.pod)); d != "" {
				t.Error(d)
			}
		})
	}
	rej, _ := newEnv(t, nodes, nil).filter(t, pod("p", "", ""))
	if rej["cordoned"] != ReasonNodeUnschedulable {
		t.Errorf("reason = %q", rej["cordoned"])
	}
}

func TestNodePorts(t *testing.T) {
	withPort := func(p *v1.Pod, ip string, port int32, proto v1.Protocol) *v1.Pod {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, v1.ContainerPort{ContainerPort: 80, HostPort: port, HostIP: ip, Protocol: proto})
		return p
	}
	nodes := []*v1.Node{node("a", "4", "4Gi", nil), node("b", "4", "4Gi", nil)}
	existing := []*v1.Pod{withPort(on(pod("e", "", ""), "a"), "", 8080, "")}
	tests := []struct {
		name string
		pod  *v1.Pod
		want []string
	}{
		{"same port", withPort(pod("p", "", ""), "", 8080, ""), []string{"b"}},
		{"same port other ip vs wildcard", withPort(pod("p", "", ""), "10.0.0.1", 8080, v1.ProtocolTCP), []string{"b"}},
		{"other protocol", withPort(pod("p", "", ""), "", 8080, v1.ProtocolUDP), []string{"a", "b"}},
		{"other port", withPort(pod("p", "", ""), "", 9090, ""), []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, newEnv(t, nodes, existing).feasible(t, tt.pod)); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestTaintToleration(t *testing.T) {
	taint := func(n *v1.Node, key, value string, effect v1.TaintEffect) *v1.Node {
		n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: key, Value: value, Effect: effect})
		return n
	}
	nodes := []*v1.Node{
		taint(node("nosched", "4", "4Gi", nil), "key", "value", v1.TaintEffectNoSchedule),
		taint(node("noexec", "4", "4Gi", nil), "dedicated", "db", v1.TaintEffectNoExecute),
		taint(node("prefer", "4", "4Gi", nil), "spot", "true", v1.TaintEffectPreferNoSchedule),
		node("clean", "4", "4Gi", nil),
	}
	tol := func(ts ...v1.Toleration) *v1.Pod {
		p := pod("p", "", "")
		p.Spec.Tolerations = ts
		return p
	}
	secs := int64(30)
	tests := []struct {
		name string
		pod  *v1.Pod
		want []string
	}{
		{"no tolerations", tol(), []string{"clean", "prefer"}},
		{"equal", tol(v1.Toleration{Key: "key", Operator: v1.TolerationOpEqual, Value: "value", Effect: v1.TaintEffectNoSchedule}), []string{"clean", "nosched", "prefer"}},
		{"equal wrong value", tol(v1.Toleration{Key: "key", Operator: v1.TolerationOpEqual, Value: "other", Effect: v1.TaintEffectNoSchedule}), []string{"clean", "prefer"}},
		{"exists any effect", tol(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpExists}), []string{"clean", "noexec", "prefer"}},
		{"empty key exists tolerates all", tol(v1.Toleration{Operator: v1.TolerationOpExists}), []string{"clean", "noexec", "nosched", "prefer"}},
		{"NoExecute with tolerationSeconds", tol(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "db", Effect: v1.TaintEffectNoExecute, TolerationSeconds: &secs}), []string{"clean", "noexec", "prefer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, newEnv(t, nodes, nil).feasible(t, tt.pod)); d != "" {
				t.Error(d)
			}
		})
	}
	rej, _ := newEnv(t, nodes, nil).filter(t, pod("p", "", ""))
	if got, want := rej["nosched"], "node(s) had untolerated taint {key: value}"; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
	// PreferNoSchedule: the untainted node scores higher.
	e := newEnv(t, []*v1.Node{nodes[2], nodes[3]}, nil)
	if d := cmp.Diff(map[string]int64{"prefer": 0, "clean": 100}, e.scores(t, pod("p", "", ""), TaintTolerationName)); d != "" {
		t.Errorf("scores (-want +got):\n%s", d)
	}
}

func TestNodeAffinity(t *testing.T) {
	nodes := []*v1.Node{
		node("a", "4", "4Gi", map[string]string{"zone": "z1", "disk": "ssd", "cores": "8"}),
		node("b", "4", "4Gi", map[string]string{"zone": "z2", "cores": "2"}),
		node("c", "4", "4Gi", map[string]string{"zone": "z3"}),
	}
	req := func(reqs ...v1.NodeSelectorRequirement) *v1.Pod {
		p := pod("p", "", "")
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
			NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: reqs}},
		}}}
		return p
	}
	sel := pod("p", "", "")
	sel.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	byName := pod("p", "", "")
	byName.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
		NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{"b"}}}}},
	}}}
	tests := []struct {
		name string
		pod  *v1.Pod
		want []string
	}{
		{"nodeSelector", sel, []string{"a"}},
		{"In", req(v1.NodeSelectorRequirement{Key: "zone", Operator: v1.NodeSelectorOpIn, Values: []string{"z1", "z2"}}), []string{"a", "b"}},
		{"NotIn", req(v1.NodeSelectorRequirement{Key: "zone", Operator: v1.NodeSelectorOpNotIn, Values: []string{"z1"}}), []string{"b", "c"}},
		{"Exists", req(v1.NodeSelectorRequirement{Key: "disk", Operator: v1.NodeSelectorOpExists}), []string{"a"}},
		{"DoesNotExist", req(v1.NodeSelectorRequirement{Key: "disk", Operator: v1.NodeSelectorOpDoesNotExist}), []string{"b", "c"}},
		{"Gt", req(v1.NodeSelectorRequirement{Key: "cores", Operator: v1.NodeSelectorOpGt, Values: []string{"4"}}), []string{"a"}},
		{"Lt", req(v1.NodeSelectorRequirement{Key: "cores", Operator: v1.NodeSelectorOpLt, Values: []string{"4"}}), []string{"b"}},
		{"matchFields metadata.name", byName, []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, newEnv(t, nodes, nil).feasible(t, tt.pod)); d != "" {
				t.Error(d)
			}
		})
	}
	pref := pod("p", "", "")
	pref.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{
		{Weight: 10, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "zone", Operator: v1.NodeSelectorOpIn, Values: []string{"z1"}}}}},
		{Weight: 5, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "cores", Operator: v1.NodeSelectorOpExists}}}},
	}}}
	got := newEnv(t, nodes, nil).scores(t, pref, NodeAffinityName)
	if d := cmp.Diff(map[string]int64{"a": 100, "b": 33, "c": 0}, got); d != "" {
		t.Errorf("preferred scores (-want +got):\n%s", d)
	}
}

func TestImageLocality(t *testing.T) {
	withImage := func(n *v1.Node, name string, size int64) *v1.Node {
		n.Status.Images = append(n.Status.Images, v1.ContainerImage{Names: []string{name}, SizeBytes: size})
		return n
	}
	nodes := []*v1.Node{
		withImage(node("has", "4", "4Gi", nil), "registry.example/big:v1", 500*mb),
		node("lacks", "4", "4Gi", nil),
	}
	p := pod("p", "", "")
	p.Spec.Containers[0].Image = "registry.example/big:v1"
	got := newEnv(t, nodes, nil).scores(t, p, ImageLocalityName)
	// 500MB spread over half the nodes = 250MB; (250-23)/(1000-23)*100 = 23
	if d := cmp.Diff(map[string]int64{"has": 23, "lacks": 0}, got); d != "" {
		t.Errorf("scores (-want +got):\n%s", d)
	}
	p.Spec.Containers[0].Image = "other"
	if got := newEnv(t, nodes, nil).scores(t, p, ImageLocalityName); got != nil {
		t.Errorf("pod without present images was scored: %v", got)
	}
}
