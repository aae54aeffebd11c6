package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/store"
)

func binding(p *corev1.Pod, node string) *corev1.Binding {
	return &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}
}

// TestBind binds a pod in one write (spec.nodeName, the binding's
// annotations and PodScheduled) and checks the upstream refusals.
func TestBind(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	p, err := store.Create(ctx, s, pod("default", "web", map[string]string{"app": "web"}))
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(ctx, podsGR, "default", metav1.ListOptions{ResourceVersion: p.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// Refused before anything is written.
	bad := binding(p, "")
	if err := s.Bind(ctx, bad, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "target.name: Required value") {
		t.Errorf("empty target: %v", err)
	}
	bad = binding(p, "n1")
	bad.Target.Kind = "Pod"
	if err := s.Bind(ctx, bad, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "target.kind") {
		t.Errorf("target kind Pod: %v", err)
	}
	bad = binding(p, "n1")
	bad.UID = "other"
	if err := s.Bind(ctx, bad, metav1.CreateOptions{}); !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "precondition failed: UID in precondition") {
		t.Errorf("wrong UID: %v", err)
	}
	if err := s.Bind(ctx, binding(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nope"}}, "n1"), metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("missing pod: %v", err)
	}
	if err := s.Bind(ctx, binding(p, "n1"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("dry run: %v", err)
	}

	b := binding(p, "n1")
	b.UID = p.UID
	b.Annotations = map[string]string{"scheduler.example/why": "fits"}
	if err := s.Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := store.Get[*corev1.Pod](ctx, s, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.NodeName != "n1" || got.Annotations["scheduler.example/why"] != "fits" || got.Labels["app"] != "web" {
		t.Errorf("bound pod: node %q annotations %v labels %v", got.Spec.NodeName, got.Annotations, got.Labels)
	}
	var scheduled *corev1.PodCondition
	for i := range got.Status.Conditions {
		if got.Status.Conditions[i].Type == corev1.PodScheduled {
			scheduled = &got.Status.Conditions[i]
		}
	}
	if scheduled == nil || scheduled.Status != corev1.ConditionTrue {
		t.Errorf("PodScheduled condition: %+v", got.Status.Conditions)
	}
	if err := s.Bind(ctx, binding(p, "n2"), metav1.CreateOptions{}); !apierrors.IsConflict(err) || !strings.Contains(err.Error(), `is already assigned to node "n1"`) {
		t.Errorf("second bind: %v", err)
	}
	// The pods-by-node index sees the binding.
	l, _, err := store.ListOf[*corev1.Pod](ctx, s, "", metav1.ListOptions{FieldSelector: "spec.nodeName=n1"})
	if err != nil || len(l) != 1 {
		t.Errorf("pods on n1: %d %v", len(l), err)
	}
	// Exactly one event: the dry run and the refusals wrote nothing.
	select {
	case e := <-w.ResultChan():
		if e.Type != watch.Modified || e.Object.(*corev1.Pod).Spec.NodeName != "n1" {
			t.Errorf("event %s %v", e.Type, e.Object)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for the binding")
	}
	select {
	case e := <-w.ResultChan():
		t.Errorf("unexpected second event %s", e.Type)
	case <-time.After(100 * time.Millisecond):
	}

	// A pod being deleted cannot be bound.
	q, err := store.Create(ctx, s, pod("default", "going", nil))
	if err != nil {
		t.Fatal(err)
	}
	q.Finalizers = []string{"example.com/hold"}
	if q, err = store.Update(ctx, s, q); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete[*corev1.Pod](ctx, s, "default", "going", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Bind(ctx, binding(q, "n1"), metav1.CreateOptions{}); !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "is being deleted") {
		t.Errorf("bind a deleting pod: %v", err)
	}
}
