package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/store"
)

func makeNode(name string, cpu, mem string, pods int64, lbls map[string]string) *v1.Node {
	l := map[string]string{v1.LabelHostname: name}
	for k, v := range lbls {
		l[k] = v
	}
	rl := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse(cpu),
		v1.ResourceMemory: resource.MustParse(mem),
		v1.ResourcePods:   *resource.NewQuantity(pods, resource.DecimalSI),
	}
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
		Status:     v1.NodeStatus{Capacity: rl, Allocatable: rl},
	}
}

func makePod(ns, name, cpu, mem string) *v1.Pod {
	req := v1.ResourceList{}
	if cpu != "" {
		req[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[v1.ResourceMemory] = resource.MustParse(mem)
	}
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name: "c", Image: "registry.example/app:1",
			Resources: v1.ResourceRequirements{Requests: req},
		}}},
	}
}

// openStore opens an in-memory store closed at the end of the test.
func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// startScheduler runs a scheduler until the test ends.
func startScheduler(t testing.TB, st store.Interface, cfg Config) *Scheduler {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, st, cfg)
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func mustCreate(t testing.TB, st store.Interface, obj runtime.Object) {
	t.Helper()
	if _, err := st.Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %T: %v", obj, err)
	}
}

// waitFor polls cond until it holds or the deadline passes. It is a
// liveness bound, not a timing assertion.
func waitFor(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func getPod(t testing.TB, st store.Interface, ns, name string) *v1.Pod {
	t.Helper()
	p, err := store.Get[*v1.Pod](context.Background(), st, ns, name)
	if err != nil {
		t.Fatalf("get pod %s/%s: %v", ns, name, err)
	}
	return p
}

func podName(i int) string { return fmt.Sprintf("p-%04d", i) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
