package agent

import (
	"fmt"
	"os"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/store"
)

// readyTimes watches pods and records when each first became Running and
// Ready.
type readyTimes struct {
	mu    sync.Mutex
	ready map[string]time.Time
	run   map[string]time.Time
}

func watchReady(tb testing.TB, e *testEnv) *readyTimes {
	rt := &readyTimes{ready: map[string]time.Time{}, run: map[string]time.Time{}}
	w, err := store.WatchOf[*corev1.Pod](e.ctx, e.s, "", metav1.ListOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			now := time.Now()
			rt.mu.Lock()
			if _, seen := rt.run[p.Name]; !seen && p.Status.Phase == corev1.PodRunning {
				rt.run[p.Name] = now
			}
			if _, seen := rt.ready[p.Name]; !seen && p.Status.Phase == corev1.PodRunning && ready(p) {
				rt.ready[p.Name] = now
			}
			rt.mu.Unlock()
		}
	}()
	tb.Cleanup(w.Stop)
	return rt
}

func (rt *readyTimes) wait(tb testing.TB, names []string, within time.Duration) {
	deadline := time.Now().Add(within)
	for {
		rt.mu.Lock()
		n := 0
		for _, name := range names {
			if _, ok := rt.ready[name]; ok {
				n++
			}
		}
		rt.mu.Unlock()
		if n == len(names) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d pods Ready after %s", n, len(names), within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(float64(len(d)-1) * p)
	return d[i]
}

// benchStartup creates n pods one after the other (each waits for the
// previous to be Ready) and reports the bound → Running+Ready latency.
func benchStartup(b *testing.B, e *testEnv, n int, mk func(i int) *corev1.Pod) {
	rt := watchReady(b, e)
	var lat []time.Duration
	for i := 0; i < n; i++ {
		p := mk(i)
		start := time.Now()
		e.createPod(p)
		rt.wait(b, []string{p.Name}, 60*time.Second)
		rt.mu.Lock()
		lat = append(lat, rt.ready[p.Name].Sub(start))
		rt.mu.Unlock()
	}
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
}

func processRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchNode creates 110 pods at once, reports the time until all are
// Running and Ready, then the process's CPU use and RSS over a steady
// state of steady.
func benchNode(b *testing.B, e *testEnv, n int, steady time.Duration, mk func(i int) *corev1.Pod) {
	rt := watchReady(b, e)
	var names []string
	goruntime.GC()
	base := processRSS()
	start := time.Now()
	for i := 0; i < n; i++ {
		p := mk(i)
		names = append(names, p.Name)
		e.createPod(p)
	}
	rt.wait(b, names, 5*time.Minute)
	b.ReportMetric(float64(time.Since(start).Milliseconds()), "all-ready-ms")
	time.Sleep(steady / 4)
	c0, t0 := cpuTime(), time.Now()
	time.Sleep(steady)
	cpu := float64(cpuTime()-c0) / float64(time.Since(t0))
	b.ReportMetric(cpu*100, "steady-cpu-%")
	b.ReportMetric(float64(processRSS())/(1<<20), "rss-MiB")
	b.ReportMetric(float64(processRSS()-base)/(1<<20), "rss-growth-MiB")
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MiB")
}

func benchPod(i int) *corev1.Pod {
	p := simplePod(fmt.Sprintf("bench-%03d", i), corev1.Container{Name: "app", Image: "app:1",
		ReadinessProbe: execProbe(1, "check")})
	return p
}

// BenchmarkPodStartupSimulated: pod bound → Running and Ready over 100 pods
// on the simulated runtime (exec readiness probe; the image is present).
func BenchmarkPodStartupSimulated(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e := newBenchEnv(b)
		benchStartup(b, e, 100, benchPod)
	}
}

// BenchmarkNode110PodsSimulated: 110 pods bound at once on the simulated
// runtime.
func BenchmarkNode110PodsSimulated(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e := newBenchEnv(b)
		benchNode(b, e, 110, 10*time.Second, benchPod)
	}
}

// newBenchEnv is newEnv with the production intervals.
func newBenchEnv(b *testing.B) *testEnv {
	return newEnv(b, envOpts{cfg: func(c *Config) {
		c.ResyncInterval, c.StatusInterval = 10*time.Second, 10*time.Second
	}})
}

func bbPod(i int) *corev1.Pod {
	// No readiness probe: Ready once running. (An exec probe costs a runc
	// exec, which on this loaded VM sometimes exceeds the 1 s probe timeout
	// and then waits a whole period, as upstream.)
	p := simplePod(fmt.Sprintf("bench-%03d", i), bb("app", "sleep", "3600"))
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(2))
	return p
}

// BenchmarkPodStartupContainerd: pod bound → Running and Ready on real
// containerd (busybox present, no readiness probe), over 100 pods.
func BenchmarkPodStartupContainerd(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e := newContainerdEnvWith(b, 10*time.Second, 10*time.Second)
		benchStartup(b, e, 100, bbPod)
		e.deleteAll()
	}
}

// BenchmarkNode110PodsContainerd: 110 busybox pods bound at once on real
// containerd.
func BenchmarkNode110PodsContainerd(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e := newContainerdEnvWith(b, 10*time.Second, 10*time.Second)
		benchNode(b, e, 110, 10*time.Second, bbPod)
		e.deleteAll()
	}
}

// deleteAll deletes every pod and waits until they are gone.
func (e *testEnv) deleteAll() {
	for _, p := range e.pods() {
		_ = store.Delete[*corev1.Pod](e.ctx, e.s, p.Namespace, p.Name, metav1.DeleteOptions{})
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(e.pods()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}
