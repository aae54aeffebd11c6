package controllers

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// DefaultServiceRepairInterval is how often [ServiceRepair] checks the
// Services' addresses and ports, as the API server's repair loops (3 min).
const DefaultServiceRepairInterval = 3 * time.Minute

// ServiceRepair is the check upstream's ClusterIP and NodePort repair
// loops make. The store hands out clusterIPs and nodePorts when a Service
// is written and refuses taken or out-of-range values, so nothing is ever
// allocated here. What can still go wrong is a change of configuration
// between runs (a smaller service CIDR or NodePort range on restart, or
// data written before allocation existed): every interval ServiceRepair
// lists the Services and records a Warning Event on each one holding an
// address or port outside the configured ranges (ClusterIPOutOfRange,
// PortOutOfRange), one held by another Service too
// (ClusterIPAlreadyAllocated, PortAlreadyAllocated) or an unparsable
// address (ClusterIPNotValid), with upstream's reasons and messages.
type ServiceRepair struct {
	cfg   Config
	svcs  controller.Lister[*corev1.Service]
	rec   *controller.Recorder
	cidrs []netip.Prefix
	ports storeapi.PortRange
}

// NewServiceRepair builds the check over cfg.ServiceCIDRs and
// cfg.NodePortRange (empty: the check of that range is off).
func NewServiceRepair(cfg Config) *ServiceRepair {
	cfg = cfg.withDefaults()
	r := &ServiceRepair{cfg: cfg, svcs: controller.ListerFor[*corev1.Service](cfg.Informers),
		rec: controller.NewRecorder(cfg.Store, "ipallocator-repair-controller", cfg.Clock, cfg.Log), ports: cfg.NodePortRange}
	for _, c := range cfg.ServiceCIDRs {
		if c.IsValid() {
			r.cidrs = append(r.cidrs, c.Masked())
		}
	}
	return r
}

// Run checks once the Services are listed and then every
// cfg.ServiceRepairInterval until ctx ends.
func (r *ServiceRepair) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.rec.Run(gctx) })
	g.Go(func() error {
		select {
		case <-r.svcs.Inf.Synced():
		case <-gctx.Done():
			return nil
		}
		every := r.cfg.ServiceRepairInterval
		if every <= 0 {
			every = DefaultServiceRepairInterval
		}
		for {
			r.RunOnce()
			select {
			case <-gctx.Done():
				return nil
			case <-r.cfg.Clock.After(every):
			}
		}
	})
	return g.Wait()
}

// RunOnce checks every Service now and records an Event per finding.
func (r *ServiceRepair) RunOnce() {
	svcs := r.svcs.List("", nil)
	for _, f := range r.Check(svcs) {
		r.rec.Eventf(f.Service, corev1.EventTypeWarning, f.Reason, "%s", f.Message)
	}
}

// RepairFinding is one problem [ServiceRepair.Check] found on a Service.
type RepairFinding struct {
	// Service is the Service the finding is about.
	Service *corev1.Service
	// Reason is upstream's event reason, e.g. "ClusterIPOutOfRange".
	Reason string
	// Message is upstream's event message.
	Message string
}

// Check returns the findings over svcs, oldest Service first, so that the
// first holder of a shared value is its owner and the later ones are
// reported.
func (r *ServiceRepair) Check(svcs []*corev1.Service) []RepairFinding {
	svcs = slices.Clone(svcs)
	slices.SortStableFunc(svcs, func(a, b *corev1.Service) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	var out []RepairFinding
	ips := map[netip.Addr]bool{}
	ports := map[int32]bool{}
	for _, svc := range svcs {
		add := func(reason, msg string) {
			out = append(out, RepairFinding{Service: svc, Reason: reason, Message: msg})
		}
		if svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			for _, s := range svc.Spec.ClusterIPs {
				ip, err := netip.ParseAddr(s)
				if err != nil {
					add("ClusterIPNotValid", fmt.Sprintf("Cluster IP %s is not a valid IP; please recreate service", s))
					continue
				}
				family := "IPv4"
				if ip.Is6() {
					family = "IPv6"
				}
				if cidr, ok := r.familyCIDR(ip); ok && !cidr.Contains(ip) {
					add("ClusterIPOutOfRange", fmt.Sprintf("Cluster IP [%s]:%s is not within the configured Service CIDR %s; please recreate service", family, ip, cidr))
					continue
				}
				if ips[ip] {
					add("ClusterIPAlreadyAllocated", fmt.Sprintf("Cluster IP [%s]:%s was assigned to multiple services; please recreate service", family, ip))
					continue
				}
				ips[ip] = true
			}
		}
		held := make([]int32, 0, len(svc.Spec.Ports)+1)
		for _, p := range svc.Spec.Ports {
			held = append(held, p.NodePort)
		}
		held = append(held, svc.Spec.HealthCheckNodePort)
		for _, p := range held {
			if p == 0 {
				continue
			}
			if r.ports.Max > 0 && (p < r.ports.Min || p > r.ports.Max) {
				add("PortOutOfRange", fmt.Sprintf("Port %d is not within the port range %s; please recreate service", p, r.ports))
				continue
			}
			if ports[p] {
				add("PortAlreadyAllocated", "Port "+strconv.Itoa(int(p))+" was assigned to multiple services; please recreate service")
				continue
			}
			ports[p] = true
		}
	}
	return out
}

// familyCIDR returns the configured CIDR of ip's family.
func (r *ServiceRepair) familyCIDR(ip netip.Addr) (netip.Prefix, bool) {
	for _, c := range r.cidrs {
		if c.Addr().Is6() == ip.Is6() {
			return c, true
		}
	}
	return netip.Prefix{}, false
}
