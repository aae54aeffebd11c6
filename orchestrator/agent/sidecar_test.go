package agent

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
	"github.com/tugboatdev/tugboat/store"
)

// stopRecorder records the names of the containers the agent stops, in
// order.
type stopRecorder struct {
	runtime.Runtime
	mu    sync.Mutex
	names []string
}

func (r *stopRecorder) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	if st, err := r.Runtime.ContainerStatus(ctx, id); err == nil && st.State == runtime.ContainerRunning {
		r.mu.Lock()
		r.names = append(r.names, st.Labels[LabelContainerName])
		r.mu.Unlock()
	}
	return r.Runtime.StopContainer(ctx, id, grace)
}

func (r *stopRecorder) stopped() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.names...)
}

func sidecar(name string) corev1.Container {
	always := corev1.ContainerRestartPolicyAlways
	return corev1.Container{Name: name, Image: "app:1", RestartPolicy: &always}
}

func initStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.InitContainerStatuses {
		if p.Status.InitContainerStatuses[i].Name == name {
			return &p.Status.InitContainerStatuses[i]
		}
	}
	return nil
}

// TestSidecarJob runs a Job-like pod (restartPolicy Never) with a sidecar
// between two regular init containers: the sidecar starts in order and does
// not block the next init container, keeps running beside the app, and is
// stopped once the app container has completed; the pod Succeeds.
func TestSidecarJob(t *testing.T) {
	var mu sync.Mutex
	var order []string
	var sr *stopRecorder
	e := newEnv(t, envOpts{
		cfg: func(c *Config) { sr = &stopRecorder{Runtime: c.Runtime}; c.Runtime = sr },
		script: func(_ *runtime.PodSandboxConfig, c *runtime.ContainerConfig) simulated.Behavior {
			mu.Lock()
			order = append(order, c.Name)
			mu.Unlock()
			switch c.Name {
			case "setup", "migrate":
				return simulated.Behavior{RunFor: 20 * time.Millisecond}
			case "job":
				return simulated.Behavior{RunFor: 500 * time.Millisecond}
			}
			return simulated.Behavior{}
		}})
	p := simplePod("job", corev1.Container{Name: "job", Image: "app:1"})
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "app:1"}, sidecar("proxy"), {Name: "migrate", Image: "app:1"}}
	e.createPod(p)
	running := e.waitPod("default", "job", "Running and Ready", func(p *corev1.Pod) bool { return ready(p) && PodStatusString(p) == "Running" })
	if cs := initStatus(running, "proxy"); cs == nil || cs.State.Running == nil || cs.Started == nil || !*cs.Started || !cs.Ready {
		t.Errorf("sidecar status while the job runs: %+v", cs)
	}
	done := e.waitPod("default", "job", "Succeeded", func(p *corev1.Pod) bool {
		cs := initStatus(p, "proxy")
		return p.Status.Phase == corev1.PodSucceeded && cs != nil && cs.State.Terminated != nil
	})
	if s := PodStatusString(done); s != "Completed" {
		t.Errorf("status %s, want Completed", s)
	}
	mu.Lock()
	got := slices.Clone(order)
	mu.Unlock()
	if diff := cmp.Diff([]string{"setup", "proxy", "migrate", "job"}, got); diff != "" {
		t.Errorf("start order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"proxy"}, sr.stopped()); diff != "" {
		t.Errorf("stopped (-want +got):\n%s", diff)
	}
	for _, c := range done.Status.Conditions {
		if c.Type == corev1.PodInitialized && c.Status != corev1.ConditionTrue {
			t.Errorf("Initialized = %s after completion", c.Status)
		}
	}
}

// TestSidecarLifecycle checks that a sidecar's startup probe holds the next
// container, that its readiness counts in the pod's, that it restarts when
// it exits (under restartPolicy Never too) without touching the app, and
// that pod deletion stops the app first, then the sidecars in reverse
// order.
func TestSidecarLifecycle(t *testing.T) {
	var mu sync.Mutex
	started := map[string]int{}
	probeOK := map[string]bool{}
	var sr *stopRecorder
	e := newEnv(t, envOpts{
		cfg: func(c *Config) { sr = &stopRecorder{Runtime: c.Runtime}; c.Runtime = sr },
		script: func(_ *runtime.PodSandboxConfig, c *runtime.ContainerConfig) simulated.Behavior {
			mu.Lock()
			defer mu.Unlock()
			started[c.Name]++
			if c.Name == "logger" && c.Attempt == 0 {
				return simulated.Behavior{RunFor: 300 * time.Millisecond, ExitCode: 2}
			}
			return simulated.Behavior{}
		},
		exec: func(_ string, cmd []string, _ io.Writer) int32 {
			mu.Lock()
			defer mu.Unlock()
			if probeOK[cmd[0]] {
				return 0
			}
			return 1
		}})
	p := simplePod("side", corev1.Container{Name: "app", Image: "app:1"})
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.Spec.InitContainers = []corev1.Container{sidecar("mesh"), sidecar("logger")}
	p.Spec.InitContainers[0].StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"mesh-started"}}},
		PeriodSeconds: 1, FailureThreshold: 1000}
	p.Spec.InitContainers[1].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"logger-ready"}}},
		PeriodSeconds: 1, FailureThreshold: 1}
	e.createPod(p)
	pending := e.waitPod("default", "side", "Init:0/2", func(p *corev1.Pod) bool { return PodStatusString(p) == "Init:0/2" })
	if cs := initStatus(pending, "mesh"); cs == nil || cs.State.Running == nil || *cs.Started {
		t.Errorf("mesh before its startup probe passed: %+v", cs)
	}
	mu.Lock()
	if started["logger"] != 0 {
		t.Error("the second sidecar started before the first one's startup probe passed")
	}
	probeOK["mesh-started"] = true
	mu.Unlock()
	// logger exits once and is restarted; the pod stays unready until its
	// readiness probe passes.
	restarted := e.waitPod("default", "side", "logger restarted", func(p *corev1.Pod) bool {
		cs := initStatus(p, "logger")
		return cs != nil && cs.RestartCount >= 1 && cs.State.Running != nil && PodStatusString(p) == "Running"
	})
	if ready(restarted) {
		t.Error("pod Ready while its sidecar's readiness probe fails")
	}
	if c := findCondition(restarted.Status.Conditions, corev1.ContainersReady); c == nil || !strings.Contains(c.Message, "logger") {
		t.Errorf("ContainersReady = %+v, want logger named as unready", c)
	}
	if lt := initStatus(restarted, "logger").LastTerminationState.Terminated; lt == nil || lt.ExitCode != 2 {
		t.Errorf("logger lastState = %+v", lt)
	}
	if cs := restarted.Status.ContainerStatuses[0]; cs.RestartCount != 0 || cs.State.Running == nil {
		t.Errorf("app status %+v", cs)
	}
	mu.Lock()
	probeOK["logger-ready"] = true
	mu.Unlock()
	e.waitPod("default", "side", "Ready", ready)
	if err := store.Delete[*corev1.Pod](e.ctx, e.s, "default", "side", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(5))}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("default", "side")
	got := sr.stopped()
	if diff := cmp.Diff([]string{"app", "logger", "mesh"}, got[len(got)-3:]); diff != "" {
		t.Errorf("termination order (-want +got):\n%s", diff)
	}
}
