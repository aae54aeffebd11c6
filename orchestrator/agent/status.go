package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/podstatus"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

const podReadyToStartContainers corev1.PodConditionType = "PodReadyToStartContainers"

// maxTerminationMessage bounds a termination message, as upstream (4 KiB).
const maxTerminationMessage = 4096

// statusEqual compares two pod statuses.
func statusEqual(a, b *corev1.PodStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}

// computeStatus derives the pod's status from the runtime's containers.
// pc is nil before the sandbox exists.
func (w *podWorker) computeStatus(ctx context.Context, pod *corev1.Pod, pc podContainers, sandboxReady bool) *corev1.PodStatus {
	now := metav1.NewTime(w.a.clk.Now())
	prev := &pod.Status
	if w.lastStatus != nil {
		prev = w.lastStatus
	}
	st := &corev1.PodStatus{Phase: corev1.PodPending, QOSClass: storeapi.QOSClass(&pod.Spec), HostIP: w.a.nodeIP,
		HostIPs: []corev1.HostIP{{IP: w.a.nodeIP}}, StartTime: prev.StartTime}
	if st.StartTime == nil {
		st.StartTime = &now
	}
	if w.getPodIP() != "" && sandboxReady {
		st.PodIP = w.getPodIP()
		st.PodIPs = []corev1.PodIP{{IP: w.getPodIP()}}
	}
	// Init containers.
	initDone := true
	initFailed := false
	initialized := mainStarted(pod, pc)
	var incomplete, unready []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := w.containerStatus(ctx, pod, c, pc, "PodInitializing")
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		if isSidecar(c) {
			// A sidecar counts in readiness; it holds initialization up
			// until it has started once (as upstream's getPhase).
			if !cs.Ready {
				unready = append(unready, c.Name)
			}
			pending := false
			switch {
			case cs.State.Running != nil:
				pending = cs.Started == nil || !*cs.Started
			case cs.State.Terminated != nil:
				pending = !initialized
			default:
				pending = cs.LastTerminationState.Terminated == nil
			}
			if pending && !initialized {
				initDone = false
				incomplete = append(incomplete, c.Name)
			}
			continue
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode == 0 {
			continue
		}
		if initialized {
			// The app containers run: a regular init container whose
			// container was garbage collected or is reported otherwise
			// does not take the pod back.
			continue
		}
		initDone = false
		incomplete = append(incomplete, c.Name)
		latest := pc.latest(c.Name)
		if latest != nil && latest.State == runtime.ContainerExited && latest.ExitCode != 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			initFailed = true
		}
	}
	// App containers.
	defaultWaiting := "ContainerCreating"
	if len(pod.Spec.InitContainers) > 0 {
		defaultWaiting = "PodInitializing"
	}
	running, waiting, stopped, succeeded := 0, 0, 0, 0
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs := w.containerStatus(ctx, pod, c, pc, defaultWaiting)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			unready = append(unready, c.Name)
		}
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			stopped++
		default:
			waiting++
		}
	}
	// Phase, as upstream's getPhase.
	switch {
	case initFailed:
		st.Phase = corev1.PodFailed
	case !initDone:
		st.Phase = corev1.PodPending
	case waiting > 0:
		st.Phase = corev1.PodPending
	case running > 0:
		st.Phase = corev1.PodRunning
	case stopped > 0:
		switch {
		case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
			st.Phase = corev1.PodRunning
		case stopped == succeeded:
			st.Phase = corev1.PodSucceeded
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			st.Phase = corev1.PodFailed
		default:
			st.Phase = corev1.PodRunning
		}
	}
	if st.Phase == corev1.PodRunning || st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		// The OnFailure/Always cases above count containers that will be
		// restarted; a Never pod whose containers all stopped is done.
	}
	// Conditions.
	set := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now}
		if !ok {
			c.Status, c.Reason, c.Message = corev1.ConditionFalse, reason, msg
		}
		if old := findCondition(prev.Conditions, t); old != nil && old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		st.Conditions = append(st.Conditions, c)
	}
	set(podReadyToStartContainers, sandboxReady, "", "")
	set(corev1.PodInitialized, initDone, "ContainersNotInitialized", fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incomplete, " ")))
	done := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	ready := len(unready) == 0 && initDone
	reason, msg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if done {
		ready, reason, msg = false, "PodCompleted", ""
	}
	set(corev1.ContainersReady, ready, reason, msg)
	podReady, pReason, pMsg := ready, reason, msg
	if podReady {
		for _, g := range pod.Spec.ReadinessGates {
			c := findCondition(pod.Status.Conditions, g.ConditionType)
			if c == nil {
				podReady, pReason, pMsg = false, "ReadinessGatesNotReady", fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType)
				break
			}
			if c.Status != corev1.ConditionTrue {
				podReady, pReason, pMsg = false, "ReadinessGatesNotReady", fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %s", g.ConditionType, c.Status)
				break
			}
		}
	}
	set(corev1.PodReady, podReady, pReason, pMsg)
	if sc := findCondition(pod.Status.Conditions, corev1.PodScheduled); sc != nil {
		st.Conditions = append([]corev1.PodCondition{*sc}, st.Conditions...)
	} else {
		st.Conditions = append([]corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: *st.StartTime}}, st.Conditions...)
	}
	return st
}

// containerStatus reports one container as the API shows it.
func (w *podWorker) containerStatus(ctx context.Context, pod *corev1.Pod, c *corev1.Container, pc podContainers, defaultWaiting string) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image}
	f := false
	cs.Started = &f
	latest, prev := pc.latest(c.Name), pc.previous(c.Name)
	if latest == nil {
		reason, msg := defaultWaiting, ""
		if wi, ok := w.waiting[c.Name]; ok {
			reason, msg = wi.reason, wi.message
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
		return cs
	}
	cs.ContainerID = w.a.cfg.RuntimeName + "://" + latest.ID
	cs.ImageID = latest.ImageRef
	cs.RestartCount = int32(latest.Attempt)
	switch latest.State {
	case runtime.ContainerRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(latest.StartedAt)}
		started, ready := w.probeState(latest.ID, c)
		cs.Started = &started
		cs.Ready = ready
		if prev != nil && prev.State == runtime.ContainerExited {
			cs.LastTerminationState.Terminated = w.terminatedState(ctx, c, prev)
		}
	case runtime.ContainerExited:
		t := w.terminatedState(ctx, c, latest)
		if wi, ok := w.waiting[c.Name]; ok {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: wi.reason, Message: wi.message}
			cs.LastTerminationState.Terminated = t
		} else {
			cs.State.Terminated = t
			if prev != nil && prev.State == runtime.ContainerExited {
				cs.LastTerminationState.Terminated = w.terminatedState(ctx, c, prev)
			}
		}
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	return cs
}

func (w *podWorker) terminatedState(ctx context.Context, c *corev1.Container, st *runtime.ContainerStatus) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{ExitCode: st.ExitCode, Reason: st.Reason, StartedAt: metav1.NewTime(st.StartedAt),
		FinishedAt: metav1.NewTime(st.FinishedAt), ContainerID: w.a.cfg.RuntimeName + "://" + st.ID}
	if t.Reason == "" {
		t.Reason = runtime.ReasonError
		if st.ExitCode == 0 {
			t.Reason = runtime.ReasonCompleted
		}
	}
	if st.StartedAt.IsZero() {
		t.StartedAt = metav1.Time{}
	}
	t.Message = w.terminationMessage(ctx, c, st)
	return t
}

// terminationMessage reads the container's terminationMessagePath file or,
// with FallbackToLogsOnError after a failure, the end of its log.
func (w *podWorker) terminationMessage(ctx context.Context, c *corev1.Container, st *runtime.ContainerStatus) string {
	if m, ok := w.termMsgs[st.ID]; ok {
		return m
	}
	var msg string
	if b, err := os.ReadFile(w.terminationLogPath(c.Name, st.Attempt)); err == nil {
		msg = string(b[:min(len(b), maxTerminationMessage)])
	}
	if msg == "" && st.ExitCode != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		var buf bytes.Buffer
		_ = w.a.rt.ContainerLogs(ctx, st.ID, runtime.LogOptions{TailLines: 80, LimitBytes: 2048}, &buf, &buf)
		msg = buf.String()
	}
	if msg == "" && st.Message != "" {
		msg = st.Message
	}
	// Output may still be flushing right after the exit: cache the
	// message only once it has settled.
	if w.a.clk.Since(st.FinishedAt) > 2*time.Second {
		w.termMsgs[st.ID] = msg
	}
	return msg
}

func (w *podWorker) terminationLogPath(name string, attempt uint32) string {
	return filepath.Join(w.a.podDir(w.uid), "containers", name, fmt.Sprintf("%d-termination-log", attempt))
}

// PodStatusString returns the STATUS column `kubectl get pods` shows for a
// pod (Running, Init:1/2, Init:CrashLoopBackOff, PodInitializing,
// CrashLoopBackOff, Completed, Error, OOMKilled, Terminating, ...). It is
// [podstatus.String], which the API server's Table uses too.
func PodStatusString(pod *corev1.Pod) string { return podstatus.String(pod) }
