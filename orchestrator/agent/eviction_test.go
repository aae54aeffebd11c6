package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/store"
)

func TestParseThreshold(t *testing.T) {
	for _, tc := range []struct {
		signal, value string
		wantErr       bool
		avail, total  int64
		crossed       bool
	}{
		{signal: "memory.available", value: "100Mi", avail: 99 << 20, total: 1 << 30, crossed: true},
		{signal: "memory.available", value: "100Mi", avail: 100 << 20, total: 1 << 30},
		{signal: "nodefs.available", value: "10%", avail: 9, total: 100, crossed: true},
		{signal: "nodefs.available", value: "10%", avail: 10, total: 100},
		{signal: "imagefs.available", value: "15.5%", avail: 15, total: 100, crossed: true},
		{signal: "pid.available", value: "1000", avail: 999, total: 32768, crossed: true},
		{signal: "nodefs.available", value: "100%", avail: 0, total: 0}, // unknown capacity
		{signal: "nodefs.available", value: "101%", wantErr: true},
		{signal: "nodefs.available", value: "-1Gi", wantErr: true},
		{signal: "nodefs.available", value: "lots", wantErr: true},
		{signal: "nodefs.inodesFree", value: "5%", wantErr: true},
	} {
		th, err := ParseThreshold(tc.signal, tc.value)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s=%s: err %v", tc.signal, tc.value, err)
			continue
		}
		if err != nil {
			continue
		}
		if got := th.crossed(tc.avail, tc.total); got != tc.crossed {
			t.Errorf("%s=%s: crossed(%d of %d) = %v", tc.signal, tc.value, tc.avail, tc.total, got)
		}
		if again, err := ParseThreshold(tc.signal, th.String()); err != nil || again.String() != th.String() {
			t.Errorf("%s: %q does not parse back: %v", tc.signal, th.String(), err)
		}
	}
}

func FuzzParseThreshold(f *testing.F) {
	for _, v := range []string{"100Mi", "10%", "0.5%", "1e3", "%", "-3"} {
		f.Add("nodefs.available", v)
	}
	f.Fuzz(func(t *testing.T, signal, value string) {
		th, err := ParseThreshold(signal, value)
		if err != nil {
			return
		}
		if th.Quantity == nil && (th.Percentage < 0 || th.Percentage > 1) {
			t.Fatalf("%q gave percentage %v", value, th.Percentage)
		}
		if th.Quantity != nil && th.Quantity.Sign() < 0 {
			t.Fatalf("%q gave a negative quantity", value)
		}
		_ = th.crossed(1, 2)
	})
}

func TestImageFSPressure(t *testing.T) {
	a, err := New(Config{NodeName: "n", Store: &store.Store{}, Runtime: nil})
	if err == nil || a != nil {
		t.Fatal("New accepted a config without a runtime")
	}
	e := newEnv(t, envOpts{noRun: true, cfg: func(c *Config) { c.EvictionHard = map[string]string{"imagefs.available": "20%"} }})
	a, err = New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := Measurements{DiskTotal: 100, DiskAvailable: 50, ImageFSTotal: 100, ImageFSAvailable: 19}
	if p := a.pressureOf(m); !p.disk || p.diskSignal != SignalImageFSAvailable {
		t.Errorf("pressure %+v, want imagefs disk pressure", p)
	}
	m.ImageFSAvailable = 21
	if p := a.pressureOf(m); p.disk {
		t.Errorf("pressure %+v with imagefs above its threshold", p)
	}
	if _, err := New(Config{NodeName: "n", Store: e.cfg.Store, Runtime: e.cfg.Runtime, EvictionHard: map[string]string{"disk.free": "1%"}}); err == nil {
		t.Error("unknown eviction signal accepted")
	}
}

// fakeStats is a StatsSource test double with fixed figures per pod name.
type fakeStats map[string]PodStats

func (f fakeStats) PodStats(_ context.Context, p *corev1.Pod) (PodStats, error) {
	return f[p.Name], nil
}

// pressureEnv runs an agent whose measurements flip to "short" while
// short() holds.
func pressureEnv(t *testing.T, stats StatsSource, short func(ctx context.Context, s *store.Store) Measurements) *testEnv {
	var st *store.Store
	return newEnv(t, envOpts{cfg: func(c *Config) {
		st = c.Store.(*store.Store)
		c.PodStats = stats
		c.Measure = func(ctx context.Context) (Measurements, error) { return short(ctx, st), nil }
	}})
}

func nodeState(t *testing.T, e *testEnv, cond corev1.NodeConditionType, taint string) (bool, bool) {
	t.Helper()
	n, err := store.Get[*corev1.Node](e.ctx, e.s, "", testNode)
	if err != nil {
		t.Fatal(err)
	}
	on := false
	for _, c := range n.Status.Conditions {
		if c.Type == cond {
			on = c.Status == corev1.ConditionTrue
		}
	}
	return on, hasTaint(n.Spec.Taints, corev1.Taint{Key: taint, Effect: corev1.TaintEffectNoSchedule})
}

func failed(ctx context.Context, s *store.Store, name string) bool {
	p, err := store.Get[*corev1.Pod](ctx, s, "default", name)
	return err == nil && p.Status.Phase == corev1.PodFailed
}

// TestDiskPressureEviction: under nodefs pressure the agent sets
// DiskPressure and its taint and evicts the pod using more ephemeral
// storage than it requests, and only that one.
func TestDiskPressureEviction(t *testing.T) {
	var mu sync.Mutex
	pressure := false
	stats := fakeStats{
		"within":  {EphemeralStorageBytes: 900 << 20},
		"exceeds": {EphemeralStorageBytes: 200 << 20},
		"tiny":    {EphemeralStorageBytes: 1 << 20},
	}
	e := pressureEnv(t, stats, func(ctx context.Context, s *store.Store) Measurements {
		mu.Lock()
		short := pressure && !failed(ctx, s, "exceeds")
		mu.Unlock()
		m := Measurements{CPUs: 2, MemoryTotal: 8 << 30, MemoryAvailable: 4 << 30, DiskTotal: 100 << 30, DiskAvailable: 50 << 30, PIDsInUse: 10, PIDMax: 1 << 20}
		if short {
			m.DiskAvailable = 5 << 30 // below the default 10 %
		}
		return m
	})
	req := func(name, q string) *corev1.Pod {
		p := simplePod(name)
		if q != "" {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse(q)}
		}
		return p
	}
	for _, p := range []*corev1.Pod{req("within", "1Gi"), req("exceeds", "100Mi"), req("tiny", "")} {
		e.createPod(p)
		e.waitStatus("default", p.Name, "Running")
	}
	mu.Lock()
	pressure = true
	mu.Unlock()
	got := e.waitPod("default", "exceeds", "Evicted", func(p *corev1.Pod) bool { return p.Status.Reason == "Evicted" })
	if !strings.Contains(got.Status.Message, "ephemeral-storage") || got.Status.Phase != corev1.PodFailed {
		t.Errorf("evicted pod status %q %q", got.Status.Phase, got.Status.Message)
	}
	// The pressure ended with that eviction: the condition and the taint go.
	e.waitPod("default", "exceeds", "node without disk pressure", func(*corev1.Pod) bool {
		c, tn := nodeState(t, e, corev1.NodeDiskPressure, corev1.TaintNodeDiskPressure)
		return !c && !tn
	})
	for _, name := range []string{"within", "tiny"} {
		if p, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", name); p.Status.Phase != corev1.PodRunning {
			t.Errorf("%s: %s %s", name, p.Status.Phase, p.Status.Message)
		}
	}
}

// TestPIDPressureEviction: under PID pressure the lower-priority pod goes
// first, even though the other runs more processes.
func TestPIDPressureEviction(t *testing.T) {
	var mu sync.Mutex
	pressure := false
	stats := fakeStats{"busy": {Processes: 5000}, "low": {Processes: 10}}
	e := pressureEnv(t, stats, func(ctx context.Context, s *store.Store) Measurements {
		mu.Lock()
		short := pressure && !failed(ctx, s, "low")
		mu.Unlock()
		m := Measurements{CPUs: 2, MemoryTotal: 8 << 30, MemoryAvailable: 4 << 30, DiskTotal: 100 << 30, DiskAvailable: 50 << 30, PIDsInUse: 1000, PIDMax: 32768}
		if short {
			m.PIDsInUse = 32000
		}
		return m
	})
	mustCreate(t, e, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000})
	busy := simplePod("busy")
	busy.Spec.PriorityClassName = "high"
	low := simplePod("low")
	for _, p := range []*corev1.Pod{busy, low} {
		e.createPod(p)
		e.waitStatus("default", p.Name, "Running")
	}
	mu.Lock()
	pressure = true
	mu.Unlock()
	got := e.waitPod("default", "low", "Evicted", func(p *corev1.Pod) bool { return p.Status.Reason == "Evicted" })
	if !strings.Contains(got.Status.Message, "pids") {
		t.Errorf("message %q", got.Status.Message)
	}
	e.waitPod("default", "low", "node without PID pressure", func(*corev1.Pod) bool {
		c, tn := nodeState(t, e, corev1.NodePIDPressure, corev1.TaintNodePIDPressure)
		return !c && !tn
	})
	if p, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "busy"); p.Status.Phase != corev1.PodRunning {
		t.Errorf("busy: %s", p.Status.Phase)
	}
}

// TestDiskPressureRealMeasurement reads the real filesystem: a nodefs
// threshold of 100 % is always crossed, so the node reports DiskPressure
// and the pod's emptyDir data, measured on disk, gets it evicted.
func TestDiskPressureRealMeasurement(t *testing.T) {
	e := newEnv(t, envOpts{cfg: func(c *Config) {
		c.Measure = nil
		c.EvictionHard = map[string]string{"memory.available": "0", "pid.available": "0", "nodefs.available": "0", "imagefs.available": "0"}
	}})
	p := simplePod("writer", corev1.Container{Name: "app", Image: "app:1", VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}})
	p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	created := e.createPod(p)
	e.waitStatus("default", "writer", "Running")
	if c, _ := nodeState(t, e, corev1.NodeDiskPressure, corev1.TaintNodeDiskPressure); c {
		t.Fatal("DiskPressure with a threshold of 0")
	}
	dir := mountAt(t, e.rec.last("app"), "/scratch").HostPath
	if err := os.WriteFile(filepath.Join(dir, "blob"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := dirStats{e.agent}.PodStats(e.ctx, created)
	if err != nil || st.EphemeralStorageBytes < 1<<20 {
		t.Errorf("measured %d bytes (%v), want at least the 1 MiB written", st.EphemeralStorageBytes, err)
	}
	// The same agent with a threshold of 100 %, always crossed by a real
	// filesystem, re-adopts the pod and evicts it.
	e.stop()
	e.cfg.EvictionHard["nodefs.available"] = "100%"
	e.start()
	e.waitPod("default", "writer", "Evicted", func(p *corev1.Pod) bool { return p.Status.Reason == "Evicted" })
	if c, tn := nodeState(t, e, corev1.NodeDiskPressure, corev1.TaintNodeDiskPressure); !c || !tn {
		t.Errorf("DiskPressure %v, taint %v", c, tn)
	}
}
