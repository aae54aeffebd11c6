package scheduler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/scheduler/plugins"
)

// cacheBinder is a bind plugin for the cache-only benchmarks: instead of
// writing to a store it confirms the binding in the cache, as the pod
// informer would.
type cacheBinder struct {
	s     **Scheduler
	mu    sync.Mutex
	binds map[types.UID]int
	pods  []*v1.Pod
}

func (b *cacheBinder) Name() string { return plugins.DefaultBinderName }

func (b *cacheBinder) Bind(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node string) *framework.Status {
	p := *pod.Pod
	p.Spec.NodeName = node
	(*b.s).cache.AddPod(&p)
	b.mu.Lock()
	b.binds[p.UID]++
	b.pods = append(b.pods, &p)
	b.mu.Unlock()
	return nil
}

// runDirect runs a workload against the scheduler's cache directly (no
// store): nodes and pods are fed to the cache and queue, and bindings
// are confirmed in the cache. It measures the scheduler alone.
func runDirect(b *testing.B, w workload) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sp *Scheduler
	binder := &cacheBinder{s: &sp, binds: map[types.UID]int{}}
	reg := plugins.NewRegistry()
	reg[plugins.DefaultBinderName] = func(context.Context, framework.Handle) (framework.Plugin, error) { return binder, nil }
	w.cfg.Registry = reg
	w.cfg.Logger = discardLogger()
	s, err := New(ctx, nil, w.cfg)
	if err != nil {
		b.Fatal(err)
	}
	sp = s
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	s.startWorkers(ctx, &wg)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			s.ScheduleOne(ctx)
		}
	}()
	nodes := make([]*v1.Node, w.nodes)
	for i := range nodes {
		nodes[i] = w.nodeFn(i)
		s.cache.AddNode(nodes[i])
	}
	uid := 0
	add := func(p *v1.Pod) {
		uid++
		p.UID = types.UID(fmt.Sprintf("uid-%d", uid))
		p.CreationTimestamp.Time = time.Now()
		s.queue.Add(p)
	}
	for i := range w.initPods {
		add(w.initFn(i))
	}
	waitCount(b, s, int64(w.initPods))
	base := s.Stats().Scheduled
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	for i := range w.pods {
		add(w.podFn(i))
	}
	if w.expectAll {
		waitCount(b, s, base+int64(w.pods))
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	rate := float64(w.pods) / elapsed.Seconds()
	b.ReportMetric(rate, "pods/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(w.pods), "cpu-µs/pod")
	binder.mu.Lock()
	defer binder.mu.Unlock()
	verifyPlacement(b, nodes, binder.pods, binder.binds, w)
	return rate
}

// BenchmarkCacheOnly* run the same workloads against the scheduler's
// cache directly, without the store (bindings confirmed in the cache): the
// scheduler's own throughput, labelled as such in BENCHMARKS.md.

func BenchmarkCacheOnlySchedulingBasic(b *testing.B) {
	for range b.N {
		runDirect(b, basicWorkload())
	}
}

// BenchmarkCacheOnlySchedulingBasicParallel2 is SchedulingBasic with two
// filter workers (Config.Parallelism = 2).
func BenchmarkCacheOnlySchedulingBasicParallel2(b *testing.B) {
	for range b.N {
		w := basicWorkload()
		w.cfg.Parallelism = 2
		runDirect(b, w)
	}
}

// BenchmarkCacheOnlySchedulingPodAntiAffinityParallel2 is the
// anti-affinity workload with two filter workers.
func BenchmarkCacheOnlySchedulingPodAntiAffinityParallel2(b *testing.B) {
	for range b.N {
		w := antiAffinityWorkload()
		w.cfg.Parallelism = 2
		runDirect(b, w)
	}
}

func BenchmarkCacheOnlySchedulingPodAntiAffinity(b *testing.B) {
	for range b.N {
		runDirect(b, antiAffinityWorkload())
	}
}

func BenchmarkCacheOnlySchedulingTopologySpreading(b *testing.B) {
	for range b.N {
		runDirect(b, spreadWorkload())
	}
}

func BenchmarkCacheOnlySchedulingNodeAffinity(b *testing.B) {
	for range b.N {
		runDirect(b, nodeAffinityWorkload())
	}
}

// BenchmarkSchedulePodCycle measures one scheduling cycle (snapshot update,
// filter, score, assume) for a basic pod on 5000 nodes, without binding.
func BenchmarkSchedulePodCycle(b *testing.B) {
	ctx := context.Background()
	s, err := New(ctx, nil, Config{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 5000 {
		s.cache.AddNode(perfNode(i, nil))
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	defer func() {
		// Process CPU per cycle: steadier than wall time on a shared
		// machine (it includes the GC's work for the cycle's garbage).
		b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}()
	for i := 0; b.Loop(); i++ {
		p := perfPod(fmt.Sprintf("pod-%d", i))
		p.UID = types.UID(p.Name)
		pi := framework.NewPodInfo(p)
		s.cache.UpdateSnapshot(s.snap)
		state := framework.NewCycleState()
		node, fitErr, st := s.schedulePod(ctx, s.profileFor(p), state, pi)
		if fitErr != nil || st != nil {
			b.Fatalf("pod %d: %v %v", i, fitErr, st)
		}
		api := *pi
		ap := *p
		ap.Spec.NodeName = node
		api.Pod = &ap
		if err := s.cache.AssumePod(&api, node); err != nil {
			b.Fatal(err)
		}
		if i%50000 == 49999 { // keep nodes from filling up
			b.StopTimer()
			s.cache = nil
			b.Fatal("too many iterations")
		}
	}
}
