package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// BurstReplicas caps how many pods a ReplicaSet creates or deletes in one
// reconcile (upstream's --concurrent burst is 500).
const BurstReplicas = 500

// ReplicaSet is the ReplicaSet reconciler: it keeps exactly spec.replicas
// active pods that match the selector, adopting matching orphans and
// releasing pods whose labels stop matching; on scale-down it deletes
// unscheduled, pending, not-ready and newest pods first.
type ReplicaSet struct {
	cfg  Config
	rs   controller.Lister[*appsv1.ReplicaSet]
	pods controller.Lister[*corev1.Pod]
	exp  *controller.Expectations
	rec  *controller.Recorder
	// Controller runs the reconciler; it is exported for tests and the Manager.
	Controller *controller.Controller
}

// NewReplicaSet builds the ReplicaSet reconciler and registers its informer handlers.
func NewReplicaSet(cfg Config) *ReplicaSet {
	cfg = cfg.withDefaults()
	r := &ReplicaSet{
		cfg:  cfg,
		rs:   controller.ListerFor[*appsv1.ReplicaSet](cfg.Informers),
		pods: controller.ListerFor[*corev1.Pod](cfg.Informers),
		exp:  controller.NewExpectations(cfg.Clock),
		rec:  controller.NewRecorder(cfg.Store, "replicaset-controller", cfg.Clock, cfg.Log),
	}
	r.Controller = controller.New("replicaset", r, cfg.Workers, cfg.Clock, cfg.Log)
	r.rs.Inf.AddHandler(enqueueHandler(r.Controller, func(o runtime.Object) { r.exp.Delete(controller.KeyOf(o)); r.Controller.EnqueueObject(o) }))
	r.pods.Inf.AddHandler(podOwnerHandler(r.Controller, r.exp, "ReplicaSet", func(p *corev1.Pod) []string {
		var keys []string
		for _, rs := range r.rs.List(p.Namespace, nil) {
			sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
			if err == nil && !sel.Empty() && sel.Matches(labels.Set(p.Labels)) {
				keys = append(keys, controller.KeyOf(rs))
			}
		}
		return keys
	}))
	return r
}

// podOwnerHandler queues the owning controller of a pod on every change,
// records observed creations and deletions in exp, and for orphans queues
// the controllers matching returns (so they can adopt it).
func podOwnerHandler(c *controller.Controller, exp *controller.Expectations, kind string, matching func(*corev1.Pod) []string) controller.Handler {
	enqueueOrphan := func(p *corev1.Pod) {
		if matching == nil {
			return
		}
		for _, k := range matching(p) {
			c.Enqueue(k)
		}
	}
	return controller.Handler{
		OnAdd: func(o runtime.Object) {
			p := podOf(o)
			if key, ok := ownerKeyOf(p, kind); ok {
				if exp != nil {
					exp.CreationObserved(key)
				}
				c.Enqueue(key)
				return
			}
			enqueueOrphan(p)
		},
		OnUpdate: func(oo, no runtime.Object) {
			op, np := podOf(oo), podOf(no)
			oldKey, oldOK := ownerKeyOf(op, kind)
			key, ok := ownerKeyOf(np, kind)
			if np.DeletionTimestamp != nil && ok && exp != nil {
				exp.DeletionObserved(key, string(np.UID))
			}
			if oldOK && (!ok || oldKey != key) {
				c.Enqueue(oldKey)
			}
			if ok {
				c.Enqueue(key)
				return
			}
			if !equality.Semantic.DeepEqual(op.Labels, np.Labels) || oldOK {
				enqueueOrphan(np)
			}
		},
		OnDelete: func(o runtime.Object) {
			p := podOf(o)
			if key, ok := ownerKeyOf(p, kind); ok {
				if exp != nil {
					exp.DeletionObserved(key, string(p.UID))
				}
				c.Enqueue(key)
			}
		},
	}
}

// Run runs the reconciler and its event recorder until ctx ends.
func (r *ReplicaSet) Run(ctx context.Context) error {
	return runWithRecorder(ctx, r.rec, r.Controller)
}

// Reconcile syncs one ReplicaSet.
func (r *ReplicaSet) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name := controller.SplitKey(key)
	rs, ok := r.rs.Get(ns, name)
	if !ok {
		r.exp.Delete(key)
		return controller.Result{}, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		return controller.Result{}, nil
	}
	satisfied := r.exp.Satisfied(key)
	all := r.pods.List(ns, nil)
	candidates := make([]*corev1.Pod, 0, len(all))
	for _, p := range all {
		if isPodActive(p) || p.DeletionTimestamp == nil {
			candidates = append(candidates, p)
		}
	}
	owned, err := claim(ctx, r.cfg.Store, rs, gvkReplicaSet, sel, candidates)
	if err != nil {
		return controller.Result{}, err
	}
	active := owned[:0:0]
	for _, p := range owned {
		if isPodActive(p) {
			active = append(active, p)
		}
	}
	var manageErr error
	if satisfied && rs.DeletionTimestamp == nil {
		manageErr = r.manage(ctx, key, rs, active)
	}
	now := r.cfg.Clock.Now()
	st := calculateRSStatus(rs, owned, active, manageErr, now)
	var requeue time.Duration
	if rs.Spec.MinReadySeconds > 0 {
		for _, p := range active {
			if d := availableIn(p, rs.Spec.MinReadySeconds, now); d > 0 && (requeue == 0 || d < requeue) {
				requeue = d
			}
		}
	}
	if !equality.Semantic.DeepEqual(rs.Status, st) {
		if _, err := writeRetry(ctx, r.cfg.Store, rs, true, func(up *appsv1.ReplicaSet) { up.Status = st }); err != nil && !apierrors.IsNotFound(err) {
			return controller.Result{}, fmt.Errorf("replicaset %s: update status: %w", key, err)
		}
	}
	if manageErr != nil {
		return controller.Result{}, manageErr
	}
	if requeue > 0 {
		return controller.Result{RequeueAfter: requeue + 10*time.Millisecond}, nil
	}
	return controller.Result{}, nil
}

func calculateRSStatus(rs *appsv1.ReplicaSet, owned, active []*corev1.Pod, manageErr error, now time.Time) appsv1.ReplicaSetStatus {
	st := *rs.Status.DeepCopy()
	tmplSel := labels.SelectorFromSet(rs.Spec.Template.Labels)
	var full, ready, avail, terminating int32
	for _, p := range active {
		if tmplSel.Matches(labels.Set(p.Labels)) {
			full++
		}
		if isPodReady(p) {
			ready++
			if isPodAvailable(p, rs.Spec.MinReadySeconds, now) {
				avail++
			}
		}
	}
	for _, p := range owned {
		if p.DeletionTimestamp != nil {
			terminating++
		}
	}
	st.Replicas = int32(len(active))
	st.FullyLabeledReplicas = full
	st.ReadyReplicas = ready
	st.AvailableReplicas = avail
	st.TerminatingReplicas = &terminating
	st.ObservedGeneration = rs.Generation
	var conds []appsv1.ReplicaSetCondition
	for _, c := range st.Conditions {
		if c.Type != appsv1.ReplicaSetReplicaFailure {
			conds = append(conds, c)
		}
	}
	if manageErr != nil {
		reason := "FailedCreate"
		if int32(len(active)) > int32Val(rs.Spec.Replicas, 1) {
			reason = "FailedDelete"
		}
		conds = append(conds, appsv1.ReplicaSetCondition{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
			Reason: reason, Message: manageErr.Error(), LastTransitionTime: metav1.NewTime(now)})
		for _, c := range st.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure && c.Reason == reason && c.Message == manageErr.Error() {
				conds[len(conds)-1].LastTransitionTime = c.LastTransitionTime
			}
		}
	}
	st.Conditions = conds
	return st
}

func (r *ReplicaSet) manage(ctx context.Context, key string, rs *appsv1.ReplicaSet, active []*corev1.Pod) error {
	want := int(int32Val(rs.Spec.Replicas, 1))
	diff := len(active) - want
	switch {
	case diff < 0:
		n := min(-diff, BurstReplicas)
		r.exp.Expect(key, n, nil)
		ref := newControllerRef(rs, gvkReplicaSet)
		created, err := slowStartBatch(ctx, n, func(ctx context.Context) error {
			p := podFromTemplate(&rs.Spec.Template, rs.Namespace, rs.Name+"-", ref)
			_, err := storeapi.Create(ctx, r.cfg.Store, p)
			if err != nil && apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		})
		if skipped := n - created; skipped > 0 {
			r.exp.LowerCreations(key, skipped)
		}
		if created > 0 {
			r.rec.Eventf(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created %d pod(s)", created)
		}
		if err != nil {
			if created < n && !errors.Is(err, context.Canceled) {
				r.rec.Eventf(rs, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
			}
			return fmt.Errorf("replicaset %s: create pods: %w", key, err)
		}
	case diff > 0:
		n := min(diff, BurstReplicas)
		victims := append([]*corev1.Pod(nil), active...)
		sortPodsForDeletion(victims)
		victims = victims[:n]
		uids := make([]string, len(victims))
		for i, p := range victims {
			uids[i] = string(p.UID)
		}
		r.exp.Expect(key, 0, uids)
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		for _, p := range victims {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if _, err := deletePodByUID(ctx, r.cfg.Store, r.exp, key, p); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		r.rec.Eventf(rs, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted %d pod(s)", n-len(errs))
		if len(errs) > 0 {
			return fmt.Errorf("replicaset %s: delete pods: %w", key, errors.Join(errs...))
		}
	}
	return nil
}

// slowStartBatch calls fn n times in batches of 1, 2, 4, ... running each
// batch in parallel, and stops at the first batch with an error (so a
// failing create is not repeated hundreds of times). It returns how many
// calls succeeded.
func slowStartBatch(ctx context.Context, n int, fn func(context.Context) error) (int, error) {
	done := 0
	for batch := 1; done < n; batch *= 2 {
		size := min(batch, n-done)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		ok := 0
		sem := make(chan struct{}, 64)
		for range size {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				err := fn(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				} else {
					ok++
				}
			}()
		}
		wg.Wait()
		done += ok
		if len(errs) > 0 {
			return done, errors.Join(errs...)
		}
	}
	return done, nil
}
