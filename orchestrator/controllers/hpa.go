package controllers

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
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

// ResourceMetricsSource is a [MetricsSource] that also supplies other
// resources' usage (memory), as metrics-server's resource metrics API.
type ResourceMetricsSource interface {
	MetricsSource
	// PodUsage returns the usage of resource name (cpu, memory) of each
	// pod of namespace that has a sample.
	PodUsage(ctx context.Context, namespace string, name corev1.ResourceName) (map[string]resource.Quantity, error)
}

// StaticMetrics is an in-memory [ResourceMetricsSource] that a node agent or a test sets.
type StaticMetrics struct {
	mu    sync.Mutex
	usage map[string]map[string]int64
	other map[corev1.ResourceName]map[string]map[string]resource.Quantity
}

// SetUsage records a pod's usage of a resource other than cpu (memory).
func (m *StaticMetrics) SetUsage(namespace, pod string, name corev1.ResourceName, q resource.Quantity) {
	if name == corev1.ResourceCPU {
		m.Set(namespace, pod, q.MilliValue())
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.other == nil {
		m.other = map[corev1.ResourceName]map[string]map[string]resource.Quantity{}
	}
	if m.other[name] == nil {
		m.other[name] = map[string]map[string]resource.Quantity{}
	}
	if m.other[name][namespace] == nil {
		m.other[name][namespace] = map[string]resource.Quantity{}
	}
	m.other[name][namespace][pod] = q
}

// PodUsage implements [ResourceMetricsSource].
func (m *StaticMetrics) PodUsage(ctx context.Context, namespace string, name corev1.ResourceName) (map[string]resource.Quantity, error) {
	out := map[string]resource.Quantity{}
	if name == corev1.ResourceCPU {
		cpu, _ := m.PodCPU(ctx, namespace)
		for k, v := range cpu {
			out[k] = *resource.NewMilliQuantity(v, resource.DecimalSI)
		}
		return out, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range m.other[name][namespace] {
		out[k] = v
	}
	return out, nil
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

// HPA is the HorizontalPodAutoscaler reconciler (autoscaling/v2): every
// sync period it computes, for each Resource (or ContainerResource)
// metric — cpu or memory, as averageUtilization of the pods' requests or
// as averageValue — the replicas that bring it to target (outside a 10 %
// tolerance) and takes the largest; spec.behavior then applies
// (stabilizationWindowSeconds, scaleUp/scaleDown policies of Pods or
// Percent per periodSeconds, selectPolicy Max/Min/Disabled; the defaults
// are upstream's: up by max(100 %, 4 pods) per 15 s at once, down by up to
// 100 % per 15 s after a 5 minute window), clamps to min/maxReplicas and
// writes the target's replicas (Deployment, ReplicaSet or StatefulSet)
// and status. Pods, Object and External metrics need the custom and
// external metrics APIs, which tugboat does not serve: such a metric
// reports ScalingActive=False.
type HPA struct {
	cfg     Config
	hpas    controller.Lister[*autoscalingv2.HorizontalPodAutoscaler]
	pods    controller.Lister[*corev1.Pod]
	metrics MetricsSource
	rec     *controller.Recorder
	mu      sync.Mutex
	recs    map[string][]timedRec
	events  map[string][]scaleEvent
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
		pods: controller.ListerFor[*corev1.Pod](cfg.Informers), metrics: metrics, recs: map[string][]timedRec{}, events: map[string][]scaleEvent{},
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
	return runWithRecorder(ctx, r.rec, r.Controller)
}

// scaleTarget reads replicas and selector of the HPA's target.
func (r *HPA) scaleTarget(ctx context.Context, h *autoscalingv2.HorizontalPodAutoscaler) (runtime.Object, int32, *metav1.LabelSelector, error) {
	ref := h.Spec.ScaleTargetRef
	switch ref.Kind {
	case "Deployment":
		d, err := storeapi.Get[*appsv1.Deployment](ctx, r.cfg.Store, h.Namespace, ref.Name)
		if err != nil {
			return nil, 0, nil, err
		}
		return d, int32Val(d.Spec.Replicas, 1), d.Spec.Selector, nil
	case "ReplicaSet":
		rs, err := storeapi.Get[*appsv1.ReplicaSet](ctx, r.cfg.Store, h.Namespace, ref.Name)
		if err != nil {
			return nil, 0, nil, err
		}
		return rs, int32Val(rs.Spec.Replicas, 1), rs.Spec.Selector, nil
	case "StatefulSet":
		s, err := storeapi.Get[*appsv1.StatefulSet](ctx, r.cfg.Store, h.Namespace, ref.Name)
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

// Reconcile evaluates one HPA and requeues itself every sync period.
func (r *HPA) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name := controller.SplitKey(key)
	h, ok := r.hpas.Get(ns, name)
	if !ok {
		r.mu.Lock()
		delete(r.recs, key)
		delete(r.events, key)
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
		if _, err := storeapi.UpdateStatus(ctx, r.cfg.Store, up); err != nil && !apierrors.IsNotFound(err) {
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
	sel, serr := metav1.LabelSelectorAsSelector(selector)
	if serr != nil || r.metrics == nil {
		setHPACond(&st, autoscalingv2.ScalingActive, corev1.ConditionFalse, hpaFailedGetMetric, "the HPA was unable to compute the replica count: no resource metrics", now)
		return again, write()
	}
	pods := r.pods.List(ns, sel)
	specs := h.Spec.Metrics
	if len(specs) == 0 {
		// The autoscaling default: 80 % CPU utilization.
		specs = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(80))}}}}
	}
	proposed, metricName := int32(-1), ""
	var statuses []autoscalingv2.MetricStatus
	var lastErr, lastReason string
	for _, spec := range specs {
		n, ms, reason, err := r.replicasForMetric(ctx, ns, spec, pods, current)
		if err != nil {
			lastErr, lastReason = err.Error(), reason
			continue
		}
		statuses = append(statuses, ms)
		if n > proposed {
			proposed, metricName = n, describeMetric(spec)
		}
	}
	if proposed < 0 {
		setHPACond(&st, autoscalingv2.ScalingActive, corev1.ConditionFalse, lastReason, "the HPA was unable to compute the replica count: "+lastErr, now)
		return again, write()
	}
	setHPACond(&st, autoscalingv2.ScalingActive, corev1.ConditionTrue, hpaValidMetricFound,
		"the HPA was able to successfully calculate a replica count from "+metricName, now)
	st.CurrentMetrics = statuses
	desired, ableReason, ableMsg, limitReason, limitMsg := r.normalize(key, h, current, proposed, minR, maxR, now)
	limited := corev1.ConditionFalse
	if limitReason != hpaDesiredWithinRange {
		limited = corev1.ConditionTrue
	}
	setHPACond(&st, autoscalingv2.ScalingLimited, limited, limitReason, limitMsg, now)
	setHPACond(&st, autoscalingv2.AbleToScale, corev1.ConditionTrue, ableReason, ableMsg, now)
	st.DesiredReplicas = desired
	if desired != current {
		up := target.DeepCopyObject()
		setReplicas(up, desired)
		if _, err := r.cfg.Store.Update(ctx, up, metav1.UpdateOptions{}); err != nil {
			setHPACond(&st, autoscalingv2.AbleToScale, corev1.ConditionFalse, hpaFailedUpdateScale, err.Error(), now)
			_ = write()
			return controller.Result{}, fmt.Errorf("hpa %s: rescale: %w", key, err)
		}
		r.recordScale(key, current, desired, now)
		setHPACond(&st, autoscalingv2.AbleToScale, corev1.ConditionTrue, hpaSucceededRescale, fmt.Sprintf("the HPA controller was able to update the target scale to %d", desired), now)
		r.rec.Eventf(h, corev1.EventTypeNormal, "SuccessfulRescale", "New size: %d; reason: %s %s target", desired, metricName,
			map[bool]string{true: "above", false: "below"}[desired > current])
		t := metav1.NewTime(now)
		st.LastScaleTime = &t
	}
	st.ObservedGeneration = &h.Generation
	return again, write()
}

// replicasForMetric computes the replicas one metric asks for, with its status.
func (r *HPA) replicasForMetric(ctx context.Context, ns string, spec autoscalingv2.MetricSpec, pods []*corev1.Pod, current int32) (int32, autoscalingv2.MetricStatus, string, error) {
	var name corev1.ResourceName
	var target autoscalingv2.MetricTarget
	container := ""
	switch {
	case spec.Type == autoscalingv2.ResourceMetricSourceType && spec.Resource != nil:
		name, target = spec.Resource.Name, spec.Resource.Target
	case spec.Type == autoscalingv2.ContainerResourceMetricSourceType && spec.ContainerResource != nil:
		name, target, container = spec.ContainerResource.Name, spec.ContainerResource.Target, spec.ContainerResource.Container
	default:
		return 0, autoscalingv2.MetricStatus{}, "FailedGet" + string(spec.Type) + "Metric",
			fmt.Errorf("%s metrics need the custom/external metrics API, which is not served", spec.Type)
	}
	reason := "FailedGetResourceMetric"
	if container != "" {
		reason = "FailedGetContainerResourceMetric"
	}
	usage, err := r.usage(ctx, ns, name)
	if err != nil {
		return 0, autoscalingv2.MetricStatus{}, reason, err
	}
	var used, requested, counted int64
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		u, ok := usage[p.Name]
		if !ok {
			continue
		}
		var req int64
		for _, c := range p.Spec.Containers {
			if container == "" || c.Name == container {
				q := c.Resources.Requests[name]
				req += q.MilliValue()
			}
		}
		if target.Type == autoscalingv2.UtilizationMetricType && req == 0 {
			return 0, autoscalingv2.MetricStatus{}, reason, fmt.Errorf("missing request for %s in pod %s", name, p.Name)
		}
		used += u.MilliValue()
		requested += req
		counted++
	}
	if counted == 0 {
		return 0, autoscalingv2.MetricStatus{}, reason, fmt.Errorf("did not receive metrics for any ready pods")
	}
	avg := resource.NewMilliQuantity(used/counted, resource.DecimalSI)
	if name == corev1.ResourceMemory {
		avg = resource.NewQuantity(used/counted/1000, resource.BinarySI)
	}
	cur := autoscalingv2.MetricValueStatus{AverageValue: avg}
	var ratio float64
	switch target.Type {
	case autoscalingv2.UtilizationMetricType:
		if target.AverageUtilization == nil || *target.AverageUtilization <= 0 {
			return 0, autoscalingv2.MetricStatus{}, reason, fmt.Errorf("invalid averageUtilization target for %s", name)
		}
		util := int32(used * 100 / requested)
		cur.AverageUtilization = &util
		ratio = float64(used*100) / float64(requested) / float64(*target.AverageUtilization)
	case autoscalingv2.AverageValueMetricType:
		if target.AverageValue == nil || target.AverageValue.MilliValue() <= 0 {
			return 0, autoscalingv2.MetricStatus{}, reason, fmt.Errorf("invalid averageValue target for %s", name)
		}
		ratio = float64(used) / float64(counted) / float64(target.AverageValue.MilliValue())
	default:
		return 0, autoscalingv2.MetricStatus{}, reason, fmt.Errorf("target type %q is not supported for resource %s", target.Type, name)
	}
	ms := autoscalingv2.MetricStatus{Type: spec.Type}
	if container != "" {
		ms.ContainerResource = &autoscalingv2.ContainerResourceMetricStatus{Name: name, Container: container, Current: cur}
	} else {
		ms.Resource = &autoscalingv2.ResourceMetricStatus{Name: name, Current: cur}
	}
	if math.Abs(ratio-1) <= HPATolerance {
		return current, ms, "", nil
	}
	return int32(math.Ceil(ratio * float64(counted))), ms, "", nil
}

// usage reads pod usage of a resource from the metrics source.
func (r *HPA) usage(ctx context.Context, ns string, name corev1.ResourceName) (map[string]resource.Quantity, error) {
	if rs, ok := r.metrics.(ResourceMetricsSource); ok {
		return rs.PodUsage(ctx, ns, name)
	}
	if name != corev1.ResourceCPU {
		return nil, fmt.Errorf("the metrics source reports no %s usage", name)
	}
	cpu, err := r.metrics.PodCPU(ctx, ns)
	if err != nil {
		return nil, err
	}
	out := map[string]resource.Quantity{}
	for k, v := range cpu {
		out[k] = *resource.NewMilliQuantity(v, resource.DecimalSI)
	}
	return out, nil
}

func describeMetric(spec autoscalingv2.MetricSpec) string {
	var name corev1.ResourceName
	var t autoscalingv2.MetricTarget
	switch {
	case spec.Resource != nil:
		name, t = spec.Resource.Name, spec.Resource.Target
	case spec.ContainerResource != nil:
		name, t = spec.ContainerResource.Name, spec.ContainerResource.Target
	}
	if t.Type == autoscalingv2.UtilizationMetricType {
		return string(name) + " resource utilization (percentage of request)"
	}
	return string(name) + " resource"
}

// scaleEvent is one rescale the HPA made, for its policies' periods.
type scaleEvent struct {
	at     time.Time
	change int32 // added (>0) or removed (<0) replicas
}

// Upstream's default behavior.
func defaultScaleUp() *autoscalingv2.HPAScalingRules {
	return &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(0)), SelectPolicy: ptr(autoscalingv2.MaxChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: hpaScaleUpPods, PeriodSeconds: 15},
			{Type: autoscalingv2.PercentScalingPolicy, Value: hpaScaleUpPercent, PeriodSeconds: 15}}}
}

func defaultScaleDown() *autoscalingv2.HPAScalingRules {
	return &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(HPADownscaleWindow / time.Second)), SelectPolicy: ptr(autoscalingv2.MaxChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}}}
}

// hpaRules returns the behavior's rules with upstream's defaults filled in.
func hpaRules(h *autoscalingv2.HorizontalPodAutoscaler) (up, down *autoscalingv2.HPAScalingRules) {
	up, down = defaultScaleUp(), defaultScaleDown()
	if b := h.Spec.Behavior; b != nil {
		merge := func(dst *autoscalingv2.HPAScalingRules, src *autoscalingv2.HPAScalingRules) {
			if src == nil {
				return
			}
			if src.StabilizationWindowSeconds != nil {
				dst.StabilizationWindowSeconds = src.StabilizationWindowSeconds
			}
			if src.SelectPolicy != nil {
				dst.SelectPolicy = src.SelectPolicy
			}
			if len(src.Policies) > 0 {
				dst.Policies = src.Policies
			}
		}
		merge(up, b.ScaleUp)
		merge(down, b.ScaleDown)
	}
	return up, down
}

// normalize turns the metrics' proposal into the replicas to set, as
// upstream's normalizeDesiredReplicasWithBehaviors: stabilization (the
// lowest recommendation of the scale-up window, the highest of the
// scale-down window), then the scaling policies' rate limits, then
// min/maxReplicas. It returns the reasons for AbleToScale and ScalingLimited.
func (r *HPA) normalize(key string, h *autoscalingv2.HorizontalPodAutoscaler, current, proposed, minR, maxR int32, now time.Time) (desired int32, ableReason, ableMsg, limitReason, limitMsg string) {
	upRules, downRules := hpaRules(h)
	r.mu.Lock()
	defer r.mu.Unlock()
	// Stabilization.
	upWin := time.Duration(int32Val(upRules.StabilizationWindowSeconds, 0)) * time.Second
	downWin := time.Duration(int32Val(downRules.StabilizationWindowSeconds, 300)) * time.Second
	upRec, downRec := proposed, proposed
	longest := max(upWin, downWin)
	var kept []timedRec
	for _, rc := range r.recs[key] {
		if now.Sub(rc.at) > longest {
			continue
		}
		kept = append(kept, rc)
		if now.Sub(rc.at) < upWin {
			upRec = min(upRec, rc.replicas)
		}
		if now.Sub(rc.at) < downWin {
			downRec = max(downRec, rc.replicas)
		}
	}
	r.recs[key] = append(kept, timedRec{at: now, replicas: proposed})
	stabilized := current
	if stabilized < upRec {
		stabilized = upRec
	}
	if stabilized > downRec {
		stabilized = downRec
	}
	ableReason, ableMsg = hpaReadyForNewScale, "recommended size matches current size"
	switch {
	case stabilized != proposed && proposed < current:
		ableReason, ableMsg = hpaScaleDownStabilized, "recent recommendations were higher than current one, applying the highest recent recommendation"
	case stabilized != proposed && proposed > current:
		ableReason, ableMsg = "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation"
	}
	// Rate limits from the policies, over the scale events of their periods.
	changed := func(period int32, up bool) int32 {
		var n int32
		for _, ev := range r.events[key] {
			if now.Sub(ev.at) < time.Duration(period)*time.Second && (ev.change > 0) == up {
				if up {
					n += ev.change
				} else {
					n -= ev.change
				}
			}
		}
		return n
	}
	desired = stabilized
	limitReason, limitMsg = hpaDesiredWithinRange, "the desired count is within the acceptable range"
	switch {
	case desired > current:
		limit := current
		if sp := upRules.SelectPolicy; sp == nil || *sp != autoscalingv2.DisabledPolicySelect {
			pickMin := sp != nil && *sp == autoscalingv2.MinChangePolicySelect
			limit = math.MinInt32
			if pickMin {
				limit = math.MaxInt32
			}
			for _, p := range upRules.Policies {
				start := current - changed(p.PeriodSeconds, true) + changed(p.PeriodSeconds, false)
				v := start + p.Value
				if p.Type == autoscalingv2.PercentScalingPolicy {
					v = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
				}
				if pickMin {
					limit = min(limit, v)
				} else {
					limit = max(limit, v)
				}
			}
			limit = max(limit, current)
		}
		if maxR > limit {
			if desired > limit {
				desired, limitReason, limitMsg = limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
			}
		} else if desired > maxR {
			desired, limitReason, limitMsg = maxR, hpaTooManyReplicas, "the desired replica count is more than the maximum replica count"
		}
	case desired < current:
		limit := current
		if sp := downRules.SelectPolicy; sp == nil || *sp != autoscalingv2.DisabledPolicySelect {
			pickMin := sp != nil && *sp == autoscalingv2.MinChangePolicySelect
			limit = math.MaxInt32
			if pickMin {
				limit = math.MinInt32
			}
			for _, p := range downRules.Policies {
				start := current - changed(p.PeriodSeconds, true) + changed(p.PeriodSeconds, false)
				v := start - p.Value
				if p.Type == autoscalingv2.PercentScalingPolicy {
					v = int32(float64(start) * (1 - float64(p.Value)/100))
				}
				if pickMin { // the smallest change: the highest floor
					limit = max(limit, v)
				} else {
					limit = min(limit, v)
				}
			}
			limit = min(limit, current)
		}
		if minR < limit {
			if desired < limit {
				desired, limitReason, limitMsg = limit, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"
			}
		} else if desired < minR {
			desired, limitReason, limitMsg = minR, hpaTooFewReplicas, "the desired replica count is less than the minimum replica count"
		}
	}
	// The bounds always hold (a target outside them is brought inside).
	switch {
	case desired > maxR:
		desired, limitReason, limitMsg = maxR, hpaTooManyReplicas, "the desired replica count is more than the maximum replica count"
	case desired < minR:
		desired, limitReason, limitMsg = minR, hpaTooFewReplicas, "the desired replica count is less than the minimum replica count"
	}
	return desired, ableReason, ableMsg, limitReason, limitMsg
}

// recordScale remembers a rescale for the policies' periods (kept 30 min at most).
func (r *HPA) recordScale(key string, from, to int32, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var kept []scaleEvent
	for _, ev := range r.events[key] {
		if now.Sub(ev.at) <= 30*time.Minute {
			kept = append(kept, ev)
		}
	}
	r.events[key] = append(kept, scaleEvent{at: now, change: to - from})
}
