package agent

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/store"
)

// brokenRuntime fails every listing while broken is set, as a runtime
// whose daemon stopped answering.
type brokenRuntime struct {
	runtime.Runtime
	broken atomic.Bool
}

var errRuntimeDown = errors.New("connection refused")

func (b *brokenRuntime) ListPodSandboxes(ctx context.Context) ([]*runtime.PodSandbox, error) {
	if b.broken.Load() {
		return nil, errRuntimeDown
	}
	return b.Runtime.ListPodSandboxes(ctx)
}

func (b *brokenRuntime) PodSandboxStatus(ctx context.Context, id string) (*runtime.PodSandbox, error) {
	if b.broken.Load() {
		return nil, errRuntimeDown
	}
	return b.Runtime.PodSandboxStatus(ctx, id)
}

func (b *brokenRuntime) ListContainers(ctx context.Context, f runtime.ContainerFilter) ([]*runtime.ContainerStatus, error) {
	if b.broken.Load() {
		return nil, errRuntimeDown
	}
	return b.Runtime.ListContainers(ctx, f)
}

func nodeReady(t *testing.T, e *testEnv) bool {
	t.Helper()
	n, err := store.Get[*corev1.Node](e.ctx, e.s, "", testNode)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestPhaseUnknown restarts the agent while the runtime cannot report
// anything: the re-adopted running pod turns Unknown and unready (and the
// node NotReady) until the runtime answers again; then it is Running and
// Ready with the same container.
func TestPhaseUnknown(t *testing.T) {
	var br *brokenRuntime
	e := newEnv(t, envOpts{cfg: func(c *Config) { br = &brokenRuntime{Runtime: c.Runtime}; c.Runtime = br }})
	e.createPod(simplePod("web"))
	before := e.waitPod("default", "web", "Ready", ready)
	e.stop()
	br.broken.Store(true)
	e.start()
	got := e.waitPod("default", "web", "phase Unknown", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodUnknown })
	if ready(got) || got.Status.ContainerStatuses[0].Ready {
		t.Error("pod of unknown state is Ready")
	}
	if c := findCondition(got.Status.Conditions, corev1.PodReady); c == nil || c.Reason != "PodStatusUnknown" || !strings.Contains(c.Message, "connection refused") {
		t.Errorf("Ready condition %+v", c)
	}
	e.waitPod("default", "web", "node NotReady", func(*corev1.Pod) bool { return !nodeReady(t, e) })
	br.broken.Store(false)
	after := e.waitPod("default", "web", "Running and Ready", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && ready(p) })
	if a, b := after.Status.ContainerStatuses[0], before.Status.ContainerStatuses[0]; a.ContainerID != b.ContainerID || a.RestartCount != 0 {
		t.Errorf("container %s/%d after the outage, %s before", a.ContainerID, a.RestartCount, b.ContainerID)
	}
	if n := len(e.rec.all()); n != 1 {
		t.Errorf("%d containers created", n)
	}
}

// TestAdmissionUnderPressure: a new pod bound to a node under disk
// pressure is rejected (Failed, Evicted); under memory pressure only
// BestEffort pods are, unless they tolerate the memory-pressure taint.
func TestAdmissionUnderPressure(t *testing.T) {
	var disk, mem atomic.Bool
	e := newEnv(t, envOpts{cfg: func(c *Config) {
		c.Measure = func(context.Context) (Measurements, error) {
			m := Measurements{CPUs: 2, MemoryTotal: 8 << 30, MemoryAvailable: 4 << 30, DiskTotal: 100 << 30, DiskAvailable: 50 << 30, PIDsInUse: 10, PIDMax: 32768}
			if disk.Load() {
				m.DiskAvailable = 1 << 30
			}
			if mem.Load() {
				m.MemoryAvailable = 50 << 20
			}
			return m, nil
		}
	}})
	e.createPod(simplePod("running"))
	e.waitStatus("default", "running", "Running")
	disk.Store(true)
	e.waitPod("default", "running", "node DiskPressure", func(*corev1.Pod) bool {
		c, _ := nodeState(t, e, corev1.NodeDiskPressure, corev1.TaintNodeDiskPressure)
		return c
	})
	e.createPod(simplePod("late"))
	got := e.waitPod("default", "late", "rejected", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if got.Status.Reason != "Evicted" || !strings.Contains(got.Status.Message, "DiskPressure") || PodStatusString(got) != "Evicted" {
		t.Errorf("rejected pod: %s %q %q", PodStatusString(got), got.Status.Reason, got.Status.Message)
	}
	disk.Store(false)
	mem.Store(true)
	e.waitPod("default", "running", "node MemoryPressure only", func(*corev1.Pod) bool {
		d, _ := nodeState(t, e, corev1.NodeDiskPressure, corev1.TaintNodeDiskPressure)
		m, _ := nodeState(t, e, corev1.NodeMemoryPressure, corev1.TaintNodeMemoryPressure)
		return m && !d
	})
	tolerant := simplePod("tolerant")
	tolerant.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	burstable := simplePod("burstable")
	burstable.Spec.Containers[0].Resources.Requests = corev1.ResourceList{"memory": mustQ("16Mi")}
	e.createPod(tolerant)
	e.createPod(burstable)
	e.createPod(simplePod("besteffort"))
	e.waitPod("default", "besteffort", "rejected", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "Evicted" })
	e.waitStatus("default", "tolerant", "Running")
	e.waitStatus("default", "burstable", "Running")
}
