package dns

import (
	"context"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/netproxy/internal/informer"
	"github.com/tugboatdev/tugboat/store"
)

// Sync keeps cat up to date with the Services, EndpointSlices and Pods in s
// until ctx is done. synced, if not nil, is called once all three were
// listed.
func Sync(ctx context.Context, s store.Interface, cat *Catalog, log *slog.Logger, synced func()) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	grs := []schema.GroupResource{
		{Resource: "services"},
		{Group: "discovery.k8s.io", Resource: "endpointslices"},
		{Resource: "pods"},
	}
	events := make(chan informer.Event, 1024)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, gr := range grs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			informer.Run(ctx, s, gr, events, log)
		}()
	}
	listed := map[schema.GroupResource]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if ev.List != nil {
				applyList(cat, ev.Resource, ev.List)
				listed[ev.Resource] = true
				if len(listed) == len(grs) && synced != nil {
					synced()
					synced = nil
				}
				continue
			}
			apply(cat, ev.Type, ev.Object)
		}
	}
}

func applyList(cat *Catalog, res schema.GroupResource, list []runtime.Object) {
	switch res.Resource {
	case "services":
		var svcs []*corev1.Service
		for _, o := range list {
			if o, ok := o.(*corev1.Service); ok {
				svcs = append(svcs, o)
			}
		}
		cat.replaceServices(svcs)
	case "endpointslices":
		var slices []*discoveryv1.EndpointSlice
		for _, o := range list {
			if o, ok := o.(*discoveryv1.EndpointSlice); ok {
				slices = append(slices, o)
			}
		}
		cat.replaceEndpointSlices(slices)
	case "pods":
		var pods []*corev1.Pod
		for _, o := range list {
			if o, ok := o.(*corev1.Pod); ok {
				pods = append(pods, o)
			}
		}
		cat.replacePods(pods)
	}
}

func apply(cat *Catalog, t watch.EventType, obj runtime.Object) {
	del := t == watch.Deleted
	switch o := obj.(type) {
	case *corev1.Service:
		if del {
			cat.DeleteService(o.Namespace, o.Name)
		} else {
			cat.SetService(o)
		}
	case *discoveryv1.EndpointSlice:
		if del {
			cat.DeleteEndpointSlice(o.Namespace, o.Name)
		} else {
			cat.SetEndpointSlice(o)
		}
	case *corev1.Pod:
		if del {
			cat.DeletePod(o.Namespace, o.Name)
		} else {
			cat.SetPod(o)
		}
	}
}
