package controller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	store "github.com/tugboatdev/tugboat/store/storeapi"
)

// LeaderElector elects one leader among control planes through a
// coordination/v1 Lease, as kube-controller-manager does: the holder renews
// the lease every RetryPeriod; others take it over once it has not been
// renewed for LeaseDuration.
type LeaderElector struct {
	// Store holds the Lease.
	Store store.Interface
	// Namespace and Name name the Lease (default kube-system/tugboat-controller-manager).
	Namespace, Name string
	// Identity is this candidate's unique name.
	Identity string
	// LeaseDuration is how long a lease is valid without renewal (default 15 s).
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it
	// gives up leadership (default 10 s).
	RenewDeadline time.Duration
	// RetryPeriod is the interval between attempts (default 2 s).
	RetryPeriod time.Duration
	// Clock drives the timings; nil means the real clock.
	Clock clock.Clock
	// Log receives the elector's logs.
	Log *slog.Logger
}

func (le *LeaderElector) defaults() {
	if le.Namespace == "" {
		le.Namespace = metav1.NamespaceSystem
	}
	if le.Name == "" {
		le.Name = "tugboat-controller-manager"
	}
	if le.LeaseDuration <= 0 {
		le.LeaseDuration = 15 * time.Second
	}
	if le.RenewDeadline <= 0 {
		le.RenewDeadline = 10 * time.Second
	}
	if le.RetryPeriod <= 0 {
		le.RetryPeriod = 2 * time.Second
	}
	if le.Clock == nil {
		le.Clock = clock.RealClock{}
	}
	if le.Log == nil {
		le.Log = slog.Default()
	}
}

// TryAcquireOrRenew makes one attempt to take or renew the lease and reports
// whether this candidate holds it afterwards.
func (le *LeaderElector) TryAcquireOrRenew(ctx context.Context) (bool, error) {
	le.defaults()
	now := metav1.NewMicroTime(le.Clock.Now())
	secs := int32(le.LeaseDuration / time.Second)
	lease, err := store.Get[*coordinationv1.Lease](ctx, le.Store, le.Namespace, le.Name)
	if apierrors.IsNotFound(err) {
		trans := int32(0)
		l := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: le.Namespace, Name: le.Name},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &le.Identity, LeaseDurationSeconds: &secs,
				AcquireTime: &now, RenewTime: &now, LeaseTransitions: &trans},
		}
		if _, err := store.Create(ctx, le.Store, l); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return false, nil
			}
			return false, fmt.Errorf("leader election: create lease: %w", err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("leader election: get lease: %w", err)
	}
	sp := lease.Spec
	holder := ""
	if sp.HolderIdentity != nil {
		holder = *sp.HolderIdentity
	}
	if holder != le.Identity && holder != "" && sp.RenewTime != nil {
		dur := le.LeaseDuration
		if sp.LeaseDurationSeconds != nil {
			dur = time.Duration(*sp.LeaseDurationSeconds) * time.Second
		}
		if le.Clock.Now().Before(sp.RenewTime.Add(dur)) {
			return false, nil
		}
	}
	up := lease.DeepCopy()
	if holder != le.Identity {
		trans := int32(0)
		if sp.LeaseTransitions != nil {
			trans = *sp.LeaseTransitions
		}
		if holder != "" {
			trans++
		}
		up.Spec.LeaseTransitions = &trans
		up.Spec.AcquireTime = &now
		up.Spec.HolderIdentity = &le.Identity
	}
	up.Spec.RenewTime = &now
	up.Spec.LeaseDurationSeconds = &secs
	if _, err := store.Update(ctx, le.Store, up); err != nil {
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return false, fmt.Errorf("leader election: update lease: %w", err)
	}
	return true, nil
}

// release gives the lease up so another candidate takes over at once.
func (le *LeaderElector) release(ctx context.Context) {
	lease, err := store.Get[*coordinationv1.Lease](ctx, le.Store, le.Namespace, le.Name)
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != le.Identity {
		return
	}
	up := lease.DeepCopy()
	empty := ""
	one := int32(1)
	up.Spec.HolderIdentity = &empty
	up.Spec.LeaseDurationSeconds = &one
	if _, err := store.Update(ctx, le.Store, up); err != nil {
		le.Log.Debug("leader election: release failed", "err", err)
	}
}

// Run campaigns until this candidate leads, then calls lead with a context
// that is cancelled when leadership is lost or ctx ends, keeps renewing
// meanwhile, and releases the lease when lead returns. Run returns when ctx
// ends or leadership is lost; the error of lead is returned.
func (le *LeaderElector) Run(ctx context.Context, lead func(ctx context.Context) error) error {
	le.defaults()
	for {
		ok, err := le.TryAcquireOrRenew(ctx)
		if err != nil {
			le.Log.Debug("leader election attempt failed", "err", err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-le.Clock.After(le.RetryPeriod):
		}
	}
	le.Log.Info("became leader", "lease", le.Namespace+"/"+le.Name, "identity", le.Identity)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- lead(lctx) }()
	lastRenew := le.Clock.Now()
	for {
		select {
		case err := <-done:
			le.release(context.WithoutCancel(ctx))
			return err
		case <-le.Clock.After(le.RetryPeriod):
		}
		ok, err := le.TryAcquireOrRenew(lctx)
		if ok {
			lastRenew = le.Clock.Now()
			continue
		}
		if err == nil || le.Clock.Since(lastRenew) > le.RenewDeadline {
			le.Log.Warn("lost leadership", "identity", le.Identity, "err", err)
			cancel()
			return <-done
		}
	}
}
