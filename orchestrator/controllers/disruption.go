package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Disruption computes PodDisruptionBudget status: expectedPods from the
// scale of the pods' owning controllers (Deployment, ReplicaSet,
// StatefulSet), currentHealthy from ready pods, desiredHealthy from
// minAvailable or maxUnavailable (integer, or percentage rounded up), and
// disruptionsAllowed, which the eviction path consults.
type Disruption struct {
	cfg  Config
	pdbs controller.Lister[*policyv1.PodDisruptionBudget]
	pods controller.Lister[*corev1.Pod]
	rss  controller.Lister[*appsv1.ReplicaSet]
	deps controller.Lister[*appsv1.Deployment]
	sts  controller.Lister[*appsv1.StatefulSet]
	// Controller runs the reconciler.
	Controller *controller.Controller
}

// NewDisruption builds the disruption (PDB status) reconciler.
func NewDisruption(cfg Config) *Disruption {
	cfg = cfg.withDefaults()
	r := &Disruption{cfg: cfg, pdbs: controller.ListerFor[*policyv1.PodDisruptionBudget](cfg.Informers),
		pods: controller.ListerFor[*corev1.Pod](cfg.Informers), rss: controller.ListerFor[*appsv1.ReplicaSet](cfg.Informers),
		deps: controller.ListerFor[*appsv1.Deployment](cfg.Informers), sts: controller.ListerFor[*appsv1.StatefulSet](cfg.Informers)}
	c := controller.New("disruption", r, cfg.Workers, cfg.Clock, cfg.Log)
	r.Controller = c
	r.pdbs.Inf.AddHandler(enqueueHandler(c, nil))
	byPod := func(o runtime.Object) {
		p := podOf(o)
		for _, pdb := range r.pdbs.List(p.Namespace, nil) {
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err == nil && sel.Matches(labels.Set(p.Labels)) {
				c.EnqueueObject(pdb)
			}
		}
	}
	r.pods.Inf.AddHandler(controller.Handler{OnAdd: byPod, OnUpdate: func(_, o runtime.Object) { byPod(o) }, OnDelete: byPod})
	byNamespace := func(o runtime.Object) {
		for _, pdb := range r.pdbs.List(controllerNamespace(o), nil) {
			c.EnqueueObject(pdb)
		}
	}
	for _, inf := range []*controller.Informer{r.deps.Inf, r.sts.Inf, r.rss.Inf} {
		inf.AddHandler(controller.Handler{OnUpdate: func(_, o runtime.Object) { byNamespace(o) }})
	}
	return r
}

func controllerNamespace(o runtime.Object) string {
	ns, _ := controller.SplitKey(controller.KeyOf(o))
	return ns
}

// Run runs the reconciler until ctx ends.
func (r *Disruption) Run(ctx context.Context) error { return r.Controller.Run(ctx) }

// scaleOf finds the scale of the controller that owns a pod, following
// ReplicaSet → Deployment.
func (r *Disruption) scaleOf(p *corev1.Pod) (types.UID, int32, bool) {
	ref := controllerRefOf(p)
	if ref == nil {
		return "", 0, false
	}
	switch ref.Kind {
	case "ReplicaSet":
		rs, ok := r.rss.Get(p.Namespace, ref.Name)
		if !ok || rs.UID != ref.UID {
			return "", 0, false
		}
		if dref := controllerRefOf(rs); dref != nil && dref.Kind == "Deployment" {
			if d, ok := r.deps.Get(p.Namespace, dref.Name); ok && d.UID == dref.UID {
				return d.UID, int32Val(d.Spec.Replicas, 1), true
			}
		}
		return rs.UID, int32Val(rs.Spec.Replicas, 1), true
	case "StatefulSet":
		s, ok := r.sts.Get(p.Namespace, ref.Name)
		if !ok || s.UID != ref.UID {
			return "", 0, false
		}
		return s.UID, int32Val(s.Spec.Replicas, 1), true
	}
	return "", 0, false
}

// Reconcile syncs one PDB's status.
func (r *Disruption) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name := controller.SplitKey(key)
	pdb, ok := r.pdbs.Get(ns, name)
	if !ok {
		return controller.Result{}, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return controller.Result{}, nil
	}
	var pods []*corev1.Pod
	if !sel.Empty() {
		pods = r.pods.List(ns, sel)
	}
	var healthy int32
	for _, p := range pods {
		if p.DeletionTimestamp == nil && isPodReady(p) {
			healthy++
		}
	}
	expected, desired, ok := r.expectations(pdb, pods)
	st := *pdb.Status.DeepCopy()
	st.ObservedGeneration = pdb.Generation
	st.CurrentHealthy = healthy
	st.DesiredHealthy = desired
	st.ExpectedPods = expected
	st.DisruptionsAllowed = max(healthy-desired, 0)
	if !ok {
		st.DisruptionsAllowed = 0
	}
	cond := metav1.Condition{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionTrue, Reason: policyv1.SufficientPodsReason,
		ObservedGeneration: pdb.Generation, LastTransitionTime: metav1.NewTime(r.cfg.Clock.Now())}
	if st.DisruptionsAllowed == 0 {
		cond.Status, cond.Reason = metav1.ConditionFalse, policyv1.InsufficientPodsReason
		if !ok {
			cond.Reason, cond.Message = policyv1.SyncFailedReason, "found no controllers for the pods of this budget"
		}
	}
	var conds []metav1.Condition
	for _, c := range st.Conditions {
		if c.Type == cond.Type {
			if c.Status == cond.Status {
				cond.LastTransitionTime = c.LastTransitionTime
			}
			continue
		}
		conds = append(conds, c)
	}
	st.Conditions = append(conds, cond)
	if equality.Semantic.DeepEqual(pdb.Status, st) {
		return controller.Result{}, nil
	}
	up := pdb.DeepCopy()
	up.Status = st
	if _, err := storeapi.UpdateStatus(ctx, r.cfg.Store, up); err != nil && !apierrors.IsNotFound(err) {
		return controller.Result{}, fmt.Errorf("pdb %s: update status: %w", key, err)
	}
	return controller.Result{}, nil
}

// expectations returns expectedPods and desiredHealthy; ok is false when
// they cannot be known (a percentage or maxUnavailable with pods that have
// no scalable controller).
func (r *Disruption) expectations(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod) (expected, desired int32, ok bool) {
	if mi := pdb.Spec.MinAvailable; mi != nil && mi.Type == intstr.Int {
		return int32(len(pods)), mi.IntVal, true
	}
	seen := map[types.UID]bool{}
	for _, p := range pods {
		uid, scale, found := r.scaleOf(p)
		if !found {
			return int32(len(pods)), 0, false
		}
		if !seen[uid] {
			seen[uid] = true
			expected += scale
		}
	}
	switch {
	case pdb.Spec.MinAvailable != nil:
		v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(expected), true)
		if err != nil {
			return expected, 0, false
		}
		return expected, int32(v), true
	case pdb.Spec.MaxUnavailable != nil:
		v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(expected), true)
		if err != nil {
			return expected, 0, false
		}
		return expected, max(expected-int32(v), 0), true
	}
	return expected, 0, false
}
