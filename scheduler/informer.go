package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/store"
)

// handler receives the changes of one resource. old is nil on add; obj is
// the last known object on delete.
type handler struct {
	add    func(obj runtime.Object)
	update func(old, obj runtime.Object)
	delete func(obj runtime.Object)
}

// informer lists and then watches one resource, keeping the last version of
// every object so that a re-list after a broken watch turns into the right
// adds, updates and deletes. It calls its handler from one goroutine.
type informer struct {
	st     store.Interface
	res    schema.GroupResource
	h      handler
	log    *slog.Logger
	known  map[string]runtime.Object
	synced chan struct{}
}

func newInformer(st store.Interface, res schema.GroupResource, h handler, log *slog.Logger) *informer {
	return &informer{st: st, res: res, h: h, log: log, known: map[string]runtime.Object{}, synced: make(chan struct{})}
}

func objKey(obj runtime.Object) (string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", err
	}
	return m.GetNamespace() + "/" + m.GetName(), nil
}

// run lists and watches until ctx ends.
func (in *informer) run(ctx context.Context) error {
	first := true
	backoff := 100 * time.Millisecond
	for {
		rv, err := in.list(ctx)
		if err == nil {
			if first {
				close(in.synced)
				first = false
			}
			backoff = 100 * time.Millisecond
			err = in.watch(ctx, rv)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			in.log.Warn("scheduler informer restarts", "resource", in.res.String(), "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (in *informer) list(ctx context.Context) (string, error) {
	l, err := in.st.List(ctx, in.res, "", metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list %s: %w", in.res, err)
	}
	seen := make(map[string]bool, len(l.Items))
	for _, obj := range l.Items {
		k, err := objKey(obj)
		if err != nil {
			return "", err
		}
		seen[k] = true
		in.apply(k, obj, watch.Modified)
	}
	for k, old := range in.known {
		if !seen[k] {
			delete(in.known, k)
			in.h.delete(old)
		}
	}
	return l.ResourceVersion, nil
}

func (in *informer) apply(k string, obj runtime.Object, typ watch.EventType) {
	switch typ {
	case watch.Deleted:
		delete(in.known, k)
		in.h.delete(obj)
	default:
		old, ok := in.known[k]
		in.known[k] = obj
		if ok && sameVersion(old, obj) {
			return
		}
		if ok {
			in.h.update(old, obj)
		} else {
			in.h.add(obj)
		}
	}
}

var errWatchClosed = errors.New("watch closed")

func (in *informer) watch(ctx context.Context, rv string) error {
	w, err := in.st.Watch(ctx, in.res, "", metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
	if err != nil {
		return fmt.Errorf("watch %s: %w", in.res, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return errWatchClosed
			}
			switch ev.Type {
			case watch.Bookmark:
				continue
			case watch.Error:
				return apierrors.FromObject(ev.Object)
			}
			k, err := objKey(ev.Object)
			if err != nil {
				return err
			}
			in.apply(k, ev.Object, ev.Type)
		}
	}
}

func sameVersion(a, b runtime.Object) bool {
	ma, err1 := meta.Accessor(a)
	mb, err2 := meta.Accessor(b)
	return err1 == nil && err2 == nil && ma.GetResourceVersion() != "" && ma.GetResourceVersion() == mb.GetResourceVersion()
}
