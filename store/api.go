package store

import (
	"context"
	"io"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/store/storeapi"
)

// The client side of the store lives in package storeapi, which links none
// of the store's implementation (memdb, the durable log, metrics), so that
// a process that only talks to a store, such as a node agent, stays small.
// The names below keep this package's API as it was: the types are
// aliases, so store.Interface and storeapi.Interface are the same type, and
// the functions call their storeapi counterparts.

// Interface is the one state interface of tugboat; see [storeapi.Interface].
type Interface = storeapi.Interface

// OwnedCreator is implemented by stores that can keep the object a create
// is given; see [storeapi.OwnedCreator].
type OwnedCreator = storeapi.OwnedCreator

// List is the result of [Interface.List]; see [storeapi.List].
type List = storeapi.List

// Kind describes one resource the store serves; see [storeapi.Kind].
type Kind = storeapi.Kind

// Registry maps names and Go types to [Kind]s; see [storeapi.Registry].
type Registry = storeapi.Registry

// Config configures a [Store]; see [storeapi.Config].
type Config = storeapi.Config

// PortRange is an inclusive range of ports; see [storeapi.PortRange].
type PortRange = storeapi.PortRange

// DefaultTolerationSeconds is how long a pod tolerates a node that is not
// ready or unreachable; see [storeapi.DefaultTolerationSeconds].
const DefaultTolerationSeconds = storeapi.DefaultTolerationSeconds

// MaxDataSize is the largest total size of a ConfigMap's or Secret's data;
// see [storeapi.MaxDataSize].
const MaxDataSize = storeapi.MaxDataSize

// HighestUserPriority is the highest priority a user's PriorityClass may
// have; see [storeapi.HighestUserPriority].
const HighestUserPriority = storeapi.HighestUserPriority

// NewRegistry returns an empty registry; see [storeapi.NewRegistry].
func NewRegistry() *Registry { return storeapi.NewRegistry() }

// DefaultRegistry returns the registry of every kind tugboat serves; see
// [storeapi.DefaultRegistry].
func DefaultRegistry() *Registry { return storeapi.DefaultRegistry() }

// RegisterDefaults registers the built-in kinds; see
// [storeapi.RegisterDefaults].
func RegisterDefaults(r *Registry) { storeapi.RegisterDefaults(r) }

// DefaultNodePortRange returns upstream's default
// --service-node-port-range; see [storeapi.DefaultNodePortRange].
func DefaultNodePortRange() PortRange { return storeapi.DefaultNodePortRange() }

// QOSClass returns the quality of service class of a pod; see
// [storeapi.QOSClass].
func QOSClass(spec *corev1.PodSpec) corev1.PodQOSClass { return storeapi.QOSClass(spec) }

// Decode decodes one YAML or JSON manifest strictly; see [storeapi.Decode].
func Decode(reg *Registry, data []byte) (runtime.Object, error) { return storeapi.Decode(reg, data) }

// DecodeAll decodes a stream of manifests; see [storeapi.DecodeAll].
func DecodeAll(reg *Registry, r io.Reader) ([]runtime.Object, error) {
	return storeapi.DecodeAll(reg, r)
}

// ResourceOf returns the registered kind of the Go type T; see
// [storeapi.ResourceOf].
func ResourceOf[T runtime.Object](s Interface) (*Kind, error) { return storeapi.ResourceOf[T](s) }

// Get returns the object of type T named namespace/name; see [storeapi.Get].
func Get[T runtime.Object](ctx context.Context, s Interface, namespace, name string) (T, error) {
	return storeapi.Get[T](ctx, s, namespace, name)
}

// ListOf returns the objects of type T in namespace ("" for all) matching
// opts, and the resourceVersion the list was read at; see [storeapi.ListOf].
func ListOf[T runtime.Object](ctx context.Context, s Interface, namespace string, opts metav1.ListOptions) ([]T, string, error) {
	return storeapi.ListOf[T](ctx, s, namespace, opts)
}

// WatchOf watches objects of type T in namespace ("" for all) matching
// opts; see [storeapi.WatchOf].
func WatchOf[T runtime.Object](ctx context.Context, s Interface, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	return storeapi.WatchOf[T](ctx, s, namespace, opts)
}

// Create stores a new object of type T; see [storeapi.Create].
func Create[T runtime.Object](ctx context.Context, s Interface, obj T) (T, error) {
	return storeapi.Create(ctx, s, obj)
}

// CreateOwned stores a new object of type T that the caller hands over;
// see [storeapi.CreateOwned].
func CreateOwned[T runtime.Object](ctx context.Context, s Interface, obj T) (T, error) {
	return storeapi.CreateOwned(ctx, s, obj)
}

// Update replaces the spec and metadata of an object of type T; see
// [storeapi.Update].
func Update[T runtime.Object](ctx context.Context, s Interface, obj T) (T, error) {
	return storeapi.Update(ctx, s, obj)
}

// UpdateStatus replaces the status of an object of type T; see
// [storeapi.UpdateStatus].
func UpdateStatus[T runtime.Object](ctx context.Context, s Interface, obj T) (T, error) {
	return storeapi.UpdateStatus(ctx, s, obj)
}

// Patch patches the object of type T named namespace/name; see
// [storeapi.Patch].
func Patch[T runtime.Object](ctx context.Context, s Interface, namespace, name string, pt types.PatchType, data []byte, subresource ...string) (T, error) {
	return storeapi.Patch[T](ctx, s, namespace, name, pt, data, subresource...)
}

// Delete deletes the object of type T named namespace/name; see
// [storeapi.Delete].
func Delete[T runtime.Object](ctx context.Context, s Interface, namespace, name string, opts metav1.DeleteOptions) error {
	return storeapi.Delete[T](ctx, s, namespace, name, opts)
}

// sameObject reports whether a and b are equal; see [storeapi.SameObject].
func sameObject(a, b any) bool { return storeapi.SameObject(a, b) }

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }
