package lbipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/netproxy/internal/informer"
	"github.com/tugboatdev/tugboat/store"
)

// Config configures [Run].
type Config struct {
	// Pool lists the address ranges to hand out (IPv4). The network and
	// broadcast addresses of prefixes shorter than /31 are skipped.
	Pool []netip.Prefix
	// Logger receives progress and errors; nil discards them.
	Logger *slog.Logger
}

// Allocator tracks which pool addresses are in use.
type Allocator struct {
	pool  []netip.Prefix
	inUse map[netip.Addr]string // address -> "ns/name"
}

// NewAllocator returns an allocator over pool.
func NewAllocator(pool []netip.Prefix) *Allocator {
	return &Allocator{pool: pool, inUse: map[netip.Addr]string{}}
}

// Contains reports whether a is in the pool.
func (a *Allocator) Contains(ip netip.Addr) bool {
	for _, p := range a.pool {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func usable(p netip.Prefix, ip netip.Addr) bool {
	if p.Bits() >= p.Addr().BitLen()-1 {
		return true
	}
	if ip == p.Masked().Addr() {
		return false // network address
	}
	return p.Contains(ip.Next()) // not the last (broadcast) address
}

// Assign records ip as used by owner; it fails when another owner has it.
func (a *Allocator) Assign(owner string, ip netip.Addr) error {
	if o, ok := a.inUse[ip]; ok && o != owner {
		return fmt.Errorf("lbipam: %s is used by %s", ip, o)
	}
	a.inUse[ip] = owner
	return nil
}

// Next returns the lowest free address and assigns it to owner.
func (a *Allocator) Next(owner string) (netip.Addr, error) {
	for _, p := range a.pool {
		for ip := p.Masked().Addr(); p.Contains(ip); ip = ip.Next() {
			if !usable(p, ip) {
				continue
			}
			if _, ok := a.inUse[ip]; !ok {
				a.inUse[ip] = owner
				return ip, nil
			}
		}
	}
	return netip.Addr{}, errors.New("lbipam: pool exhausted")
}

// Release frees every address of owner.
func (a *Allocator) Release(owner string) {
	for ip, o := range a.inUse {
		if o == owner {
			delete(a.inUse, ip)
		}
	}
}

// wants reports whether this allocator serves svc.
func wants(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil
}

// Run watches Services in s and keeps the ingress addresses of LoadBalancer
// Services assigned from cfg.Pool until ctx is done.
func Run(ctx context.Context, s store.Interface, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Pool) == 0 {
		return errors.New("lbipam: empty pool")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan informer.Event, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		informer.Run(ctx, s, schema.GroupResource{Resource: "services"}, events, log)
	}()
	defer func() { <-done }()
	alloc := NewAllocator(cfg.Pool)
	// pending holds LoadBalancer Services still waiting for an address,
	// retried when one is released.
	pending := map[string]*corev1.Service{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			var svcs []*corev1.Service
			if ev.List != nil {
				alloc = NewAllocator(cfg.Pool)
				pending = map[string]*corev1.Service{}
				for _, o := range ev.List {
					if svc, ok := o.(*corev1.Service); ok {
						svcs = append(svcs, svc)
					}
				}
				// Record existing assignments before handing out new ones.
				for _, svc := range svcs {
					for _, in := range svc.Status.LoadBalancer.Ingress {
						if ip, err := netip.ParseAddr(in.IP); err == nil && alloc.Contains(ip) && wants(svc) {
							_ = alloc.Assign(svc.Namespace+"/"+svc.Name, ip)
						}
					}
				}
			} else if svc, ok := ev.Object.(*corev1.Service); ok {
				owner := svc.Namespace + "/" + svc.Name
				if ev.Type == watch.Deleted {
					alloc.Release(owner)
					delete(pending, owner)
					for _, p := range pending {
						svcs = append(svcs, p)
					}
				} else {
					svcs = []*corev1.Service{svc}
				}
			}
			for _, svc := range svcs {
				owner := svc.Namespace + "/" + svc.Name
				delete(pending, owner)
				if err := reconcile(ctx, s, alloc, svc, log); err != nil {
					log.Warn("load-balancer address", "service", owner, "err", err)
					pending[owner] = svc
				}
			}
		}
	}
}

func reconcile(ctx context.Context, s store.Interface, alloc *Allocator, svc *corev1.Service, log *slog.Logger) error {
	owner := svc.Namespace + "/" + svc.Name
	var ours []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(in.IP); err == nil && alloc.Contains(ip) {
			ours = append(ours, ip)
		}
	}
	if !wants(svc) {
		alloc.Release(owner)
		if len(ours) == 0 {
			return nil
		}
		upd := svc.DeepCopy()
		upd.Status.LoadBalancer.Ingress = slices.DeleteFunc(upd.Status.LoadBalancer.Ingress, func(in corev1.LoadBalancerIngress) bool {
			ip, err := netip.ParseAddr(in.IP)
			return err == nil && alloc.Contains(ip)
		})
		return writeStatus(ctx, s, upd)
	}
	if len(ours) > 0 {
		for _, ip := range ours {
			if err := alloc.Assign(owner, ip); err != nil {
				return err
			}
		}
		return nil
	}
	alloc.Release(owner) // an earlier assignment whose status write is not seen yet
	var ip netip.Addr
	if want, err := netip.ParseAddr(svc.Spec.LoadBalancerIP); err == nil && alloc.Contains(want) {
		if err := alloc.Assign(owner, want); err != nil {
			return err
		}
		ip = want
	} else {
		if ip, err = alloc.Next(owner); err != nil {
			return err
		}
	}
	upd := svc.DeepCopy()
	mode := corev1.LoadBalancerIPModeVIP
	upd.Status.LoadBalancer.Ingress = append(upd.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip.String(), IPMode: &mode})
	if err := writeStatus(ctx, s, upd); err != nil {
		alloc.Release(owner)
		return err
	}
	log.Info("assigned load-balancer address", "service", owner, "ip", ip)
	return nil
}

func writeStatus(ctx context.Context, s store.Interface, svc *corev1.Service) error {
	_, err := s.UpdateStatus(ctx, svc, metav1.UpdateOptions{FieldManager: "tugboat-lbipam"})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // a newer version is on its way through the watch
	}
	return err
}
