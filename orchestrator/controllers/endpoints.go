package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store"
)

// Labels of EndpointSlices, as upstream.
const (
	// LabelManagedBy marks the EndpointSlices this controller owns.
	LabelManagedBy = discoveryv1.LabelManagedBy
	// ManagedByEndpointSlice is the value of LabelManagedBy on our slices.
	ManagedByEndpointSlice = "endpointslice-controller.k8s.io"
	// MaxEndpointsPerSlice is how many endpoints one slice holds (upstream default 100).
	MaxEndpointsPerSlice = 100
)

// Endpoints maintains, for every Service with a selector, its Endpoints
// object and its EndpointSlices from the matching pods: ready and
// not-ready addresses from the pods' Ready condition (all ready with
// publishNotReadyAddresses), named target ports resolved per pod, and
// terminating endpoints in the slices. Services without a selector keep
// the Endpoints users write.
type Endpoints struct {
	cfg    Config
	svcs   controller.Lister[*corev1.Service]
	pods   controller.Lister[*corev1.Pod]
	eps    controller.Lister[*corev1.Endpoints]
	slices controller.Lister[*discoveryv1.EndpointSlice]
	exp    *controller.Expectations
	// Controller runs the reconciler.
	Controller *controller.Controller
}

// NewEndpoints builds the Endpoints and EndpointSlice reconciler (keys are Services).
func NewEndpoints(cfg Config) *Endpoints {
	cfg = cfg.withDefaults()
	r := &Endpoints{cfg: cfg,
		svcs:   controller.ListerFor[*corev1.Service](cfg.Informers),
		pods:   controller.ListerFor[*corev1.Pod](cfg.Informers),
		eps:    controller.ListerFor[*corev1.Endpoints](cfg.Informers),
		slices: controller.ListerFor[*discoveryv1.EndpointSlice](cfg.Informers),
		exp:    controller.NewExpectations(cfg.Clock),
	}
	c := controller.New("endpoints", r, cfg.Workers, cfg.Clock, cfg.Log)
	r.Controller = c
	r.svcs.Inf.AddHandler(controller.Handler{OnAdd: c.EnqueueObject, OnUpdate: func(_, o runtime.Object) { c.EnqueueObject(o) }, OnDelete: c.EnqueueObject})
	podChanged := func(p *corev1.Pod) {
		for _, s := range r.svcs.List(p.Namespace, nil) {
			if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(p.Labels)) {
				c.EnqueueObject(s)
			}
		}
	}
	r.pods.Inf.AddHandler(controller.Handler{
		OnAdd: func(o runtime.Object) { podChanged(podOf(o)) },
		OnUpdate: func(oo, o runtime.Object) {
			op, np := podOf(oo), podOf(o)
			if !equality.Semantic.DeepEqual(op.Labels, np.Labels) {
				podChanged(op)
			}
			podChanged(np)
		},
		OnDelete: func(o runtime.Object) { podChanged(podOf(o)) },
	})
	r.eps.Inf.AddHandler(controller.Handler{OnUpdate: func(_, o runtime.Object) { c.EnqueueObject(o) }, OnDelete: c.EnqueueObject})
	r.slices.Inf.AddHandler(controller.Handler{
		OnAdd: func(o runtime.Object) {
			s := o.(*discoveryv1.EndpointSlice)
			if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
				r.exp.CreationObserved(controller.Key(s.Namespace, name))
			}
			r.enqueueSlice(o)
		},
		OnUpdate: func(_, o runtime.Object) { r.enqueueSlice(o) },
		OnDelete: func(o runtime.Object) { r.enqueueSlice(o) },
	})
	return r
}

func (r *Endpoints) enqueueSlice(o runtime.Object) {
	s := o.(*discoveryv1.EndpointSlice)
	if name := s.Labels[discoveryv1.LabelServiceName]; name != "" && s.Labels[LabelManagedBy] == ManagedByEndpointSlice {
		r.Controller.Enqueue(controller.Key(s.Namespace, name))
	}
}

// Run runs the reconciler until ctx ends.
func (r *Endpoints) Run(ctx context.Context) error { return r.Controller.Run(ctx) }

type podEndpoint struct {
	pod         *corev1.Pod
	ready       bool
	serving     bool
	terminating bool
	ports       []corev1.EndpointPort
}

func portsKey(ps []corev1.EndpointPort) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s/%d/%s;", p.Name, p.Port, p.Protocol)
	}
	return b.String()
}

// resolvePort finds the container port a service port targets in pod.
func resolvePort(pod *corev1.Pod, sp corev1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.String && tp.StrVal != "":
		for _, c := range pod.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == tp.StrVal && cp.Protocol == sp.Protocol {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	case tp.Type == intstr.Int && tp.IntVal != 0:
		return tp.IntVal, true
	default:
		return sp.Port, true
	}
}

// Reconcile syncs the Endpoints and EndpointSlices of one Service.
func (r *Endpoints) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name := controller.SplitKey(key)
	svc, ok := r.svcs.Get(ns, name)
	if !ok {
		// The EndpointSlices go with the Service (owner references);
		// the Endpoints object carries none, so delete it.
		err := store.Delete[*corev1.Endpoints](ctx, r.cfg.Store, ns, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return controller.Result{}, err
		}
		return controller.Result{}, nil
	}
	if svc.Spec.Selector == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return controller.Result{}, nil
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var eps []podEndpoint
	for _, p := range r.pods.List(ns, sel) {
		if p.Status.PodIP == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		e := podEndpoint{pod: p, ready: isPodReady(p), serving: isPodReady(p), terminating: p.DeletionTimestamp != nil}
		if svc.Spec.PublishNotReadyAddresses {
			e.ready, e.serving = true, true
		}
		if e.terminating {
			e.ready = false
		}
		missing := false
		for _, sp := range svc.Spec.Ports {
			port, ok := resolvePort(p, sp)
			if !ok {
				missing = true
				continue
			}
			e.ports = append(e.ports, corev1.EndpointPort{Name: sp.Name, Port: port, Protocol: sp.Protocol, AppProtocol: sp.AppProtocol})
		}
		if missing && len(e.ports) == 0 {
			continue
		}
		eps = append(eps, e)
	}
	if err := r.syncEndpoints(ctx, svc, eps); err != nil {
		return controller.Result{}, err
	}
	if !r.exp.Satisfied(key) {
		return controller.Result{}, nil // our new slices are not in the cache yet; their add events queue us
	}
	return controller.Result{}, r.syncSlices(ctx, svc, eps)
}

func endpointLabels(svc *corev1.Service) map[string]string {
	l := map[string]string{}
	for k, v := range svc.Labels {
		l[k] = v
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		l[corev1.IsHeadlessService] = ""
	}
	return l
}

func hostnameFor(p *corev1.Pod, svc *corev1.Service) string {
	if p.Spec.Hostname != "" && p.Spec.Subdomain == svc.Name {
		return p.Spec.Hostname
	}
	return ""
}

func (r *Endpoints) syncEndpoints(ctx context.Context, svc *corev1.Service, eps []podEndpoint) error {
	type group struct {
		ports           []corev1.EndpointPort
		ready, notReady []corev1.EndpointAddress
	}
	groups := map[string]*group{}
	var order []string
	for _, e := range eps {
		if e.terminating && !svc.Spec.PublishNotReadyAddresses {
			continue
		}
		k := portsKey(e.ports)
		g := groups[k]
		if g == nil {
			g = &group{ports: e.ports}
			groups[k] = g
			order = append(order, k)
		}
		node := e.pod.Spec.NodeName
		addr := corev1.EndpointAddress{IP: e.pod.Status.PodIP, Hostname: hostnameFor(e.pod, svc),
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: e.pod.Namespace, Name: e.pod.Name, UID: e.pod.UID}}
		if node != "" {
			addr.NodeName = &node
		}
		if e.ready {
			g.ready = append(g.ready, addr)
		} else {
			g.notReady = append(g.notReady, addr)
		}
	}
	sort.Strings(order)
	var subsets []corev1.EndpointSubset
	for _, k := range order {
		g := groups[k]
		sort.Slice(g.ready, func(i, j int) bool { return g.ready[i].IP < g.ready[j].IP })
		sort.Slice(g.notReady, func(i, j int) bool { return g.notReady[i].IP < g.notReady[j].IP })
		subsets = append(subsets, corev1.EndpointSubset{Addresses: g.ready, NotReadyAddresses: g.notReady, Ports: g.ports})
	}
	want := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name, Labels: endpointLabels(svc)}, Subsets: subsets}
	cur, ok := r.eps.Get(svc.Namespace, svc.Name)
	if !ok {
		_, err := store.Create(ctx, r.cfg.Store, want)
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("endpoints %s/%s: %w", svc.Namespace, svc.Name, err)
		}
		return nil
	}
	if equality.Semantic.DeepEqual(cur.Subsets, want.Subsets) && equality.Semantic.DeepEqual(cur.Labels, want.Labels) {
		return nil
	}
	up := cur.DeepCopy()
	up.Subsets, up.Labels = want.Subsets, want.Labels
	if _, err := store.Update(ctx, r.cfg.Store, up); err != nil {
		return fmt.Errorf("endpoints %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

func (r *Endpoints) syncSlices(ctx context.Context, svc *corev1.Service, eps []podEndpoint) error {
	groups := map[string][]podEndpoint{}
	for _, e := range eps {
		k := portsKey(e.ports)
		groups[k] = append(groups[k], e)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var want []*discoveryv1.EndpointSlice
	lbls := endpointLabels(svc)
	lbls[discoveryv1.LabelServiceName] = svc.Name
	lbls[LabelManagedBy] = ManagedByEndpointSlice
	for _, k := range keys {
		g := groups[k]
		sort.Slice(g, func(i, j int) bool { return g[i].pod.Status.PodIP < g[j].pod.Status.PodIP })
		for start := 0; start < len(g); start += MaxEndpointsPerSlice {
			end := min(start+MaxEndpointsPerSlice, len(g))
			s := &discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4}
			for _, p := range g[start].ports {
				s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr(p.Name), Port: ptr(p.Port), Protocol: ptr(p.Protocol), AppProtocol: p.AppProtocol})
			}
			for _, e := range g[start:end] {
				ep := discoveryv1.Endpoint{Addresses: []string{e.pod.Status.PodIP},
					Conditions: discoveryv1.EndpointConditions{Ready: ptr(e.ready), Serving: ptr(e.serving), Terminating: ptr(e.terminating)},
					TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: e.pod.Namespace, Name: e.pod.Name, UID: e.pod.UID}}
				if e.pod.Spec.NodeName != "" {
					ep.NodeName = ptr(e.pod.Spec.NodeName)
				}
				if h := hostnameFor(e.pod, svc); h != "" {
					ep.Hostname = &h
				}
				s.Endpoints = append(s.Endpoints, ep)
			}
			want = append(want, s)
		}
	}
	// A Service with no endpoints still gets one empty slice, as upstream.
	if len(want) == 0 {
		want = append(want, &discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4})
	}
	var existing []*discoveryv1.EndpointSlice
	for _, s := range r.slices.List(svc.Namespace, labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name, LabelManagedBy: ManagedByEndpointSlice})) {
		existing = append(existing, s)
	}
	ref := newControllerRef(svc, corev1.SchemeGroupVersion.WithKind("Service"))
	key := controller.Key(svc.Namespace, svc.Name)
	for i, w := range want {
		w.Labels = lbls
		if i < len(existing) {
			cur := existing[i]
			if equality.Semantic.DeepEqual(cur.Endpoints, w.Endpoints) && equality.Semantic.DeepEqual(cur.Ports, w.Ports) && equality.Semantic.DeepEqual(cur.Labels, w.Labels) {
				continue
			}
			up := cur.DeepCopy()
			up.Endpoints, up.Ports, up.Labels, up.AddressType = w.Endpoints, w.Ports, w.Labels, w.AddressType
			if _, err := store.Update(ctx, r.cfg.Store, up); err != nil {
				return fmt.Errorf("endpointslice %s/%s: %w", cur.Namespace, cur.Name, err)
			}
			continue
		}
	}
	// Creations last, under expectations, so a failed update above never
	// leaves expectations behind that no create will meet.
	if n := len(want) - len(existing); n > 0 {
		r.exp.Expect(key, n, nil)
		for i, w := range want[len(existing):] {
			w.Namespace = svc.Namespace
			w.GenerateName = svc.Name + "-"
			w.OwnerReferences = []metav1.OwnerReference{ref}
			if _, err := store.Create(ctx, r.cfg.Store, w); err != nil {
				r.exp.LowerCreations(key, n-i)
				return fmt.Errorf("endpointslice for %s/%s: %w", svc.Namespace, svc.Name, err)
			}
		}
	}
	for _, s := range existing[min(len(want), len(existing)):] {
		if err := store.Delete[*discoveryv1.EndpointSlice](ctx, r.cfg.Store, s.Namespace, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}
