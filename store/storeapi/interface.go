package storeapi

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// Interface is the one state interface of tugboat. Every component (scheduler,
// controllers, node agent, proxy, DNS) reads and writes cluster state through
// it. The embedded [github.com/tugboatdev/tugboat/store.Store] implements it, and so does the API server's HTTP
// client, so a component never knows where the state lives.
//
// Resources are named by their [schema.GroupResource] (for example
// {Resource: "pods"} or {Group: "apps", Resource: "deployments"}); the
// [Registry] returned by Registry maps them to Go types and kinds.
//
// Objects returned by Get, List and the write calls belong to the caller.
// Objects delivered in watch events are shared between watchers and must be
// treated as read-only (DeepCopy before changing them), as with client-go
// informer caches.
//
// Errors are apimachinery [k8s.io/apimachinery/pkg/api/errors.StatusError]
// values: test them with apierrors.IsNotFound, IsAlreadyExists, IsConflict,
// IsInvalid, IsResourceExpired/IsGone, IsForbidden, IsTooManyRequests.
type Interface interface {
	// Registry describes the kinds this state serves.
	Registry() *Registry
	// Get returns one object.
	Get(ctx context.Context, res schema.GroupResource, namespace, name string, opts metav1.GetOptions) (runtime.Object, error)
	// List returns the objects of a resource in a namespace ("" for all
	// namespaces or for cluster-scoped kinds) that match the label and field
	// selectors in opts. Limit and Continue page through large lists.
	List(ctx context.Context, res schema.GroupResource, namespace string, opts metav1.ListOptions) (*List, error)
	// Watch streams changes after opts.ResourceVersion. An empty or "0"
	// resourceVersion first replays the current objects as ADDED events.
	Watch(ctx context.Context, res schema.GroupResource, namespace string, opts metav1.ListOptions) (watch.Interface, error)
	// Create stores a new object. Its kind is taken from its Go type.
	Create(ctx context.Context, obj runtime.Object, opts metav1.CreateOptions) (runtime.Object, error)
	// Update replaces an object's spec and metadata; its status is kept.
	Update(ctx context.Context, obj runtime.Object, opts metav1.UpdateOptions) (runtime.Object, error)
	// UpdateStatus replaces an object's status; its spec and metadata are kept.
	UpdateStatus(ctx context.Context, obj runtime.Object, opts metav1.UpdateOptions) (runtime.Object, error)
	// Patch applies a JSON patch, JSON merge patch or strategic merge patch.
	// With subresource "status" only the status changes.
	Patch(ctx context.Context, res schema.GroupResource, namespace, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresource ...string) (runtime.Object, error)
	// Delete deletes an object, honouring finalizers, graceful deletion and
	// the propagation policy in opts. It returns the object as it was deleted
	// or, when deletion is pending (finalizers, grace period), as it now is.
	Delete(ctx context.Context, res schema.GroupResource, namespace, name string, opts metav1.DeleteOptions) (runtime.Object, error)
	// DeleteCollection deletes every object that matches listOpts.
	DeleteCollection(ctx context.Context, res schema.GroupResource, namespace string, opts metav1.DeleteOptions, listOpts metav1.ListOptions) error
}

// OwnedCreator is implemented by stores that can store the object a
// create is given instead of a copy of it, as the embedded store does.
// [Interface.Create] copies twice: the caller's object (which it must not
// change) into the object it stores, and the stored object (which is
// shared with lists and watchers) into the one it returns. A caller that
// builds a fresh object for each create and needs no private result, such
// as a controller creating pods from a template, saves both copies with
// [CreateOwned].
type OwnedCreator interface {
	// CreateOwned is Create with obj handed over to the store: obj must
	// belong to the caller alone (no part of it shared with other objects,
	// such as an informer's), the store fills in and keeps it, and after
	// the call the caller must not change it. On success the returned
	// object is the stored one: shared and read-only, like an object in a
	// watch event (DeepCopy it before changing it).
	CreateOwned(ctx context.Context, obj runtime.Object, opts metav1.CreateOptions) (runtime.Object, error)
}

// List is the result of [Interface.List].
type List struct {
	// Items are the matching objects, ordered by namespace then name.
	Items []runtime.Object
	// ResourceVersion is the revision the list was read at.
	ResourceVersion string
	// Continue is set when more items remain; pass it back in ListOptions.
	Continue string
	// RemainingItemCount counts the items after this page, when known.
	RemainingItemCount *int64
}
