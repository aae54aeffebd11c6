package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	store "github.com/tugboatdev/tugboat/store/storeapi"
)

// Factory shares one [Informer] per resource between controllers.
type Factory struct {
	s   store.Interface
	log *slog.Logger

	mu        sync.Mutex
	informers map[schema.GroupResource]*Informer
	started   map[schema.GroupResource]bool
}

// NewFactory returns a factory of informers over s.
func NewFactory(s store.Interface, log *slog.Logger) *Factory {
	if log == nil {
		log = slog.Default()
	}
	return &Factory{s: s, log: log, informers: map[schema.GroupResource]*Informer{}, started: map[schema.GroupResource]bool{}}
}

// Store returns the state interface the informers read.
func (f *Factory) Store() store.Interface { return f.s }

// For returns the shared informer of resource gr, creating it if needed.
func (f *Factory) For(gr schema.GroupResource) *Informer {
	f.mu.Lock()
	defer f.mu.Unlock()
	if inf, ok := f.informers[gr]; ok {
		return inf
	}
	inf := NewInformer(f.s, gr, f.log)
	f.informers[gr] = inf
	return inf
}

// InformerFor returns the shared informer of the Go type T.
func InformerFor[T runtime.Object](f *Factory) *Informer {
	k, err := store.ResourceOf[T](f.s)
	if err != nil {
		panic(fmt.Sprintf("controller: %v", err))
	}
	return f.For(k.GroupResource())
}

// Start runs every informer not yet started in g until ctx ends.
func (f *Factory) Start(ctx context.Context, g *errgroup.Group) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for gr, inf := range f.informers {
		if f.started[gr] {
			continue
		}
		f.started[gr] = true
		g.Go(func() error { return inf.Run(ctx) })
	}
}

// WaitForSync blocks until every informer has loaded its first list or ctx ends.
func (f *Factory) WaitForSync(ctx context.Context) error {
	f.mu.Lock()
	infs := make([]*Informer, 0, len(f.informers))
	for _, inf := range f.informers {
		infs = append(infs, inf)
	}
	f.mu.Unlock()
	for _, inf := range infs {
		select {
		case <-inf.Synced():
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s cache: %w", inf.Resource(), ctx.Err())
		}
	}
	return nil
}

// Lister is a typed view of an [Informer]'s cache.
type Lister[T runtime.Object] struct{ Inf *Informer }

// ListerFor returns the typed lister of the shared informer of T.
func ListerFor[T runtime.Object](f *Factory) Lister[T] { return Lister[T]{Inf: InformerFor[T](f)} }

// Get returns the cached object namespace/name.
func (l Lister[T]) Get(namespace, name string) (T, bool) {
	o, ok := l.Inf.Get(namespace, name)
	if !ok {
		var zero T
		return zero, false
	}
	t, ok := o.(T)
	return t, ok
}

// List returns the cached objects in namespace ("" for all) matching sel (nil for all).
func (l Lister[T]) List(namespace string, sel labels.Selector) []T {
	return typedAll[T](l.Inf.List(namespace, sel))
}

// ByIndex returns the cached objects with the given index value.
func (l Lister[T]) ByIndex(index, value string) []T {
	return typedAll[T](l.Inf.ByIndex(index, value))
}

func typedAll[T runtime.Object](objs []runtime.Object) []T {
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}
