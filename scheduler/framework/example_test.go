package framework_test

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// ZoneFilter is a tiny Filter plugin: only nodes in zone "a".
type ZoneFilter struct{}

func (ZoneFilter) Name() string { return "ZoneFilter" }

func (ZoneFilter) Filter(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, n *framework.NodeInfo) *framework.Status {
	if n.Labels["zone"] != "a" {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) not in zone a")
	}
	return nil
}

// FreeCPU scores nodes by their free millicores, normalized to 0..100.
type FreeCPU struct{}

func (FreeCPU) Name() string { return "FreeCPU" }

func (FreeCPU) Score(_ context.Context, _ *framework.CycleState, p *framework.PodInfo, n *framework.NodeInfo) (int64, *framework.Status) {
	return n.Allocatable.MilliCPU - n.Requested.MilliCPU - p.Requests.MilliCPU, nil
}

func (f FreeCPU) ScoreExtensions() framework.ScoreExtensions { return f }

func (FreeCPU) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, _ []*framework.NodeInfo, scores []int64) *framework.Status {
	var hi int64 = 1
	for _, s := range scores {
		hi = max(hi, s)
	}
	for i := range scores {
		scores[i] = max(0, scores[i]) * framework.MaxNodeScore / hi
	}
	return nil
}

// Binder is a Bind plugin that only prints.
type Binder struct{}

func (Binder) Name() string { return "Binder" }

func (Binder) Bind(_ context.Context, _ *framework.CycleState, p *framework.PodInfo, node string) *framework.Status {
	fmt.Printf("bind %s to %s\n", p.Pod.Name, node)
	return nil
}

func exampleNode(name, zone, cpu string) *v1.Node {
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourcePods: resource.MustParse("10")}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"zone": zone}}, Status: v1.NodeStatus{Allocatable: rl}}
}

// Example runs one scheduling cycle by hand with three plugins registered
// from Go: filter, score and bind.
func Example() {
	ctx := context.Background()
	reg := framework.Registry{
		"ZoneFilter": func(context.Context, framework.Handle) (framework.Plugin, error) { return ZoneFilter{}, nil },
		"FreeCPU":    func(context.Context, framework.Handle) (framework.Plugin, error) { return FreeCPU{}, nil },
		"Binder":     func(context.Context, framework.Handle) (framework.Plugin, error) { return Binder{}, nil },
	}
	fw, err := framework.New(ctx, reg, []framework.PluginSpec{{Name: "ZoneFilter"}, {Name: "FreeCPU", Weight: 1}, {Name: "Binder"}}, nil)
	if err != nil {
		panic(err)
	}
	snap := framework.NewSnapshotFrom([]*v1.Node{exampleNode("a-small", "a", "2"), exampleNode("a-big", "a", "8"), exampleNode("b-huge", "b", "64")}, nil)
	fw.SetSnapshot(snap)

	pod := framework.NewPodInfo(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "1"}, Spec: v1.PodSpec{Containers: []v1.Container{{
		Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1")}},
	}}}})
	state := framework.NewCycleState()
	fw.RunPreFilterPlugins(ctx, state, pod)
	var feasible []*framework.NodeInfo
	for _, n := range snap.List() {
		if st := fw.RunFilterPlugins(ctx, state, pod, n); st.IsSuccess() {
			feasible = append(feasible, n)
		} else {
			fmt.Printf("%s: %s\n", n.Name(), st.Message())
		}
	}
	totals := make([]int64, len(feasible))
	fw.RunScorePlugins(ctx, state, pod, feasible, totals)
	best := 0
	for i := range feasible {
		fmt.Printf("%s scores %d\n", feasible[i].Name(), totals[i])
		if totals[i] > totals[best] {
			best = i
		}
	}
	fw.RunBindPlugins(ctx, state, pod, feasible[best].Name())
	// Output:
	// b-huge: node(s) not in zone a
	// a-big scores 100
	// a-small scores 14
	// bind web to a-big
}
