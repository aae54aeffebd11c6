package podstatus

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	t0     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	always = corev1.ContainerRestartPolicyAlways
	yes    = true
)

func running(name string, ready bool, restarts int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Ready: ready, RestartCount: restarts,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}}
}

func waiting(name, reason string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
}

func terminated(name, reason string, code, signal int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code, Signal: signal}}}
}

func withLastRun(cs corev1.ContainerStatus, restarts int32, ended time.Time) corev1.ContainerStatus {
	cs.RestartCount = restarts
	cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: metav1.NewTime(ended)}
	return cs
}

func pod(containers int, phase corev1.PodPhase, statuses ...corev1.ContainerStatus) *corev1.Pod {
	p := &corev1.Pod{Status: corev1.PodStatus{Phase: phase, ContainerStatuses: statuses}}
	for i := 0; i < containers; i++ {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: string(rune('a' + i))})
	}
	return p
}

func withInit(p *corev1.Pod, sidecar bool, statuses ...corev1.ContainerStatus) *corev1.Pod {
	for _, s := range statuses {
		c := corev1.Container{Name: s.Name}
		if sidecar {
			c.RestartPolicy = &always
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
	p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, statuses...)
	return p
}

func withConditions(p *corev1.Pod, conds ...corev1.PodCondition) *corev1.Pod {
	p.Status.Conditions = append(p.Status.Conditions, conds...)
	return p
}

func deleted(p *corev1.Pod, reason string) *corev1.Pod {
	now := metav1.NewTime(t0)
	p.DeletionTimestamp = &now
	p.Status.Reason = reason
	return p
}

func TestOf(t *testing.T) {
	startedSidecar := running("side", true, 2)
	startedSidecar.Started = &yes
	tests := []struct {
		name string
		pod  *corev1.Pod
		want Summary
	}{
		{"no status yet", pod(1, ""), Summary{Reason: "Pending", Total: 1}},
		{"pending", pod(2, corev1.PodPending), Summary{Reason: "Pending", Total: 2}},
		{"running and ready", pod(2, corev1.PodRunning, running("a", true, 0), running("b", true, 0)), Summary{Reason: "Running", Ready: 2, Total: 2}},
		{"one not ready", pod(2, corev1.PodRunning, running("a", true, 0), running("b", false, 0)), Summary{Reason: "Running", Ready: 1, Total: 2}},
		{"creating", pod(1, corev1.PodPending, waiting("a", "ContainerCreating")), Summary{Reason: "ContainerCreating", Total: 1}},
		{"crash loop with restarts", pod(1, corev1.PodRunning, withLastRun(waiting("a", "CrashLoopBackOff"), 3, t0)),
			Summary{Reason: "CrashLoopBackOff", Total: 1, Restarts: 3, LastRestart: t0}},
		{"completed", pod(1, corev1.PodSucceeded, terminated("a", "Completed", 0, 0)), Summary{Reason: "Completed", Total: 1}},
		{"error", pod(1, corev1.PodFailed, terminated("a", "Error", 1, 0)), Summary{Reason: "Error", Total: 1}},
		{"killed by signal", pod(1, corev1.PodFailed, terminated("a", "", 137, 9)), Summary{Reason: "Signal:9", Total: 1}},
		{"exit code", pod(1, corev1.PodFailed, terminated("a", "", 3, 0)), Summary{Reason: "ExitCode:3", Total: 1}},
		{"completed beside a running ready container", withConditions(pod(2, corev1.PodRunning, running("a", true, 0), terminated("b", "Completed", 0, 0)),
			corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}), Summary{Reason: "Running", Ready: 1, Total: 2}},
		{"completed beside a running container, pod not ready", pod(2, corev1.PodRunning, running("a", true, 0), terminated("b", "Completed", 0, 0)),
			Summary{Reason: "NotReady", Ready: 1, Total: 2}},
		{"evicted", func() *corev1.Pod { p := pod(1, corev1.PodFailed); p.Status.Reason = "Evicted"; return p }(), Summary{Reason: "Evicted", Total: 1}},
		{"scheduling gated", withConditions(pod(1, corev1.PodPending), corev1.PodCondition{Type: corev1.PodScheduled, Reason: corev1.PodReasonSchedulingGated}),
			Summary{Reason: "SchedulingGated", Total: 1}},
		{"init waiting", withInit(pod(1, corev1.PodPending, waiting("a", "PodInitializing")), false, running("i1", false, 0), waiting("i2", "PodInitializing")),
			Summary{Reason: "Init:0/2", Total: 1}},
		{"init second of two", withInit(pod(1, corev1.PodPending), false, terminated("i1", "Completed", 0, 0), running("i2", false, 0)),
			Summary{Reason: "Init:1/2", Total: 1}},
		{"init crash loop counts init restarts", withInit(pod(1, corev1.PodPending), false, withLastRun(waiting("i1", "CrashLoopBackOff"), 4, t0)),
			Summary{Reason: "Init:CrashLoopBackOff", Total: 1, Restarts: 4, LastRestart: t0}},
		{"init failed", withInit(pod(1, corev1.PodFailed), false, terminated("i1", "Error", 1, 0)), Summary{Reason: "Init:Error", Total: 1}},
		{"init signal", withInit(pod(1, corev1.PodFailed), false, terminated("i1", "", 143, 15)), Summary{Reason: "Init:Signal:15", Total: 1}},
		{"init exit code", withInit(pod(1, corev1.PodFailed), false, terminated("i1", "", 2, 0)), Summary{Reason: "Init:ExitCode:2", Total: 1}},
		{"started sidecar counts as ready and its restarts count", withInit(pod(1, corev1.PodRunning, withLastRun(running("a", true, 1), 1, t0)), true, startedSidecar),
			Summary{Reason: "Running", Ready: 2, Total: 2, Restarts: 3, LastRestart: t0}},
		{"sidecar not started holds the pod in init", withInit(pod(1, corev1.PodPending), true, waiting("side", "")),
			Summary{Reason: "Init:0/1", Total: 2}},
		{"initialized pod with an init error shows its containers", withConditions(withInit(pod(1, corev1.PodRunning, waiting("a", "CrashLoopBackOff")), false, terminated("i1", "Error", 1, 0)),
			corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}), Summary{Reason: "CrashLoopBackOff", Total: 1}},
		{"terminating", deleted(pod(1, corev1.PodRunning, running("a", true, 0)), ""), Summary{Reason: "Terminating", Ready: 1, Total: 1}},
		{"node lost", deleted(pod(1, corev1.PodRunning, running("a", true, 0)), "NodeLost"), Summary{Reason: "Unknown", Ready: 1, Total: 1}},
		{"deleted after completing keeps its status", deleted(pod(1, corev1.PodSucceeded, terminated("a", "Completed", 0, 0)), ""), Summary{Reason: "Completed", Total: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Of(tt.pod)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Of (-want +got):\n%s", diff)
			}
			if s := String(tt.pod); s != tt.want.Reason {
				t.Errorf("String = %q, want %q", s, tt.want.Reason)
			}
		})
	}
}

func TestColumns(t *testing.T) {
	tests := []struct {
		s               Summary
		ready, restarts string
	}{
		{Summary{Ready: 1, Total: 2}, "1/2", "0"},
		{Summary{Ready: 0, Total: 1, Restarts: 3}, "0/1", "3"},
		{Summary{Ready: 1, Total: 1, Restarts: 3, LastRestart: t0.Add(-5 * time.Minute)}, "1/1", "3 (5m ago)"},
	}
	for _, tt := range tests {
		if got := tt.s.ReadyString(); got != tt.ready {
			t.Errorf("%+v: ReadyString = %q, want %q", tt.s, got, tt.ready)
		}
		if got := tt.s.RestartsString(t0); got != tt.restarts {
			t.Errorf("%+v: RestartsString = %q, want %q", tt.s, got, tt.restarts)
		}
	}
}
