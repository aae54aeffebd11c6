package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
	"github.com/tugboatdev/tugboat/store"
)

func TestPodStatsDiskUsage(t *testing.T) {
	parts := PodStats{EphemeralStorageBytes: 111, WritableLayerBytes: 100, LogsBytes: 10, LocalVolumesBytes: 1}
	tests := []struct {
		name      string
		stats     PodStats
		signal    string
		dedicated bool
		want      int64
	}{
		{"single filesystem, nodefs: all three", parts, SignalNodeFSAvailable, false, 111},
		{"single filesystem, imagefs: all three", parts, SignalImageFSAvailable, false, 111},
		{"dedicated imagefs, nodefs: logs and volumes", parts, SignalNodeFSAvailable, true, 11},
		{"dedicated imagefs, imagefs: writable layers", parts, SignalImageFSAvailable, true, 100},
		{"source giving only the total", PodStats{EphemeralStorageBytes: 42}, SignalImageFSAvailable, true, 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.stats.diskUsage(tt.signal, tt.dedicated); got != tt.want {
				t.Errorf("diskUsage(%s, %v) = %d, want %d", tt.signal, tt.dedicated, got, tt.want)
			}
		})
	}
}

// TestDedicatedImageFS: an ImageFSDir on its own filesystem (a tmpfs
// mounted by the test) is dedicated; one on RootDir's is not.
func TestDedicatedImageFS(t *testing.T) {
	testenv.NeedRoot(t)
	root := t.TempDir()
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	same := filepath.Join(root, "images")
	if err := os.Mkdir(same, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		dir  string
		want bool
	}{{"", false}, {same, false}, {mnt, true}} {
		a := &Agent{cfg: Config{RootDir: root, ImageFSDir: tt.dir}}
		if got := a.dedicatedImageFS(); got != tt.want {
			t.Errorf("ImageFSDir %q: dedicated = %v, want %v", tt.dir, got, tt.want)
		}
	}
}

// usageEnv runs an agent on the simulated runtime with the default stats
// source (the runtime's writable layer and process figures), where the
// container of each pod reports usage[pod name], and whose measurements
// are short while short() holds.
func usageEnv(t *testing.T, usage map[string]simulated.Behavior, short func(ctx context.Context, s *store.Store, m *Measurements)) *testEnv {
	return newEnv(t, envOpts{
		script: func(sb *runtime.PodSandboxConfig, _ *runtime.ContainerConfig) simulated.Behavior {
			return usage[sb.Name]
		},
		cfg: func(c *Config) {
			st := c.Store.(*store.Store)
			c.Measure = func(ctx context.Context) (Measurements, error) {
				m := Measurements{CPUs: 2, MemoryTotal: 8 << 30, MemoryAvailable: 4 << 30, DiskTotal: 100 << 30, DiskAvailable: 50 << 30, PIDsInUse: 1000, PIDMax: 32768}
				short(ctx, st, &m)
				return m, nil
			}
		}})
}

// TestDiskPressureRanksByWritableLayer: under nodefs pressure, with equal
// priority and no requests, the pod whose container's writable layer is
// the largest (as the runtime reports it) is evicted, and only that one.
func TestDiskPressureRanksByWritableLayer(t *testing.T) {
	var mu sync.Mutex
	pressure := false
	e := usageEnv(t, map[string]simulated.Behavior{
		"small-layer": {WritableLayerBytes: 1 << 20},
		"big-layer":   {WritableLayerBytes: 500 << 20},
		"mid-layer":   {WritableLayerBytes: 50 << 20},
	}, func(ctx context.Context, s *store.Store, m *Measurements) {
		mu.Lock()
		defer mu.Unlock()
		if pressure && !failed(ctx, s, "big-layer") {
			m.DiskAvailable = 5 << 30 // below the default 10 %
		}
	})
	for _, name := range []string{"small-layer", "big-layer", "mid-layer"} {
		e.createPod(simplePod(name))
		e.waitStatus("default", name, "Running")
	}
	p, err := store.Get[*corev1.Pod](e.ctx, e.s, "default", "big-layer")
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.agent.podStats.PodStats(e.ctx, p)
	if err != nil || st.WritableLayerBytes != 500<<20 || st.Processes != 1 {
		t.Errorf("PodStats(big-layer) = %+v, %v; want the runtime's 500 MiB writable layer and 1 process", st, err)
	}
	mu.Lock()
	pressure = true
	mu.Unlock()
	got := e.waitPod("default", "big-layer", "Evicted", func(p *corev1.Pod) bool { return p.Status.Reason == "Evicted" })
	if !strings.Contains(got.Status.Message, "ephemeral-storage") {
		t.Errorf("message %q", got.Status.Message)
	}
	e.waitPod("default", "big-layer", "node without disk pressure", func(*corev1.Pod) bool {
		c, tn := nodeState(t, e, corev1.NodeDiskPressure, corev1.TaintNodeDiskPressure)
		return !c && !tn
	})
	for _, name := range []string{"small-layer", "mid-layer"} {
		if p, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", name); p.Status.Phase != corev1.PodRunning {
			t.Errorf("%s: %s %s", name, p.Status.Phase, p.Status.Message)
		}
	}
}

// TestPIDPressureRanksByProcesses: under PID pressure, with equal
// priority, the pod running the most processes (as the runtime counts
// them) is evicted.
func TestPIDPressureRanksByProcesses(t *testing.T) {
	var mu sync.Mutex
	pressure := false
	e := usageEnv(t, map[string]simulated.Behavior{
		"calm":  {Processes: 2},
		"forky": {Processes: 400},
	}, func(ctx context.Context, s *store.Store, m *Measurements) {
		mu.Lock()
		defer mu.Unlock()
		if pressure && !failed(ctx, s, "forky") {
			m.PIDsInUse = 32000
		}
	})
	for _, name := range []string{"calm", "forky"} {
		e.createPod(simplePod(name))
		e.waitStatus("default", name, "Running")
	}
	mu.Lock()
	pressure = true
	mu.Unlock()
	got := e.waitPod("default", "forky", "Evicted", func(p *corev1.Pod) bool { return p.Status.Reason == "Evicted" })
	if !strings.Contains(got.Status.Message, "pids") {
		t.Errorf("message %q", got.Status.Message)
	}
	e.waitPod("default", "forky", "node without PID pressure", func(*corev1.Pod) bool {
		c, tn := nodeState(t, e, corev1.NodePIDPressure, corev1.TaintNodePIDPressure)
		return !c && !tn
	})
	if p, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "calm"); p.Status.Phase != corev1.PodRunning {
		t.Errorf("calm: %s", p.Status.Phase)
	}
}

// TestPodMetricsWritableLayerAndProcesses: the usage the agent serves
// carries each container's writable layer and process count.
func TestPodMetricsWritableLayerAndProcesses(t *testing.T) {
	e := usageEnv(t, map[string]simulated.Behavior{"m": {MemoryBytes: 8 << 20, WritableLayerBytes: 3 << 20, Processes: 5}},
		func(context.Context, *store.Store, *Measurements) {})
	e.createPod(simplePod("m"))
	e.waitStatus("default", "m", "Running")
	u, err := e.agent.PodMetrics(e.ctx, "default", "m")
	if err != nil {
		t.Fatal(err)
	}
	want := []ContainerUsage{{Name: "app", MemoryWorkingSetBytes: 8 << 20, WritableLayerBytes: 3 << 20, Processes: 5}}
	if diff := cmp.Diff(want, u.Containers); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
}
