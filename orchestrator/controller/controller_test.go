package controller

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/tugboatdev/tugboat/store"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openStore(t *testing.T, now func() time.Time) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{Logger: quiet(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestQueueDeduplicatesAndSerialisesKeys(t *testing.T) {
	q := NewQueue(QueueOptions{})
	defer q.ShutDown()
	q.Add("a")
	q.Add("b")
	q.Add("a")
	if q.Len() != 2 {
		t.Fatalf("Len = %d, want 2", q.Len())
	}
	k, _ := q.Get()
	if k != "a" {
		t.Fatalf("Get = %q, want a", k)
	}
	// Added while processing: not handed out again until Done.
	q.Add("a")
	k2, _ := q.Get()
	if k2 != "b" {
		t.Fatalf("Get = %q, want b", k2)
	}
	if q.Len() != 0 {
		t.Fatalf("a queued while being processed")
	}
	q.Done("a")
	if q.Len() != 1 {
		t.Fatalf("a not requeued after Done")
	}
	q.Done("b")
	k3, _ := q.Get()
	if k3 != "a" {
		t.Fatalf("Get = %q, want a", k3)
	}
}

func TestQueueAddAfterOnFakeClock(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Unix(1000, 0))
	q := NewQueue(QueueOptions{Clock: clk})
	defer q.ShutDown()
	q.AddAfter("late", 10*time.Second)
	q.AddAfter("early", 5*time.Second)
	waitUntil(t, "timer armed", func() bool { return clk.HasWaiters() })
	if q.Len() != 0 {
		t.Fatal("delayed keys queued before their time")
	}
	clk.Step(6 * time.Second)
	waitUntil(t, "early queued", func() bool { return q.Len() == 1 })
	if k, _ := q.Get(); k != "early" {
		t.Fatalf("Get = %q, want early", k)
	}
	waitUntil(t, "timer re-armed", func() bool { return clk.HasWaiters() })
	clk.Step(5 * time.Second)
	waitUntil(t, "late queued", func() bool { return q.Len() == 1 })
}

func TestQueueBackoff(t *testing.T) {
	q := NewQueue(QueueOptions{BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond})
	defer q.ShutDown()
	var got []time.Duration
	for range 6 {
		got = append(got, q.When("k"))
	}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("back-off (-want +got):\n%s", diff)
	}
	if q.NumRequeues("k") != 6 {
		t.Errorf("NumRequeues = %d", q.NumRequeues("k"))
	}
	q.Forget("k")
	if q.When("k") != time.Millisecond {
		t.Errorf("Forget did not reset the back-off")
	}
}

// TestNewInformerIndexes checks that the controllers' informers carry the
// namespace and controller-UID indexes (the cache itself is tested in
// store/informer).
func TestNewInformerIndexes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openStore(t, nil)
	own, err := store.Create(ctx, s, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "owner"}})
	if err != nil {
		t.Fatal(err)
	}
	isController := true
	ref := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: own.Name, UID: own.UID, Controller: &isController}
	for _, c := range []*corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a", OwnerReferences: []metav1.OwnerReference{ref}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "a"}},
	} {
		if _, err := store.Create(ctx, s, c); err != nil {
			t.Fatal(err)
		}
	}
	inf := NewInformer(s, schema.GroupResource{Resource: "configmaps"}, quiet())
	go inf.Run(ctx)
	<-inf.Synced()
	if got := inf.ByIndex(IndexNamespace, "kube-system"); len(got) != 1 || KeyOf(got[0]) != "kube-system/a" {
		t.Errorf("ByIndex(namespace=kube-system) = %v", got)
	}
	if got := inf.ByIndex(IndexControllerUID, string(own.UID)); len(got) != 1 || KeyOf(got[0]) != "default/a" {
		t.Errorf("ByIndex(controller-uid) = %v", got)
	}
	if ns, name := SplitKey(Key("default", "a")); ns != "default" || name != "a" {
		t.Errorf("SplitKey(Key) = %s, %s", ns, name)
	}
}

func TestControllerRetriesAndRequeues(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	calls := map[string]int{}
	r := ReconcilerFunc(func(ctx context.Context, key string) (Result, error) {
		mu.Lock()
		defer mu.Unlock()
		calls[key]++
		if key == "flaky" && calls[key] < 3 {
			return Result{}, context.DeadlineExceeded
		}
		return Result{}, nil
	})
	c := New("test", r, 2, nil, quiet())
	c.Queue.baseDelay = time.Millisecond
	go c.Run(ctx)
	c.Enqueue("flaky")
	c.Enqueue("ok")
	waitUntil(t, "flaky retried to success", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls["flaky"] == 3 && calls["ok"] == 1
	})
	if n := c.Queue.NumRequeues("flaky"); n != 0 {
		t.Errorf("failures not forgotten after success: %d", n)
	}
}

func TestExpectations(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Unix(0, 0))
	e := NewExpectations(clk)
	if !e.Satisfied("rs") {
		t.Fatal("unknown key not satisfied")
	}
	e.Expect("rs", 2, []string{"u1"})
	e.CreationObserved("rs")
	if e.Satisfied("rs") {
		t.Fatal("satisfied with one creation and one deletion pending")
	}
	e.CreationObserved("rs")
	e.DeletionObserved("rs", "u1")
	e.DeletionObserved("rs", "u1")
	if !e.Satisfied("rs") {
		t.Fatal("not satisfied after all observed")
	}
	e.Expect("rs", 5, nil)
	clk.Step(ExpectationsTTL + time.Second)
	if !e.Satisfied("rs") {
		t.Fatal("expired expectations still block")
	}
}

func TestRecorderAggregatesRepeats(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openStore(t, nil)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "u1"}}
	r := NewRecorder(s, "test-controller", nil, quiet())
	go r.Run(ctx)
	r.Eventf(pod, corev1.EventTypeWarning, "BackOff", "restarting %s", "c")
	var evs []*corev1.Event
	waitUntil(t, "first event", func() bool {
		evs, _, _ = store.ListOf[*corev1.Event](ctx, s, "default", metav1.ListOptions{FieldSelector: "involvedObject.name=p"})
		return len(evs) == 1
	})
	r.Eventf(pod, corev1.EventTypeWarning, "BackOff", "restarting %s", "c")
	waitUntil(t, "count 2", func() bool {
		evs, _, _ = store.ListOf[*corev1.Event](ctx, s, "default", metav1.ListOptions{})
		return len(evs) == 1 && evs[0].Count == 2
	})
	ev := evs[0]
	if ev.InvolvedObject.Kind != "Pod" || ev.InvolvedObject.APIVersion != "v1" || ev.Reason != "BackOff" ||
		ev.Message != "restarting c" || ev.Source.Component != "test-controller" || ev.Type != corev1.EventTypeWarning {
		t.Errorf("event = %+v", ev)
	}
}

func TestLeaderElectionTakeoverAfterExpiry(t *testing.T) {
	ctx := context.Background()
	clk := testingclock.NewFakeClock(time.Unix(10000, 0))
	s := openStore(t, clk.Now)
	a := &LeaderElector{Store: s, Identity: "a", Clock: clk, Log: quiet()}
	b := &LeaderElector{Store: s, Identity: "b", Clock: clk, Log: quiet()}
	steps := []struct {
		who     *LeaderElector
		advance time.Duration
		want    bool
	}{
		{a, 0, true},
		{b, 0, false},
		{a, 10 * time.Second, true}, // renew
		{b, 10 * time.Second, false},
		{b, 6 * time.Second, true}, // a silent for 16 s > 15 s
		{a, 0, false},
	}
	for i, st := range steps {
		clk.Step(st.advance)
		got, err := st.who.TryAcquireOrRenew(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != st.want {
			t.Fatalf("step %d (%s): leading = %v, want %v", i, st.who.Identity, got, st.want)
		}
	}
	l, err := store.Get[*coordinationv1.Lease](ctx, s, "kube-system", "tugboat-controller-manager")
	if err != nil {
		t.Fatal(err)
	}
	if *l.Spec.HolderIdentity != "b" || *l.Spec.LeaseTransitions != 1 {
		t.Errorf("lease holder %s transitions %d, want b 1", *l.Spec.HolderIdentity, *l.Spec.LeaseTransitions)
	}
}

func TestLeaderElectionRunReleasesOnStop(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Unix(10000, 0))
	s := openStore(t, clk.Now)
	a := &LeaderElector{Store: s, Identity: "a", Clock: clk, Log: quiet()}
	b := &LeaderElector{Store: s, Identity: "b", Clock: clk, Log: quiet()}
	ctx, cancel := context.WithCancel(context.Background())
	leading := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- a.Run(ctx, func(ctx context.Context) error { close(leading); <-ctx.Done(); return nil })
	}()
	<-leading
	if ok, _ := b.TryAcquireOrRenew(context.Background()); ok {
		t.Fatal("b leads while a does")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryAcquireOrRenew(context.Background()); !ok || err != nil {
		t.Fatalf("b did not take the released lease at once: %v %v", ok, err)
	}
}

func FuzzKeyRoundTrip(f *testing.F) {
	f.Add("default", "web")
	f.Add("", "node-1")
	f.Fuzz(func(t *testing.T, ns, name string) {
		if strings.Contains(ns, "/") {
			return // namespaces never contain a slash
		}
		gotNS, gotName := SplitKey(Key(ns, name))
		if gotNS != ns || gotName != name {
			if ns == "" && strings.Contains(name, "/") {
				return // a cluster-scoped name with a slash is not a valid name
			}
			t.Fatalf("Key(%q, %q) split into %q, %q", ns, name, gotNS, gotName)
		}
	})
}
