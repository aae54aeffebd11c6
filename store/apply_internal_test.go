package store

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// TestApplyBatchDeleteThenCreate applies, in one memdb transaction, the
// delete of a pod followed by the create of a new pod of the same name
// (a create is applied without looking up what it replaces): the new
// pod, its index rows and its UID must be all that is left of the name.
func TestApplyBatchDeleteThenCreate(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := s.reg.ForResource(schema.GroupResource{Resource: "pods"})
	mk := func(app, node string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}},
		}
	}
	old, err := Create(ctx, s, mk("a", "n1"))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.Get(ctx, k.GroupResource(), "default", "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	next := mk("b", "n2")
	next.UID = types.UID("new-uid")

	// Sequence the two transactions as commit does, then apply them as
	// one batch while nothing else writes.
	s.seqMu.Lock()
	r1, r2 := s.nextRev+1, s.nextRev+2
	s.nextRev = r2
	s.seqMu.Unlock()
	key := objKey("default", "p")
	s.apply([]*proposal{
		{rev: r1, ops: []op{{kind: k, key: key, obj: stored, prev: stored, del: true}}},
		{rev: r2, ops: []op{{kind: k, key: key, obj: next}}},
	})

	got, err := Get[*corev1.Pod](ctx, s, "default", "p")
	if err != nil {
		t.Fatal(err)
	}
	if got.UID != "new-uid" || got.Labels["app"] != "b" {
		t.Errorf("after the batch: uid %q labels %v, want the new pod", got.UID, got.Labels)
	}
	keys, _ := indexRows(t, s, k)
	if diff := cmp.Diff([]string{"l\x00app\x00b\x00default/p\x00", "n\x00n2\x00default/p\x00"}, keys); diff != "" {
		t.Errorf("index rows (-want +got):\n%s", diff)
	}
	s.uidMu.Lock()
	_, oldKnown := s.uids[old.UID]
	ref, newKnown := s.uids["new-uid"]
	s.uidMu.Unlock()
	if oldKnown || !newKnown || ref.key != key {
		t.Errorf("UID map: old known %v, new known %v (%+v)", oldKnown, newKnown, ref)
	}
	for _, sel := range []struct{ label, field string }{{"app=a", ""}, {"", "spec.nodeName=n1"}} {
		l, err := s.List(ctx, k.GroupResource(), "", metav1.ListOptions{LabelSelector: sel.label, FieldSelector: sel.field})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != 0 {
			t.Errorf("list %+v after the batch: %d items, want 0", sel, len(l.Items))
		}
	}
}
