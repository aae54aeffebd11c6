package agent

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/runtime"
)

// ContainerUsage is the resource usage of one container.
type ContainerUsage struct {
	// Name is the container's name in its pod.
	Name string
	// CPUNanoCores is the CPU usage rate in billionths of a core.
	CPUNanoCores uint64
	// MemoryWorkingSetBytes is the memory the container uses, without
	// inactive file pages (what `kubectl top` shows).
	MemoryWorkingSetBytes uint64
	// WritableLayerBytes is what the container's writable layer uses on
	// the image filesystem, and Processes its process count (both 0 when
	// the runtime cannot tell), as the kubelet's summary API reports
	// rootfs.usedBytes and the pod's process count.
	WritableLayerBytes uint64
	Processes          uint64
}

// PodUsage is the resource usage of one pod's running containers.
type PodUsage struct {
	Namespace, Name string
	// Labels are the pod's labels (for label selectors).
	Labels map[string]string
	// Timestamp is when the sample was taken; Window is the interval the
	// CPU rate was measured over.
	Timestamp  time.Time
	Window     time.Duration
	Containers []ContainerUsage
}

// MetricsProvider serves resource usage, for the API server's
// metrics.k8s.io and the HorizontalPodAutoscaler. The [Agent] implements it.
type MetricsProvider interface {
	// PodMetrics returns the usage of one pod on the node.
	PodMetrics(ctx context.Context, namespace, name string) (*PodUsage, error)
	// ListPodMetrics returns the usage of every running pod on the node.
	ListPodMetrics(ctx context.Context) ([]PodUsage, error)
	// NodeMetrics returns the usage of the node as a whole.
	NodeMetrics(ctx context.Context) (*NodeUsage, error)
}

// NodeUsage is the resource usage of a node (`kubectl top node`).
type NodeUsage struct {
	Name      string
	Timestamp time.Time
	Window    time.Duration
	// CPUNanoCores is the machine's CPU usage rate (all processes).
	CPUNanoCores uint64
	// MemoryWorkingSetBytes is the memory in use: total minus available.
	MemoryWorkingSetBytes uint64
}

// NodeMetrics implements [MetricsProvider]: CPU from /proc/stat between
// two calls (the first call measures over 100 ms), memory from the
// agent's measurements.
func (a *Agent) NodeMetrics(ctx context.Context) (*NodeUsage, error) {
	m, err := a.measure(ctx)
	if err != nil {
		return nil, err
	}
	busy, total, err := readProcStat()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	a.statsMu.Lock()
	prev := a.nodeCPU
	a.statsMu.Unlock()
	if prev.at.IsZero() {
		time.Sleep(100 * time.Millisecond)
		prev = cpuSample{busy: busy, total: total, at: now}
		if busy, total, err = readProcStat(); err != nil {
			return nil, err
		}
		now = time.Now()
	}
	a.statsMu.Lock()
	a.nodeCPU = cpuSample{busy: busy, total: total, at: now}
	a.statsMu.Unlock()
	u := &NodeUsage{Name: a.cfg.NodeName, Timestamp: now, Window: now.Sub(prev.at)}
	if total > prev.total {
		frac := float64(busy-prev.busy) / float64(total-prev.total)
		u.CPUNanoCores = uint64(frac * float64(m.CPUs) * 1e9)
	}
	if m.MemoryTotal > m.MemoryAvailable {
		u.MemoryWorkingSetBytes = uint64(m.MemoryTotal - m.MemoryAvailable)
	}
	return u, nil
}

type cpuSample struct {
	busy, total uint64
	at          time.Time
}

// readProcStat returns the busy and total jiffies of all CPUs.
func readProcStat() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("agent: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("agent: unexpected /proc/stat line %q", line)
	}
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("agent: /proc/stat: %w", err)
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, nil
}

var _ MetricsProvider = (*Agent)(nil)

// PodMetrics implements [MetricsProvider].
func (a *Agent) PodMetrics(ctx context.Context, namespace, name string) (*PodUsage, error) {
	w := a.workerByName(namespace, name)
	if w == nil {
		return nil, fmt.Errorf("agent: pod %s/%s: %w", namespace, name, runtime.ErrNotFound)
	}
	return a.podUsage(ctx, w)
}

// ListPodMetrics implements [MetricsProvider].
func (a *Agent) ListPodMetrics(ctx context.Context) ([]PodUsage, error) {
	a.mu.Lock()
	ws := make([]*podWorker, 0, len(a.workers))
	for _, w := range a.workers {
		ws = append(ws, w)
	}
	a.mu.Unlock()
	var out []PodUsage
	for _, w := range ws {
		u, err := a.podUsage(ctx, w)
		if err != nil || len(u.Containers) == 0 {
			continue
		}
		out = append(out, *u)
	}
	return out, nil
}

func (a *Agent) podUsage(ctx context.Context, w *podWorker) (*PodUsage, error) {
	pod := w.currentPod()
	if w.static {
		w.mu.Lock()
		if ns, name, ok := cutSlash(w.mirrorName); ok {
			pod.Namespace, pod.Name = ns, name
		}
		w.mu.Unlock()
	}
	pc, err := w.listContainers(ctx)
	if err != nil {
		return nil, err
	}
	u := &PodUsage{Namespace: pod.Namespace, Name: pod.Name, Labels: pod.Labels, Timestamp: a.clk.Now()}
	for name := range pc {
		st := pc.latest(name)
		if st.State != runtime.ContainerRunning {
			continue
		}
		s, err := a.rt.ContainerStats(ctx, st.ID)
		if err != nil {
			continue
		}
		a.statsMu.Lock()
		prev := a.stats[st.ID]
		a.stats[st.ID] = s
		a.statsMu.Unlock()
		var rate uint64
		window := s.Timestamp.Sub(st.StartedAt)
		used := s.CPUUsageNanoSeconds
		if prev != nil && s.Timestamp.Sub(prev.Timestamp) >= time.Second && s.CPUUsageNanoSeconds >= prev.CPUUsageNanoSeconds {
			window = s.Timestamp.Sub(prev.Timestamp)
			used = s.CPUUsageNanoSeconds - prev.CPUUsageNanoSeconds
		}
		if window > 0 {
			rate = uint64(float64(used) / window.Seconds())
		}
		if u.Window == 0 || window < u.Window {
			u.Window = window
		}
		u.Containers = append(u.Containers, ContainerUsage{Name: name, CPUNanoCores: rate, MemoryWorkingSetBytes: s.MemoryWorkingSetBytes,
			WritableLayerBytes: s.WritableLayerBytes, Processes: s.Processes})
	}
	sortUsage(u.Containers)
	return u, nil
}

func sortUsage(cs []ContainerUsage) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].Name < cs[j-1].Name; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

func cutSlash(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// forgetStats drops the samples of a removed pod's containers.
func (a *Agent) forgetStats(uid types.UID) {
	_ = uid
	ctrs, err := a.rt.ListContainers(context.Background(), runtime.ContainerFilter{State: runtime.ContainerRunning})
	if err != nil {
		return
	}
	live := map[string]bool{}
	for _, c := range ctrs {
		live[c.ID] = true
	}
	a.statsMu.Lock()
	for id := range a.stats {
		if !live[id] {
			delete(a.stats, id)
		}
	}
	a.statsMu.Unlock()
}

// workerByName finds the worker of a pod by namespace and name (the
// mirror name for static pods).
func (a *Agent) workerByName(namespace, name string) *podWorker {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.workers {
		w.mu.Lock()
		p, mirror := w.pod, w.mirrorName
		w.mu.Unlock()
		if (p.Namespace == namespace && p.Name == name) || mirror == namespace+"/"+name {
			return w
		}
	}
	return nil
}
