// Command scheduler measures tugboat's scheduler through the real store, as
// upstream's scheduler_perf "SchedulingBasic" workload does.
//
// It opens an in-memory store, creates -nodes simulated nodes (plain Node
// objects with 4 cpu, 32Gi memory and room for 110 pods, labelled
// tugboat.dev/simulated=true; nothing runs on them), starts a scheduler,
// creates -pods pods requesting 100m cpu and 500Mi memory, and waits until
// every pod is bound. It then prints the throughput (pods per second from
// the first create to the last bind) and the scheduling latency of the pods
// (from just before a pod is created to when the store's watch shows it
// bound): the median (p50) and the 99th percentile (p99).
//
//	go run ./examples/scheduler -nodes 5000 -pods 10000
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
// With -cpuprofile FILE it writes a CPU profile of the scheduling phase,
// to read with `go tool pprof`.
//
// Everything happens in one process and in memory; no container runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/scheduler"
	"github.com/tugboatdev/tugboat/store"
)

// SimulatedLabel marks the nodes this program creates.
const SimulatedLabel = "tugboat.dev/simulated"

func main() {
	nodes := flag.Int("nodes", 5000, "number of simulated nodes")
	pods := flag.Int("pods", 10000, "number of pods to schedule")
	clients := flag.Int("clients", 4, "number of goroutines creating pods")
	eventQPS := flag.Float64("event-qps", scheduler.DefaultScheduledEventQPS, `rate of "Scheduled" events written (negative: every one)`)
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the scheduling phase (first create to last bind) to this file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var profile io.Writer
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "scheduler:", err)
			os.Exit(1)
		}
		defer f.Close()
		profile = f
	}
	if err := run(ctx, os.Stdout, *nodes, *pods, *clients, *eventQPS, profile); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}

// run does the whole measurement and prints the results to out. When
// profile is not nil, a CPU profile of the scheduling phase is written to
// it.
func run(ctx context.Context, out io.Writer, numNodes, numPods, clients int, eventQPS float64, profile io.Writer) error {
	if numNodes < 1 || numPods < 1 || clients < 1 {
		return fmt.Errorf("-nodes, -pods and -clients must be at least 1")
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(ctx, store.Config{Logger: quiet})
	if err != nil {
		return err
	}
	defer st.Close()

	// 1. The nodes.
	for i := range numNodes {
		if _, err := store.Create(ctx, st, simulatedNode(fmt.Sprintf("sim-node-%05d", i))); err != nil {
			return fmt.Errorf("create node: %w", err)
		}
	}
	fmt.Fprintf(out, "created %d simulated nodes\n", numNodes)

	// 2. The scheduler.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sched, err := scheduler.New(ctx, st, scheduler.Config{Logger: quiet, ScheduledEventQPS: eventQPS})
	if err != nil {
		return err
	}
	schedDone := make(chan error, 1)
	go func() { schedDone <- sched.Run(ctx) }()
	defer func() { cancel(); <-schedDone }()

	// 3. A watch that sees each pod bound.
	w, err := st.Watch(ctx, podsResource, "default", metav1.ListOptions{})
	if err != nil {
		return err
	}
	defer w.Stop()

	// 4. The pods, created by a few concurrent clients.
	var mu sync.Mutex
	created := make(map[string]time.Time, numPods)
	if profile != nil {
		if err := pprof.StartCPUProfile(profile); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	cpu0 := cpuTime()
	errc := make(chan error, clients)
	for c := range clients {
		go func() {
			for i := c; i < numPods; i += clients {
				name := fmt.Sprintf("pod-%06d", i)
				mu.Lock()
				created[name] = time.Now()
				mu.Unlock()
				if _, err := store.Create(ctx, st, benchPod(name)); err != nil {
					errc <- fmt.Errorf("create pod: %w", err)
					return
				}
			}
			errc <- nil
		}()
	}

	// 5. Wait until every pod is bound, recording each pod's latency.
	latencies := make([]time.Duration, 0, numPods)
	bound := make([]time.Time, 0, numPods)
	seen := make(map[string]bool, numPods)
	var last time.Time
	for len(latencies) < numPods {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			if err != nil {
				return err
			}
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("pod watch closed")
			}
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			pod, ok := ev.Object.(*v1.Pod)
			if !ok || pod.Spec.NodeName == "" || seen[pod.Name] {
				continue
			}
			last = time.Now()
			bound = append(bound, last)
			seen[pod.Name] = true
			mu.Lock()
			latencies = append(latencies, last.Sub(created[pod.Name]))
			mu.Unlock()
		}
	}
	elapsed := last.Sub(start)
	cpu := cpuTime() - cpu0
	if profile != nil {
		pprof.StopCPUProfile()
	}
	slices.Sort(latencies)
	fmt.Fprintf(out, "scheduled %d pods on %d nodes in %v\n", numPods, numNodes, elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "throughput: %.0f pods/s\n", float64(numPods)/elapsed.Seconds())
	if avg, n := upstreamThroughput(start, bound, time.Second); n > 0 {
		fmt.Fprintf(out, "upstream SchedulingThroughput: %.0f pods/s (average of %d one-second samples)\n", avg, n)
	} else {
		fmt.Fprintf(out, "upstream SchedulingThroughput: no full one-second sample (the run was too short)\n")
	}
	fmt.Fprintf(out, "cpu: %.0f µs/pod (%v of process CPU)\n", float64(cpu.Microseconds())/float64(numPods), cpu.Round(time.Millisecond))
	fmt.Fprintf(out, "latency: p50 %v, p99 %v\n", percentile(latencies, 50), percentile(latencies, 99))
	stats := sched.Stats()
	fmt.Fprintf(out, "Scheduled events: %d written, %d dropped (rate limit %v/s)\n", stats.ScheduledEvents, stats.ScheduledEventsDropped, eventQPS)
	return nil
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

// simulatedNode is an upstream scheduler_perf node: 4 cpu, 32Gi, 110 pods.
func simulatedNode(name string) *v1.Node {
	capacity := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse("4"),
		v1.ResourceMemory: resource.MustParse("32Gi"),
		v1.ResourcePods:   resource.MustParse("110"),
	}
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			v1.LabelHostname: name,
			SimulatedLabel:   "true",
		}},
		Status: v1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			Conditions:  []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		},
	}
}

// benchPod is an upstream scheduler_perf pod: 100m cpu, 500Mi memory.
func benchPod(name string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "bench"}},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name:  "app",
			Image: "registry.k8s.io/pause:3.10",
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
				v1.ResourceCPU:    resource.MustParse("100m"),
				v1.ResourceMemory: resource.MustParse("500Mi"),
			}},
		}}},
	}
}
