package informer

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/store"
	"github.com/tugboatdev/tugboat/store/informer"
)

// Event is a change of one resource. Either List is set (the complete set
// of objects when the resource was first listed) or Type and Object are.
type Event struct {
	Resource schema.GroupResource
	// List, when non-nil, is the complete current set of objects.
	List   []runtime.Object
	Type   watch.EventType
	Object runtime.Object
	// Received is when the change reached the proxy.
	Received time.Time
}

// Run lists and watches res in all namespaces and sends events to out until
// ctx is done: first one List event, then each change. Errors are retried
// by the shared cache with backoff.
func Run(ctx context.Context, s store.Interface, res schema.GroupResource, out chan<- Event, log *slog.Logger) {
	inf := informer.New(s, res, log)
	// listed turns true when the List event has been sent. Changes before
	// it are in the list (the cache is updated before handlers run), and
	// the lock keeps later ones behind it.
	var mu sync.Mutex
	listed := false
	send := func(typ watch.EventType, obj runtime.Object) {
		mu.Lock()
		defer mu.Unlock()
		if !listed {
			return
		}
		select {
		case out <- Event{Resource: res, Type: typ, Object: obj, Received: time.Now()}:
		case <-ctx.Done():
		}
	}
	inf.AddHandler(informer.Handler{
		OnAdd:    func(obj runtime.Object) { send(watch.Added, obj) },
		OnUpdate: func(_, obj runtime.Object) { send(watch.Modified, obj) },
		OnDelete: func(obj runtime.Object) { send(watch.Deleted, obj) },
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		inf.Run(ctx)
	}()
	select {
	case <-ctx.Done():
	case <-inf.Synced():
		mu.Lock()
		items := inf.List("", nil)
		if items == nil {
			items = []runtime.Object{}
		}
		select {
		case out <- Event{Resource: res, List: items, Received: time.Now()}:
			listed = true
		case <-ctx.Done():
		}
		mu.Unlock()
	}
	<-done
}
