package controllers

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store"
)

// HPA timing and tolerance defaults, as upstream.
const (
	HPASyncPeriod          = 15 * time.Second
	HPATolerance           = 0.1
	HPADownscaleWindow     = 5 * time.Minute
	hpaScaleUpPods         = 4
	hpaScaleUpPercent      = 100
	hpaFailedGetMetric     = "FailedGetResourceMetric"
	hpaValidMetricFound    = "ValidMetricFound"
	hpaSucceededRescale    = "SucceededRescale"
	hpaReadyForNewScale    = "ReadyForNewScale"
	hpaTooFewReplicas      = "TooFewReplicas"
	hpaTooManyReplicas     = "TooManyReplicas"
	hpaDesiredWithinRange  = "DesiredWithinRange"
	hpaFailedGetScale      = "FailedGetScale"
	hpaFailedUpdateScale   = "FailedUpdateScale"
	hpaScaleDownStabilized = "ScaleDownStabilized"
)

// MetricsSource supplies pod CPU usage, as metrics-server does for
// upstream; the node agent fills it once it reports usage.
type MetricsSource interface {
	// PodCPU returns the CPU usage in millicores of each pod (by name) of
	// namespace that has a sample.
	PodCPU(ctx context.Context, namespace string) (map[string]int64, error)
}

// StaticMetrics is an in-memory [MetricsSource] that a node agent or a test sets.
type StaticMetrics struct {
	mu    sync.Mutex
	usage map[string]map[string]int64
}

// Set records a pod's CPU usage in millicores.
func (m *StaticMetrics) Set(namespace, pod string, millicores int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.usage == nil {
		m.usage = map[string]map[string]int64{}
	}
	if m.usage[namespace] == nil {
		m.usage[namespace] = map[string]int64{}
	}
	m.usage[namespace][pod] = millicores
}

// PodCPU implements [MetricsSource].
func (m *StaticMetrics) PodCPU(_ context.Context, namespace string) (map[string]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int64{}
	for k, v := range m.usage[namespace] {
		out[k] = v
	}
	return out, nil
}

// HPA is the HorizontalPodAutoscaler reconciler (autoscaling/v2, CPU
// utilization of pod requests): every sync period it computes
// ceil(current × utilization / target) outside a 10 % tolerance, limits
// scale-up to max(double, +4), keeps the highest recommendation of the
// last 5 minutes for scale-down, clamps to min/maxReplicas and writes the
// target's replicas (Deployment, ReplicaSet or StatefulSet) and status.
type HPA struct {
	cfg     Config
	hpas    controller.Lister[*autoscalingv2.HorizontalPodAutoscaler]
	pods    controller.Lister[*corev1.Pod]
	metrics MetricsSource
	rec     *controller.Recorder
	mu      sync.Mutex
	recs    map[string][]timedRec
	// Controller runs the reconciler.
	Controller *controller.Controller
}

type timedRec struct {
	at       time.Time
	replicas int32
}

// NewHPA builds the autoscaler over metrics (nil: no metrics yet, every
// HPA reports ScalingActive=False).
func NewHPA(cfg Config, metrics MetricsSource) *HPA {
	cfg = cfg.withDefaults()
	r := &HPA{cfg: cfg, hpas: controller.ListerFor[*autoscalingv2.HorizontalPodAutoscaler](cfg.Informers),
		pods: controller.ListerFor[*corev1.Pod](cfg.Informers), metrics: metrics, recs: map[string][]timedRec{},
		rec: controller.NewRecorder(cfg.Store, "horizontal-pod-autoscaler", cfg.Clock, cfg.Log)}
	c := controller.New("hpa", r, cfg.Workers, cfg.Clock, cfg.Log)
	r.Controller = c
	r.hpas.Inf.AddHandler(controller.Handler{OnAdd: c.EnqueueObject, OnUpdate: func(o, n runtime.Object) {
		if !equality.Semantic.DeepEqual(o.(*autoscalingv2.HorizontalPodAutoscaler).Spec, n.(*autoscalingv2.HorizontalPodAutoscaler).Spec) {
			c.EnqueueObject(n)
		}
	}})
	return r
}

// Run runs the reconciler and its recorder until ctx ends.
func (r *HPA) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.rec.Run(gctx) })
	g.Go(func() error { return r.Controller.Run(gctx) })
	return g.Wait()
}

// scaleTarget reads replicas and selector of the HPA's target.
func (r *HPA) scaleTarget(ctx context.Context, h *autoscalingv2.HorizontalPodAutoscaler) (runtime.Object, int32, *metav1.LabelSelector, error) {
	ref := h.Spec.ScaleTargetRef
	switch ref.Kind {
	case "Deployment":
		d, err := store.Get[*appsv1.Deployment](ctx, r.cfg.Store, h.Namespace, ref.Name)
		if err != nil {
			return nil, 0, nil, err
		}
		return d, int32Val(d.Spec.Replicas, 1), d.Spec.Selector, nil
	case "ReplicaSet":
		rs, err := store.Get[*appsv1.ReplicaSet](ctx, r.cfg.Store, h.Namespace, ref.Name)
		if err != nil {
			return nil, 0, nil, err
		}
		return rs, int32Val(rs.Spec.Replicas, 1), rs.Spec.Selector, nil
	case "StatefulSet":
		s, err := store.Get[*appsv1.StatefulSet](ctx, r.cfg.Store, h.Namespace, ref.Name)
		if err != nil {
			return nil, 0, nil, err
		}
		return s, int32Val(s.Spec.Replicas, 1), s.Spec.Selector, nil
	}
	return nil, 0, nil, fmt.Errorf("unsupported scale target kind %q", ref.Kind)
}

func setReplicas(obj runtime.Object, n int32) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec.Replicas = &n
	case *appsv1.ReplicaSet:
		o.Spec.Replicas = &n
	case *appsv1.StatefulSet:
		o.Spec.Replicas = &n
	}
}

func setHPACond(st *autoscalingv2.HorizontalPodAutoscalerStatus, t autoscalingv2.HorizontalPodAutoscalerConditionType, s corev1.ConditionStatus, reason, msg string, now time.Time) {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type == t {
			if c.Status != s {
				c.LastTransitionTime = metav1.NewTime(now)
			}
			c.Status, c.Reason, c.Message = s, reason, msg
			return
		}
	}
	st.Conditions = append(st.Conditions, autoscalingv2.HorizontalPodAutoscalerCondition{Type: t, Status: s, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(now)})
}

func cpuTarget(h *autoscalingv2.HorizontalPodAutoscaler) (int32, bool) {
	for _, m := range h.Spec.Metrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
			m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil {
			return *m.Resource.Target.AverageUtilization, true
		}
	}
	if len(h.Spec.Metrics) == 0 {
		return 80, true // the autoscaling default
	}
	return 0, false
}

// Reconcile evaluates one HPA and requeues itself every sync period.
func (r *HPA) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name := controller.SplitKey(key)
	h, ok := r.hpas.Get(ns, name)
	if !ok {
		r.mu.Lock()
		delete(r.recs, key)
		r.mu.Unlock()
		return controller.Result{}, nil
	}
	now := r.cfg.Clock.Now()
	again := controller.Result{RequeueAfter: HPASyncPeriod}
	st := *h.Status.DeepCopy()
	write := func() error {
		if equality.Semantic.DeepEqual(h.Status, st) {
			return nil
		}
		up := h.DeepCopy()
		up.Status = st
		if _, err := store.UpdateStatus(ctx, r.cfg.Store, up); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("hpa %s: status: %w", key, err)
		}
		return nil
	}
	target, current, selector, err := r.scaleTarget(ctx, h)
	if err != nil {
		setHPACond(&st, autoscalingv2.AbleToScale, corev1.ConditionFalse, hpaFailedGetScale, err.Error(), now)
		return again, write()
	}
	setHPACond(&st, autoscalingv2.AbleToScale, corev1.ConditionTrue, hpaReadyForNewScale, "recommended size matches current size", now)
	st.CurrentReplicas = current
	minR, maxR := int32Val(h.Spec.MinReplicas, 1), h.Spec.MaxReplicas
	targetUtil, ok := cpuTarget(h)
	sel, serr := metav1.LabelSelectorAsSelector(selector)
	if !ok || serr != nil || r.metrics == nil {
		setHPACond(&st, autoscalingv2.ScalingActive, corev1.ConditionFalse, hpaFailedGetMetric, "the HPA was unable to compute the replica count: no cpu utilization metrics", now)
		return again, write()
	}
	usage, err := r.metrics.PodCPU(ctx, ns)
	if err != nil {
		setHPACond(&st, autoscalingv2.ScalingActive, corev1.ConditionFalse, hpaFailedGetMetric, err.Error(), now)
		return again, write()
	}
	var used, requested, counted int64
	for _, p := range r.pods.List(ns, sel) {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		u, ok := usage[p.Name]
		if !ok {
			continue
		}
		var req int64
		for _, c := range p.Spec.Containers {
			q := c.Resources.Requests[corev1.ResourceCPU]
			req += q.MilliValue()
		}
		if req == 0 {
			setHPACond(&st, autoscalingv2.ScalingActive, corev1.ConditionFalse, hpaFailedGetMetric, fmt.Sprintf("missing request for cpu in pod %s", p.Name), now)
			return again, write()
		}
		used += u
		requested += req
		counted++
	}
	if counted == 0 {
		setHPACond(&st, autoscalingv2.ScalingActive, corev1.ConditionFalse, hpaFailedGetMetric, "did not receive metrics for any ready pods", now)
		return again, write()
	}
	setHPACond(&st, autoscalingv2.ScalingActive, corev1.ConditionTrue, hpaValidMetricFound, "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)", now)
	util := int32(used * 100 / requested)
	avg := resource.NewMilliQuantity(used/counted, resource.DecimalSI)
	st.CurrentMetrics = []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
		Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: &util, AverageValue: avg}}}}
	ratio := float64(util) / float64(targetUtil)
	desired := current
	if math.Abs(ratio-1) > HPATolerance {
		desired = int32(math.Ceil(ratio * float64(counted)))
	}
	// Scale-down stabilization: the highest recommendation of the window.
	r.mu.Lock()
	hist := append(r.recs[key], timedRec{at: now, replicas: desired})
	kept := hist[:0]
	stable := desired
	for _, rc := range hist {
		if now.Sub(rc.at) <= HPADownscaleWindow {
			kept = append(kept, rc)
			stable = max(stable, rc.replicas)
		}
	}
	r.recs[key] = kept
	r.mu.Unlock()
	reason := hpaDesiredWithinRange
	if desired < current {
		if stable > desired {
			reason = hpaScaleDownStabilized
		}
		desired = min(stable, current)
	}
	if desired > current {
		desired = min(desired, max(current*(100+hpaScaleUpPercent)/100, current+hpaScaleUpPods))
	}
	switch {
	case desired < minR:
		desired, reason = minR, hpaTooFewReplicas
	case desired > maxR:
		desired, reason = maxR, hpaTooManyReplicas
	}
	limited := corev1.ConditionFalse
	if reason == hpaTooFewReplicas || reason == hpaTooManyReplicas {
		limited = corev1.ConditionTrue
	}
	setHPACond(&st, autoscalingv2.ScalingLimited, limited, reason, "the desired count is within the acceptable range", now)
	st.DesiredReplicas = desired
	if desired != current {
		up := target.DeepCopyObject()
		setReplicas(up, desired)
		if _, err := r.cfg.Store.Update(ctx, up, metav1.UpdateOptions{}); err != nil {
			setHPACond(&st, autoscalingv2.AbleToScale, corev1.ConditionFalse, hpaFailedUpdateScale, err.Error(), now)
			_ = write()
			return controller.Result{}, fmt.Errorf("hpa %s: rescale: %w", key, err)
		}
		setHPACond(&st, autoscalingv2.AbleToScale, corev1.ConditionTrue, hpaSucceededRescale, fmt.Sprintf("the HPA controller was able to update the target scale to %d", desired), now)
		r.rec.Eventf(h, corev1.EventTypeNormal, "SuccessfulRescale", "New size: %d; reason: cpu resource utilization (percentage of request) %s target", desired,
			map[bool]string{true: "above", false: "below"}[desired > current])
		t := metav1.NewTime(now)
		st.LastScaleTime = &t
	}
	st.ObservedGeneration = &h.Generation
	return again, write()
}
