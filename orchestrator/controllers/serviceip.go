package controllers

import (
	"context"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store"
)

// Defaults of the Service allocator, as upstream: the service CIDR and the NodePort range.
const (
	DefaultServiceCIDR = "10.96.0.0/12"

	DefaultNodePortMin = 30000
	DefaultNodePortMax = 32767
)

// ServiceAllocator hands out Service clusterIPs from a CIDR and NodePorts
// from a port range. A requested IP or port must be free and in range.
// The API server's create path calls Allocate so that a conflicting create
// fails; the [ServiceAllocation] controller fills in what is missing,
// releases what deleted Services held and rebuilds the maps from the
// Services on start (repair after restart). It is safe for concurrent use.
type ServiceAllocator struct {
	cidr     netip.Prefix
	portMin  int32
	portMax  int32
	mu       sync.Mutex
	ips      map[netip.Addr]string
	ports    map[int32]string
	nextIP   uint64
	nextPort int32
	size     uint64
	firstDyn uint64
}

// NewServiceAllocator returns an allocator over cidr and ports
// [portMin, portMax]; zero values take the defaults.
func NewServiceAllocator(cidr netip.Prefix, portMin, portMax int32) *ServiceAllocator {
	if !cidr.IsValid() {
		cidr = netip.MustParsePrefix(DefaultServiceCIDR)
	}
	if portMin == 0 {
		portMin, portMax = DefaultNodePortMin, DefaultNodePortMax
	}
	bits := cidr.Addr().BitLen() - cidr.Bits()
	size := uint64(1) << min(bits, 62)
	// Dynamic IPs start above a low band kept for static requests (such as
	// the cluster DNS address), as upstream's allocator prefers.
	first := min(max(size/16, 16), 256)
	if first >= size {
		first = 1
	}
	return &ServiceAllocator{cidr: cidr.Masked(), portMin: portMin, portMax: portMax, ips: map[netip.Addr]string{},
		ports: map[int32]string{}, size: size, firstDyn: first, nextIP: first, nextPort: portMin}
}

func (a *ServiceAllocator) addrAt(off uint64) netip.Addr {
	base := new(big.Int).SetBytes(a.cidr.Addr().AsSlice())
	base.Add(base, new(big.Int).SetUint64(off))
	b := base.FillBytes(make([]byte, len(a.cidr.Addr().AsSlice())))
	addr, _ := netip.AddrFromSlice(b)
	return addr
}

// usable reports whether off is neither the network nor (for IPv4) the broadcast address.
func (a *ServiceAllocator) usable(off uint64) bool {
	return off != 0 && (a.cidr.Addr().Is6() || off != a.size-1)
}

func svcKey(s *corev1.Service) string { return controller.Key(s.Namespace, s.Name) }

// needsClusterIP reports whether a Service gets a clusterIP.
func needsClusterIP(s *corev1.Service) bool {
	return s.Spec.Type != corev1.ServiceTypeExternalName && s.Spec.ClusterIP != corev1.ClusterIPNone
}

func needsNodePorts(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer
}

// Allocate reserves svc's requested clusterIP and nodePorts and fills in
// the ones not given. It fails (an Invalid error naming the field) when a
// requested value is in use by another Service or out of range; on failure
// nothing stays reserved.
func (a *ServiceAllocator) Allocate(svc *corev1.Service) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := svcKey(svc)
	var taken []func()
	undo := func() {
		for _, f := range taken {
			f()
		}
	}
	if needsClusterIP(svc) {
		if svc.Spec.ClusterIP != "" {
			ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
			if err != nil || !a.cidr.Contains(ip) {
				return fieldErr(svc, field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), svc.Spec.ClusterIP,
					fmt.Sprintf("failed to allocate IP %s: provided IP is not in the valid range. The range of valid IPs is %s", svc.Spec.ClusterIP, a.cidr)))
			}
			if owner, used := a.ips[ip]; used && owner != key {
				return fieldErr(svc, field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), svc.Spec.ClusterIP,
					fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", svc.Spec.ClusterIP)))
			}
			a.ips[ip] = key
			taken = append(taken, func() { delete(a.ips, ip) })
		} else {
			ip, ok := a.nextFreeIP()
			if !ok {
				return fieldErr(svc, field.Invalid(field.NewPath("spec", "clusterIPs"), "", "failed to allocate a serviceIP: range is full"))
			}
			a.ips[ip] = key
			taken = append(taken, func() { delete(a.ips, ip) })
			svc.Spec.ClusterIP = ip.String()
			svc.Spec.ClusterIPs = []string{ip.String()}
		}
		if len(svc.Spec.ClusterIPs) == 0 {
			svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
		}
	}
	if needsNodePorts(svc) {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			fld := field.NewPath("spec", "ports").Index(i).Child("nodePort")
			if p.NodePort != 0 {
				if p.NodePort < a.portMin || p.NodePort > a.portMax {
					undo()
					return fieldErr(svc, field.Invalid(fld, p.NodePort, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", a.portMin, a.portMax)))
				}
				if owner, used := a.ports[p.NodePort]; used && owner != key {
					undo()
					return fieldErr(svc, field.Invalid(fld, p.NodePort, "provided port is already allocated"))
				}
				port := p.NodePort
				a.ports[port] = key
				taken = append(taken, func() { delete(a.ports, port) })
				continue
			}
			port, ok := a.nextFreePort()
			if !ok {
				undo()
				return fieldErr(svc, field.Invalid(fld, 0, "range is full"))
			}
			a.ports[port] = key
			taken = append(taken, func() { delete(a.ports, port) })
			p.NodePort = port
		}
	}
	return nil
}

func fieldErr(svc *corev1.Service, e *field.Error) error {
	return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, field.ErrorList{e})
}

func (a *ServiceAllocator) nextFreeIP() (netip.Addr, bool) {
	span := a.size
	for i := uint64(0); i < span; i++ {
		off := a.nextIP
		a.nextIP++
		if a.nextIP >= a.size {
			a.nextIP = 1
		}
		if !a.usable(off) {
			continue
		}
		ip := a.addrAt(off)
		if _, used := a.ips[ip]; !used {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func (a *ServiceAllocator) nextFreePort() (int32, bool) {
	n := a.portMax - a.portMin + 1
	for i := int32(0); i < n; i++ {
		p := a.nextPort
		a.nextPort++
		if a.nextPort > a.portMax {
			a.nextPort = a.portMin
		}
		if _, used := a.ports[p]; !used {
			return p, true
		}
	}
	return 0, false
}

// Reserve marks the clusterIP and nodePorts svc already has as its own,
// without allocating missing ones; it fails if another Service holds one.
func (a *ServiceAllocator) Reserve(svc *corev1.Service) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := svcKey(svc)
	var errs []string
	if needsClusterIP(svc) && svc.Spec.ClusterIP != "" {
		if ip, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil && a.cidr.Contains(ip) {
			if owner, used := a.ips[ip]; used && owner != key {
				errs = append(errs, fmt.Sprintf("clusterIP %s is also held by %s", ip, owner))
			} else {
				a.ips[ip] = key
			}
		}
	}
	if needsNodePorts(svc) {
		for _, p := range svc.Spec.Ports {
			if p.NodePort == 0 || p.NodePort < a.portMin || p.NodePort > a.portMax {
				continue
			}
			if owner, used := a.ports[p.NodePort]; used && owner != key {
				errs = append(errs, fmt.Sprintf("nodePort %d is also held by %s", p.NodePort, owner))
			} else {
				a.ports[p.NodePort] = key
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("service %s: %s", key, strings.Join(errs, "; "))
	}
	return nil
}

// Release frees everything the Service named key holds.
func (a *ServiceAllocator) Release(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ip, k := range a.ips {
		if k == key {
			delete(a.ips, ip)
		}
	}
	for p, k := range a.ports {
		if k == key {
			delete(a.ports, p)
		}
	}
}

// releaseUnused frees what key holds beyond the given Service's current values.
func (a *ServiceAllocator) releaseUnused(svc *corev1.Service) {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := svcKey(svc)
	keepPorts := map[int32]bool{}
	if needsNodePorts(svc) {
		for _, p := range svc.Spec.Ports {
			keepPorts[p.NodePort] = true
		}
	}
	for p, k := range a.ports {
		if k == key && !keepPorts[p] {
			delete(a.ports, p)
		}
	}
	for ip, k := range a.ips {
		if k == key && (!needsClusterIP(svc) || ip.String() != svc.Spec.ClusterIP) {
			delete(a.ips, ip)
		}
	}
}

// Used reports who holds an IP ("" if free).
func (a *ServiceAllocator) Used(ip netip.Addr) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ips[ip]
}

// ServiceAllocation is the controller side of [ServiceAllocator]: it
// rebuilds the allocator from the Services present when it starts (repair
// after a restart), gives Services created without a clusterIP or nodePort
// one, and releases what deleted Services held.
type ServiceAllocation struct {
	cfg  Config
	svcs controller.Lister[*corev1.Service]
	rec  *controller.Recorder
	// Alloc is the allocator the controller keeps in step with the Services.
	Alloc *ServiceAllocator
	// Controller runs the reconciler.
	Controller *controller.Controller
}

// NewServiceAllocation builds the controller over alloc (nil: a default allocator).
func NewServiceAllocation(cfg Config, alloc *ServiceAllocator) *ServiceAllocation {
	cfg = cfg.withDefaults()
	if alloc == nil {
		alloc = NewServiceAllocator(netip.Prefix{}, 0, 0)
	}
	r := &ServiceAllocation{cfg: cfg, svcs: controller.ListerFor[*corev1.Service](cfg.Informers), Alloc: alloc,
		rec: controller.NewRecorder(cfg.Store, "service-allocation", cfg.Clock, cfg.Log)}
	c := controller.New("service-allocation", r, 1, cfg.Clock, cfg.Log)
	r.Controller = c
	r.svcs.Inf.AddHandler(controller.Handler{
		OnAdd:    c.EnqueueObject,
		OnUpdate: func(_, o runtime.Object) { c.EnqueueObject(o) },
		OnDelete: func(o runtime.Object) { alloc.Release(controller.KeyOf(o)) },
	})
	return r
}

// Run repairs the allocator from the current Services, then reconciles
// until ctx ends.
func (r *ServiceAllocation) Run(ctx context.Context) error {
	select {
	case <-r.svcs.Inf.Synced():
	case <-ctx.Done():
		return nil
	}
	// Repair: every value a Service holds is reserved for it first.
	for _, svc := range r.svcs.List("", nil) {
		if err := r.Alloc.Reserve(svc); err != nil {
			r.rec.Eventf(svc, corev1.EventTypeWarning, "ClusterIPAlreadyAllocated", "repair: %v", err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.rec.Run(gctx) })
	g.Go(func() error { return r.Controller.Run(gctx) })
	return g.Wait()
}

// Reconcile gives one Service its missing clusterIP and nodePorts.
func (r *ServiceAllocation) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name := controller.SplitKey(key)
	svc, ok := r.svcs.Get(ns, name)
	if !ok {
		r.Alloc.Release(key)
		return controller.Result{}, nil
	}
	r.Alloc.releaseUnused(svc)
	missing := needsClusterIP(svc) && svc.Spec.ClusterIP == ""
	if needsNodePorts(svc) {
		for _, p := range svc.Spec.Ports {
			missing = missing || p.NodePort == 0
		}
	}
	up := svc.DeepCopy()
	if err := r.Alloc.Allocate(up); err != nil {
		r.rec.Eventf(svc, corev1.EventTypeWarning, "AllocationFailed", "%v", err)
		return controller.Result{}, nil
	}
	if !missing {
		return controller.Result{}, nil
	}
	if _, err := store.Update(ctx, r.cfg.Store, up); err != nil {
		r.Alloc.releaseUnused(svc)
		if apierrors.IsNotFound(err) {
			return controller.Result{}, nil
		}
		return controller.Result{}, fmt.Errorf("service %s: allocate: %w", key, err)
	}
	return controller.Result{}, nil
}
