package queue

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func testPod(name string, prio int32) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name)}, Spec: v1.PodSpec{Priority: &prio}}
}

func pop(t *testing.T, q *Queue) *QueuedPodInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := q.Pop(ctx)
	if err != nil {
		t.Fatalf("Pop: %v", err)
	}
	return p
}

func TestPriorityThenAge(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	q := New(Config{Now: c.now})
	defer q.Close()
	for _, p := range []struct {
		name string
		prio int32
	}{{"old-low", 0}, {"old-high", 100}, {"new-high", 100}, {"mid", 50}} {
		q.Add(testPod(p.name, p.prio))
		c.t = c.t.Add(time.Second)
	}
	var got []string
	for range 4 {
		got = append(got, pop(t, q).Pod.Name)
	}
	if d := cmp.Diff([]string{"old-high", "new-high", "mid", "old-low"}, got); d != "" {
		t.Error(d)
	}
}

func TestEventMovesOnlyInterestedPods(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	interested := func(plugins map[string]struct{}, ev framework.ClusterEvent) bool {
		_, fit := plugins["Fit"]
		return fit && ev.Resource == framework.NodeResource
	}
	q := New(Config{Now: c.now, Interested: interested})
	defer q.Close()
	q.Add(testPod("cpu", 0))
	q.Add(testPod("affinity", 0))
	a := pop(t, q)
	cycleA := q.SchedulingCycle()
	b := pop(t, q)
	cycleB := q.SchedulingCycle()
	a.UnschedulablePlugins = map[string]struct{}{"Fit": {}}
	b.UnschedulablePlugins = map[string]struct{}{"Affinity": {}}
	q.AddUnschedulable(a, cycleA, false)
	q.AddUnschedulable(b, cycleB, false)
	if act, bo, un := q.Stats(); act != 0 || bo != 0 || un != 2 {
		t.Fatalf("stats = %d %d %d, want 0 0 2", act, bo, un)
	}
	c.t = c.t.Add(time.Minute) // backoff over
	q.MoveOnEvent(framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add})
	if act, _, un := q.Stats(); act != 1 || un != 1 {
		t.Fatalf("after event: active %d unschedulable %d", act, un)
	}
	if got := pop(t, q).Pod.Name; got != a.Pod.Name {
		t.Errorf("moved %s, want %s", got, a.Pod.Name)
	}
}

func TestEventDuringCycleGoesToBackoff(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	q := New(Config{Now: c.now})
	defer q.Close()
	q.Add(testPod("p", 0))
	p := pop(t, q)
	cycle := q.SchedulingCycle()
	// A node appears while the pod is being scheduled.
	q.MoveOnEvent(framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add})
	q.AddUnschedulable(p, cycle, false)
	if _, bo, un := q.Stats(); bo != 1 || un != 0 {
		t.Errorf("backoff %d unschedulable %d; the pod must not wait for another event", bo, un)
	}
}

func TestBackoffDoublesAndExpiresByTimer(t *testing.T) {
	q := New(Config{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond})
	defer q.Close()
	p := &QueuedPodInfo{PodInfo: framework.NewPodInfo(testPod("p", 0))}
	for attempts, want := range map[int]time.Duration{1: 20 * time.Millisecond, 2: 40 * time.Millisecond, 3: 80 * time.Millisecond, 6: 80 * time.Millisecond} {
		p.Attempts = attempts
		if got := q.backoffDuration(p); got != want {
			t.Errorf("attempt %d: backoff %v, want %v", attempts, got, want)
		}
	}
	q.Add(testPod("p", 0))
	got := pop(t, q)
	q.AddUnschedulable(got, q.SchedulingCycle(), true) // error: straight to backoff
	start := time.Now()
	again := pop(t, q) // woken by the backoff timer, nothing polls
	if again.Pod.Name != "p" || again.Attempts != 2 {
		t.Errorf("popped %s attempt %d", again.Pod.Name, again.Attempts)
	}
	if time.Since(start) < 15*time.Millisecond {
		t.Errorf("popped before its backoff expired")
	}
}

func TestUpdateOfUnschedulablePodRetries(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	q := New(Config{Now: c.now})
	defer q.Close()
	q.Add(testPod("p", 0))
	p := pop(t, q)
	q.AddUnschedulable(p, q.SchedulingCycle(), false)
	same := testPod("p", 0)
	same.ResourceVersion = "7"
	q.Update(same)
	if _, _, un := q.Stats(); un != 1 {
		t.Fatalf("status-only update moved the pod")
	}
	changed := testPod("p", 0)
	changed.Labels = map[string]string{"x": "y"}
	c.t = c.t.Add(time.Minute)
	q.Update(changed)
	if act, _, _ := q.Stats(); act != 1 {
		t.Errorf("label change did not retry the pod")
	}
	q.Delete(changed)
	if act, bo, un := q.Stats(); act+bo+un != 0 {
		t.Errorf("delete left the pod queued")
	}
}

func TestMaxUnschedulableDuration(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	q := New(Config{Now: c.now})
	defer q.Close()
	q.Add(testPod("p", 0))
	p := pop(t, q)
	q.AddUnschedulable(p, q.SchedulingCycle(), false)
	c.t = c.t.Add(DefaultMaxUnschedulableDuration + time.Second)
	q.Flush()
	if act, _, un := q.Stats(); act != 1 || un != 0 {
		t.Errorf("pod not retried after the unschedulable time limit: active %d unschedulable %d", act, un)
	}
}

func TestPopHonoursContext(t *testing.T) {
	q := New(Config{})
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Pop(ctx); err == nil {
		t.Error("Pop on a cancelled context returned a pod")
	}
}

func TestIrrelevantEventDuringCycleDoesNotRetry(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	interested := func(plugins map[string]struct{}, ev framework.ClusterEvent) bool {
		return ev.Resource == framework.NodeResource
	}
	q := New(Config{Now: c.now, Interested: interested})
	defer q.Close()
	q.Add(testPod("p", 0))
	p := pop(t, q)
	cycle := q.SchedulingCycle()
	p.UnschedulablePlugins = map[string]struct{}{"Fit": {}}
	q.MoveOnEvent(framework.ClusterEvent{Resource: framework.NamespaceResource, ActionType: framework.Add})
	q.AddUnschedulable(p, cycle, false)
	if _, bo, un := q.Stats(); bo != 0 || un != 1 {
		t.Errorf("backoff %d unschedulable %d: an irrelevant event must not cause a retry", bo, un)
	}
}

// TestQueueingHintPerObject checks that MoveOnObjectEvent asks the hint per
// pod with the event's objects and moves only the pods it says Queue for.
func TestQueueingHintPerObject(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	type call struct{ Pod, Old, New string }
	var calls []call
	hint := func(p *QueuedPodInfo, ev framework.ClusterEvent, oldObj, newObj any) bool {
		cl := call{Pod: p.Pod.Name}
		if n, ok := oldObj.(*v1.Node); ok {
			cl.Old = n.Name
		}
		if n, ok := newObj.(*v1.Node); ok {
			cl.New = n.Name
		}
		calls = append(calls, cl)
		// Each pod waits for the node named after it.
		return cl.New == "node-for-"+p.Pod.Name
	}
	q := New(Config{Now: c.now, QueueingHint: hint, InitialBackoff: time.Second})
	defer q.Close()
	for _, name := range []string{"a", "b"} {
		q.Add(testPod(name, 0))
		p := pop(t, q)
		q.AddUnschedulable(p, q.SchedulingCycle(), false)
	}
	c.t = c.t.Add(time.Minute) // backoff over
	ev := framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add}
	q.MoveOnObjectEvent(ev, nil, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "unrelated"}})
	if active, backoff, un := q.Stats(); active != 0 || backoff != 0 || un != 2 {
		t.Fatalf("after an unrelated node: active %d backoff %d unschedulable %d, want 0 0 2", active, backoff, un)
	}
	q.MoveOnObjectEvent(ev, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "old"}}, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-for-b"}})
	if active, _, un := q.Stats(); active != 1 || un != 1 {
		t.Fatalf("after b's node: active %d unschedulable %d, want 1 1", active, un)
	}
	if got := pop(t, q).Pod.Name; got != "b" {
		t.Errorf("popped %s, want b", got)
	}
	// Two events, each asked for both waiting pods.
	if len(calls) != 4 {
		t.Fatalf("hint called %d times, want 4: %+v", len(calls), calls)
	}
	want := call{Pod: "b", Old: "old", New: "node-for-b"}
	found := false
	for _, c := range calls {
		found = found || c == want
	}
	if !found {
		t.Errorf("hint never called with %+v: %+v", want, calls)
	}
}

// TestInFlightEventsJudgedByHints checks that events arriving while a pod
// is being scheduled are judged with their objects when it fails: an
// irrelevant one leaves it unschedulable, a relevant one sends it to
// backoff, and when too many events arrived to keep them all the queue
// falls back to the kind of event (and retries).
func TestInFlightEventsJudgedByHints(t *testing.T) {
	ev := framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add}
	node := func(name string) *v1.Node { return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	hint := func(p *QueuedPodInfo, _ framework.ClusterEvent, _, newObj any) bool {
		n, ok := newObj.(*v1.Node)
		return !ok || n.Name == "good"
	}
	tests := []struct {
		name        string
		events      []string
		wantBackoff bool
	}{
		{"no event", nil, false},
		{"irrelevant event", []string{"bad"}, false},
		{"relevant event", []string{"bad", "good"}, true},
		{"too many events to judge one by one", func() []string {
			out := make([]string, recentEvents+1)
			for i := range out {
				out[i] = "bad"
			}
			return out
		}(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: time.Unix(1000, 0)}
			q := New(Config{Now: c.now, QueueingHint: hint})
			defer q.Close()
			q.Add(testPod("p", 0))
			p := pop(t, q)
			cycle := q.SchedulingCycle()
			for _, n := range tt.events {
				q.MoveOnObjectEvent(ev, nil, node(n))
			}
			q.AddUnschedulable(p, cycle, false)
			_, backoff, un := q.Stats()
			if got := backoff == 1; got != tt.wantBackoff || backoff+un != 1 {
				t.Errorf("backoff %d unschedulable %d, want backoff %v", backoff, un, tt.wantBackoff)
			}
		})
	}
}

// TestPopWaitsThenWakes checks the paths of Pop's lazily registered
// context wake-up: a waiting Pop is woken by Add, a waiting Pop ends when
// its context does, and a Pop that finds a pod returns it without waiting
// even when its context has already ended.
func TestPopWaitsThenWakes(t *testing.T) {
	q := New(Config{})
	defer q.Close()
	got := make(chan string, 1)
	go func() {
		p, err := q.Pop(context.Background())
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- p.Pod.Name
	}()
	q.Add(testPod("late", 0))
	if diff := cmp.Diff("late", <-got); diff != "" {
		t.Errorf("woken Pop (-want +got):\n%s", diff)
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := q.Pop(ctx); errc <- err }()
	cancel()
	if err := <-errc; err == nil {
		t.Error("Pop on an empty queue returned no error after its context ended")
	}

	q.Add(testPod("ready", 0))
	p, err := q.Pop(ctx) // ended context, but a pod is there
	if err != nil {
		t.Fatalf("Pop with a pod ready: %v", err)
	}
	if diff := cmp.Diff("ready", p.Pod.Name); diff != "" {
		t.Errorf("Pop with a pod ready (-want +got):\n%s", diff)
	}
}
