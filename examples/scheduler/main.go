// Command scheduler measures tugboat's scheduler through the real store, as
// upstream's scheduler_perf workloads do.
//
// It opens an in-memory store, creates -nodes simulated nodes (plain Node
// objects with 4 cpu, 32Gi memory and room for 110 pods, labelled
// tugboat.dev/simulated=true; nothing runs on them), starts a scheduler,
// schedules -init-pods initial pods (1000, as upstream), then creates the
// measured pods (100m cpu and 500Mi memory each) from -clients goroutines
// while the scheduler runs, and waits until every pod is bound. It then
// prints the throughput (measured pods per second from the first create to
// the last bind) and the scheduling latency of the pods (from just before a
// pod is created to when the store's watch shows it bound): the median
// (p50) and the 99th percentile (p99).
//
//	go run ./examples/scheduler -nodes 5000 -pods 10000
//	go run ./examples/scheduler -workload anti-affinity
//	go run ./examples/scheduler -workload spread
//	go run ./examples/scheduler -workload node-affinity
//
// -workload picks the workload: basic (SchedulingBasic, 10,000 pods),
// anti-affinity (required pod anti-affinity by hostname, 4,000 pods),
// spread (topology spreading over 3 zones, maxSkew 1, 5,000 pods) and
// node-affinity (required node affinity to the zone of 4/5 of the nodes,
// 10,000 pods); -pods overrides the number of measured pods.
//
// After every run it checks the outcome and fails when it is wrong: every
// pod bound by exactly one successful binding (the store's Bind calls are
// counted per pod), no node holding more cpu, memory or pods than it has
// allocatable, and the workload's own constraint (no two anti-affinity
// pods on one node, zone skew at most 1, every node-affinity pod in its
// zone). The workloads' nodes, pods, checks and this verification come from
// package github.com/tugboatdev/tugboat/scheduler/perf, which the
// scheduler's Go benchmarks share.
//
// "Scheduled" Events are rate-limited as upstream (-event-qps, default 50
// per second); -event-qps -1 writes one per pod, so every pod costs three
// store writes (create, bind, event).
//
// It also prints the process CPU time per pod over the same phase (user
// plus system, from getrusage: steadier than wall time on a shared
// machine), and upstream's own figure: scheduler_perf's
// SchedulingThroughput, the average of the pods bound per 1-second sample
// while the measured pods are created and scheduled (upstream starts the
// sampling before it creates the measured pods and creates them while the
// scheduler runs, as here; it drops the first sample, which starts at an
// arbitrary moment, and the partial last second). See
// [upstreamThroughput].
//
// -gc-percent and -memory-limit set the store's documented garbage
// collector knobs (store.Config.GCPercent and MemoryLimit); by default the
// process's GOGC and GOMEMLIMIT are left alone.
//
// With -cpuprofile FILE it writes a CPU profile of the scheduling phase,
// to read with `go tool pprof`.
//
// Everything happens in one process and in memory; no container runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/scheduler"
	"github.com/tugboatdev/tugboat/scheduler/perf"
	"github.com/tugboatdev/tugboat/store"
)

// options are the program's flags.
type options struct {
	// workload names the workload (see workloads).
	workload string
	// nodes, initPods and pods count the nodes, the initial pods
	// (scheduled before the measurement, as upstream) and the measured
	// pods (0: the workload's default).
	nodes, initPods, pods int
	// clients is the number of goroutines creating pods.
	clients int
	// binders is scheduler.Config.Binders (0: the default).
	binders int
	// eventQPS is the rate of "Scheduled" events (negative: every one).
	eventQPS float64
	// gcPercent and memoryLimit are passed to store.Config (0: the
	// process's settings are left alone).
	gcPercent   int
	memoryLimit int64
	// profile, when not nil, receives a CPU profile of the scheduling
	// phase.
	profile io.Writer
}

func main() {
	var o options
	flag.StringVar(&o.workload, "workload", "basic", "workload to run, one of:"+workloadHelp())
	flag.IntVar(&o.nodes, "nodes", 5000, "number of simulated nodes")
	flag.IntVar(&o.initPods, "init-pods", 1000, "number of pods scheduled before the measurement (upstream: 1000)")
	flag.IntVar(&o.pods, "pods", 0, "number of measured pods (0: the workload's default)")
	flag.IntVar(&o.clients, "clients", 4, "number of goroutines creating pods")
	flag.IntVar(&o.binders, "binders", 0, "scheduler.Config.Binders: goroutines writing bindings (0: the scheduler's default)")
	flag.Float64Var(&o.eventQPS, "event-qps", scheduler.DefaultScheduledEventQPS, `rate of "Scheduled" events written (negative: every one)`)
	flag.IntVar(&o.gcPercent, "gc-percent", 0, "store.Config.GCPercent: the Go GC target percentage while the store is open (0: leave GOGC alone)")
	flag.Int64Var(&o.memoryLimit, "memory-limit", 0, "store.Config.MemoryLimit in bytes: the Go soft memory limit while the store is open (0: leave GOMEMLIMIT alone)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the scheduling phase (first create to last bind) to this file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "scheduler:", err)
			os.Exit(1)
		}
		defer f.Close()
		o.profile = f
	}
	if err := run(ctx, os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		stop()
		os.Exit(1)
	}
}

// run does the whole measurement, prints the results to out and verifies
// the placement (every pod bound exactly once, no node over-committed, the
// workload's constraint held).
func run(ctx context.Context, out io.Writer, o options) error {
	w, ok := workloads[o.workload]
	if !ok {
		return fmt.Errorf("unknown -workload %q (one of %v)", o.workload, workloadNames())
	}
	if o.pods == 0 {
		o.pods = w.pods
	}
	if o.nodes < 1 || o.pods < 1 || o.clients < 1 || o.initPods < 0 {
		return fmt.Errorf("-nodes, -pods and -clients must be at least 1, -init-pods at least 0")
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	raw, err := store.Open(ctx, store.Config{Logger: quiet, GCPercent: o.gcPercent, MemoryLimit: o.memoryLimit})
	if err != nil {
		return err
	}
	defer raw.Close()
	st := newCountingStore(raw)

	// 1. The nodes.
	for i := range o.nodes {
		if _, err := raw.CreateOwned(ctx, w.node(i), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node: %w", err)
		}
	}
	fmt.Fprintf(out, "created %d simulated nodes\n", o.nodes)

	// 2. The scheduler.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sched, err := scheduler.New(ctx, st, scheduler.Config{Logger: quiet, ScheduledEventQPS: o.eventQPS, Binders: o.binders})
	if err != nil {
		return err
	}
	schedDone := make(chan error, 1)
	go func() { schedDone <- sched.Run(ctx) }()
	defer func() { cancel(); <-schedDone }()

	// 3. A watch that sees each pod bound.
	wch, err := raw.Watch(ctx, podsResource, "default", metav1.ListOptions{})
	if err != nil {
		return err
	}
	defer wch.Stop()

	// 4. The initial pods, scheduled before the measurement.
	var mu sync.Mutex
	if o.initPods > 0 {
		initial := make(map[string]time.Time, o.initPods)
		if err := createPods(ctx, raw, o.initPods, o.clients, w.initPod, initial, &mu); err != nil {
			return err
		}
		if _, _, err := waitBound(ctx, wch, o.initPods, initial, &mu, nil); err != nil {
			return err
		}
		fmt.Fprintf(out, "scheduled %d initial pods\n", o.initPods)
	}

	// 5. The measured pods, created by a few concurrent clients while the
	// scheduler runs.
	created := make(map[string]time.Time, o.pods)
	if o.profile != nil {
		if err := pprof.StartCPUProfile(o.profile); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	runtime.GC()
	start := time.Now()
	cpu0 := cpuTime()
	errc := make(chan error, 1)
	go func() { errc <- createPods(ctx, raw, o.pods, o.clients, w.pod, created, &mu) }()

	// 6. Wait until every pod is bound, recording each pod's latency.
	latencies, bound, err := waitBound(ctx, wch, o.pods, created, &mu, errc)
	if err != nil {
		return err
	}
	last := bound[len(bound)-1]
	elapsed := last.Sub(start)
	cpu := cpuTime() - cpu0
	if o.profile != nil {
		pprof.StopCPUProfile()
	}
	slices.Sort(latencies)
	fmt.Fprintf(out, "workload %s: scheduled %d pods on %d nodes in %v\n", w.name, o.pods, o.nodes, elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "throughput: %.0f pods/s\n", float64(o.pods)/elapsed.Seconds())
	if avg, n := upstreamThroughput(start, bound, time.Second); n > 0 {
		fmt.Fprintf(out, "upstream SchedulingThroughput: %.0f pods/s (average of %d one-second samples)\n", avg, n)
	} else {
		fmt.Fprintf(out, "upstream SchedulingThroughput: no full one-second sample (the run was too short)\n")
	}
	fmt.Fprintf(out, "cpu: %.0f µs/pod (%v of process CPU)\n", float64(cpu.Microseconds())/float64(o.pods), cpu.Round(time.Millisecond))
	fmt.Fprintf(out, "latency: p50 %v, p99 %v\n", percentile(latencies, 50), percentile(latencies, 99))
	stats := sched.Stats()
	fmt.Fprintf(out, "Scheduled events: %d written, %d dropped (rate limit %v/s)\n", stats.ScheduledEvents, stats.ScheduledEventsDropped, o.eventQPS)
	if err := st.waitCounted(ctx, o.initPods+o.pods); err != nil {
		return fmt.Errorf("verification failed: %w", err)
	}
	if err := perf.Verify(ctx, raw, st.bindCounts(), w.check); err != nil {
		return fmt.Errorf("verification failed: %w", err)
	}
	fmt.Fprintf(out, "verified: %d pods each bound exactly once, no node over-committed%s\n", o.initPods+o.pods, map[bool]string{true: ", workload constraint holds"}[w.check != nil])
	return nil
}

// createPods creates n pods built by newPod from clients goroutines,
// recording each pod's creation time under its name in created (guarded
// by mu) just before its create. The pods are handed over to the store
// (Store.CreateOwned: each is built for this one create).
func createPods(ctx context.Context, st *store.Store, n, clients int, newPod func(int) *v1.Pod, created map[string]time.Time, mu *sync.Mutex) error {
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += clients {
				p := newPod(i)
				mu.Lock()
				created[p.Name] = time.Now()
				mu.Unlock()
				if _, err := st.CreateOwned(ctx, p, metav1.CreateOptions{}); err != nil {
					errs[c] = fmt.Errorf("create pod: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitBound reads the pod watch until n of the pods named in created
// (guarded by mu; a pod is named there before it is created) are seen
// bound. It returns the latencies (creation to seen bound) and the times
// the pods were seen bound, in order. A non-nil error from errc (the
// creators' outcome) ends the wait.
func waitBound(ctx context.Context, w watch.Interface, n int, created map[string]time.Time, mu *sync.Mutex, errc <-chan error) ([]time.Duration, []time.Time, error) {
	latencies := make([]time.Duration, 0, n)
	bound := make([]time.Time, 0, n)
	seen := make(map[string]bool, n)
	for len(bound) < n {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case err := <-errc:
			if err != nil {
				return nil, nil, err
			}
			errc = nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, nil, fmt.Errorf("pod watch closed")
			}
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			pod, ok := ev.Object.(*v1.Pod)
			if !ok || pod.Spec.NodeName == "" || seen[pod.Name] {
				continue
			}
			now := time.Now()
			mu.Lock()
			t0, mine := created[pod.Name]
			mu.Unlock()
			if !mine {
				continue
			}
			seen[pod.Name] = true
			bound = append(bound, now)
			latencies = append(latencies, now.Sub(t0))
		}
	}
	return latencies, bound, nil
}

// upstreamThroughput computes scheduler_perf's SchedulingThroughput
// ("Average") from the times the measured pods were seen bound (sorted),
// with sampling ticks every interval from start, as upstream's throughput
// collector does: the first tick that sees a bound pod only sets the
// baseline; every later tick that sees new bindings records their rate
// (once per interval elapsed since the previous sample, so intervals with
// none are not lost); the collector stops with the last binding, so the
// partial last interval is not sampled. It returns the average rate and
// the number of samples (0 when the run was too short for any).
func upstreamThroughput(start time.Time, bound []time.Time, interval time.Duration) (avg float64, samples int) {
	if len(bound) == 0 || interval <= 0 {
		return 0, 0
	}
	end := bound[len(bound)-1]
	var sum float64
	count := func(t time.Time) int { // bindings seen by a tick at t
		return sort.Search(len(bound), func(i int) bool { return bound[i].After(t) })
	}
	started := false
	last, lastAt, skipped := 0, start, 0
	for tick := start.Add(interval); !tick.After(end); tick = tick.Add(interval) {
		n := count(tick)
		if n == 0 {
			continue
		}
		if !started {
			started, last, lastAt = true, n, tick
			continue
		}
		if n == last {
			skipped++
			continue
		}
		rate := float64(n-last) / tick.Sub(lastAt).Seconds()
		for range skipped + 1 {
			sum += rate
			samples++
		}
		last, lastAt, skipped = n, tick, 0
	}
	if samples == 0 {
		return 0, 0
	}
	return sum / float64(samples), samples
}

// cpuTime is the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// percentile returns the p-th percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100 // ceil(n*p/100)
	return sorted[max(i-1, 0)].Round(time.Microsecond)
}

var podsResource = v1.SchemeGroupVersion.WithResource("pods").GroupResource()
