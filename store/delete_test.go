package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/store"
)

func TestFinalizers(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	c := cm("default", "held")
	c.Finalizers = []string{"example.com/hold"}
	store.Create(ctx, s, c)
	out, err := s.Delete(ctx, cmGR, "default", "held", metav1.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out.(*corev1.ConfigMap).DeletionTimestamp == nil {
		t.Fatal("deletionTimestamp not set")
	}
	got, err := store.Get[*corev1.ConfigMap](ctx, s, "default", "held")
	if err != nil || got.DeletionTimestamp == nil {
		t.Fatalf("object with finalizer: %v %v", got, err)
	}
	got.Finalizers = append(got.Finalizers, "example.com/new")
	if _, err := store.Update(ctx, s, got); !apierrors.IsInvalid(err) {
		t.Errorf("adding a finalizer while deleting: %v, want Invalid", err)
	}
	got.Finalizers = nil
	if _, err := store.Update(ctx, s, got); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get[*corev1.ConfigMap](ctx, s, "default", "held"); !apierrors.IsNotFound(err) {
		t.Errorf("after last finalizer removed: %v", err)
	}
}

func TestDeletePreconditions(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	c, _ := store.Create(ctx, s, cm("default", "c"))
	wrong := types.UID("nope")
	if _, err := s.Delete(ctx, cmGR, "default", "c", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &wrong}}); !apierrors.IsConflict(err) {
		t.Errorf("uid precondition: %v", err)
	}
	stale := "1"
	if _, err := s.Delete(ctx, cmGR, "default", "c", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &stale}}); !apierrors.IsConflict(err) {
		t.Errorf("rv precondition: %v", err)
	}
	if _, err := s.Delete(ctx, cmGR, "default", "c", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &c.UID, ResourceVersion: &c.ResourceVersion}}); err != nil {
		t.Errorf("matching preconditions: %v", err)
	}
	if _, err := s.Delete(ctx, cmGR, "default", "c", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("second delete: %v", err)
	}
}

func TestGracefulPodDeletion(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	// An unscheduled pod goes at once.
	store.Create(ctx, s, pod("default", "pending", nil))
	s.Delete(ctx, podsGR, "default", "pending", metav1.DeleteOptions{})
	if _, err := store.Get[*corev1.Pod](ctx, s, "default", "pending"); !apierrors.IsNotFound(err) {
		t.Errorf("unscheduled pod: %v", err)
	}
	// A pod on a node waits for the node agent.
	p := pod("default", "running", nil)
	p.Spec.NodeName = "n1"
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(45))
	store.Create(ctx, s, p)
	out, err := s.Delete(ctx, podsGR, "default", "running", metav1.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dp := out.(*corev1.Pod)
	if dp.DeletionTimestamp == nil || dp.DeletionGracePeriodSeconds == nil || *dp.DeletionGracePeriodSeconds != 45 {
		t.Fatalf("graceful delete: ts=%v grace=%v", dp.DeletionTimestamp, dp.DeletionGracePeriodSeconds)
	}
	// A shorter grace period replaces the running one.
	out, _ = s.Delete(ctx, podsGR, "default", "running", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(5))})
	if g := *out.(*corev1.Pod).DeletionGracePeriodSeconds; g != 5 {
		t.Errorf("shortened grace = %d", g)
	}
	// The agent finishes with grace 0.
	if _, err := s.Delete(ctx, podsGR, "default", "running", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get[*corev1.Pod](ctx, s, "default", "running"); !apierrors.IsNotFound(err) {
		t.Errorf("after grace 0: %v", err)
	}
}

// chain creates Deployment → ReplicaSet → n Pods linked by ownerReferences,
// as the controllers do.
func chain(t *testing.T, s store.Interface, name string, n int) (*appsv1.Deployment, *appsv1.ReplicaSet) {
	t.Helper()
	ctx := context.Background()
	d, err := store.Create(ctx, s, deployment("default", name, int32(n)))
	if err != nil {
		t.Fatal(err)
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name + "-abc", OwnerReferences: []metav1.OwnerReference{
			*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(n)), Selector: d.Spec.Selector, Template: d.Spec.Template},
	}
	rs, err = store.Create(ctx, s, rs)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		p := pod("default", fmt.Sprintf("%s-abc-%d", name, i), map[string]string{"app": name})
		p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}
		if _, err := store.Create(ctx, s, p); err != nil {
			t.Fatal(err)
		}
	}
	return d, rs
}

func count(t *testing.T, s store.Interface, name string) (rs, pods int) {
	t.Helper()
	ctx := context.Background()
	r, _, _ := store.ListOf[*appsv1.ReplicaSet](ctx, s, "default", metav1.ListOptions{LabelSelector: ""})
	for _, x := range r {
		if x.Name == name+"-abc" {
			rs++
		}
	}
	p, _, _ := store.ListOf[*corev1.Pod](ctx, s, "default", metav1.ListOptions{LabelSelector: "app=" + name})
	return rs, len(p)
}

func TestCascadingDeletion(t *testing.T) {
	ctx := context.Background()
	for _, policy := range []metav1.DeletionPropagation{metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan} {
		t.Run(string(policy), func(t *testing.T) {
			s := openMem(t)
			d, _ := chain(t, s, "web", 5)
			out, err := s.Delete(ctx, deployGR, "default", "web", metav1.DeleteOptions{PropagationPolicy: &policy})
			if err != nil {
				t.Fatal(err)
			}
			if policy == metav1.DeletePropagationForeground {
				// The owner stays, marked, until its dependents are gone.
				if fz := out.(*appsv1.Deployment).Finalizers; len(fz) != 1 || fz[0] != metav1.FinalizerDeleteDependents {
					t.Errorf("foreground finalizers %v", fz)
				}
			}
			waitFor(t, "deployment gone", func() bool {
				_, err := store.Get[*appsv1.Deployment](ctx, s, "default", "web")
				return apierrors.IsNotFound(err)
			})
			if policy == metav1.DeletePropagationOrphan {
				waitFor(t, "orphans released", func() bool {
					rs, pods := count(t, s, "web")
					if rs != 1 || pods != 5 {
						return false
					}
					r, _ := store.Get[*appsv1.ReplicaSet](ctx, s, "default", "web-abc")
					return len(r.OwnerReferences) == 0
				})
				return
			}
			waitFor(t, "dependents collected", func() bool {
				rs, pods := count(t, s, "web")
				return rs == 0 && pods == 0
			})
			_ = d
		})
	}
}

func TestForegroundWaitsForBlockingDependents(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	_, rs := chain(t, s, "web", 2)
	// A pod on a node holds its ReplicaSet (blockOwnerDeletion) until the
	// agent finishes it.
	p := pod("default", "web-abc-bound", map[string]string{"app": "web"})
	p.Spec.NodeName = "n1"
	p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}
	store.Create(ctx, s, p)
	fg := metav1.DeletePropagationForeground
	s.Delete(ctx, rsGR, "default", "web-abc", metav1.DeleteOptions{PropagationPolicy: &fg})
	waitFor(t, "unbound pods gone", func() bool { _, n := count(t, s, "web"); return n == 1 })
	if _, err := store.Get[*appsv1.ReplicaSet](ctx, s, "default", "web-abc"); err != nil {
		t.Fatalf("replicaset went while a blocking pod remains: %v", err)
	}
	s.Delete(ctx, podsGR, "default", "web-abc-bound", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
	waitFor(t, "replicaset gone", func() bool {
		_, err := store.Get[*appsv1.ReplicaSet](ctx, s, "default", "web-abc")
		return apierrors.IsNotFound(err)
	})
}

func TestDanglingOwnerCollected(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	p := pod("default", "orphan", nil)
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "gone", UID: "no-such-uid"}}
	store.Create(ctx, s, p)
	waitFor(t, "pod with a missing owner collected", func() bool {
		_, err := store.Get[*corev1.Pod](ctx, s, "default", "orphan")
		return apierrors.IsNotFound(err)
	})
}

func TestDeleteCollection(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	for i := 0; i < 6; i++ {
		c := cm("default", fmt.Sprintf("c%d", i))
		c.Labels = map[string]string{"even": fmt.Sprint(i%2 == 0)}
		store.Create(ctx, s, c)
	}
	if err := s.DeleteCollection(ctx, cmGR, "default", metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "even=true"}); err != nil {
		t.Fatal(err)
	}
	l, _, _ := store.ListOf[*corev1.ConfigMap](ctx, s, "default", metav1.ListOptions{})
	if len(l) != 3 {
		t.Errorf("%d left, want 3", len(l))
	}
}

func TestDryRun(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	rev := s.Revision()
	if _, err := s.Create(ctx, cm("default", "dry"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get[*corev1.ConfigMap](ctx, s, "default", "dry"); !apierrors.IsNotFound(err) || s.Revision() != rev {
		t.Errorf("dry run stored something: %v rev %d→%d", err, rev, s.Revision())
	}
}

func TestOwnedFromIndex(t *testing.T) {
	s := openMem(t)
	_, rs := chain(t, s, "web", 4)
	chain(t, s, "api", 2)
	owned, err := s.Owned(context.Background(), podsGR, "default", rs.UID)
	if err != nil {
		t.Fatal(err)
	}
	if len(owned) != 4 {
		t.Fatalf("%d pods owned by %s, want 4", len(owned), rs.Name)
	}
}

// Events go after the event TTL, as with the API server's --event-ttl.
func TestEventTTL(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := &fakeNow{t: now}
	s, err := store.Open(ctx, store.Config{Logger: quietLogs, EventTTL: time.Hour, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "old.1"}, Reason: "Scheduled", LastTimestamp: metav1.NewTime(now)}
	store.Create(ctx, s, ev)
	clock.Set(now.Add(2 * time.Hour))
	fresh := ev.DeepCopy()
	fresh.Name, fresh.LastTimestamp = "fresh.1", metav1.NewTime(clock.Now())
	store.Create(ctx, s, fresh)
	s.RunCollection(ctx)
	if _, err := store.Get[*corev1.Event](ctx, s, "default", "old.1"); !apierrors.IsNotFound(err) {
		t.Errorf("expired event kept: %v", err)
	}
	if _, err := store.Get[*corev1.Event](ctx, s, "default", "fresh.1"); err != nil {
		t.Errorf("fresh event: %v", err)
	}
}

type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }

func (f *fakeNow) Set(t time.Time) { f.mu.Lock(); f.t = t; f.mu.Unlock() }
