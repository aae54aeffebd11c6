package plugins

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestNodeResourcesFit(t *testing.T) {
	gpuNode := node("gpu", "4", "8Gi", nil)
	gpuNode.Status.Allocatable["nvidia.com/gpu"] = resource.MustParse("2")
	nodes := []*v1.Node{node("small", "1", "1Gi", nil), node("big", "8", "16Gi", nil), gpuNode}
	existing := []*v1.Pod{on(pod("e1", "500m", "512Mi"), "small")}

	withInit := func(p *v1.Pod, cpu string) *v1.Pod {
		p.Spec.InitContainers = []v1.Container{{Name: "init", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}}}}
		return p
	}
	withOverhead := func(p *v1.Pod, cpu string) *v1.Pod {
		p.Spec.Overhead = v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}
		return p
	}
	withGPU := func(p *v1.Pod, n string) *v1.Pod {
		p.Spec.Containers[0].Resources.Requests["nvidia.com/gpu"] = resource.MustParse(n)
		return p
	}
	withEphemeral := func(p *v1.Pod, q string) *v1.Pod {
		p.Spec.Containers[0].Resources.Requests[v1.ResourceEphemeralStorage] = resource.MustParse(q)
		return p
	}
	tests := []struct {
		name string
		pod  *v1.Pod
		want map[string]string
	}{
		{"fits everywhere", pod("p", "100m", "100Mi"), map[string]string{}},
		{"cpu short on small", pod("p", "600m", "100Mi"), map[string]string{"small": "Insufficient cpu"}},
		{"cpu and memory short", pod("p", "600m", "600Mi"), map[string]string{"small": "Insufficient cpu, Insufficient memory"}},
		{"init container dominates", withInit(pod("p", "100m", ""), "600m"), map[string]string{"small": "Insufficient cpu"}},
		{"init smaller than app sum", withInit(pod("p", "400m", ""), "200m"), map[string]string{}},
		{"overhead counts", withOverhead(pod("p", "400m", ""), "200m"), map[string]string{"small": "Insufficient cpu"}},
		{"extended resource", withGPU(pod("p", "100m", ""), "1"), map[string]string{"small": "Insufficient nvidia.com/gpu", "big": "Insufficient nvidia.com/gpu"}},
		{"extended resource too many", withGPU(pod("p", "100m", ""), "3"), map[string]string{"small": "Insufficient nvidia.com/gpu", "big": "Insufficient nvidia.com/gpu", "gpu": "Insufficient nvidia.com/gpu"}},
		{"ephemeral storage", withEphemeral(pod("p", "", ""), "200Gi"), map[string]string{"small": "Insufficient ephemeral-storage", "big": "Insufficient ephemeral-storage", "gpu": "Insufficient ephemeral-storage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nodes, existing)
			got, _ := e.filter(t, tt.pod)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("rejections (-want +got):\n%s", d)
			}
		})
	}
}

func TestTooManyPods(t *testing.T) {
	n := node("n", "4", "4Gi", nil)
	n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("1")
	e := newEnv(t, []*v1.Node{n}, []*v1.Pod{on(pod("a", "", ""), "n")})
	got, _ := e.filter(t, pod("p", "", ""))
	if d := cmp.Diff(map[string]string{"n": "Too many pods"}, got); d != "" {
		t.Error(d)
	}
}

func TestLeastAllocatedAndBalanced(t *testing.T) {
	nodes := []*v1.Node{node("empty", "4", "8Gi", nil), node("half", "4", "8Gi", nil)}
	existing := []*v1.Pod{on(pod("e", "2", "1Gi"), "half")}
	e := newEnv(t, nodes, existing)
	p := pod("p", "1", "2Gi")
	least := e.scores(t, p, NodeResourcesFitName)
	// empty: cpu (4-1)/4=75, mem (8-2)/8=75 -> 75; half: cpu (4-3)/4=25, mem (8-3)/8=62 -> 43
	if d := cmp.Diff(map[string]int64{"empty": 75, "half": 43}, least); d != "" {
		t.Errorf("LeastAllocated (-want +got):\n%s", d)
	}
	bal := e.scores(t, p, BalancedAllocationName)
	// empty: cpu .25, mem .25 -> 100; half: cpu .75, mem .375 -> std .1875 -> 81
	if d := cmp.Diff(map[string]int64{"empty": 100, "half": 81}, bal); d != "" {
		t.Errorf("BalancedAllocation (-want +got):\n%s", d)
	}
}
