package controller

import (
	"log/slog"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tugboatdev/tugboat/store/informer"
	store "github.com/tugboatdev/tugboat/store/storeapi"
)

// The controllers' caches are the shared list-watch cache of
// store/informer, with the two indexes every controller uses.

// IndexFunc returns the index values of an object, for [Informer.AddIndex].
type IndexFunc = informer.IndexFunc

// Handler receives an informer's changes. Any of the functions may be nil.
// Objects are shared with the cache: never modify them.
type Handler = informer.Handler

// Informer keeps an indexed local cache of one resource; see
// store/informer.
type Informer = informer.Informer

// Standard index names every informer of a [Factory] carries.
const (
	// IndexNamespace indexes objects by metadata.namespace.
	IndexNamespace = informer.IndexNamespace
	// IndexControllerUID indexes objects by the UID of their controller
	// owner reference.
	IndexControllerUID = informer.IndexControllerUID
)

// NewInformer returns an informer over resource gr in all namespaces with
// the [IndexNamespace] and [IndexControllerUID] indexes.
func NewInformer(s store.Interface, gr schema.GroupResource, log *slog.Logger) *Informer {
	inf := informer.New(s, gr, log)
	inf.AddIndex(IndexNamespace, informer.ByNamespace)
	inf.AddIndex(IndexControllerUID, informer.ByControllerUID)
	return inf
}

// Key returns the cache and queue key of namespace/name ("name" for
// cluster-scoped objects).
func Key(namespace, name string) string { return informer.Key(namespace, name) }

// KeyOf returns the key of obj.
func KeyOf(obj runtime.Object) string { return informer.KeyOf(obj) }

// SplitKey splits a key made by [Key] into namespace and name.
func SplitKey(key string) (namespace, name string) { return informer.SplitKey(key) }
