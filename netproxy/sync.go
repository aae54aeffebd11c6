package netproxy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/netproxy/dataplane"
	"github.com/tugboatdev/tugboat/netproxy/internal/informer"
	"github.com/tugboatdev/tugboat/store"
)

var (
	servicesGR       = schema.GroupResource{Resource: "services"}
	endpointSlicesGR = schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"}
)

// Stats describes the data plane and its sync from the store.
type Stats struct {
	Mode Mode
	// Frontends, Backends and ReadyBackends count the programmed entries.
	Frontends, Backends, ReadyBackends int
	// Syncs counts incremental updates, FullResyncs full ones, SyncErrors
	// updates that failed (they are retried on the next change).
	Syncs, FullResyncs, SyncErrors uint64
	// LastSyncLatency is the time from receiving the last store event to the
	// end of programming it.
	LastSyncLatency time.Duration
}

type statsRecorder struct {
	syncs, full, errs atomic.Uint64
	last              atomic.Int64
}

// Stats returns current figures.
func (p *Proxy) Stats() Stats {
	f, b, r := p.table.Stats()
	return Stats{Mode: p.mode, Frontends: f, Backends: b, ReadyBackends: r,
		Syncs: p.stats.syncs.Load(), FullResyncs: p.stats.full.Load(), SyncErrors: p.stats.errs.Load(),
		LastSyncLatency: time.Duration(p.stats.last.Load())}
}

// syncState is the proxy's cache of Services and EndpointSlices.
type syncState struct {
	services   map[string]*corev1.Service                       // "ns/name"
	slices     map[string]map[string]*discoveryv1.EndpointSlice // service "ns/name" -> slice name
	sliceOwner map[string]string                                // slice "ns/name" -> service "ns/name"
	listed     map[schema.GroupResource]bool
}

func key(ns, name string) string { return ns + "/" + name }

func sliceServiceKey(s *discoveryv1.EndpointSlice) string {
	if n := s.Labels[discoveryv1.LabelServiceName]; n != "" {
		return key(s.Namespace, n)
	}
	return ""
}

// Run watches Services and EndpointSlices in s and programs the data plane:
// a full resync once both are listed (and after every relist), then
// incremental updates of the affected Services. It returns when ctx is done.
func (p *Proxy) Run(ctx context.Context, s store.Interface) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan informer.Event, 1024)
	var wg sync.WaitGroup
	for _, gr := range []schema.GroupResource{servicesGR, endpointSlicesGR} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			informer.Run(ctx, s, gr, events, p.log)
		}()
	}
	defer wg.Wait()
	st := &syncState{
		services:   map[string]*corev1.Service{},
		slices:     map[string]map[string]*discoveryv1.EndpointSlice{},
		sliceOwner: map[string]string{},
		listed:     map[schema.GroupResource]bool{},
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			p.handle(ctx, st, ev)
		}
	}
}

func (p *Proxy) desired(st *syncState, owner string) []dataplane.Service {
	svc := st.services[owner]
	if svc == nil {
		return nil
	}
	var sl []*discoveryv1.EndpointSlice
	for _, s := range st.slices[owner] {
		sl = append(sl, s)
	}
	return dataplane.FromService(svc, sl, p.translateOptions())
}

func (p *Proxy) program(ctx context.Context, st *syncState, owner string, received time.Time) {
	err := p.table.Set(ctx, owner, p.desired(st, owner))
	took := time.Since(received)
	p.stats.syncs.Add(1)
	p.stats.last.Store(int64(took))
	p.metrics.latency.Observe(took.Seconds())
	if err != nil {
		p.stats.errs.Add(1)
		p.log.Warn("programming service failed", "service", owner, "mode", p.mode, "err", err)
	}
	if p.afterSet != nil {
		p.afterSet(owner, received)
	}
}

func (p *Proxy) addSlice(st *syncState, s *discoveryv1.EndpointSlice) {
	k := key(s.Namespace, s.Name)
	owner := sliceServiceKey(s)
	st.sliceOwner[k] = owner
	if st.slices[owner] == nil {
		st.slices[owner] = map[string]*discoveryv1.EndpointSlice{}
	}
	st.slices[owner][s.Name] = s
}

func (p *Proxy) removeSlice(st *syncState, ns, name string) (owner string) {
	k := key(ns, name)
	owner, ok := st.sliceOwner[k]
	if !ok {
		return ""
	}
	delete(st.sliceOwner, k)
	delete(st.slices[owner], name)
	if len(st.slices[owner]) == 0 {
		delete(st.slices, owner)
	}
	return owner
}

func (p *Proxy) handle(ctx context.Context, st *syncState, ev informer.Event) {
	if ev.List != nil {
		switch ev.Resource {
		case servicesGR:
			st.services = map[string]*corev1.Service{}
			for _, o := range ev.List {
				if s, ok := o.(*corev1.Service); ok {
					st.services[key(s.Namespace, s.Name)] = s
				}
			}
		case endpointSlicesGR:
			st.slices = map[string]map[string]*discoveryv1.EndpointSlice{}
			st.sliceOwner = map[string]string{}
			for _, o := range ev.List {
				if s, ok := o.(*discoveryv1.EndpointSlice); ok {
					p.addSlice(st, s)
				}
			}
		}
		st.listed[ev.Resource] = true
		if !st.listed[servicesGR] || !st.listed[endpointSlicesGR] {
			return
		}
		all := make(map[string][]dataplane.Service, len(st.services))
		for owner := range st.services {
			all[owner] = p.desired(st, owner)
		}
		start := time.Now()
		err := p.table.Resync(ctx, all)
		p.stats.full.Add(1)
		if err != nil {
			p.stats.errs.Add(1)
			p.log.Warn("full resync had errors", "mode", p.mode, "err", err)
		}
		p.log.Info("netproxy full resync", "mode", p.mode, "services", len(st.services), "took", time.Since(start))
		p.syncOnce.Do(func() { close(p.synced) })
		return
	}
	switch obj := ev.Object.(type) {
	case *corev1.Service:
		owner := key(obj.Namespace, obj.Name)
		if ev.Type == watch.Deleted {
			delete(st.services, owner)
		} else {
			st.services[owner] = obj
			for _, w := range dataplane.Unsupported(obj, p.translateOptions()) {
				p.log.Warn("service field not implemented by netproxy", "service", owner, "field", w)
			}
		}
		if st.listed[servicesGR] && st.listed[endpointSlicesGR] {
			p.program(ctx, st, owner, ev.Received)
		}
	case *discoveryv1.EndpointSlice:
		old := p.removeSlice(st, obj.Namespace, obj.Name)
		var owner string
		if ev.Type != watch.Deleted {
			p.addSlice(st, obj)
			owner = sliceServiceKey(obj)
		}
		if !st.listed[servicesGR] || !st.listed[endpointSlicesGR] {
			return
		}
		if old != "" && old != owner {
			p.program(ctx, st, old, ev.Received)
		}
		if owner != "" {
			p.program(ctx, st, owner, ev.Received)
		}
	default:
		p.log.Warn("unexpected object in watch", "err", errors.New("unexpected type"), "type", ev.Resource.String())
	}
}

func (p *Proxy) translateOptions() dataplane.Options {
	return dataplane.Options{NodeName: p.cfg.NodeName, NodeIPs: p.cfg.NodeIPs}
}
