package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Client is a [storeapi.Interface] that talks to an API server.
type Client struct {
	reg    *storeapi.Registry
	rc     *rest.RESTClient
	params runtime.ParameterCodec
	// retry is the pause between watch reconnects.
	retry time.Duration
}

var _ storeapi.Interface = (*Client)(nil)

// Options configure a [Client].
type Options struct {
	// Registry lists the kinds the server serves; nil means
	// storeapi.DefaultRegistry().
	Registry *storeapi.Registry
	// WatchRetry is the pause before re-opening a watch the server ended
	// (default 200ms).
	WatchRetry time.Duration
}

// New returns a client for the API server described by cfg (for example
// from clientcmd.BuildConfigFromFlags with the admin kubeconfig).
func New(cfg *rest.Config, opts Options) (*Client, error) {
	if opts.Registry == nil {
		opts.Registry = storeapi.DefaultRegistry()
	}
	if opts.WatchRetry <= 0 {
		opts.WatchRetry = 200 * time.Millisecond
	}
	sc := schemeFor(opts.Registry)
	c := rest.CopyConfig(cfg)
	c.APIPath = "/"
	c.GroupVersion = &schema.GroupVersion{Version: "v1"}
	c.NegotiatedSerializer = serializer.NewCodecFactory(sc).WithoutConversion()
	c.ContentType = runtime.ContentTypeJSON
	c.AcceptContentTypes = runtime.ContentTypeJSON
	if c.UserAgent == "" {
		c.UserAgent = "tugboat-remote"
	}
	if c.QPS == 0 {
		c.QPS, c.Burst = 200, 400
	}
	rc, err := rest.UnversionedRESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("remote: rest client: %w", err)
	}
	return &Client{reg: opts.Registry, rc: rc, params: runtime.NewParameterCodec(sc), retry: opts.WatchRetry}, nil
}

// schemeFor builds the scheme the client decodes with from the kinds of
// reg (and the meta/v1 options and watch events of their group versions),
// rather than from client-go's scheme of every API group: a node process
// then links and initialises only the API types it serves.
func schemeFor(reg *storeapi.Registry) *runtime.Scheme {
	sc := runtime.NewScheme()
	seen := map[schema.GroupVersion]bool{{Version: "v1"}: true}
	metav1.AddToGroupVersion(sc, schema.GroupVersion{Version: "v1"})
	for _, k := range reg.Kinds() {
		gv := k.GVK.GroupVersion()
		if !seen[gv] {
			seen[gv] = true
			metav1.AddToGroupVersion(sc, gv)
		}
		if k.New != nil {
			sc.AddKnownTypeWithName(k.GVK, k.New())
		}
		if k.NewList != nil {
			sc.AddKnownTypeWithName(gv.WithKind(k.GVK.Kind+"List"), k.NewList())
		}
	}
	return sc
}

// Registry returns the kinds the client serves.
func (c *Client) Registry() *storeapi.Registry { return c.reg }

func (c *Client) kind(res schema.GroupResource) (*storeapi.Kind, error) {
	k := c.reg.ForResource(res)
	if k == nil {
		return nil, apierrors.NewNotFound(res, "")
	}
	return k, nil
}

// resourcePath builds /api/v1/namespaces/ns/pods/name/sub.
func resourcePath(k *storeapi.Kind, namespace, name string, sub ...string) string {
	parts := []string{"/api", k.GVK.Version}
	if k.GVK.Group != "" {
		parts = []string{"/apis", k.GVK.Group, k.GVK.Version}
	}
	if k.Namespaced && namespace != "" {
		parts = append(parts, "namespaces", namespace)
	}
	parts = append(parts, k.Resource)
	if name != "" {
		parts = append(parts, name)
	}
	for _, s := range sub {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return path.Join(parts...)
}

var v1 = schema.GroupVersion{Version: "v1"}

// clean drops apiVersion/kind, as the embedded store returns objects.
func clean(obj runtime.Object) runtime.Object {
	if obj != nil {
		obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	}
	return obj
}

// Get returns one object.
func (c *Client) Get(ctx context.Context, res schema.GroupResource, namespace, name string, opts metav1.GetOptions) (runtime.Object, error) {
	k, err := c.kind(res)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, apierrors.NewBadRequest("name is required")
	}
	out := k.New()
	err = c.rc.Get().AbsPath(resourcePath(k, namespace, name)).VersionedParams(&opts, c.params).Do(ctx).Into(out)
	if err != nil {
		return nil, err
	}
	return clean(out), nil
}

// List returns the matching objects.
func (c *Client) List(ctx context.Context, res schema.GroupResource, namespace string, opts metav1.ListOptions) (*storeapi.List, error) {
	k, err := c.kind(res)
	if err != nil {
		return nil, err
	}
	list := k.NewList()
	if err := c.rc.Get().AbsPath(resourcePath(k, namespace, "")).VersionedParams(&opts, c.params).Do(ctx).Into(list); err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	la, err := meta.ListAccessor(list)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	for _, it := range items {
		clean(it)
	}
	return &storeapi.List{Items: items, ResourceVersion: la.GetResourceVersion(), Continue: la.GetContinue(), RemainingItemCount: la.GetRemainingItemCount()}, nil
}

func objectTarget(c *Client, obj runtime.Object) (*storeapi.Kind, metav1.Object, runtime.Object, error) {
	if obj == nil {
		return nil, nil, nil, apierrors.NewBadRequest("object is nil")
	}
	k := c.reg.ForObject(obj)
	if k == nil {
		return nil, nil, nil, apierrors.NewBadRequest(fmt.Sprintf("type %T is not a kind this client serves", obj))
	}
	cp := obj.DeepCopyObject()
	cp.GetObjectKind().SetGroupVersionKind(k.GVK)
	acc, err := meta.Accessor(cp)
	if err != nil {
		return nil, nil, nil, apierrors.NewBadRequest(err.Error())
	}
	return k, acc, cp, nil
}

// Create stores a new object.
func (c *Client) Create(ctx context.Context, obj runtime.Object, opts metav1.CreateOptions) (runtime.Object, error) {
	k, acc, body, err := objectTarget(c, obj)
	if err != nil {
		return nil, err
	}
	out := k.New()
	err = c.rc.Post().AbsPath(resourcePath(k, acc.GetNamespace(), "")).VersionedParams(&opts, c.params).Body(body).Do(ctx).Into(out)
	if err != nil {
		return nil, err
	}
	return clean(out), nil
}

func (c *Client) put(ctx context.Context, obj runtime.Object, opts metav1.UpdateOptions, sub string) (runtime.Object, error) {
	k, acc, body, err := objectTarget(c, obj)
	if err != nil {
		return nil, err
	}
	out := k.New()
	err = c.rc.Put().AbsPath(resourcePath(k, acc.GetNamespace(), acc.GetName(), sub)).VersionedParams(&opts, c.params).Body(body).Do(ctx).Into(out)
	if err != nil {
		return nil, err
	}
	return clean(out), nil
}

// Update replaces an object's spec and metadata.
func (c *Client) Update(ctx context.Context, obj runtime.Object, opts metav1.UpdateOptions) (runtime.Object, error) {
	return c.put(ctx, obj, opts, "")
}

// UpdateStatus replaces an object's status.
func (c *Client) UpdateStatus(ctx context.Context, obj runtime.Object, opts metav1.UpdateOptions) (runtime.Object, error) {
	return c.put(ctx, obj, opts, "status")
}

// Patch applies a patch.
func (c *Client) Patch(ctx context.Context, res schema.GroupResource, namespace, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresource ...string) (runtime.Object, error) {
	k, err := c.kind(res)
	if err != nil {
		return nil, err
	}
	out := k.New()
	err = c.rc.Patch(pt).AbsPath(resourcePath(k, namespace, name, subresource...)).VersionedParams(&opts, c.params).Body(data).Do(ctx).Into(out)
	if err != nil {
		return nil, err
	}
	return clean(out), nil
}

// Delete deletes an object and returns it as the server reports it.
func (c *Client) Delete(ctx context.Context, res schema.GroupResource, namespace, name string, opts metav1.DeleteOptions) (runtime.Object, error) {
	k, err := c.kind(res)
	if err != nil {
		return nil, err
	}
	out, err := c.rc.Delete().AbsPath(resourcePath(k, namespace, name)).Body(&opts).Do(ctx).Get()
	if err != nil {
		return nil, err
	}
	if _, ok := out.(*metav1.Status); ok {
		return nil, nil
	}
	return clean(out), nil
}

// DeleteCollection deletes every matching object.
func (c *Client) DeleteCollection(ctx context.Context, res schema.GroupResource, namespace string, opts metav1.DeleteOptions, listOpts metav1.ListOptions) error {
	k, err := c.kind(res)
	if err != nil {
		return err
	}
	return c.rc.Delete().AbsPath(resourcePath(k, namespace, "")).VersionedParams(&listOpts, c.params).Body(&opts).Do(ctx).Error()
}

// Watch streams changes. When the server ends the stream (its timeout, a
// restart), the watch is re-opened from the last resourceVersion seen;
// errors (410 Expired) are delivered as ERROR events and end the watch.
func (c *Client) Watch(ctx context.Context, res schema.GroupResource, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	k, err := c.kind(res)
	if err != nil {
		return nil, err
	}
	opts.Watch = true
	first, err := c.open(ctx, k, namespace, opts)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &reconnectingWatch{result: make(chan watch.Event, 100), cancel: cancel}
	go w.run(wctx, c, k, namespace, opts, first)
	return w, nil
}

func (c *Client) open(ctx context.Context, k *storeapi.Kind, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	return c.rc.Get().AbsPath(resourcePath(k, namespace, "")).VersionedParams(&opts, c.params).Timeout(0).Watch(ctx)
}

type reconnectingWatch struct {
	result chan watch.Event
	cancel context.CancelFunc
	once   sync.Once
}

// Stop ends the watch.
func (w *reconnectingWatch) Stop() { w.once.Do(w.cancel) }

// ResultChan returns the events.
func (w *reconnectingWatch) ResultChan() <-chan watch.Event { return w.result }

func (w *reconnectingWatch) run(ctx context.Context, c *Client, k *storeapi.Kind, ns string, opts metav1.ListOptions, cur watch.Interface) {
	defer close(w.result)
	rv := opts.ResourceVersion
	for {
		for ev := range cur.ResultChan() {
			if ev.Type == watch.Error {
				select {
				case w.result <- ev:
				case <-ctx.Done():
				}
				cur.Stop()
				return
			}
			if acc, err := meta.Accessor(ev.Object); err == nil && acc.GetResourceVersion() != "" {
				rv = acc.GetResourceVersion()
			}
			clean(ev.Object)
			select {
			case w.result <- ev:
			case <-ctx.Done():
				cur.Stop()
				return
			}
		}
		cur.Stop()
		// The server ended the stream: resume after the last event seen.
		// Initial events are not replayed.
		opts.ResourceVersion = rv
		opts.SendInitialEvents = nil
		if rv == "" || rv == "0" {
			opts.ResourceVersion = "0"
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(c.retry):
			}
			next, err := c.open(ctx, k, ns, opts)
			if err == nil {
				cur = next
				break
			}
			var se apierrors.APIStatus
			if errors.As(err, &se) && se.Status().Code != http.StatusTooManyRequests && se.Status().Code < 500 {
				st := se.Status()
				select {
				case w.result <- watch.Event{Type: watch.Error, Object: &st}:
				case <-ctx.Done():
				}
				return
			}
			if ctx.Err() != nil || strings.Contains(err.Error(), "context canceled") {
				return
			}
		}
	}
}
