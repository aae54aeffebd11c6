package simnode_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

// Move a pod through its lifecycle on a simulated node, on command.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, _ := store.Open(ctx, store.Config{Logger: log})
	defer s.Close()
	agent := simnode.New(s, simnode.Options{Nodes: 1, Manual: true, TestBinder: true, Log: log})
	go func() { _ = agent.Run(ctx) }()
	_ = agent.WaitForSync(ctx)

	_, _ = store.Create(ctx, s, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "task"},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	})
	phase := func(want corev1.PodPhase) {
		for {
			p, _ := store.Get[*corev1.Pod](ctx, s, "default", "task")
			if p.Spec.NodeName != "" && p.Status.Phase == want {
				fmt.Println(p.Spec.NodeName, p.Status.Phase)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	phase(corev1.PodPending)
	_ = agent.StartPod(ctx, "default", "task")
	phase(corev1.PodRunning)
	_ = agent.Succeed(ctx, "default", "task")
	phase(corev1.PodSucceeded)
	// Output:
	// sim-node-0 Pending
	// sim-node-0 Running
	// sim-node-0 Succeeded
}
