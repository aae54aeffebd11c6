package storeapi

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// The typed API: generic functions over [Interface] that take and return the
// upstream Go types, for example
//
//	pod, err := storeapi.Get[*corev1.Pod](ctx, s, "default", "web-0")
//
// The resource is found from T through s.Registry().

// ResourceOf returns the registered kind of the Go type T.
func ResourceOf[T runtime.Object](s Interface) (*Kind, error) {
	var zero T
	k := s.Registry().ForObject(zero)
	if k == nil {
		return nil, fmt.Errorf("store: type %T is not a registered kind", zero)
	}
	return k, nil
}

func typed[T runtime.Object](obj runtime.Object, err error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	t, ok := obj.(T)
	if !ok {
		return zero, fmt.Errorf("store: got %T, want %T", obj, zero)
	}
	return t, nil
}

// Get returns the object of type T named namespace/name.
func Get[T runtime.Object](ctx context.Context, s Interface, namespace, name string) (T, error) {
	k, err := ResourceOf[T](s)
	if err != nil {
		var zero T
		return zero, err
	}
	return typed[T](s.Get(ctx, k.GroupResource(), namespace, name, metav1.GetOptions{}))
}

// ListOf returns the objects of type T in namespace ("" for all) matching opts,
// and the resourceVersion the list was read at.
func ListOf[T runtime.Object](ctx context.Context, s Interface, namespace string, opts metav1.ListOptions) ([]T, string, error) {
	k, err := ResourceOf[T](s)
	if err != nil {
		return nil, "", err
	}
	l, err := s.List(ctx, k.GroupResource(), namespace, opts)
	if err != nil {
		return nil, "", err
	}
	out := make([]T, 0, len(l.Items))
	for _, o := range l.Items {
		t, err := typed[T](o, nil)
		if err != nil {
			return nil, "", err
		}
		out = append(out, t)
	}
	return out, l.ResourceVersion, nil
}

// WatchOf watches objects of type T in namespace ("" for all) matching opts.
func WatchOf[T runtime.Object](ctx context.Context, s Interface, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	k, err := ResourceOf[T](s)
	if err != nil {
		return nil, err
	}
	return s.Watch(ctx, k.GroupResource(), namespace, opts)
}

// Create stores a new object of type T.
func Create[T runtime.Object](ctx context.Context, s Interface, obj T) (T, error) {
	return typed[T](s.Create(ctx, obj, metav1.CreateOptions{}))
}

// CreateOwned stores a new object of type T that the caller hands over
// (see [OwnedCreator]): when s implements OwnedCreator, obj itself is
// stored and returned, read-only; otherwise it is [Interface.Create].
// Either way the caller must not change obj or the result afterwards.
func CreateOwned[T runtime.Object](ctx context.Context, s Interface, obj T) (T, error) {
	if oc, ok := s.(OwnedCreator); ok {
		return typed[T](oc.CreateOwned(ctx, obj, metav1.CreateOptions{}))
	}
	return typed[T](s.Create(ctx, obj, metav1.CreateOptions{}))
}

// Update replaces the spec and metadata of an object of type T.
func Update[T runtime.Object](ctx context.Context, s Interface, obj T) (T, error) {
	return typed[T](s.Update(ctx, obj, metav1.UpdateOptions{}))
}

// UpdateStatus replaces the status of an object of type T.
func UpdateStatus[T runtime.Object](ctx context.Context, s Interface, obj T) (T, error) {
	return typed[T](s.UpdateStatus(ctx, obj, metav1.UpdateOptions{}))
}

// Patch patches the object of type T named namespace/name.
func Patch[T runtime.Object](ctx context.Context, s Interface, namespace, name string, pt types.PatchType, data []byte, subresource ...string) (T, error) {
	k, err := ResourceOf[T](s)
	if err != nil {
		var zero T
		return zero, err
	}
	return typed[T](s.Patch(ctx, k.GroupResource(), namespace, name, pt, data, metav1.PatchOptions{}, subresource...))
}

// Delete deletes the object of type T named namespace/name with the given options.
func Delete[T runtime.Object](ctx context.Context, s Interface, namespace, name string, opts metav1.DeleteOptions) error {
	k, err := ResourceOf[T](s)
	if err != nil {
		return err
	}
	_, err = s.Delete(ctx, k.GroupResource(), namespace, name, opts)
	return err
}
