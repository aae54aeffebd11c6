package plugins_test

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/scheduler/plugins"
)

// Example runs the default filters for one pod and prints why each node
// was rejected, in the upstream wording.
func Example() {
	ctx := context.Background()
	fw, err := framework.New(ctx, plugins.NewRegistry(), plugins.DefaultPlugins(), nil)
	if err != nil {
		panic(err)
	}
	alloc := v1.ResourceList{v1.ResourceCPU: resource.MustParse("1"), v1.ResourceMemory: resource.MustParse("1Gi"), v1.ResourcePods: resource.MustParse("110")}
	small := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "small"}, Status: v1.NodeStatus{Allocatable: alloc}}
	tainted := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "tainted"}, Status: v1.NodeStatus{Allocatable: v1.ResourceList{
		v1.ResourceCPU: resource.MustParse("8"), v1.ResourceMemory: resource.MustParse("8Gi"), v1.ResourcePods: resource.MustParse("110"),
	}}, Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}}}}
	snap := framework.NewSnapshotFrom([]*v1.Node{small, tainted}, nil)
	fw.SetSnapshot(snap)

	pod := framework.NewPodInfo(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "1"}, Spec: v1.PodSpec{
		Containers: []v1.Container{{Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")}}}},
	}})
	state := framework.NewCycleState()
	fw.RunPreFilterPlugins(ctx, state, pod)
	for _, n := range snap.List() {
		fmt.Printf("%s: %s\n", n.Name(), fw.RunFilterPlugins(ctx, state, pod, n).Message())
	}
	// Output:
	// small: Insufficient cpu
	// tainted: node(s) had untolerated taint {dedicated: gpu}
}
