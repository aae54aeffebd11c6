package cluster

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/orchestrator/agent"
)

// fakeUsage is an agent.MetricsProvider with fixed pod samples.
type fakeUsage struct{ pods []agent.PodUsage }

func (f fakeUsage) PodMetrics(context.Context, string, string) (*agent.PodUsage, error) {
	return nil, nil
}
func (f fakeUsage) ListPodMetrics(context.Context) ([]agent.PodUsage, error) { return f.pods, nil }
func (f fakeUsage) NodeMetrics(context.Context) (*agent.NodeUsage, error)    { return nil, nil }

// TestNodeMetricsForHPA checks the figures the HorizontalPodAutoscaler
// reads: per pod of one namespace, summed over containers, from every node.
func TestNodeMetricsForHPA(t *testing.T) {
	m := NewNodeMetrics(nil)
	m.Add("a", fakeUsage{pods: []agent.PodUsage{
		{Namespace: "web", Name: "p1", Containers: []agent.ContainerUsage{{CPUNanoCores: 150e6, MemoryWorkingSetBytes: 10 << 20}, {CPUNanoCores: 50e6, MemoryWorkingSetBytes: 6 << 20}}},
		{Namespace: "other", Name: "x", Containers: []agent.ContainerUsage{{CPUNanoCores: 1e9}}},
	}})
	m.Add("b", fakeUsage{pods: []agent.PodUsage{
		{Namespace: "web", Name: "p2", Containers: []agent.ContainerUsage{{CPUNanoCores: 5e6, MemoryWorkingSetBytes: 1 << 20}}},
	}})
	ctx := context.Background()
	cpu, err := m.PodCPU(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{"p1": 200, "p2": 5}, cpu); diff != "" {
		t.Errorf("PodCPU (-want +got):\n%s", diff)
	}
	mem, err := m.PodUsage(ctx, "web", corev1.ResourceMemory)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for k, v := range mem {
		got[k] = v.Value()
	}
	if diff := cmp.Diff(map[string]int64{"p1": 16 << 20, "p2": 1 << 20}, got); diff != "" {
		t.Errorf("PodUsage memory (-want +got):\n%s", diff)
	}
}
