package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/store"
)

func bound(t testing.TB, st store.Interface, ns, name string) func() (bool, error) {
	return func() (bool, error) {
		p, err := store.Get[*v1.Pod](context.Background(), st, ns, name)
		if err != nil {
			return false, err
		}
		return p.Spec.NodeName != "", nil
	}
}

func scheduledCondition(p *v1.Pod) *v1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == v1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func TestSchedulesPodsThroughStore(t *testing.T) {
	st := openStore(t)
	for i := range 3 {
		mustCreate(t, st, makeNode(podName(i), "1", "4Gi", 110, nil))
	}
	startScheduler(t, st, Config{Logger: discardLogger()})
	for i := range 6 {
		mustCreate(t, st, makePod("default", podName(i), "300m", "100Mi"))
	}
	perNode := map[string]int{}
	waitFor(t, "pods bound", func() (bool, error) {
		clear(perNode)
		pods, _, err := store.ListOf[*v1.Pod](context.Background(), st, "default", metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, p := range pods {
			if p.Spec.NodeName == "" {
				return false, nil
			}
			perNode[p.Spec.NodeName]++
		}
		return len(pods) == 6, nil
	})
	for n, c := range perNode {
		if c > 3 {
			t.Errorf("node %s holds %d pods of 300m on 1 cpu", n, c)
		}
	}
	waitFor(t, "Scheduled events", func() (bool, error) {
		evs, _, err := store.ListOf[*v1.Event](context.Background(), st, "default", metav1.ListOptions{})
		n := 0
		for _, e := range evs {
			if e.Reason == "Scheduled" {
				n++
			}
		}
		return n == 6, err
	})
}

// TestUnschedulableMessage checks the PodScheduled=False condition, its
// upstream-style message and the FailedScheduling event, then that the pod
// is retried when the taint blocking it is removed (no polling: the node
// update event moves it).
func TestUnschedulableMessageAndRetryOnTaintRemoval(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	for i := range 3 {
		mustCreate(t, st, makeNode("small-"+podName(i), "500m", "4Gi", 110, nil))
	}
	for i := range 2 {
		n := makeNode("tainted-"+podName(i), "8", "16Gi", 110, nil)
		n.Spec.Taints = []v1.Taint{{Key: "key", Value: "value", Effect: v1.TaintEffectNoSchedule}}
		mustCreate(t, st, n)
	}
	startScheduler(t, st, Config{Logger: discardLogger(), InitialBackoff: 1, MaxBackoff: 1})
	mustCreate(t, st, makePod("default", "big", "1", "100Mi"))
	want := "0/5 nodes are available: 2 node(s) had untolerated taint {key: value}, 3 Insufficient cpu. preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling."
	waitFor(t, "PodScheduled=False", func() (bool, error) {
		c := scheduledCondition(getPod(t, st, "default", "big"))
		return c != nil && c.Status == v1.ConditionFalse, nil
	})
	c := scheduledCondition(getPod(t, st, "default", "big"))
	if c.Reason != v1.PodReasonUnschedulable || c.Message != want {
		t.Errorf("condition = %s %q\nwant      Unschedulable %q", c.Reason, c.Message, want)
	}
	waitFor(t, "FailedScheduling event", func() (bool, error) {
		evs, _, err := store.ListOf[*v1.Event](ctx, st, "default", metav1.ListOptions{})
		for _, e := range evs {
			if e.Reason == "FailedScheduling" && e.Type == v1.EventTypeWarning && e.InvolvedObject.Name == "big" && e.Message == want {
				return true, err
			}
		}
		return false, err
	})
	n, err := store.Get[*v1.Node](ctx, st, "", "tainted-"+podName(1))
	if err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = nil
	if _, err := st.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod bound after taint removal", bound(t, st, "default", "big"))
	if got := getPod(t, st, "default", "big").Spec.NodeName; got != n.Name {
		t.Errorf("bound to %s, want %s", got, n.Name)
	}
	waitFor(t, "PodScheduled=True after binding", func() (bool, error) {
		c := scheduledCondition(getPod(t, st, "default", "big"))
		return c != nil && c.Status == v1.ConditionTrue, nil
	})
}

func TestRetryWhenNodeAddedOrPodDeleted(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	mustCreate(t, st, makeNode("n1", "1", "4Gi", 110, nil))
	startScheduler(t, st, Config{Logger: discardLogger(), InitialBackoff: 1, MaxBackoff: 1})
	mustCreate(t, st, makePod("default", "first", "800m", ""))
	waitFor(t, "first bound", bound(t, st, "default", "first"))
	mustCreate(t, st, makePod("default", "second", "800m", ""))
	waitFor(t, "second unschedulable", func() (bool, error) {
		c := scheduledCondition(getPod(t, st, "default", "second"))
		return c != nil && c.Reason == v1.PodReasonUnschedulable, nil
	})
	if err := store.Delete[*v1.Pod](ctx, st, "default", "first", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second bound after first deleted", bound(t, st, "default", "second"))

	mustCreate(t, st, makePod("default", "third", "800m", ""))
	waitFor(t, "third unschedulable", func() (bool, error) {
		c := scheduledCondition(getPod(t, st, "default", "third"))
		return c != nil && c.Reason == v1.PodReasonUnschedulable, nil
	})
	mustCreate(t, st, makeNode("n2", "1", "4Gi", 110, nil))
	waitFor(t, "third bound after node added", bound(t, st, "default", "third"))
	if got := getPod(t, st, "default", "third").Spec.NodeName; got != "n2" {
		t.Errorf("third on %s", got)
	}
}

func TestSchedulersSideBySide(t *testing.T) {
	st := openStore(t)
	mustCreate(t, st, makeNode("n1", "4", "4Gi", 110, nil))
	a := startScheduler(t, st, Config{Logger: discardLogger()})
	other := makePod("default", "other", "100m", "")
	other.Spec.SchedulerName = "my-scheduler"
	mustCreate(t, st, other)
	mustCreate(t, st, makePod("default", "mine", "100m", ""))
	waitFor(t, "default pod bound", bound(t, st, "default", "mine"))
	if getPod(t, st, "default", "other").Spec.NodeName != "" {
		t.Fatal("default scheduler bound a pod naming another scheduler")
	}
	b := startScheduler(t, st, Config{SchedulerName: "my-scheduler", Logger: discardLogger()})
	waitFor(t, "my-scheduler binds its pod", bound(t, st, "default", "other"))
	waitFor(t, "binders done", func() (bool, error) { return a.Stats().Scheduled+b.Stats().Scheduled == 2, nil })
	if a.Stats().Scheduled != 1 || b.Stats().Scheduled != 1 {
		t.Errorf("stats: default %+v, my-scheduler %+v", a.Stats(), b.Stats())
	}
}

func TestPreemptionThroughStore(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	mustCreate(t, st, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000})
	mustCreate(t, st, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "low"}, Value: 10})
	mustCreate(t, st, makeNode("n1", "1", "4Gi", 110, nil))
	startScheduler(t, st, Config{Logger: discardLogger(), InitialBackoff: 1, MaxBackoff: 1})
	low := makePod("default", "low", "800m", "")
	low.Spec.PriorityClassName = "low"
	low.Spec.TerminationGracePeriodSeconds = new(int64) // no kubelet here: delete at once
	mustCreate(t, st, low)
	waitFor(t, "low bound", bound(t, st, "default", "low"))
	high := makePod("default", "high", "800m", "")
	high.Spec.PriorityClassName = "high"
	mustCreate(t, st, high)
	waitFor(t, "high bound after preemption", bound(t, st, "default", "high"))
	if _, err := store.Get[*v1.Pod](ctx, st, "default", "low"); !apierrors.IsNotFound(err) {
		t.Errorf("victim still exists: %v", err)
	}
	evs, _, err := store.ListOf[*v1.Event](ctx, st, "default", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range evs {
		if e.Reason == "Preempted" {
			reasons = append(reasons, e.InvolvedObject.Name)
		}
	}
	if d := cmp.Diff([]string{"low"}, reasons); d != "" {
		t.Errorf("Preempted events (-want +got):\n%s", d)
	}
}

// TestNominatedNodeName checks that preemption writes
// status.nominatedNodeName while the victim is still terminating.
func TestNominatedNodeName(t *testing.T) {
	st := openStore(t)
	mustCreate(t, st, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 100})
	mustCreate(t, st, makeNode("n1", "1", "4Gi", 110, nil))
	startScheduler(t, st, Config{Logger: discardLogger(), InitialBackoff: 1, MaxBackoff: 1})
	low := makePod("default", "low", "800m", "")
	low.Spec.TerminationGracePeriodSeconds = new(int64)
	*low.Spec.TerminationGracePeriodSeconds = 3600 // stays terminating
	mustCreate(t, st, low)
	waitFor(t, "low bound", bound(t, st, "default", "low"))
	high := makePod("default", "high", "800m", "")
	high.Spec.PriorityClassName = "high"
	mustCreate(t, st, high)
	waitFor(t, "nominatedNodeName", func() (bool, error) {
		return getPod(t, st, "default", "high").Status.NominatedNodeName == "n1", nil
	})
}

// flakyStore fails the first n pod bindings with a server error.
type flakyStore struct {
	store.Interface
	failures atomic.Int32
}

func (f *flakyStore) Update(ctx context.Context, obj runtime.Object, opts metav1.UpdateOptions) (runtime.Object, error) {
	if p, ok := obj.(*v1.Pod); ok && p.Spec.NodeName != "" && f.failures.Add(-1) >= 0 {
		return nil, apierrors.NewInternalError(errors.New("injected failure"))
	}
	return f.Interface.Update(ctx, obj, opts)
}

func TestFailedBindingIsForgottenAndRequeued(t *testing.T) {
	raw := openStore(t)
	fs := &flakyStore{Interface: raw}
	fs.failures.Store(2)
	mustCreate(t, raw, makeNode("n1", "1", "4Gi", 110, nil))
	s := startScheduler(t, fs, Config{Logger: discardLogger(), InitialBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	mustCreate(t, raw, makePod("default", "p", "800m", ""))
	waitFor(t, "bound after failures", bound(t, raw, "default", "p"))
	waitFor(t, "binder done", func() (bool, error) { return s.Stats().Scheduled == 1, nil })
	stats := s.Stats()
	if stats.BindFailures != 2 || stats.Scheduled != 1 {
		t.Errorf("stats = %+v, want 2 bind failures and 1 scheduled", stats)
	}
	waitFor(t, "cache holds the pod once", func() (bool, error) { return s.Cache().PodCount() == 1, nil })
}

func TestSchedulingGates(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	mustCreate(t, st, makeNode("n1", "4", "4Gi", 110, nil))
	startScheduler(t, st, Config{Logger: discardLogger()})
	gated := makePod("default", "gated", "100m", "")
	gated.Spec.SchedulingGates = []v1.PodSchedulingGate{{Name: "example.com/wait"}}
	mustCreate(t, st, gated)
	mustCreate(t, st, makePod("default", "free", "100m", ""))
	waitFor(t, "ungated pod bound", bound(t, st, "default", "free"))
	if getPod(t, st, "default", "gated").Spec.NodeName != "" {
		t.Fatal("gated pod was bound")
	}
	waitFor(t, "SchedulingGated condition", func() (bool, error) {
		c := scheduledCondition(getPod(t, st, "default", "gated"))
		return c != nil && c.Status == v1.ConditionFalse && c.Reason == v1.PodReasonSchedulingGated, nil
	})
	p := getPod(t, st, "default", "gated")
	p.Spec.SchedulingGates = nil
	if _, err := st.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod bound once its gates are removed", bound(t, st, "default", "gated"))
	waitFor(t, "PodScheduled=True", func() (bool, error) {
		c := scheduledCondition(getPod(t, st, "default", "gated"))
		return c != nil && c.Status == v1.ConditionTrue, nil
	})
}

// TestNoRetryWithoutEvent checks that an unschedulable pod waits for a
// cluster event instead of being retried on a timer.
func TestNoRetryWithoutEvent(t *testing.T) {
	st := openStore(t)
	mustCreate(t, st, makeNode("n1", "1", "4Gi", 110, nil))
	s := startScheduler(t, st, Config{Logger: discardLogger(), InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	mustCreate(t, st, makePod("default", "huge", "2", ""))
	waitFor(t, "first attempt", func() (bool, error) { return s.Stats().Unschedulable >= 1, nil })
	time.Sleep(200 * time.Millisecond) // 200 backoff periods
	if n := s.Stats().Unschedulable; n != 1 {
		t.Errorf("pod was retried %d times without any cluster event", n-1)
	}
	if _, _, un := s.Queue().Stats(); un != 1 {
		t.Errorf("pod not waiting in the unschedulable queue")
	}
}

// TestFailedSchedulingEventsAggregate checks that repeated failures of one
// pod for the same reason update one Event's count instead of piling up.
func TestFailedSchedulingEventsAggregate(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	mustCreate(t, st, makeNode("n1", "1", "4Gi", 110, nil))
	startScheduler(t, st, Config{Logger: discardLogger(), InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	mustCreate(t, st, makePod("default", "huge", "2", ""))
	// Deleting an assigned pod is an event that retries the pod (its
	// resources might have been what was missing); the reason stays.
	for i := range 3 {
		waitFor(t, "failure recorded", func() (bool, error) {
			evs, _, err := store.ListOf[*v1.Event](ctx, st, "default", metav1.ListOptions{})
			for _, e := range evs {
				if e.Reason == "FailedScheduling" && e.Count >= int32(i+1) {
					return true, err
				}
			}
			return false, err
		})
		filler := makePod("default", fmt.Sprintf("filler-%d", i), "", "")
		filler.Spec.NodeName = "n1"
		mustCreate(t, st, filler)
		if _, err := st.Delete(ctx, podsResource, "default", filler.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
	}
	evs, _, err := store.ListOf[*v1.Event](ctx, st, "default", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Reason == "FailedScheduling" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d FailedScheduling events, want one aggregated event", n)
	}
}
