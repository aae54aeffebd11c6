package podstatus_test

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/podstatus"
)

// A pod whose container keeps crashing, as kubectl get pods shows it.
func Example() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	pod := &corev1.Pod{
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", RestartCount: 4,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 1, FinishedAt: metav1.NewTime(now.Add(-90 * time.Second))}},
		}}},
	}
	s := podstatus.Of(pod)
	fmt.Println("READY", s.ReadyString())
	fmt.Println("STATUS", s.Reason)
	fmt.Println("RESTARTS", s.RestartsString(now))
	// Output:
	// READY 0/1
	// STATUS CrashLoopBackOff
	// RESTARTS 4 (90s ago)
}
