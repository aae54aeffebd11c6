package store_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tugboatdev/tugboat/store"
)

// TestGlobalDefaultPriorityClassFollowsWrites checks that a new pod gets
// the priority of the PriorityClass marked globalDefault as that mark is
// set, cleared, set again, deleted with its class, and recovered after a
// restart (the store counts the marked classes instead of scanning them
// on every pod create).
func TestGlobalDefaultPriorityClassFollowsWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDir(t, dir)
	pcGR := schema.GroupResource{Group: "scheduling.k8s.io", Resource: "priorityclasses"}
	n := 0
	priorityOfNewPod := func(s *store.Store) int32 {
		t.Helper()
		n++
		p, err := store.Create(ctx, s, pod("default", "p"+string(rune('a'+n)), nil))
		if err != nil {
			t.Fatal(err)
		}
		return *p.Spec.Priority
	}
	setDefault := func(s *store.Store, on bool) {
		t.Helper()
		pc, err := store.Get[*schedulingv1.PriorityClass](ctx, s, "", "gold")
		if err != nil {
			t.Fatal(err)
		}
		pc.GlobalDefault = on
		if _, err := store.Update(ctx, s, pc); err != nil {
			t.Fatal(err)
		}
	}
	if got := priorityOfNewPod(s); got != 0 {
		t.Errorf("no default class: priority %d, want 0", got)
	}
	if _, err := store.Create(ctx, s, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "gold"}, Value: 700, GlobalDefault: true}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name string
		do   func()
		want int32
	}{
		{"created as default", func() {}, 700},
		{"default cleared", func() { setDefault(s, false) }, 0},
		{"default set again", func() { setDefault(s, true) }, 700},
		{"unchanged update", func() { setDefault(s, true) }, 700},
		{"restart", func() {
			s.Close()
			s = openDir(t, dir)
		}, 700},
		{"class deleted", func() {
			if _, err := s.Delete(ctx, pcGR, "", "gold", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, 0},
	} {
		step.do()
		if got := priorityOfNewPod(s); got != step.want {
			t.Errorf("%s: new pod's priority %d, want %d", step.name, got, step.want)
		}
	}
}

// TestNamespaceStateSurvivesRestart checks that creates see a namespace's
// existence and termination (which the store keeps beside memdb for
// sequenced writes) the same after a restart.
func TestNamespaceStateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDir(t, dir)
	if _, err := store.Create(ctx, s, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, s, cm("team", "a")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openDir(t, dir)
	if _, err := store.Create(ctx, s, cm("team", "b")); err != nil {
		t.Fatalf("create in a namespace recovered from disk: %v", err)
	}
	if _, err := store.Create(ctx, s, cm("nowhere", "b")); !apierrors.IsNotFound(err) {
		t.Errorf("create in a missing namespace: %v, want NotFound", err)
	}
	// Hold the namespace in Terminating with a finalizer on its content.
	c, _ := store.Get[*corev1.ConfigMap](ctx, s, "team", "a")
	c.Finalizers = []string{"example.com/hold"}
	if _, err := store.Update(ctx, s, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, nsGR, "", "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, restart := range []bool{false, true} {
		if restart {
			s.Close()
			s = openDir(t, dir)
		}
		if _, err := store.Create(ctx, s, cm("team", "c")); !apierrors.IsForbidden(err) {
			t.Errorf("create in a terminating namespace (restarted %v): %v, want Forbidden", restart, err)
		}
	}
}
