package store

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// indexRows returns the keys of the index rows of kind k, and the rows.
func indexRows(t *testing.T, s *Store, k *Kind) ([]string, []*indexRow) {
	t.Helper()
	it, err := s.db.Txn(false).Get(k.IndexTable(), "id")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var rows []*indexRow
	for raw := it.Next(); raw != nil; raw = it.Next() {
		keys = append(keys, string(raw.(*indexRow).key))
		rows = append(rows, raw.(*indexRow))
	}
	return keys, rows
}

// TestIndexRowsFollowWrites checks the secondary index rows of a pod
// through label, owner and node changes, a status update (which must not
// rewrite any row) and the delete, and that lists served from them agree.
func TestIndexRowsFollowWrites(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := s.reg.ForResource(schema.GroupResource{Resource: "pods"})
	// The owner exists, or the garbage collector would take the pod.
	ownerCM, err := Create(ctx, s, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "o"}})
	if err != nil {
		t.Fatal(err)
	}
	owner := ownerCM.UID
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", Labels: map[string]string{"app": "a", "tier": "web"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "o", UID: owner}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}},
	}
	if p, err = Create(ctx, s, p); err != nil {
		t.Fatal(err)
	}
	list := func(label, fieldSel string) int {
		t.Helper()
		l, err := s.List(ctx, k.GroupResource(), "", metav1.ListOptions{LabelSelector: label, FieldSelector: fieldSel})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	want := func(step string, keys ...string) {
		t.Helper()
		got, _ := indexRows(t, s, k)
		if diff := cmp.Diff(keys, got); diff != "" {
			t.Errorf("%s: index rows (-want +got):\n%s", step, diff)
		}
	}
	want("created", "l\x00app\x00a\x00default/p\x00", "l\x00tier\x00web\x00default/p\x00", "o\x00"+string(owner)+"\x00default/p\x00")
	if list("app=a", "") != 1 || list("app=b", "") != 0 {
		t.Error("label index: app=a should list the pod, app=b nothing")
	}

	p.Labels = map[string]string{"app": "b", "tier": "web"}
	p.OwnerReferences = nil
	if p, err = Update(ctx, s, p); err != nil {
		t.Fatal(err)
	}
	want("relabelled, owner removed", "l\x00app\x00b\x00default/p\x00", "l\x00tier\x00web\x00default/p\x00")
	if list("app=a", "") != 0 || list("app=b", "") != 1 || list("tier=web", "") != 1 {
		t.Error("label index after relabelling")
	}
	if owned, err := s.Owned(ctx, k.GroupResource(), "", owner); err != nil || len(owned) != 0 {
		t.Errorf("owner index after the reference went: %d objects, %v", len(owned), err)
	}

	if err := s.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p"}, Target: corev1.ObjectReference{Name: "n1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want("bound", "l\x00app\x00b\x00default/p\x00", "l\x00tier\x00web\x00default/p\x00", "n\x00n1\x00default/p\x00")
	if list("", "spec.nodeName=n1") != 1 || list("", "spec.nodeName=n2") != 0 {
		t.Error("node index after binding")
	}

	_, before := indexRows(t, s, k)
	p, _ = Get[*corev1.Pod](ctx, s, "default", "p")
	p.Status.Phase = corev1.PodRunning
	if _, err := UpdateStatus(ctx, s, p); err != nil {
		t.Fatal(err)
	}
	_, after := indexRows(t, s, k)
	if len(before) != len(after) {
		t.Fatalf("status update changed the number of index rows: %d -> %d", len(before), len(after))
	}
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("status update rewrote index row %q", before[i].key)
		}
	}

	zero := int64(0)
	if _, err := s.Delete(ctx, k.GroupResource(), "default", "p", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	want("deleted")
	if list("tier=web", "") != 0 || list("", "spec.nodeName=n1") != 0 {
		t.Error("lists after the delete")
	}
}

// TestWatchSkipsEventsUpToItsStart checks that a watch started at a
// revision does not deliver an event of that revision that reaches the
// event window after the watch started (the apply loop publishes a
// revision to readers before it adds the revision's events).
func TestWatchSkipsEventsUpToItsStart(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first, err := Create(ctx, s, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "first"}})
	if err != nil {
		t.Fatal(err)
	}
	k := s.reg.ForResource(schema.GroupResource{Resource: "configmaps"})
	w, err := s.Watch(ctx, k.GroupResource(), "default", metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// As if the event of the watch's start revision arrived late.
	rev := s.Revision()
	s.evs.append([]event{{rev: rev, typ: "ADDED", kind: k, obj: first}}, rev)
	if _, err := Create(ctx, s, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "second"}}); err != nil {
		t.Fatal(err)
	}
	e := <-w.ResultChan()
	if got := e.Object.(*corev1.ConfigMap).Name; got != "second" {
		t.Errorf("first event delivered: %s %s, want ADDED second", e.Type, got)
	}
}
