package controllers

import (
	"context"
	"fmt"
	"math"
	"net"
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
	"github.com/tugboatdev/tugboat/store/storeapi"
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
// terminating endpoints in the slices; one set of slices per IP family of
// the Service (IPv4 and IPv6 for dual-stack), the Endpoints object with
// the primary family; endpoint zones from their nodes and topology hints
// (service.kubernetes.io/topology-mode: Auto, or trafficDistribution
// PreferClose). Services without a selector keep the Endpoints users write.
type Endpoints struct {
	cfg    Config
	svcs   controller.Lister[*corev1.Service]
	pods   controller.Lister[*corev1.Pod]
	eps    controller.Lister[*corev1.Endpoints]
	slices controller.Lister[*discoveryv1.EndpointSlice]
	nodes  controller.Lister[*corev1.Node]
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
		nodes:  controller.ListerFor[*corev1.Node](cfg.Informers),
		exp:    controller.NewExpectations(cfg.Clock),
	}
	c := controller.New("endpoints", r, cfg.Workers, cfg.Clock, cfg.Log)
	r.Controller = c
	r.svcs.Inf.AddHandler(enqueueHandler(c, c.EnqueueObject))
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
	// Zones and their CPU decide endpoint zones and hints.
	nodeChanged := func(o, n *corev1.Node) {
		if o != nil && o.Labels[corev1.LabelTopologyZone] == n.Labels[corev1.LabelTopologyZone] &&
			o.Status.Allocatable.Cpu().Equal(*n.Status.Allocatable.Cpu()) {
			return
		}
		for _, s := range r.svcs.List("", nil) {
			if len(s.Spec.Selector) > 0 {
				c.EnqueueObject(s)
			}
		}
	}
	r.nodes.Inf.AddHandler(controller.Handler{
		OnAdd:    func(o runtime.Object) { nodeChanged(nil, o.(*corev1.Node)) },
		OnUpdate: func(oo, o runtime.Object) { nodeChanged(oo.(*corev1.Node), o.(*corev1.Node)) },
		OnDelete: func(o runtime.Object) { nodeChanged(nil, o.(*corev1.Node)) },
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
		err := storeapi.Delete[*corev1.Endpoints](ctx, r.cfg.Store, ns, name, metav1.DeleteOptions{})
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
	// The Endpoints object holds the Service's primary family only.
	primary := serviceFamilies(svc, eps)[0]
	for _, e := range eps {
		if e.terminating && !svc.Spec.PublishNotReadyAddresses {
			continue
		}
		ip, ok := podAddress(e.pod, primary)
		if !ok {
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
		addr := corev1.EndpointAddress{IP: ip, Hostname: hostnameFor(e.pod, svc),
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
		_, err := storeapi.Create(ctx, r.cfg.Store, want)
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
	if _, err := storeapi.Update(ctx, r.cfg.Store, up); err != nil {
		return fmt.Errorf("endpoints %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

// Topology annotations and values, as upstream.
const (
	// AnnotationTopologyMode turns on topology-aware hints with "Auto".
	AnnotationTopologyMode = corev1.AnnotationTopologyMode
	// AnnotationTopologyAwareHints is the deprecated name of AnnotationTopologyMode.
	AnnotationTopologyAwareHints = corev1.DeprecatedAnnotationTopologyAwareHints
)

// serviceFamilies returns the address types of a Service's slices: its
// ipFamilies, else its clusterIP's family, else (headless without
// families) the families its pods have.
func serviceFamilies(svc *corev1.Service, eps []podEndpoint) []discoveryv1.AddressType {
	var out []discoveryv1.AddressType
	for _, f := range svc.Spec.IPFamilies {
		out = append(out, familyType(f))
	}
	if len(out) > 0 {
		return out
	}
	if ip := net.ParseIP(svc.Spec.ClusterIP); ip != nil {
		if ip.To4() == nil {
			return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv6}
		}
		return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4}
	}
	has := map[discoveryv1.AddressType]bool{}
	for _, e := range eps {
		for _, ip := range podIPs(e.pod) {
			has[ipType(ip)] = true
		}
	}
	if has[discoveryv1.AddressTypeIPv4] || !has[discoveryv1.AddressTypeIPv6] {
		out = append(out, discoveryv1.AddressTypeIPv4)
	}
	if has[discoveryv1.AddressTypeIPv6] {
		out = append(out, discoveryv1.AddressTypeIPv6)
	}
	return out
}

func familyType(f corev1.IPFamily) discoveryv1.AddressType {
	if f == corev1.IPv6Protocol {
		return discoveryv1.AddressTypeIPv6
	}
	return discoveryv1.AddressTypeIPv4
}

func ipType(ip string) discoveryv1.AddressType {
	if p := net.ParseIP(ip); p != nil && p.To4() == nil {
		return discoveryv1.AddressTypeIPv6
	}
	return discoveryv1.AddressTypeIPv4
}

func podIPs(p *corev1.Pod) []string {
	var out []string
	for _, ip := range p.Status.PodIPs {
		out = append(out, ip.IP)
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		out = append(out, p.Status.PodIP)
	}
	return out
}

// podAddress returns the pod's address of family t.
func podAddress(p *corev1.Pod, t discoveryv1.AddressType) (string, bool) {
	for _, ip := range podIPs(p) {
		if ipType(ip) == t {
			return ip, true
		}
	}
	return "", false
}

// hintMode says how a Service wants topology hints: "auto" (proportional
// to the zones' CPU, topology-mode=Auto, which wins), "close"
// (trafficDistribution PreferClose: each endpoint for its own zone), or "".
func hintMode(svc *corev1.Service) string {
	if v := svc.Annotations[AnnotationTopologyMode]; v != "" {
		if strings.EqualFold(v, "auto") {
			return "auto"
		}
		return ""
	}
	if v := svc.Annotations[AnnotationTopologyAwareHints]; strings.EqualFold(v, "auto") {
		return "auto"
	}
	if td := svc.Spec.TrafficDistribution; td != nil && (*td == corev1.ServiceTrafficDistributionPreferClose ||
		*td == corev1.ServiceTrafficDistributionPreferSameZone) {
		return "close"
	}
	return ""
}

// overloadThreshold is how far (20 %) a zone's share of endpoints may
// exceed its share of CPU before upstream drops "Auto" hints.
const overloadThreshold = 0.2

// zoneHints assigns forZones hints to the ready endpoints of one address
// family (indexes into eps), following upstream's rules: in "close" mode
// every endpoint serves its own zone; in "auto" mode endpoints are
// allotted to zones in proportion to the zones' allocatable CPU, moving
// the surplus of one zone to zones short of endpoints; no hints at all
// when an endpoint's zone is unknown, when there are fewer endpoints than
// zones, or when a zone would still be overloaded by more than 20 %.
func zoneHints(mode string, eps []podEndpoint, zoneOf map[string]string, zoneCPU map[string]int64) map[int]string {
	if mode == "" {
		return nil
	}
	hints := map[int]string{}
	perZone := map[string][]int{}
	for i, e := range eps {
		if !e.ready {
			continue
		}
		z := zoneOf[e.pod.Spec.NodeName]
		if z == "" {
			if mode == "auto" {
				return nil
			}
			continue
		}
		hints[i] = z
		perZone[z] = append(perZone[z], i)
	}
	if mode == "close" || len(hints) == 0 {
		return hints
	}
	var zones []string
	var total int64
	for z, cpu := range zoneCPU {
		if cpu > 0 {
			zones = append(zones, z)
			total += cpu
		}
	}
	sort.Strings(zones)
	n := len(hints)
	if len(zones) == 0 || n < len(zones) {
		return nil
	}
	for z := range perZone {
		if zoneCPU[z] <= 0 {
			return nil // endpoints in a zone with no known capacity
		}
	}
	// Each zone needs at least its CPU share of the endpoints less the
	// 20 % overload allowance (rounded up); zones beyond their share give
	// endpoints to zones below that minimum.
	desired, minimum := map[string]float64{}, map[string]int{}
	sumMin := 0
	for _, z := range zones {
		desired[z] = float64(n) * float64(zoneCPU[z]) / float64(total)
		minimum[z] = int(math.Ceil(desired[z]/(1+overloadThreshold) - 1e-9))
		sumMin += minimum[z]
	}
	if sumMin > n {
		return nil // not enough endpoints to serve every zone within the threshold
	}
	// Zones give what they hold beyond their own minimum, those furthest
	// above their share first.
	givers := append([]string(nil), zones...)
	sort.SliceStable(givers, func(i, j int) bool {
		return float64(len(perZone[givers[i]]))-desired[givers[i]] > float64(len(perZone[givers[j]]))-desired[givers[j]]
	})
	var surplus []int
	for _, z := range givers {
		if extra := len(perZone[z]) - minimum[z]; extra > 0 {
			ix := perZone[z]
			surplus = append(surplus, ix[len(ix)-extra:]...) // highest addresses move first
		}
	}
	count := map[string]int{}
	for _, z := range zones {
		count[z] = len(perZone[z])
	}
	for _, z := range zones {
		for count[z] < minimum[z] && len(surplus) > 0 {
			hints[surplus[0]] = z
			count[z]++
			count[zoneOfHint(eps, surplus[0], zoneOf)]--
			surplus = surplus[1:]
		}
		if count[z] < minimum[z] {
			return nil
		}
	}
	return hints
}

func zoneOfHint(eps []podEndpoint, i int, zoneOf map[string]string) string {
	return zoneOf[eps[i].pod.Spec.NodeName]
}

// zoneInfo reads the zone of every node and the allocatable CPU
// (millicores) of every zone.
func (r *Endpoints) zoneInfo() (map[string]string, map[string]int64) {
	zoneOf := map[string]string{}
	cpu := map[string]int64{}
	for _, n := range r.nodes.List("", nil) {
		z := n.Labels[corev1.LabelTopologyZone]
		if z == "" {
			continue
		}
		zoneOf[n.Name] = z
		if q, ok := n.Status.Allocatable[corev1.ResourceCPU]; ok {
			cpu[z] += q.MilliValue()
		}
	}
	return zoneOf, cpu
}

func (r *Endpoints) syncSlices(ctx context.Context, svc *corev1.Service, eps []podEndpoint) error {
	zoneOf, zoneCPU := r.zoneInfo()
	mode := hintMode(svc)
	wantBy := map[discoveryv1.AddressType][]*discoveryv1.EndpointSlice{}
	families := serviceFamilies(svc, eps)
	lbls := endpointLabels(svc)
	lbls[discoveryv1.LabelServiceName] = svc.Name
	lbls[LabelManagedBy] = ManagedByEndpointSlice
	for _, fam := range families {
		// The endpoints with an address of this family.
		var feps []podEndpoint
		var addrs []string
		for _, e := range eps {
			if a, ok := podAddress(e.pod, fam); ok {
				feps = append(feps, e)
				addrs = append(addrs, a)
			}
		}
		order := make([]int, len(feps))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return addrs[order[a]] < addrs[order[b]] })
		sorted := make([]podEndpoint, len(feps))
		sortedAddrs := make([]string, len(feps))
		for i, o := range order {
			sorted[i], sortedAddrs[i] = feps[o], addrs[o]
		}
		hints := zoneHints(mode, sorted, zoneOf, zoneCPU)
		groups := map[string][]int{}
		for i, e := range sorted {
			k := portsKey(e.ports)
			groups[k] = append(groups[k], i)
		}
		keys := make([]string, 0, len(groups))
		for k := range groups {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			g := groups[k]
			for start := 0; start < len(g); start += MaxEndpointsPerSlice {
				end := min(start+MaxEndpointsPerSlice, len(g))
				sl := &discoveryv1.EndpointSlice{AddressType: fam}
				for _, p := range sorted[g[start]].ports {
					sl.Ports = append(sl.Ports, discoveryv1.EndpointPort{Name: ptr(p.Name), Port: ptr(p.Port), Protocol: ptr(p.Protocol), AppProtocol: p.AppProtocol})
				}
				for _, i := range g[start:end] {
					e := sorted[i]
					ep := discoveryv1.Endpoint{Addresses: []string{sortedAddrs[i]},
						Conditions: discoveryv1.EndpointConditions{Ready: ptr(e.ready), Serving: ptr(e.serving), Terminating: ptr(e.terminating)},
						TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: e.pod.Namespace, Name: e.pod.Name, UID: e.pod.UID}}
					if e.pod.Spec.NodeName != "" {
						ep.NodeName = ptr(e.pod.Spec.NodeName)
					}
					if z := zoneOf[e.pod.Spec.NodeName]; z != "" {
						ep.Zone = ptr(z)
					}
					if z, ok := hints[i]; ok {
						ep.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: z}}}
					}
					if h := hostnameFor(e.pod, svc); h != "" {
						ep.Hostname = &h
					}
					sl.Endpoints = append(sl.Endpoints, ep)
				}
				wantBy[fam] = append(wantBy[fam], sl)
			}
		}
		// A family with no endpoints still gets one empty slice, as upstream.
		if len(wantBy[fam]) == 0 {
			wantBy[fam] = []*discoveryv1.EndpointSlice{{AddressType: fam}}
		}
	}
	existingBy := map[discoveryv1.AddressType][]*discoveryv1.EndpointSlice{}
	var stale []*discoveryv1.EndpointSlice
	for _, s := range r.slices.List(svc.Namespace, labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name, LabelManagedBy: ManagedByEndpointSlice})) {
		if _, ok := wantBy[s.AddressType]; ok {
			existingBy[s.AddressType] = append(existingBy[s.AddressType], s)
		} else {
			stale = append(stale, s) // a family the Service no longer has
		}
	}
	ref := newControllerRef(svc, corev1.SchemeGroupVersion.WithKind("Service"))
	key := controller.Key(svc.Namespace, svc.Name)
	var create []*discoveryv1.EndpointSlice
	for _, fam := range families {
		want, existing := wantBy[fam], existingBy[fam]
		for i, w := range want {
			w.Labels = lbls
			if i >= len(existing) {
				create = append(create, w)
				continue
			}
			cur := existing[i]
			if equality.Semantic.DeepEqual(cur.Endpoints, w.Endpoints) && equality.Semantic.DeepEqual(cur.Ports, w.Ports) && equality.Semantic.DeepEqual(cur.Labels, w.Labels) {
				continue
			}
			up := cur.DeepCopy()
			up.Endpoints, up.Ports, up.Labels = w.Endpoints, w.Ports, w.Labels
			if _, err := storeapi.Update(ctx, r.cfg.Store, up); err != nil {
				return fmt.Errorf("endpointslice %s/%s: %w", cur.Namespace, cur.Name, err)
			}
		}
		stale = append(stale, existing[min(len(want), len(existing)):]...)
	}
	// Creations last, under expectations, so a failed update above never
	// leaves expectations behind that no create will meet.
	if n := len(create); n > 0 {
		r.exp.Expect(key, n, nil)
		for i, w := range create {
			w.Namespace = svc.Namespace
			w.GenerateName = svc.Name + "-"
			w.OwnerReferences = []metav1.OwnerReference{ref}
			if _, err := storeapi.Create(ctx, r.cfg.Store, w); err != nil {
				r.exp.LowerCreations(key, n-i)
				return fmt.Errorf("endpointslice for %s/%s: %w", svc.Namespace, svc.Name, err)
			}
		}
	}
	for _, s := range stale {
		if err := storeapi.Delete[*discoveryv1.EndpointSlice](ctx, r.cfg.Store, s.Namespace, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}
