package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tugboatdev/tugboat/runtime"
)

// TestPodResources checks the pod-level cgroup limits the agent asks the
// runtime for: requests always, limits only when every container has one.
func TestPodResources(t *testing.T) {
	c := func(cpuReq, cpuLim, memLim string) corev1.Container {
		r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
		if cpuReq != "" {
			r.Requests[corev1.ResourceCPU] = resource.MustParse(cpuReq)
		}
		if cpuLim != "" {
			r.Limits[corev1.ResourceCPU] = resource.MustParse(cpuLim)
		}
		if memLim != "" {
			r.Limits[corev1.ResourceMemory] = resource.MustParse(memLim)
		}
		return corev1.Container{Name: "c", Resources: r}
	}
	for _, tc := range []struct {
		name       string
		init, apps []corev1.Container
		want       runtime.Resources
	}{
		{"all limited", nil, []corev1.Container{c("100m", "200m", "64Mi"), c("50m", "300m", "32Mi")},
			runtime.Resources{CPURequestMilli: 150, CPULimitMilli: 500, MemoryLimitBytes: 96 << 20}},
		{"one without memory limit", nil, []corev1.Container{c("100m", "200m", "64Mi"), c("", "300m", "")},
			runtime.Resources{CPURequestMilli: 100, CPULimitMilli: 500}},
		{"a larger init container", []corev1.Container{c("1", "1", "1Gi")}, []corev1.Container{c("100m", "200m", "64Mi")},
			runtime.Resources{CPURequestMilli: 1000, CPULimitMilli: 1000, MemoryLimitBytes: 1 << 30}},
		{"best effort", nil, []corev1.Container{c("", "", "")}, runtime.Resources{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{InitContainers: tc.init, Containers: tc.apps}}
			if got := podResources(pod); got != tc.want {
				t.Errorf("podResources = %+v, want %+v", got, tc.want)
			}
		})
	}
}
