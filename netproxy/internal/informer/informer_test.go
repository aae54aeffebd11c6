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
	return &store.List{ResourceVersion: "1", Items: []runtime.Object{&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "list" + string(rune('0'+n))}}}}, nil
}

func (f *fakeStore) Watch(_ context.Context, _ schema.GroupResource, _ string, _ metav1.ListOptions) (watch.Interface, error) {
	// Buffered and filled before it is returned, so no send can race with
	// the informer stopping the watch.
	w := watch.NewFakeWithChanSize(2, false)
	w.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "added"}})
	w.Error(&apierrors.NewResourceExpired("too old").ErrStatus)
	return w, nil
}

func TestRelistAfterWatchError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan Event)
	go Run(ctx, &fakeStore{}, schema.GroupResource{Resource: "pods"}, out, slog.New(slog.DiscardHandler))
	var got []string
	for len(got) < 4 {
		select {
		case ev := <-out:
			if ev.List != nil {
				got = append(got, "list:"+ev.List[0].(*corev1.Pod).Name)
			} else {
				got = append(got, string(ev.Type)+":"+ev.Object.(*corev1.Pod).Name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far %v", got)
		}
	}
	want := []string{"list:list1", "ADDED:added", "list:list2", "ADDED:added"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
}
