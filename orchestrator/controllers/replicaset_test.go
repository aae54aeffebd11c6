package controllers

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sync/errgroup"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func replicaSet(name string, replicas int32) *appsv1.ReplicaSet {
	labels := map[string]string{"app": name}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
		},
	}
}

func (e *env) ownedPods(rs *appsv1.ReplicaSet) (active []*corev1.Pod) {
	for _, p := range e.pods(rs.Namespace, "") {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == rs.UID && p.DeletionTimestamp == nil {
			active = append(active, p)
		}
	}
	return active
}

func TestReplicaSetScalesAdoptsAndReleases(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withReplicaSet)
	// An orphan that matches is adopted instead of a new pod being made.
	orphan := mustCreate(e, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "orphan", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}})
	rs := mustCreate(e, replicaSet("web", 3))
	e.waitFor("3 ready replicas", func() (bool, string) {
		got, _ := store.Get[*appsv1.ReplicaSet](e.ctx, e.s, "default", "web")
		return got.Status.Replicas == 3 && got.Status.ReadyReplicas == 3 && got.Status.AvailableReplicas == 3 &&
			got.Status.ObservedGeneration == got.Generation, fmt.Sprintf("%+v", got.Status)
	})
	if ps := e.ownedPods(rs); len(ps) != 3 {
		t.Fatalf("%d owned pods, want 3", len(ps))
	}
	p, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "orphan")
	if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != rs.UID {
		t.Fatalf("orphan not adopted: %v", p.OwnerReferences)
	}
	// Changing a pod's labels releases it and a replacement is made.
	update(e, "default", orphan.Name, func(p *corev1.Pod) { p.Labels["app"] = "other" })
	e.waitFor("released and replaced", func() (bool, string) {
		p, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "orphan")
		return metav1.GetControllerOf(p) == nil && len(e.ownedPods(rs)) == 3, fmt.Sprint(p.OwnerReferences, len(e.ownedPods(rs)))
	})
	// A deleted pod is replaced.
	victim := e.ownedPods(rs)[0]
	if err := store.Delete[*corev1.Pod](e.ctx, e.s, "default", victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("replacement", func() (bool, string) {
		ps := e.ownedPods(rs)
		for _, p := range ps {
			if p.Name == victim.Name {
				return false, "victim still there"
			}
		}
		return len(ps) == 3, fmt.Sprint(len(ps))
	})
}

func TestReplicaSetScaleDownDeletesNotReadyFirst(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withReplicaSet)
	rs := mustCreate(e, replicaSet("web", 4))
	e.waitFor("4 ready", func() (bool, string) {
		got, _ := store.Get[*appsv1.ReplicaSet](e.ctx, e.s, "default", "web")
		return got.Status.ReadyReplicas == 4, fmt.Sprintf("%+v", got.Status)
	})
	ps := e.ownedPods(rs)
	notReady := ps[2]
	if err := e.agent.SetReady(e.ctx, "default", notReady.Name, false); err != nil {
		t.Fatal(err)
	}
	e.waitFor("3 ready", func() (bool, string) {
		got, _ := store.Get[*appsv1.ReplicaSet](e.ctx, e.s, "default", "web")
		return got.Status.ReadyReplicas == 3, fmt.Sprintf("%+v", got.Status)
	})
	update(e, "default", "web", func(r *appsv1.ReplicaSet) { r.Spec.Replicas = ptr(int32(3)) })
	e.waitFor("not-ready pod deleted", func() (bool, string) {
		left := e.ownedPods(rs)
		for _, p := range left {
			if p.Name == notReady.Name {
				return false, "still there"
			}
		}
		return len(left) == 3, fmt.Sprint(len(left))
	})
}

func TestSortPodsForDeletion(t *testing.T) {
	t0 := metav1.Unix(1000, 0)
	t1 := metav1.Unix(2000, 0)
	mk := func(name, node string, phase corev1.PodPhase, ready bool, readySince metav1.Time, created metav1.Time) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: created}, Spec: corev1.PodSpec{NodeName: node},
			Status: corev1.PodStatus{Phase: phase}}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: readySince}}
		return p
	}
	pods := []*corev1.Pod{
		mk("old-ready", "n", corev1.PodRunning, true, t0, t0),
		mk("new-ready", "n", corev1.PodRunning, true, t1, t1),
		mk("running-not-ready", "n", corev1.PodRunning, false, t0, t0),
		mk("pending", "n", corev1.PodPending, false, t0, t0),
		mk("unscheduled", "", corev1.PodPending, false, t0, t0),
	}
	sortPodsForDeletion(pods)
	var got []string
	for _, p := range pods {
		got = append(got, p.Name)
	}
	want := []string{"unscheduled", "pending", "running-not-ready", "new-ready", "old-ready"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

// A controller restarted from scratch (new caches, new expectations)
// converges on the same state without duplicating pods.
func TestReplicaSetResumesAfterRestart(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2})
	startRS := func() (func(), chan struct{}) {
		ctx, cancel := context.WithCancel(e.ctx)
		f := controller.NewFactory(e.s, quietLog())
		rs := NewReplicaSet(Config{Store: e.s, Informers: f, Clock: e.clk, Log: quietLog()})
		g, gctx := errgroup.WithContext(ctx)
		f.Start(gctx, g)
		g.Go(func() error { return rs.Run(gctx) })
		done := make(chan struct{})
		go func() { _ = g.Wait(); close(done) }()
		return cancel, done
	}
	stop, done := startRS()
	rs := mustCreate(e, replicaSet("web", 3))
	e.waitFor("3 pods", func() (bool, string) { n := len(e.ownedPods(rs)); return n == 3, fmt.Sprint(n) })
	stop()
	<-done
	update(e, "default", "web", func(r *appsv1.ReplicaSet) { r.Spec.Replicas = ptr(int32(6)) })
	victim := e.ownedPods(rs)[0]
	if err := store.Delete[*corev1.Pod](e.ctx, e.s, "default", victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	stop, done = startRS()
	defer func() { stop(); <-done }()
	e.waitFor("6 pods after restart", func() (bool, string) { n := len(e.ownedPods(rs)); return n == 6, fmt.Sprint(n) })
	if ok, desc := e.settle(func() (bool, string) { n := len(e.ownedPods(rs)); return n == 6, fmt.Sprint(n) }); !ok {
		t.Fatalf("duplicates after restart: %s", desc)
	}
}

// failingDeletes is a store whose deletes fail with err.
type failingDeletes struct {
	store.Interface
	err error
}

func (f failingDeletes) Delete(context.Context, schema.GroupResource, string, string, metav1.DeleteOptions) (runtime.Object, error) {
	return nil, f.err
}

func TestDeletePodByUID(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		name        string
		replaced    bool  // the pod handed to deletePodByUID has another UID
		missing     bool  // the pod is not in the store
		deleteErr   error // the store's deletes fail with it
		wantDeleted bool
		wantErr     error
		wantGone    bool
	}{
		{name: "deletes", wantDeleted: true, wantGone: true},
		{name: "replaced", replaced: true},
		{name: "already gone", missing: true, wantGone: true},
		{name: "store fails", deleteErr: boom, wantErr: boom},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := store.Open(ctx, store.Config{Logger: quietLog()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
			if !tt.missing {
				if p, err = store.Create(ctx, s, p); err != nil {
					t.Fatal(err)
				}
			} else {
				p.UID = "never-stored"
			}
			victim := p.DeepCopy()
			if tt.replaced {
				victim.UID += "-another-incarnation"
			}
			var si store.Interface = s
			if tt.deleteErr != nil {
				si = failingDeletes{Interface: s, err: tt.deleteErr}
			}
			for _, withExp := range []bool{false, true} {
				var exp *controller.Expectations
				if withExp {
					exp = controller.NewExpectations(clock.RealClock{})
					exp.Expect("default/owner", 0, []string{string(victim.UID)})
				}
				deleted, err := deletePodByUID(ctx, si, exp, "default/owner", victim)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if deleted != tt.wantDeleted {
					t.Errorf("deleted = %v, want %v", deleted, tt.wantDeleted)
				}
				// Only a delete that happened is left for the informer to
				// observe; every other outcome is observed at once.
				if withExp && exp.Satisfied("default/owner") == tt.wantDeleted {
					t.Errorf("expectations satisfied = %v after deleted = %v", !tt.wantDeleted, tt.wantDeleted)
				}
				tt.wantDeleted = false // a second call finds the pod gone
			}
			_, err = store.Get[*corev1.Pod](ctx, s, "default", "p")
			if gone := apierrors.IsNotFound(err); gone != tt.wantGone {
				t.Errorf("pod gone = %v (%v), want %v", gone, err, tt.wantGone)
			}
		})
	}
}
