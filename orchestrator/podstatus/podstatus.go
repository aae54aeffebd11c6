package podstatus

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// nodeLostReason is the status reason the node lifecycle controller sets
// on pods of an unreachable node (shown as Unknown while they are deleted).
const nodeLostReason = "NodeLost"

// Summary is what kubectl get pods shows about one pod.
type Summary struct {
	// Reason is the STATUS column.
	Reason string
	// Ready and Total make the READY column (Ready/Total): ready
	// containers, and the containers plus the restartable init
	// containers (sidecars).
	Ready, Total int
	// Restarts counts container restarts: the init containers' while
	// the pod initializes, afterwards the containers' and the sidecars'.
	Restarts int
	// LastRestart is when the last counted restart ended the previous
	// run; zero when unknown.
	LastRestart time.Time
}

// String returns the STATUS column of pod, what [Of] reports as Reason.
func String(pod *corev1.Pod) string { return Of(pod).Reason }

// ReadyString is the READY column: "1/2".
func (s Summary) ReadyString() string { return fmt.Sprintf("%d/%d", s.Ready, s.Total) }

// RestartsString is the RESTARTS column at time now: "0", or "3 (5m ago)"
// when the last restart's time is known.
func (s Summary) RestartsString(now time.Time) string {
	if s.Restarts == 0 || s.LastRestart.IsZero() {
		return strconv.Itoa(s.Restarts)
	}
	return fmt.Sprintf("%d (%s ago)", s.Restarts, duration.HumanDuration(now.Sub(s.LastRestart)))
}

// isSidecar reports whether an init container is restartable (a sidecar:
// restartPolicy Always), which keeps running beside the containers.
func isSidecar(c *corev1.Container) bool {
	return c != nil && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// restartTime is when a container's previous run ended, or zero.
func restartTime(cs *corev1.ContainerStatus) time.Time {
	if t := cs.LastTerminationState.Terminated; t != nil {
		return t.FinishedAt.Time
	}
	return time.Time{}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// terminatedReason names a terminated container's end: its reason, or
// the signal or exit code that ended it.
func terminatedReason(t *corev1.ContainerStateTerminated) string {
	switch {
	case t.Reason != "":
		return t.Reason
	case t.Signal != 0:
		return fmt.Sprintf("Signal:%d", t.Signal)
	default:
		return fmt.Sprintf("ExitCode:%d", t.ExitCode)
	}
}

// Of computes pod's Summary as kubectl's pod printer does.
func Of(pod *corev1.Pod) Summary {
	s := Summary{Reason: string(pod.Status.Phase), Total: len(pod.Spec.Containers)}
	if pod.Status.Reason != "" {
		s.Reason = pod.Status.Reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			s.Reason = corev1.PodReasonSchedulingGated
		}
	}
	inits := make(map[string]*corev1.Container, len(pod.Spec.InitContainers))
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		inits[c.Name] = c
		if isSidecar(c) {
			s.Total++
		}
	}
	var sidecarRestarts int
	var sidecarLast time.Time
	initializing := false
	for i := range pod.Status.InitContainerStatuses {
		cs := &pod.Status.InitContainerStatuses[i]
		s.Restarts += int(cs.RestartCount)
		s.LastRestart = later(s.LastRestart, restartTime(cs))
		sidecar := isSidecar(inits[cs.Name])
		if sidecar {
			sidecarRestarts += int(cs.RestartCount)
			sidecarLast = later(sidecarLast, restartTime(cs))
		}
		term, wait := cs.State.Terminated, cs.State.Waiting
		switch {
		case term != nil && term.ExitCode == 0:
			continue
		case sidecar && cs.Started != nil && *cs.Started:
			if cs.Ready {
				s.Ready++
			}
			continue
		case term != nil:
			s.Reason = "Init:" + terminatedReason(term)
		case wait != nil && wait.Reason != "" && wait.Reason != "PodInitializing":
			s.Reason = "Init:" + wait.Reason
		default:
			s.Reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		initializing = true
		break
	}
	if !initializing || initialized(pod) {
		s.Restarts, s.LastRestart = sidecarRestarts, sidecarLast
		running := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			cs := &pod.Status.ContainerStatuses[i]
			s.Restarts += int(cs.RestartCount)
			s.LastRestart = later(s.LastRestart, restartTime(cs))
			switch {
			case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
				s.Reason = cs.State.Waiting.Reason
			case cs.State.Terminated != nil:
				s.Reason = terminatedReason(cs.State.Terminated)
			case cs.Ready && cs.State.Running != nil:
				running = true
				s.Ready++
			}
		}
		// A pod whose last container completed while another still
		// runs is Running, or NotReady while not ready.
		if s.Reason == "Completed" && running {
			s.Reason = "NotReady"
			if conditionTrue(pod, corev1.PodReady) {
				s.Reason = "Running"
			}
		}
	}
	if pod.DeletionTimestamp != nil {
		switch {
		case pod.Status.Reason == nodeLostReason:
			s.Reason = "Unknown"
		case pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed:
			s.Reason = "Terminating"
		}
	}
	if s.Reason == "" {
		s.Reason = string(corev1.PodPending)
	}
	return s
}

func initialized(pod *corev1.Pod) bool { return conditionTrue(pod, corev1.PodInitialized) }

func conditionTrue(pod *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
