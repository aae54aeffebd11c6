package controllers

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDeployment1000On100Nodes measures, on 100 simulated nodes, a
// 1,000-replica Deployment created until all available, rolled to a new
// image until complete, and scaled 1,000 → 10 → 1,000. CPU is the whole
// process (store, simulated agent and controllers); memory is the heap in
// use after the phase.
func BenchmarkDeployment1000On100Nodes(b *testing.B) {
	for range b.N {
		benchDeploymentOnce(b)
	}
}

func benchDeploymentOnce(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := store.Open(ctx, store.Config{Logger: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	log := quietLog()
	agent := simnode.New(s, simnode.Options{Nodes: 100, TestBinder: true, Workers: 16, Log: log})
	m := NewManager(ManagerOptions{Store: s, Controllers: []string{"replicaset", "deployment"}, Log: log, Workers: 8, Clock: clock.RealClock{}})
	done := make(chan struct{})
	go func() { defer close(done); _ = agent.Run(ctx) }()
	go func() { _ = m.Run(ctx) }()
	if err := agent.WaitForSync(ctx); err != nil {
		b.Fatal(err)
	}
	wait := func(phase string, cond func(d *appsv1.Deployment) bool) {
		start, cpu0 := time.Now(), cpuTime()
		for {
			d, err := store.Get[*appsv1.Deployment](ctx, s, "default", "bench")
			if err == nil && cond(d) {
				break
			}
			if time.Since(start) > 2*time.Minute {
				b.Fatalf("%s: timed out; status %+v", phase, d.Status)
			}
			time.Sleep(5 * time.Millisecond)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		el := time.Since(start)
		b.ReportMetric(el.Seconds(), phase+"-s")
		b.ReportMetric((cpuTime() - cpu0).Seconds(), phase+"-cpu-s")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), phase+"-heap-MiB")
	}
	d := deployment("bench", 1000, "nginx:1.25")
	if _, err := store.Create(ctx, s, d); err != nil {
		b.Fatal(err)
	}
	wait("create", func(d *appsv1.Deployment) bool { return rolledOut(d) && d.Status.AvailableReplicas == 1000 })
	set := func(fn func(d *appsv1.Deployment)) {
		for {
			cur, err := store.Get[*appsv1.Deployment](ctx, s, "default", "bench")
			if err != nil {
				b.Fatal(err)
			}
			cur = cur.DeepCopy()
			fn(cur)
			if _, err := store.Update(ctx, s, cur); err == nil {
				return
			}
		}
	}
	set(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:1.26" })
	wait("roll", func(d *appsv1.Deployment) bool {
		return rolledOut(d) && d.Status.AvailableReplicas == 1000 && d.Status.Replicas == 1000
	})
	set(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(10)) })
	wait("scale-to-10", func(d *appsv1.Deployment) bool {
		return rolledOut(d) && d.Status.Replicas == 10 && d.Status.AvailableReplicas == 10
	})
	set(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(1000)) })
	wait("scale-to-1000", func(d *appsv1.Deployment) bool {
		return rolledOut(d) && d.Status.AvailableReplicas == 1000
	})
	n, _, _ := store.ListOf[*appsv1.ReplicaSet](ctx, s, "default", metav1.ListOptions{})
	if len(n) != 2 {
		b.Errorf("%d replicasets, want 2", len(n))
	}
	cancel()
	<-done
}
