package framework

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// helperRequests is the general computation podRequests must agree with.
func helperRequests(pod *v1.Pod) Resource {
	return NewResource(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
}

func podWith(containers ...v1.ResourceList) *v1.Pod {
	p := &v1.Pod{}
	for _, rl := range containers {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Resources: v1.ResourceRequirements{Requests: rl}})
	}
	return p
}

func TestPodRequestsMatchesResourceHelper(t *testing.T) {
	q := resource.MustParse
	always := v1.ContainerRestartPolicyAlways
	withInit := podWith(v1.ResourceList{v1.ResourceCPU: q("100m")})
	withInit.Spec.InitContainers = []v1.Container{
		{Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: q("1")}}},
		{RestartPolicy: &always, Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: q("1Gi")}}},
	}
	withOverhead := podWith(v1.ResourceList{v1.ResourceCPU: q("100m")})
	withOverhead.Spec.Overhead = v1.ResourceList{v1.ResourceCPU: q("250m"), v1.ResourceMemory: q("120Mi")}
	podLevel := podWith(v1.ResourceList{v1.ResourceCPU: q("100m")})
	podLevel.Spec.Resources = &v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: q("2")}}
	tests := []struct {
		name string
		pod  *v1.Pod
		fast bool // whether the fast path must take the pod
	}{
		{"no containers", podWith(), true},
		{"no requests", podWith(nil, nil), true},
		{"scheduler_perf pod", podWith(v1.ResourceList{v1.ResourceCPU: q("100m"), v1.ResourceMemory: q("500Mi")}), true},
		{"two containers", podWith(v1.ResourceList{v1.ResourceCPU: q("1"), v1.ResourceMemory: q("1Gi")}, v1.ResourceList{v1.ResourceCPU: q("250m"), v1.ResourceEphemeralStorage: q("2Gi")}), true},
		// Sub-millicore amounts: summed first, then rounded up once.
		{"fractional millicores", podWith(v1.ResourceList{v1.ResourceCPU: q("500u")}, v1.ResourceList{v1.ResourceCPU: q("500u")}), true},
		{"fractional bytes", podWith(v1.ResourceList{v1.ResourceMemory: q("0.5")}, v1.ResourceList{v1.ResourceMemory: q("0.5")}), true},
		{"extended resource", podWith(v1.ResourceList{v1.ResourceCPU: q("1"), "nvidia.com/gpu": q("2")}), false},
		{"hugepages", podWith(v1.ResourceList{"hugepages-2Mi": q("4Mi")}), false},
		{"init and sidecar containers", withInit, false},
		{"overhead", withOverhead, false},
		{"pod-level requests", podLevel, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := simplePodRequests(tt.pod); ok != tt.fast {
				t.Errorf("fast path taken = %v, want %v", ok, tt.fast)
			}
			if diff := cmp.Diff(helperRequests(tt.pod), podRequests(tt.pod)); diff != "" {
				t.Errorf("podRequests differs from resourcehelper (-helper +got):\n%s", diff)
			}
		})
	}
}

// FuzzPodRequests checks the fast path against resourcehelper on
// arbitrary quantities (parsed from strings, as a decoder would).
func FuzzPodRequests(f *testing.F) {
	f.Add("100m", "500Mi", "1", "2Gi", "")
	f.Add("500u", "0.5", "500u", "0.5", "1Ki")
	f.Add("1.5", "1e3", "0", "", "9223372036854775807")
	f.Fuzz(func(t *testing.T, cpu1, mem1, cpu2, mem2, eph string) {
		rl := func(pairs ...any) v1.ResourceList {
			out := v1.ResourceList{}
			for i := 0; i < len(pairs); i += 2 {
				q, err := resource.ParseQuantity(pairs[i+1].(string))
				if err != nil {
					continue
				}
				out[pairs[i].(v1.ResourceName)] = q
			}
			return out
		}
		pod := podWith(
			rl(v1.ResourceCPU, cpu1, v1.ResourceMemory, mem1),
			rl(v1.ResourceCPU, cpu2, v1.ResourceMemory, mem2, v1.ResourceEphemeralStorage, eph),
		)
		if diff := cmp.Diff(helperRequests(pod), podRequests(pod)); diff != "" {
			t.Errorf("podRequests differs from resourcehelper (-helper +got):\n%s", diff)
		}
	})
}
