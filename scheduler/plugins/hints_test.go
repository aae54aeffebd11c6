package plugins

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// TestQueueingHints checks, plugin by plugin, that an event relevant to the
// pod the plugin rejected requeues it and an irrelevant one does not.
func TestQueueingHints(t *testing.T) {
	var (
		nodeAdd      = framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add}
		nodeDelete   = framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Delete}
		nodeLabel    = framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.UpdateNodeLabel}
		nodeTaint    = framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.UpdateNodeTaint}
		nodeAlloc    = framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.UpdateNodeAllocatable}
		podAdd       = framework.ClusterEvent{Resource: framework.AssignedPodResource, ActionType: framework.Add}
		podDelete    = framework.ClusterEvent{Resource: framework.AssignedPodResource, ActionType: framework.Delete}
		podLabel     = framework.ClusterEvent{Resource: framework.AssignedPodResource, ActionType: framework.UpdatePodLabel}
		podScaleDown = framework.ClusterEvent{Resource: framework.AssignedPodResource, ActionType: framework.UpdatePodScaleDown}
	)
	zoned := func(name, zone string) *v1.Node {
		return node(name, "4", "8Gi", map[string]string{v1.LabelTopologyZone: zone})
	}
	plain := func(name string) *v1.Node { return node(name, "4", "8Gi", nil) }
	tainted := func(n *v1.Node, key string) *v1.Node {
		n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: key, Value: "v", Effect: v1.TaintEffectNoSchedule})
		return n
	}
	cordoned := func(n *v1.Node) *v1.Node { n.Spec.Unschedulable = true; return n }
	withSelector := func(p *v1.Pod, k, v string) *v1.Pod { p.Spec.NodeSelector = map[string]string{k: v}; return p }
	withPort := func(p *v1.Pod, port int32) *v1.Pod {
		p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: port}}
		return p
	}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
	withAffinity := func(p *v1.Pod) *v1.Pod {
		p.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{LabelSelector: sel, TopologyKey: v1.LabelHostname}}}}
		return p
	}
	withAnti := func(p *v1.Pod) *v1.Pod {
		p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{LabelSelector: sel, TopologyKey: v1.LabelHostname}}}}
		return p
	}
	withSpread := func(p *v1.Pod) *v1.Pod {
		p.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: v1.LabelTopologyZone, WhenUnsatisfiable: v1.DoNotSchedule, LabelSelector: sel}}
		return p
	}
	gpuNode := func(name string, gpus string) *v1.Node {
		n := plain(name)
		n.Status.Allocatable["nvidia.com/gpu"] = resource.MustParse(gpus)
		return n
	}
	gpuPod := func(name string) *v1.Pod {
		p := pod(name, "100m", "")
		p.Spec.Containers[0].Resources.Requests["nvidia.com/gpu"] = resource.MustParse("2")
		return p
	}
	resized := func(p *v1.Pod, cpu string) *v1.Pod {
		c := p.DeepCopy()
		c.Spec.Containers[0].Resources.Requests[v1.ResourceCPU] = resource.MustParse(cpu)
		return c
	}

	tests := []struct {
		name     string
		plugin   string
		pod      *v1.Pod
		ev       framework.ClusterEvent
		old, new any
		want     bool
	}{
		{"affinity: matching node added", NodeAffinityName, withSelector(pod("p", "", ""), "disk", "ssd"), nodeAdd, nil, node("n", "4", "8Gi", map[string]string{"disk": "ssd"}), true},
		{"affinity: other node added", NodeAffinityName, withSelector(pod("p", "", ""), "disk", "ssd"), nodeAdd, nil, plain("n"), false},
		{"affinity: node relabelled to match", NodeAffinityName, withSelector(pod("p", "", ""), "disk", "ssd"), nodeLabel, plain("n"), node("n", "4", "8Gi", map[string]string{"disk": "ssd"}), true},
		{"affinity: unrelated relabel", NodeAffinityName, withSelector(pod("p", "", ""), "disk", "ssd"), nodeLabel, plain("n"), node("n", "4", "8Gi", map[string]string{"other": "x"}), false},
		{"affinity: event it did not register", NodeAffinityName, withSelector(pod("p", "", ""), "disk", "ssd"), podDelete, on(pod("q", "", ""), "n"), nil, false},

		{"taint: untainted node added", TaintTolerationName, pod("p", "", ""), nodeAdd, nil, plain("n"), true},
		{"taint: tainted node added", TaintTolerationName, pod("p", "", ""), nodeAdd, nil, tainted(plain("n"), "k"), false},
		{"taint: taint removed", TaintTolerationName, pod("p", "", ""), nodeTaint, tainted(plain("n"), "k"), plain("n"), true},
		{"taint: one of two taints removed", TaintTolerationName, pod("p", "", ""), nodeTaint, tainted(tainted(plain("n"), "k"), "j"), tainted(plain("n"), "j"), false},

		{"unschedulable: uncordoned", NodeUnschedulableName, pod("p", "", ""), nodeTaint, cordoned(plain("n")), plain("n"), true},
		{"unschedulable: cordoned node added", NodeUnschedulableName, pod("p", "", ""), nodeAdd, nil, cordoned(plain("n")), false},
		{"unschedulable: taint change on schedulable node", NodeUnschedulableName, pod("p", "", ""), nodeTaint, plain("n"), tainted(plain("n"), "k"), false},

		{"ports: holder of the port deleted", NodePortsName, withPort(pod("p", "", ""), 8080), podDelete, on(withPort(pod("q", "", ""), 8080), "n"), nil, true},
		{"ports: other pod deleted", NodePortsName, withPort(pod("p", "", ""), 8080), podDelete, on(withPort(pod("q", "", ""), 9090), "n"), nil, false},
		{"ports: node added", NodePortsName, withPort(pod("p", "", ""), 8080), nodeAdd, nil, plain("n"), true},

		{"fit: assigned pod deleted", NodeResourcesFitName, pod("p", "3", ""), podDelete, on(pod("q", "1", ""), "n"), nil, true},
		{"fit: big enough node added", NodeResourcesFitName, pod("p", "3", ""), nodeAdd, nil, plain("n"), true},
		{"fit: too small node added", NodeResourcesFitName, pod("p", "8", ""), nodeAdd, nil, plain("n"), false},
		{"fit: gpu node added", NodeResourcesFitName, gpuPod("p"), nodeAdd, nil, gpuNode("n", "4"), true},
		{"fit: node without enough gpus added", NodeResourcesFitName, gpuPod("p"), nodeAdd, nil, gpuNode("n", "1"), false},
		{"fit: allocatable grew", NodeResourcesFitName, pod("p", "3", ""), nodeAlloc, node("n", "2", "8Gi", nil), plain("n"), true},
		{"fit: allocatable grew, still too small", NodeResourcesFitName, pod("p", "8", ""), nodeAlloc, node("n", "2", "8Gi", nil), plain("n"), false},
		{"fit: cpu scaled down", NodeResourcesFitName, pod("p", "1", ""), podScaleDown, on(pod("q", "2", ""), "n"), resized(on(pod("q", "2", ""), "n"), "1"), true},
		{"fit: cpu scaled down, pod wants memory only", NodeResourcesFitName, pod("p", "", "1Gi"), podScaleDown, on(pod("q", "2", "1Gi"), "n"), resized(on(pod("q", "2", "1Gi"), "n"), "1"), false},
		{"fit: assigned pod added", NodeResourcesFitName, pod("p", "3", ""), podAdd, nil, on(pod("q", "1", ""), "n"), false},

		{"interpod: matching pod added", InterPodAffinityName, withAffinity(pod("p", "", "")), podAdd, nil, on(withLabels(pod("q", "", ""), "app", "db"), "n"), true},
		{"interpod: other pod added", InterPodAffinityName, withAffinity(pod("p", "", "")), podAdd, nil, on(withLabels(pod("q", "", ""), "app", "web"), "n"), false},
		{"interpod: pod relabelled to match", InterPodAffinityName, withAffinity(pod("p", "", "")), podLabel, on(withLabels(pod("q", "", ""), "app", "web"), "n"), on(withLabels(pod("q", "", ""), "app", "db"), "n"), true},
		{"interpod: anti-affinity target deleted", InterPodAffinityName, withAnti(pod("p", "", "")), podDelete, on(withLabels(pod("q", "", ""), "app", "db"), "n"), nil, true},
		{"interpod: unrelated pod deleted", InterPodAffinityName, withAnti(pod("p", "", "")), podDelete, on(withLabels(pod("q", "", ""), "app", "web"), "n"), nil, false},
		{"interpod: pod whose anti-affinity excluded it deleted", InterPodAffinityName, withLabels(pod("p", "", ""), "app", "db"), podDelete, on(withAnti(pod("q", "", "")), "n"), nil, true},
		{"interpod: topology label changed", InterPodAffinityName, withAffinity(pod("p", "", "")), nodeLabel, plain("n"), node("n", "4", "8Gi", map[string]string{v1.LabelHostname: "m"}), true},
		{"interpod: other label changed", InterPodAffinityName, withAffinity(pod("p", "", "")), nodeLabel, plain("n"), node("n", "4", "8Gi", map[string]string{"x": "y"}), false},

		{"spread: matching pod deleted", PodTopologySpreadName, withSpread(pod("p", "", "")), podDelete, on(withLabels(pod("q", "", ""), "app", "db"), "n"), nil, true},
		{"spread: matching pod in another namespace", PodTopologySpreadName, withSpread(pod("p", "", "")), podAdd, nil, func() *v1.Pod {
			q := on(withLabels(pod("q", "", ""), "app", "db"), "n")
			q.Namespace = "other"
			return q
		}(), false},
		{"spread: non-matching pod added", PodTopologySpreadName, withSpread(pod("p", "", "")), podAdd, nil, on(withLabels(pod("q", "", ""), "app", "web"), "n"), false},
		{"spread: zoned node added", PodTopologySpreadName, withSpread(pod("p", "", "")), nodeAdd, nil, zoned("n", "z1"), true},
		{"spread: node without zone added", PodTopologySpreadName, withSpread(pod("p", "", "")), nodeAdd, nil, plain("n"), false},
		{"spread: zoned node deleted", PodTopologySpreadName, withSpread(pod("p", "", "")), nodeDelete, zoned("n", "z1"), nil, true},
		{"spread: zone relabelled", PodTopologySpreadName, withSpread(pod("p", "", "")), nodeLabel, zoned("n", "z1"), zoned("n", "z2"), true},
		{"spread: other label changed", PodTopologySpreadName, withSpread(pod("p", "", "")), nodeLabel, zoned("n", "z1"), func() *v1.Node { n := zoned("n", "z1"); n.Labels["x"] = "y"; return n }(), false},

		{"node name: the named node added", NodeNameName, func() *v1.Pod { p := pod("p", "", ""); p.Spec.NodeName = "n"; return p }(), nodeAdd, nil, plain("n"), true},
		{"node name: another node added", NodeNameName, func() *v1.Pod { p := pod("p", "", ""); p.Spec.NodeName = "n"; return p }(), nodeAdd, nil, plain("m"), false},

		{"no object: queued when registered", NodeAffinityName, withSelector(pod("p", "", ""), "disk", "ssd"), nodeAdd, nil, nil, true},
		{"wrong object type: queued", NodeAffinityName, withSelector(pod("p", "", ""), "disk", "ssd"), nodeAdd, nil, pod("x", "", ""), true},
	}
	e := newEnv(t, nil, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.fw.QueueingHint(map[string]struct{}{tt.plugin: {}}, tt.pod, tt.ev, tt.old, tt.new)
			if got != tt.want {
				t.Errorf("QueueingHint = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestQueueingHintWithoutRejectingPlugins checks that a pod that failed
// for no plugin's reason is queued by any event, and that one rejected by
// a plugin the profile does not know is queued too.
func TestQueueingHintWithoutRejectingPlugins(t *testing.T) {
	e := newEnv(t, nil, nil)
	ev := framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add}
	if !e.fw.QueueingHint(nil, pod("p", "", ""), ev, nil, node("n", "1", "1Gi", nil)) {
		t.Error("pod without rejecting plugins not queued")
	}
	if !e.fw.QueueingHint(map[string]struct{}{"Extender": {}}, pod("p", "", ""), ev, nil, node("n", "1", "1Gi", nil)) {
		t.Error("pod rejected by an unknown plugin not queued")
	}
}
