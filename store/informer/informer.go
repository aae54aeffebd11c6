// Package informer keeps a local, indexed cache of one resource of a
// [store.Interface], filled by listing and then watching from the list's
// resourceVersion, and calls handlers on every change. It is the one
// list-watch cache the scheduler, the controllers and the service proxy
// share: after a broken watch or a 410 Expired it lists again and
// delivers the difference, so handlers always converge on the current
// state.
package informer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	store "github.com/tugboatdev/tugboat/store/storeapi"
)

// pageSize is how many objects one list request asks for; a large
// resource is listed in pages from one consistent snapshot.
const pageSize = 5000

// IndexFunc returns the index values of an object, for [Informer.AddIndex].
type IndexFunc func(obj runtime.Object) []string

// Names of the standard indexes; [New] adds none, so an informer pays
// only for the indexes its user asks for with [Informer.AddIndex].
const (
	// IndexNamespace indexes objects by metadata.namespace ([ByNamespace]).
	IndexNamespace = "namespace"
	// IndexControllerUID indexes objects by the UID of their controller
	// owner reference ([ByControllerUID]).
	IndexControllerUID = "controller-uid"
)

// ByNamespace is the [IndexNamespace] index function.
func ByNamespace(o runtime.Object) []string {
	acc, err := meta.Accessor(o)
	if err != nil {
		return nil
	}
	return []string{acc.GetNamespace()}
}

// ByControllerUID is the [IndexControllerUID] index function.
func ByControllerUID(o runtime.Object) []string {
	acc, err := meta.Accessor(o)
	if err != nil {
		return nil
	}
	if ref := metav1.GetControllerOfNoCopy(acc); ref != nil {
		return []string{string(ref.UID)}
	}
	return nil
}

// Handler receives an informer's changes. Any of the functions may be nil.
// Objects are shared with the cache: never modify them.
type Handler struct {
	OnAdd    func(obj runtime.Object)
	OnUpdate func(old, obj runtime.Object)
	OnDelete func(obj runtime.Object)
}

// Informer keeps an indexed local cache of one resource, filled by listing
// through [store.Interface] and then watching from the list's
// resourceVersion. On 410 Expired (or a closed watch) it lists again and
// delivers the difference as events, so handlers see every change at least
// as a final state.
type Informer struct {
	s   store.Interface
	gr  schema.GroupResource
	log *slog.Logger

	mu       sync.RWMutex
	items    map[string]runtime.Object
	indexers map[string]IndexFunc
	indices  map[string]map[string]map[string]struct{}
	handlers []Handler
	rv       string
	synced   chan struct{}
	once     sync.Once
}

// New returns an informer over resource gr in all namespaces. A nil log
// means slog.Default().
func New(s store.Interface, gr schema.GroupResource, log *slog.Logger) *Informer {
	if log == nil {
		log = slog.Default()
	}
	inf := &Informer{
		s: s, gr: gr, log: log.With("informer", gr.String()),
		items: map[string]runtime.Object{}, indexers: map[string]IndexFunc{},
		indices: map[string]map[string]map[string]struct{}{}, synced: make(chan struct{}),
	}
	return inf
}

// Resource returns the resource the informer watches.
func (i *Informer) Resource() schema.GroupResource { return i.gr }

// AddIndex adds a named index. Add indexes before Run.
func (i *Informer) AddIndex(name string, fn IndexFunc) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.indexers[name] = fn
	i.indices[name] = map[string]map[string]struct{}{}
	for k, o := range i.items {
		i.indexLocked(name, fn, k, o)
	}
}

// AddHandler registers h. Handlers added before Run see every object as an
// add; add them before Run.
func (i *Informer) AddHandler(h Handler) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.handlers = append(i.handlers, h)
}

// HasSynced reports whether the first list has been loaded.
func (i *Informer) HasSynced() bool {
	select {
	case <-i.synced:
		return true
	default:
		return false
	}
}

// Synced is closed once the first list has been loaded.
func (i *Informer) Synced() <-chan struct{} { return i.synced }

// ResourceVersion returns the last resourceVersion the cache has seen.
func (i *Informer) ResourceVersion() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.rv
}

// Get returns the cached object namespace/name.
func (i *Informer) Get(namespace, name string) (runtime.Object, bool) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	o, ok := i.items[Key(namespace, name)]
	return o, ok
}

// List returns every cached object in namespace ("" for all) whose labels
// match sel (nil for all), sorted by key.
func (i *Informer) List(namespace string, sel labels.Selector) []runtime.Object {
	i.mu.RLock()
	var out []runtime.Object
	byNS, indexed := i.indices[IndexNamespace]
	switch {
	case namespace == "":
		out = make([]runtime.Object, 0, len(i.items))
		for _, o := range i.items {
			out = append(out, o)
		}
	case indexed:
		for k := range byNS[namespace] {
			out = append(out, i.items[k])
		}
	default:
		for k, o := range i.items {
			if ns, _ := SplitKey(k); ns == namespace {
				out = append(out, o)
			}
		}
	}
	i.mu.RUnlock()
	if sel != nil && !sel.Empty() {
		n := 0
		for _, o := range out {
			acc, _ := meta.Accessor(o)
			if sel.Matches(labels.Set(acc.GetLabels())) {
				out[n] = o
				n++
			}
		}
		out = out[:n]
	}
	sortByKey(out)
	return out
}

// ByIndex returns the cached objects whose index name has value, sorted by key.
func (i *Informer) ByIndex(name, value string) []runtime.Object {
	i.mu.RLock()
	set := i.indices[name][value]
	out := make([]runtime.Object, 0, len(set))
	for k := range set {
		out = append(out, i.items[k])
	}
	i.mu.RUnlock()
	sortByKey(out)
	return out
}

func sortByKey(objs []runtime.Object) {
	sort.Slice(objs, func(a, b int) bool { return KeyOf(objs[a]) < KeyOf(objs[b]) })
}

// Run lists and watches until ctx ends. It returns nil when ctx is cancelled.
func (i *Informer) Run(ctx context.Context) error {
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		if err := i.listAndWatch(ctx); err != nil && ctx.Err() == nil {
			i.log.Debug("list/watch ended, listing again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
	}
	return nil
}

var errWatchClosed = errors.New("watch closed")

// list reads the whole resource, in pages of one snapshot.
func (i *Informer) list(ctx context.Context) ([]runtime.Object, string, error) {
	opts := metav1.ListOptions{Limit: pageSize}
	var items []runtime.Object
	for {
		l, err := i.s.List(ctx, i.gr, "", opts)
		if err != nil {
			return nil, "", fmt.Errorf("list %s: %w", i.gr, err)
		}
		items = append(items, l.Items...)
		if l.Continue == "" {
			return items, l.ResourceVersion, nil
		}
		opts.Continue = l.Continue
	}
}

func (i *Informer) listAndWatch(ctx context.Context) error {
	items, rv, err := i.list(ctx)
	if err != nil {
		return err
	}
	i.replace(items, rv)
	i.once.Do(func() { close(i.synced) })
	for {
		rv := i.ResourceVersion()
		w, err := i.s.Watch(ctx, i.gr, "", metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				return fmt.Errorf("watch %s from %s: %w", i.gr, rv, err)
			}
			return fmt.Errorf("watch %s: %w", i.gr, err)
		}
		err = i.consume(ctx, w)
		w.Stop()
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// consume applies watch events until the watch ends. It returns nil when the
// watch simply closed (so the caller re-watches from the last
// resourceVersion) and an error when a re-list is needed.
func (i *Informer) consume(ctx context.Context, w watch.Interface) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			switch ev.Type {
			case watch.Error:
				if st, ok := ev.Object.(*metav1.Status); ok {
					return fmt.Errorf("watch %s: %w", i.gr, apierrors.FromObject(st))
				}
				return fmt.Errorf("watch %s: %w", i.gr, errWatchClosed)
			case watch.Bookmark:
				if acc, err := meta.Accessor(ev.Object); err == nil {
					i.mu.Lock()
					i.rv = acc.GetResourceVersion()
					i.mu.Unlock()
				}
			case watch.Added, watch.Modified:
				i.upsert(ev.Object)
			case watch.Deleted:
				i.remove(ev.Object)
			}
		}
	}
}

func (i *Informer) indexLocked(name string, fn IndexFunc, key string, obj runtime.Object) {
	idx := i.indices[name]
	for _, v := range fn(obj) {
		set := idx[v]
		if set == nil {
			set = map[string]struct{}{}
			idx[v] = set
		}
		set[key] = struct{}{}
	}
}

func (i *Informer) unindexLocked(key string, obj runtime.Object) {
	for name, fn := range i.indexers {
		idx := i.indices[name]
		for _, v := range fn(obj) {
			if set := idx[v]; set != nil {
				delete(set, key)
				if len(set) == 0 {
					delete(idx, v)
				}
			}
		}
	}
}

func (i *Informer) putLocked(key string, obj runtime.Object) runtime.Object {
	old := i.items[key]
	if old != nil {
		i.unindexLocked(key, old)
	}
	i.items[key] = obj
	for name, fn := range i.indexers {
		i.indexLocked(name, fn, key, obj)
	}
	return old
}

func (i *Informer) upsert(obj runtime.Object) {
	key := KeyOf(obj)
	acc, _ := meta.Accessor(obj)
	i.mu.Lock()
	old := i.putLocked(key, obj)
	i.rv = acc.GetResourceVersion()
	hs := i.handlers
	i.mu.Unlock()
	for _, h := range hs {
		if old == nil {
			if h.OnAdd != nil {
				h.OnAdd(obj)
			}
		} else if h.OnUpdate != nil {
			h.OnUpdate(old, obj)
		}
	}
}

func (i *Informer) remove(obj runtime.Object) {
	key := KeyOf(obj)
	acc, _ := meta.Accessor(obj)
	i.mu.Lock()
	old, ok := i.items[key]
	if ok {
		i.unindexLocked(key, old)
		delete(i.items, key)
	}
	i.rv = acc.GetResourceVersion()
	hs := i.handlers
	i.mu.Unlock()
	for _, h := range hs {
		if h.OnDelete != nil {
			h.OnDelete(obj)
		}
	}
}

// replace loads a full list and delivers the difference to the cache as
// add, update and delete events.
func (i *Informer) replace(items []runtime.Object, rv string) {
	fresh := make(map[string]runtime.Object, len(items))
	for _, o := range items {
		fresh[KeyOf(o)] = o
	}
	type change struct{ old, obj runtime.Object }
	var changes []change
	i.mu.Lock()
	for k, old := range i.items {
		if _, ok := fresh[k]; !ok {
			i.unindexLocked(k, old)
			delete(i.items, k)
			changes = append(changes, change{old: old})
		}
	}
	for k, o := range fresh {
		old := i.items[k]
		if old != nil {
			oa, _ := meta.Accessor(old)
			na, _ := meta.Accessor(o)
			if oa.GetResourceVersion() == na.GetResourceVersion() {
				continue
			}
		}
		i.putLocked(k, o)
		changes = append(changes, change{old: old, obj: o})
	}
	i.rv = rv
	hs := i.handlers
	i.mu.Unlock()
	for _, c := range changes {
		for _, h := range hs {
			switch {
			case c.obj == nil:
				if h.OnDelete != nil {
					h.OnDelete(c.old)
				}
			case c.old == nil:
				if h.OnAdd != nil {
					h.OnAdd(c.obj)
				}
			default:
				if h.OnUpdate != nil {
					h.OnUpdate(c.old, c.obj)
				}
			}
		}
	}
}

// Key returns the cache and queue key of namespace/name ("name" for
// cluster-scoped objects).
func Key(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// KeyOf returns the key of obj.
func KeyOf(obj runtime.Object) string {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return Key(acc.GetNamespace(), acc.GetName())
}

// SplitKey splits a key made by [Key] into namespace and name.
func SplitKey(key string) (namespace, name string) {
	for j := 0; j < len(key); j++ {
		if key[j] == '/' {
			return key[:j], key[j+1:]
		}
	}
	return "", key
}
