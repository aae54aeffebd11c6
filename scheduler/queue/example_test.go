package queue_test

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/scheduler/queue"
)

func pod(name string, prio int32) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name)}, Spec: v1.PodSpec{Priority: &prio}}
}

// Example shows priority ordering and an unschedulable pod coming back
// when a node is added.
func Example() {
	ctx := context.Background()
	q := queue.New(queue.Config{InitialBackoff: 1, MaxBackoff: 1})
	defer q.Close()
	q.Add(pod("batch", 0))
	q.Add(pod("critical", 1000))

	first, _ := q.Pop(ctx)
	fmt.Println("first:", first.Pod.Name)

	// It does not fit anywhere: it waits for an event.
	first.UnschedulablePlugins = map[string]struct{}{"NodeResourcesFit": {}}
	q.AddUnschedulable(first, q.SchedulingCycle(), false)
	second, _ := q.Pop(ctx)
	fmt.Println("second:", second.Pod.Name)
	q.Done(second.Pod.UID)

	q.MoveOnEvent(framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add})
	again, _ := q.Pop(ctx)
	fmt.Println("after a node was added:", again.Pod.Name, "attempt", again.Attempts)
	// Output:
	// first: critical
	// second: batch
	// after a node was added: critical attempt 2
}
