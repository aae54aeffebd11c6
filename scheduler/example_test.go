package scheduler_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/scheduler"
	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/scheduler/plugins"
	"github.com/tugboatdev/tugboat/store"
)

const gpu v1.ResourceName = "nvidia.com/gpu"

// GPUPacking is a custom Score plugin: it prefers nodes whose GPUs are
// already in use, so that whole GPU nodes stay free for large jobs.
type GPUPacking struct{}

// Name implements framework.Plugin.
func (GPUPacking) Name() string { return "GPUPacking" }

// Score implements framework.ScorePlugin: the share of the node's GPUs
// that would be in use with the pod, 0..100.
func (GPUPacking) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	total := node.Allocatable.Scalar[gpu]
	if total == 0 || pod.Requests.Scalar[gpu] == 0 {
		return 0, nil
	}
	used := node.Requested.Scalar[gpu] + pod.Requests.Scalar[gpu]
	return framework.MaxNodeScore * used / total, nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (GPUPacking) ScoreExtensions() framework.ScoreExtensions { return nil }

func gpuNode(name string, gpus int64) *v1.Node {
	rl := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse("16"),
		v1.ResourceMemory: resource.MustParse("64Gi"),
		v1.ResourcePods:   resource.MustParse("110"),
		gpu:               *resource.NewQuantity(gpus, resource.DecimalSI),
	}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1.NodeStatus{Capacity: rl, Allocatable: rl}}
}

func gpuPod(name string, gpus int64) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name: "train", Image: "trainer:1",
			Resources: v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1"), gpu: *resource.NewQuantity(gpus, resource.DecimalSI)},
				Limits:   v1.ResourceList{gpu: *resource.NewQuantity(gpus, resource.DecimalSI)},
			},
		}}},
	}
}

func waitBound(ctx context.Context, st store.Interface, name string) string {
	for ctx.Err() == nil {
		p, err := store.Get[*v1.Pod](ctx, st, "default", name)
		if err == nil && p.Spec.NodeName != "" {
			return p.Spec.NodeName
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ""
}

// Example_customPlugin registers a GPU bin-packing scorer next to the
// default plugins. The default scorers alone would spread GPU pods to the
// emptier node; with GPUPacking (weight 10) the second pod joins the first.
func Example_customPlugin() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	for _, n := range []*v1.Node{gpuNode("gpu-a", 4), gpuNode("gpu-b", 4)} {
		if _, err := st.Create(ctx, n, metav1.CreateOptions{}); err != nil {
			panic(err)
		}
	}

	registry := plugins.NewRegistry()
	registry["GPUPacking"] = func(context.Context, framework.Handle) (framework.Plugin, error) { return GPUPacking{}, nil }
	cfg := scheduler.Config{
		Registry: registry,
		Plugins:  append(plugins.DefaultPlugins(), framework.PluginSpec{Name: "GPUPacking", Weight: 10}),
		Logger:   slog.New(slog.DiscardHandler),
	}
	s, err := scheduler.New(ctx, st, cfg)
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Run(runCtx) }()

	if _, err := st.Create(ctx, gpuPod("train-1", 2), metav1.CreateOptions{}); err != nil {
		panic(err)
	}
	first := waitBound(ctx, st, "train-1")
	if _, err := st.Create(ctx, gpuPod("train-2", 2), metav1.CreateOptions{}); err != nil {
		panic(err)
	}
	second := waitBound(ctx, st, "train-2")
	fmt.Println("packed on one node:", first == second)
	if _, err := st.Create(ctx, gpuPod("train-3", 4), metav1.CreateOptions{}); err != nil {
		panic(err)
	}
	third := waitBound(ctx, st, "train-3")
	fmt.Println("4-GPU job got the free node:", third != first)
	stop()
	<-done
	// Output:
	// packed on one node: true
	// 4-GPU job got the free node: true
}
