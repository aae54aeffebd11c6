package informer

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/store"
)

// fakeStore lists one pod per call (named after the call count) and
// serves watches that first deliver one event and then fail with 410.
type fakeStore struct {
	store.Interface
	lists atomic.Int32
}

func (f *fakeStore) List(_ context.Context, _ schema.GroupResource, _ string, _ metav1.ListOptions) (*store.List, error) {
	n := f.lists.Add(1)
	return &store.List{ResourceVersion: "1", Items: []runtime.Object{&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "list" + string(rune('0'+n)), ResourceVersion: "1"}}}}, nil
}

func (f *fakeStore) Watch(_ context.Context, _ schema.GroupResource, _ string, _ metav1.ListOptions) (watch.Interface, error) {
	// Buffered and filled before it is returned, so no send can race with
	// the informer stopping the watch.
	w := watch.NewFakeWithChanSize(2, false)
	w.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "added", ResourceVersion: "2"}})
	w.Error(&apierrors.NewResourceExpired("too old").ErrStatus)
	return w, nil
}

// TestListThenChangesAcrossRelist checks the deliveries: one full list
// first, then only changes; after a 410 the re-list's difference arrives
// as changes (list1 deleted, list2 added), not as a second list.
func TestListThenChangesAcrossRelist(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan Event)
	go Run(ctx, &fakeStore{}, schema.GroupResource{Resource: "pods"}, out, slog.New(slog.DiscardHandler))
	state := map[string]bool{}
	first := true
	deadline := time.After(10 * time.Second)
	for !(state["list2"] && !state["list1"]) {
		select {
		case ev := <-out:
			switch {
			case ev.List != nil && !first:
				t.Fatalf("a second full list after a re-list")
			case ev.List != nil:
				for _, o := range ev.List {
					state[o.(*corev1.Pod).Name] = true
				}
			case first:
				t.Fatalf("a change (%s) before the full list", ev.Type)
			case ev.Type == watch.Deleted:
				delete(state, ev.Object.(*corev1.Pod).Name)
			default:
				state[ev.Object.(*corev1.Pod).Name] = true
			}
			first = false
		case <-deadline:
			t.Fatalf("state so far %v", state)
		}
	}
}
