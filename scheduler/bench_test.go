package scheduler

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/scheduler/cache"
	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/scheduler/perf"
	"github.com/tugboatdev/tugboat/store"
)

// countingStore wraps the store and counts, per pod UID, the successful
// bindings (Bind calls, or updates that set spec.nodeName), to prove every
// pod is bound exactly once.
type countingStore struct {
	store.Interface
	mu    sync.Mutex
	binds map[types.UID]int
}

func (c *countingStore) Update(ctx context.Context, obj k8sruntime.Object, opts metav1.UpdateOptions) (k8sruntime.Object, error) {
	out, err := c.Interface.Update(ctx, obj, opts)
	if p, ok := obj.(*v1.Pod); ok && err == nil && p.Spec.NodeName != "" {
		c.mu.Lock()
		c.binds[p.UID]++
		c.mu.Unlock()
	}
	return out, err
}

// Bind counts the successful bindings written through the store's
// [store.Binder] (the path the scheduler takes against the real store).
// Without it the wrapper would hide the store's Bind and the scheduler
// would fall back to binding by Update, which the real store never makes
// it do.
func (c *countingStore) Bind(ctx context.Context, b *v1.Binding, opts metav1.CreateOptions) error {
	binder, ok := c.Interface.(store.Binder)
	if !ok {
		return fmt.Errorf("countingStore: the wrapped store has no Bind")
	}
	if err := binder.Bind(ctx, b, opts); err != nil {
		return err
	}
	uid := b.UID
	if uid == "" {
		p, err := store.Get[*v1.Pod](ctx, c.Interface, b.Namespace, b.Name)
		if err != nil {
			return err
		}
		uid = p.UID
	}
	c.mu.Lock()
	c.binds[uid]++
	c.mu.Unlock()
	return nil
}

var _ store.Binder = (*countingStore)(nil)

// perfNode is the i-th scheduler_perf node ([perf.Node]), named
// node-NNNNN.
func perfNode(i int, lbls map[string]string) *v1.Node {
	return perf.Node(fmt.Sprintf("node-%05d", i), lbls)
}

// perfPod is the scheduler_perf pod ([perf.Pod]): 100m cpu, 500Mi memory.
func perfPod(name string) *v1.Pod {
	return perf.Pod(name)
}

type workload struct {
	nodes     int
	nodeFn    func(i int) *v1.Node
	initPods  int
	initFn    func(i int) *v1.Pod
	pods      int
	podFn     func(i int) *v1.Pod
	cfg       Config
	setup     func(tb testing.TB, st store.Interface)
	expectAll bool // every measured pod must be bound
	// check reports a violated constraint of the workload (nil: none).
	check perf.Check
}

// runWorkload runs one workload through the in-memory store and returns
// the measured pods/s (first create to last bind).
func runWorkload(b *testing.B, w workload) float64 {
	b.Helper()
	ctx := context.Background()
	raw := openStore(b)
	cs := &countingStore{Interface: raw, binds: map[types.UID]int{}}
	if w.setup != nil {
		w.setup(b, raw)
	}
	for i := range w.nodes {
		mustCreate(b, raw, w.nodeFn(i))
	}
	w.cfg.Logger = discardLogger()
	s := startScheduler(b, cs, w.cfg)
	for i := range w.initPods {
		mustCreate(b, raw, w.initFn(i))
	}
	waitCount(b, s, int64(w.initPods))
	base := s.Stats().Scheduled
	runtime.GC()
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	// Pods are created by a few concurrent clients, as by several
	// controllers (scheduler_perf creates them through a client pool).
	// Each hands the store a pod it built for the call and does not keep
	// (CreateOwned, as examples/scheduler does), so the store makes no
	// extra copy.
	const creators = 4
	for c := range creators {
		go func() {
			for i := c; i < w.pods; i += creators {
				if _, err := store.CreateOwned(ctx, raw, w.podFn(i)); err != nil {
					b.Errorf("create: %v", err)
					return
				}
			}
		}()
	}
	want := int64(w.pods)
	if !w.expectAll {
		want = -1
	}
	if want > 0 {
		waitCount(b, s, base+want)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	rate := float64(w.pods) / elapsed.Seconds()
	b.ReportMetric(rate, "pods/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(w.pods), "cpu-µs/pod")
	b.ReportMetric(float64(s.Stats().ScheduledEvents), "events")
	verify(b, raw, cs, w)
	return rate
}

func waitCount(tb testing.TB, s *Scheduler, n int64) {
	tb.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for s.Stats().Scheduled < n {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out: %d of %d pods scheduled (stats %+v)", s.Stats().Scheduled, n, s.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// verify checks that no node is over-committed, that every pod was bound
// at most once (exactly once when bound) and runs the workload's check.
func verify(tb testing.TB, st store.Interface, cs *countingStore, w workload) {
	tb.Helper()
	ctx := context.Background()
	nodes, _, err := store.ListOf[*v1.Node](ctx, st, "", metav1.ListOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	pods, _, err := store.ListOf[*v1.Pod](ctx, st, "", metav1.ListOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	verifyPlacement(tb, nodes, pods, cs.binds, w)
}

// verifyPlacement checks the placement with [perf.VerifyPlacement] (binds
// counts the successful bindings per pod UID) and fails the benchmark when
// it is wrong. Unless the workload expects every pod bound, unbound pods
// are left out.
func verifyPlacement(tb testing.TB, nodes []*v1.Node, pods []*v1.Pod, binds map[types.UID]int, w workload) {
	tb.Helper()
	keyed := make(map[string]int, len(binds))
	checked := make([]*v1.Pod, 0, len(pods))
	for _, p := range pods {
		if p.Spec.NodeName == "" && !w.expectAll {
			continue
		}
		checked = append(checked, p)
		keyed[perf.BindKey(p.Namespace, p.Name)] = binds[p.UID]
	}
	if err := perf.VerifyPlacement(nodes, checked, keyed, w.check); err != nil {
		tb.Fatalf("placement: %v", err)
	}
}

// The scheduler_perf workloads at 5000 nodes.

func basicWorkload() workload {
	return workload{
		nodes: 5000, nodeFn: func(i int) *v1.Node { return perfNode(i, nil) },
		initPods: 1000, initFn: func(i int) *v1.Pod { return perfPod(fmt.Sprintf("init-%d", i)) },
		pods: 10000, podFn: func(i int) *v1.Pod { return perfPod(fmt.Sprintf("pod-%d", i)) },
		expectAll: true,
	}
}

func antiAffinityWorkload() workload {
	return workload{
		nodes: 5000, nodeFn: func(i int) *v1.Node { return perfNode(i, nil) },
		initPods: 1000, initFn: func(i int) *v1.Pod { return perf.AntiAffinityPod(fmt.Sprintf("init-%d", i)) },
		pods: 4000, podFn: func(i int) *v1.Pod { return perf.AntiAffinityPod(fmt.Sprintf("pod-%d", i)) },
		expectAll: true,
		check:     perf.CheckAntiAffinity,
	}
}

func spreadWorkload() workload {
	return workload{
		nodes: 5000, nodeFn: func(i int) *v1.Node {
			return perfNode(i, map[string]string{v1.LabelTopologyZone: perf.SpreadZone(i)})
		},
		initPods: 1000, initFn: func(i int) *v1.Pod { return perfPod(fmt.Sprintf("init-%d", i)) },
		pods: 5000, podFn: func(i int) *v1.Pod { return perf.SpreadPod(fmt.Sprintf("pod-%d", i)) },
		expectAll: true,
		check:     perf.CheckSpread,
	}
}

func nodeAffinityWorkload() workload {
	return workload{
		nodes: 5000, nodeFn: func(i int) *v1.Node {
			return perfNode(i, map[string]string{perf.LegacyZoneLabel: perf.NodeAffinityZone(i)})
		},
		initPods: 1000, initFn: func(i int) *v1.Pod { return perfPod(fmt.Sprintf("init-%d", i)) },
		pods: 10000, podFn: func(i int) *v1.Pod { return perf.NodeAffinityPod(fmt.Sprintf("pod-%d", i)) },
		expectAll: true,
		check:     perf.CheckNodeAffinity,
	}
}

// preemptionWorkload fills every node with one low-priority pod of 3.5 cpu
// and then schedules 1000 high-priority pods of 3 cpu, each of which must
// preempt a victim. Pods have no grace period (no kubelet runs here).
func preemptionWorkload() workload {
	low := func(name string) *v1.Pod {
		p := makePod("default", name, "3500m", "500Mi")
		p.Spec.PriorityClassName = "low"
		p.Spec.TerminationGracePeriodSeconds = new(int64)
		return p
	}
	high := func(name string) *v1.Pod {
		p := makePod("default", name, "3", "500Mi")
		p.Labels = map[string]string{"tier": "high"}
		p.Spec.PriorityClassName = "high"
		p.Spec.TerminationGracePeriodSeconds = new(int64)
		return p
	}
	return workload{
		setup: func(tb testing.TB, st store.Interface) {
			mustCreate(tb, st, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "low"}, Value: 10})
			mustCreate(tb, st, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000})
		},
		nodes: 5000, nodeFn: func(i int) *v1.Node { return perfNode(i, nil) },
		initPods: 5000, initFn: func(i int) *v1.Pod { return low(fmt.Sprintf("low-%d", i)) },
		pods: 1000, podFn: func(i int) *v1.Pod { return high(fmt.Sprintf("high-%d", i)) },
		expectAll: true,
		check: func(_ []*v1.Node, pods []*v1.Pod) error {
			n := 0
			for _, p := range pods {
				if p.Labels["tier"] == "high" && p.Spec.NodeName != "" {
					n++
				}
			}
			if n != 1000 {
				return fmt.Errorf("%d high-priority pods bound, want 1000", n)
			}
			return nil
		},
	}
}

// Benchmark* run the scheduler_perf workloads through the in-memory store
// (pods created with Create, bindings written with the store's Bind, as the
// pods/binding subresource, everything watched back): pods/s from the
// first create to the last bind. Upstream's scheduler_perf measures the
// same phase: it starts its throughput collector, then creates the
// measured pods while the scheduler runs.

func BenchmarkSchedulingBasic(b *testing.B) {
	for range b.N {
		runWorkload(b, basicWorkload())
	}
}

// BenchmarkSchedulingBasicAllScheduledEvents is SchedulingBasic with the
// "Scheduled" events not rate-limited: every pod costs create + bind +
// event, three store writes.
func BenchmarkSchedulingBasicAllScheduledEvents(b *testing.B) {
	for range b.N {
		w := basicWorkload()
		w.cfg.ScheduledEventQPS = -1
		runWorkload(b, w)
	}
}

// BenchmarkSchedulingBasicNoScheduledEvents is SchedulingBasic without the
// "Scheduled" Event per pod, to show the cost of that extra store write.
func BenchmarkSchedulingBasicNoScheduledEvents(b *testing.B) {
	for range b.N {
		w := basicWorkload()
		w.cfg.DisableScheduledEvents = true
		runWorkload(b, w)
	}
}

func BenchmarkSchedulingPodAntiAffinity(b *testing.B) {
	for range b.N {
		runWorkload(b, antiAffinityWorkload())
	}
}

func BenchmarkSchedulingTopologySpreading(b *testing.B) {
	for range b.N {
		runWorkload(b, spreadWorkload())
	}
}

func BenchmarkSchedulingNodeAffinity(b *testing.B) {
	for range b.N {
		runWorkload(b, nodeAffinityWorkload())
	}
}

func BenchmarkPreemption(b *testing.B) {
	for range b.N {
		runWorkload(b, preemptionWorkload())
	}
}

// BenchmarkCacheMemory measures the cache's memory per node and per pod
// (cache and snapshot together).
func BenchmarkCacheMemory(b *testing.B) {
	for range b.N {
		var m0, m1, m2 runtime.MemStats
		nodes := make([]*v1.Node, 5000)
		pods := make([]*v1.Pod, 50000)
		for i := range nodes {
			nodes[i] = perfNode(i, nil)
		}
		for i := range pods {
			pods[i] = perfPod(fmt.Sprintf("pod-%d", i))
			pods[i].UID = types.UID(fmt.Sprintf("uid-%d", i))
			pods[i].Spec.NodeName = nodes[i%len(nodes)].Name
		}
		runtime.GC()
		runtime.ReadMemStats(&m0)
		c := cache.New(nil)
		snap := framework.NewSnapshot()
		for _, n := range nodes {
			c.AddNode(n)
		}
		c.UpdateSnapshot(snap)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		for _, p := range pods {
			c.AddPod(p)
		}
		c.UpdateSnapshot(snap)
		runtime.GC()
		runtime.ReadMemStats(&m2)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/float64(len(nodes)), "B/node")
		b.ReportMetric(float64(m2.HeapAlloc-m1.HeapAlloc)/float64(len(pods)), "B/pod")
		runtime.KeepAlive(c)
		runtime.KeepAlive(snap)
	}
}

// cpuTime is the CPU time (user and system) this process used so far. On
// a shared machine it is a steadier measure than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStoreOnlyCreateAndBind is the side-by-side reference for the
// through-store figures: the same 10000 pod creates and binding updates
// (plus one Event each) written by plain loops, no scheduler. It bounds
// what any scheduler can reach through this store on this machine.
func BenchmarkStoreOnlyCreateAndBind(b *testing.B) {
	storeOnlyCreateAndBind(b, func(ctx context.Context, st *store.Store, p *v1.Pod, _ int) error {
		p.Spec.NodeName = fmt.Sprintf("node-%05d", 0)
		if _, err := st.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		ev := &v1.Event{ObjectMeta: metav1.ObjectMeta{Name: p.Name + ".ev", Namespace: p.Namespace}, InvolvedObject: v1.ObjectReference{Kind: "Pod", Name: p.Name, Namespace: p.Namespace}, Reason: "Scheduled", Type: v1.EventTypeNormal}
		if _, err := st.Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("event: %w", err)
		}
		return nil
	})
}

// BenchmarkStoreOnlyCreateAndBindBinder is the side-by-side reference for
// SchedulingBasic as the scheduler now writes it: 10000 pod creates by 4
// clients and 10000 bindings through the store's Bind by 4 writers (the
// scheduler's binders), no Events (the scheduler writes at most ~50/s). No
// scheduler runs: it is the store's own ceiling for SchedulingBasic on
// this machine.
func BenchmarkStoreOnlyCreateAndBindBinder(b *testing.B) {
	storeOnlyCreateAndBind(b, func(ctx context.Context, st *store.Store, p *v1.Pod, w int) error {
		err := st.Bind(ctx, &v1.Binding{
			ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID},
			Target:     v1.ObjectReference{Kind: "Node", Name: fmt.Sprintf("node-%05d", w)},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		return nil
	})
}

// storeOnlyCreateAndBind runs the store-only references: 100 nodes, then
// 10000 pod creates by 4 clients, each created pod handed to one of 4
// writers that bind it with bind (w is the writer's number); it reports
// pods/s and process CPU per pod and checks that every pod got a node.
func storeOnlyCreateAndBind(b *testing.B, bind func(ctx context.Context, st *store.Store, p *v1.Pod, w int) error) {
	ctx := context.Background()
	for range b.N {
		st := openStore(b)
		for i := range 100 {
			mustCreate(b, st, perfNode(i, nil))
		}
		runtime.GC()
		b.ResetTimer()
		start := time.Now()
		cpu0 := cpuTime()
		created := make(chan *v1.Pod, 1024)
		var cwg sync.WaitGroup
		for c := range 4 {
			cwg.Add(1)
			go func() {
				defer cwg.Done()
				for i := c; i < 10000; i += 4 {
					p, err := store.Create(ctx, st, perfPod(fmt.Sprintf("pod-%d", i)))
					if err != nil {
						b.Errorf("create: %v", err)
						return
					}
					created <- p
				}
			}()
		}
		go func() { cwg.Wait(); close(created) }()
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := range created {
					if err := bind(ctx, st, p, w); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		cpu := cpuTime() - cpu0
		b.StopTimer()
		b.ReportMetric(10000/elapsed.Seconds(), "pods/s")
		b.ReportMetric(float64(cpu.Microseconds())/10000, "cpu-µs/pod")
		pods, _, err := store.ListOf[*v1.Pod](ctx, st, "", metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range pods {
			if p.Spec.NodeName == "" {
				b.Fatalf("pod %s not bound", p.Name)
			}
		}
	}
}
