package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/agent"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
	"github.com/tugboatdev/tugboat/store"
)

// Run a node agent over an in-memory store and the simulated runtime, bind
// a pod to its node, and watch it become Running and Ready, the way kubectl
// shows it.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, _ := store.Open(ctx, store.Config{Logger: quiet})
	defer s.Close()
	// The simulated runtime runs no processes: a script says what each
	// container does. Here the init container exits 0 after 10 ms.
	rt := simulated.New(simulated.Options{Images: []string{"nginx:1.25"},
		Script: func(_ *runtime.PodSandboxConfig, c *runtime.ContainerConfig) simulated.Behavior {
			if c.Name == "setup" {
				return simulated.Behavior{RunFor: 10 * time.Millisecond}
			}
			return simulated.Behavior{}
		}})
	defer rt.Close()

	dir, _ := os.MkdirTemp("", "agent-example")
	defer os.RemoveAll(dir)
	a, err := agent.New(agent.Config{
		NodeName: "node-1", Store: s, Runtime: rt, RootDir: dir, NodeIP: "192.0.2.10",
		Taints: []string{"dedicated=web:NoSchedule"}, Log: quiet,
	})
	if err != nil {
		panic(err)
	}
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.PodSpec{
			NodeName:       "node-1", // bound, as the scheduler would do
			InitContainers: []corev1.Container{{Name: "setup", Image: "nginx:1.25", Command: []string{"true"}}},
			Containers:     []corev1.Container{{Name: "nginx", Image: "nginx:1.25"}},
		},
	}
	if _, err := store.Create(ctx, s, pod); err != nil {
		panic(err)
	}
	for {
		p, _ := store.Get[*corev1.Pod](ctx, s, "default", "web")
		if status := agent.PodStatusString(p); status == "Running" && p.Status.ContainerStatuses[0].Ready {
			fmt.Println(p.Name, status, p.Status.PodIP, p.Status.QOSClass)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	node, _ := store.Get[*corev1.Node](ctx, s, "", "node-1")
	fmt.Println(node.Name, node.Spec.Taints[0].ToString(), node.Status.Addresses[0].Address)

	cancel()
	<-done
	// Output:
	// web Running 10.244.0.2 BestEffort
	// node-1 dedicated=web:NoSchedule 192.0.2.10
}

// ExampleParseThreshold reads hard eviction thresholds as the kubelet's
// evictionHard gives them; an agent takes them in Config.EvictionHard.
func ExampleParseThreshold() {
	for _, kv := range [][2]string{{"memory.available", "500Mi"}, {"nodefs.available", "10%"}, {"pid.available", "1000"}} {
		th, err := agent.ParseThreshold(kv[0], kv[1])
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(th.Signal, th)
	}
	_, err := agent.ParseThreshold("nodefs.inodesFree", "5%")
	fmt.Println(err)
	// Output:
	// memory.available 500Mi
	// nodefs.available 10%
	// pid.available 1k
	// agent: unknown eviction signal "nodefs.inodesFree"
}
