package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/tugboatdev/tugboat/scheduler"
	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/scheduler/plugins"
	"github.com/tugboatdev/tugboat/store"
)

// Example_profiles serves two schedulerNames from one scheduler: the
// default profile, and "gpu-packer" that adds the GPUPacking scorer. Both
// share one cache and one queue; a pod naming neither is left pending.
func Example_profiles() {
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
	s, err := scheduler.New(ctx, st, scheduler.Config{
		Registry: registry,
		Profiles: []scheduler.Profile{
			{SchedulerName: scheduler.DefaultSchedulerName},
			{SchedulerName: "gpu-packer", Plugins: append(plugins.DefaultPlugins(), framework.PluginSpec{Name: "GPUPacking", Weight: 10})},
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Run(runCtx) }()
	fmt.Println("profiles:", s.SchedulerNames())

	// Two pods for the packer land together; a default pod then prefers
	// the emptier node.
	for _, name := range []string{"packed-1", "packed-2", "default-1", "nobody"} {
		p := gpuPod(name, 1)
		switch name[:6] {
		case "packed":
			p.Spec.SchedulerName = "gpu-packer"
		case "nobody":
			p.Spec.SchedulerName = "another-scheduler"
		}
		if _, err := st.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			panic(err)
		}
		if name != "nobody" {
			waitBound(ctx, st, name)
		}
	}
	node := func(name string) string {
		p, err := store.Get[*v1.Pod](ctx, st, "default", name)
		if err != nil {
			panic(err)
		}
		return p.Spec.NodeName
	}
	fmt.Println("gpu-packer packed:", node("packed-1") == node("packed-2"))
	fmt.Println("default pod on the emptier node:", node("default-1") != node("packed-1"))
	fmt.Printf("other scheduler's pod bound: %q\n", node("nobody"))
	stop()
	<-done
	// Output:
	// profiles: [default-scheduler gpu-packer]
	// gpu-packer packed: true
	// default pod on the emptier node: true
	// other scheduler's pod bound: ""
}

// Example_extender plugs an HTTP scheduler extender (here served on
// 127.0.0.1 by httptest) into the scheduler: its filter verb keeps only the
// nodes labelled rack=r2, as an outside placement service would.
func Example_extender() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ext := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var args extenderv1.ExtenderArgs
		if err := json.NewDecoder(r.Body).Decode(&args); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res := extenderv1.ExtenderFilterResult{Nodes: &v1.NodeList{}, FailedNodes: extenderv1.FailedNodesMap{}}
		for _, n := range args.Nodes.Items {
			if n.Labels["rack"] == "r2" {
				res.Nodes.Items = append(res.Nodes.Items, n)
			} else {
				res.FailedNodes[n.Name] = "not in rack r2"
			}
		}
		_ = json.NewEncoder(w).Encode(res)
	}))
	defer ext.Close()

	st, err := store.Open(ctx, store.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	for i, rack := range []string{"r1", "r2", "r1"} {
		n := gpuNode(fmt.Sprintf("node-%d", i), 0)
		n.Labels = map[string]string{"rack": rack}
		if _, err := st.Create(ctx, n, metav1.CreateOptions{}); err != nil {
			panic(err)
		}
	}
	s, err := scheduler.New(ctx, st, scheduler.Config{
		Extenders: []scheduler.ExtenderConfig{{URLPrefix: ext.URL + "/scheduler", FilterVerb: "filter"}},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Run(runCtx) }()
	var nodes []string
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		if _, err := st.Create(ctx, gpuPod(name, 0), metav1.CreateOptions{}); err != nil {
			panic(err)
		}
		nodes = append(nodes, waitBound(ctx, st, name))
	}
	fmt.Println("nodes used:", slices.Compact(nodes))
	stop()
	<-done
	// Output:
	// nodes used: [node-1]
}
