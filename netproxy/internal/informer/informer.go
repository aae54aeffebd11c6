package informer

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/store"
)

// Event is a change of one resource. Either List is set (a full list that
// replaces everything known of Resource) or Type and Object are.
type Event struct {
	Resource schema.GroupResource
	// List, when non-nil, is the complete current set of objects.
	List   []runtime.Object
	Type   watch.EventType
	Object runtime.Object
	// Received is when the event was taken from the store.
	Received time.Time
}

// Run lists and watches res in all namespaces and sends events to out until
// ctx is done. Errors are logged and retried with backoff.
func Run(ctx context.Context, s store.Interface, res schema.GroupResource, out chan<- Event, log *slog.Logger) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := runOnce(ctx, s, res, out)
		if ctx.Err() != nil {
			return
		}
		log.Warn("watch ended, relisting", "resource", res.String(), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func send(ctx context.Context, out chan<- Event, ev Event) bool {
	select {
	case out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

func runOnce(ctx context.Context, s store.Interface, res schema.GroupResource, out chan<- Event) error {
	var items []runtime.Object
	opts := metav1.ListOptions{Limit: 5000}
	var rv string
	for {
		l, err := s.List(ctx, res, "", opts)
		if err != nil {
			return fmt.Errorf("list %s: %w", res, err)
		}
		items = append(items, l.Items...)
		rv = l.ResourceVersion
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	if items == nil {
		items = []runtime.Object{}
	}
	if !send(ctx, out, Event{Resource: res, List: items, Received: time.Now()}) {
		return nil
	}
	w, err := s.Watch(ctx, res, "", metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
	if err != nil {
		return fmt.Errorf("watch %s: %w", res, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("watch %s closed", res)
			}
			switch ev.Type {
			case watch.Added, watch.Modified, watch.Deleted:
				if !send(ctx, out, Event{Resource: res, Type: ev.Type, Object: ev.Object, Received: time.Now()}) {
					return nil
				}
			case watch.Error:
				return fmt.Errorf("watch %s: %v", res, ev.Object)
			}
		}
	}
}
