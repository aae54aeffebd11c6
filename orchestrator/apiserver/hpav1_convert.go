package apiserver

import (
	"encoding/json"
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Annotations in which kube-apiserver keeps, on an autoscaling/v1
// HorizontalPodAutoscaler, what only autoscaling/v2 can express.
const (
	// hpaMetricsAnnotation holds, as JSON []autoscalingv1.MetricSpec, the
	// metrics beyond the cpu Utilization target.
	hpaMetricsAnnotation = "autoscaling.alpha.kubernetes.io/metrics"
	// hpaCurrentMetricsAnnotation holds, as JSON
	// []autoscalingv1.MetricStatus, the current metrics beyond cpu.
	hpaCurrentMetricsAnnotation = "autoscaling.alpha.kubernetes.io/current-metrics"
	// hpaConditionsAnnotation holds status.conditions as JSON.
	hpaConditionsAnnotation = "autoscaling.alpha.kubernetes.io/conditions"
	// hpaBehaviorAnnotation holds spec.behavior as JSON.
	hpaBehaviorAnnotation = "autoscaling.alpha.kubernetes.io/behavior"
)

// isCPUUtilization reports whether m is a Resource cpu Utilization metric,
// the one metric autoscaling/v1 has a field for.
func isCPUUtilization(m autoscalingv2.MetricSpec) bool {
	return m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil &&
		m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.Type == autoscalingv2.UtilizationMetricType
}

// isCPUStatus reports whether m is the Resource cpu entry of
// status.currentMetrics.
func isCPUStatus(m autoscalingv2.MetricStatus) bool {
	return m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU
}

// hpaToV1 converts a stored autoscaling/v2 HorizontalPodAutoscaler to
// autoscaling/v1 as kube-apiserver does: the first cpu Utilization
// metric becomes targetCPUUtilizationPercentage, the cpu entry of
// currentMetrics currentCPUUtilizationPercentage; spec.behavior and
// status.conditions go into annotations. in is not modified.
func hpaToV1(in *autoscalingv2.HorizontalPodAutoscaler) (*autoscalingv1.HorizontalPodAutoscaler, error) {
	out := &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: *in.ObjectMeta.DeepCopy()}
	ref := in.Spec.ScaleTargetRef
	out.Spec = autoscalingv1.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: ref.Kind, Name: ref.Name, APIVersion: ref.APIVersion},
		MinReplicas:    copyInt32(in.Spec.MinReplicas),
		MaxReplicas:    in.Spec.MaxReplicas,
	}
	cpu := firstCPUUtilization(in.Spec.Metrics)
	if cpu >= 0 {
		out.Spec.TargetCPUUtilizationPercentage = copyInt32(in.Spec.Metrics[cpu].Resource.Target.AverageUtilization)
	}
	out.Status = autoscalingv1.HorizontalPodAutoscalerStatus{
		ObservedGeneration: copyInt64(in.Status.ObservedGeneration),
		LastScaleTime:      in.Status.LastScaleTime.DeepCopy(),
		CurrentReplicas:    in.Status.CurrentReplicas,
		DesiredReplicas:    in.Status.DesiredReplicas,
	}
	cur := firstCPUStatus(in.Status.CurrentMetrics)
	if cur >= 0 {
		out.Status.CurrentCPUUtilizationPercentage = copyInt32(in.Status.CurrentMetrics[cur].Resource.Current.AverageUtilization)
	}
	// What the client sent in these annotations was consumed on write;
	// the stored object's own fields are their truth.
	for _, k := range []string{hpaMetricsAnnotation, hpaCurrentMetricsAnnotation, hpaConditionsAnnotation, hpaBehaviorAnnotation} {
		delete(out.Annotations, k)
	}
	setJSON := func(key string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("apiserver: encode %s: %w", key, err)
		}
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		out.Annotations[key] = string(b)
		return nil
	}
	if others := otherMetricsV1(in.Spec.Metrics, cpu); len(others) > 0 {
		if err := setJSON(hpaMetricsAnnotation, others); err != nil {
			return nil, err
		}
	}
	if others := otherStatusV1(in.Status.CurrentMetrics, cur); len(others) > 0 {
		if err := setJSON(hpaCurrentMetricsAnnotation, others); err != nil {
			return nil, err
		}
	}
	if in.Spec.Behavior != nil {
		if err := setJSON(hpaBehaviorAnnotation, in.Spec.Behavior); err != nil {
			return nil, err
		}
	}
	if len(in.Status.Conditions) > 0 {
		conds := make([]autoscalingv1.HorizontalPodAutoscalerCondition, len(in.Status.Conditions))
		for i, c := range in.Status.Conditions {
			conds[i] = autoscalingv1.HorizontalPodAutoscalerCondition{
				Type: autoscalingv1.HorizontalPodAutoscalerConditionType(c.Type), Status: c.Status,
				LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
			}
		}
		if err := setJSON(hpaConditionsAnnotation, conds); err != nil {
			return nil, err
		}
	}
	if len(out.Annotations) == 0 {
		out.Annotations = nil
	}
	return out, nil
}

// hpaFromV1 converts an autoscaling/v1 HorizontalPodAutoscaler to the
// stored autoscaling/v2 form. base is the stored object it replaces (nil
// on create): what v1 cannot express (metrics other than the cpu
// Utilization target, the non-cpu currentMetrics, conditions, behavior) is
// kept from it, so a v1 read-modify-write loses nothing. A behavior
// annotation, when present, sets spec.behavior. in is not modified.
func hpaFromV1(in *autoscalingv1.HorizontalPodAutoscaler, base *autoscalingv2.HorizontalPodAutoscaler) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	if base == nil {
		base = &autoscalingv2.HorizontalPodAutoscaler{}
	}
	out := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: *in.ObjectMeta.DeepCopy()}
	ref := in.Spec.ScaleTargetRef
	out.Spec = autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: ref.Kind, Name: ref.Name, APIVersion: ref.APIVersion},
		MinReplicas:    copyInt32(in.Spec.MinReplicas),
		MaxReplicas:    in.Spec.MaxReplicas,
		Behavior:       base.Spec.Behavior.DeepCopy(),
	}
	if b, ok := in.Annotations[hpaBehaviorAnnotation]; ok {
		var beh autoscalingv2.HorizontalPodAutoscalerBehavior
		if err := json.Unmarshal([]byte(b), &beh); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("annotation %s: %v", hpaBehaviorAnnotation, err))
		}
		out.Spec.Behavior = &beh
	}
	// Metrics: the stored list with its first cpu Utilization metric
	// replaced (or removed, or added in front) unless the metrics
	// annotation says otherwise (then, as upstream: cpu first, then the
	// annotation's).
	cpu := firstCPUUtilization(base.Spec.Metrics)
	for _, m := range base.Spec.Metrics {
		out.Spec.Metrics = append(out.Spec.Metrics, *m.DeepCopy())
	}
	if a, ok := in.Annotations[hpaMetricsAnnotation]; ok {
		var ann []autoscalingv1.MetricSpec
		if err := json.Unmarshal([]byte(a), &ann); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("annotation %s: %v", hpaMetricsAnnotation, err))
		}
		if !apiequality.Semantic.DeepEqual(emptyNil(ann), emptyNil(otherMetricsV1(base.Spec.Metrics, cpu))) {
			out.Spec.Metrics, cpu = nil, -1
			for _, m := range ann {
				out.Spec.Metrics = append(out.Spec.Metrics, metricSpecFromV1(m))
			}
		}
	}
	switch t := in.Spec.TargetCPUUtilizationPercentage; {
	case t == nil && cpu >= 0:
		out.Spec.Metrics = append(out.Spec.Metrics[:cpu], out.Spec.Metrics[cpu+1:]...)
	case t != nil && cpu >= 0:
		out.Spec.Metrics[cpu].Resource.Target.AverageUtilization = copyInt32(t)
	case t != nil:
		out.Spec.Metrics = append([]autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: copyInt32(t)}},
		}}, out.Spec.Metrics...)
	}
	if len(out.Spec.Metrics) == 0 {
		out.Spec.Metrics = nil
	}
	out.Status = autoscalingv2.HorizontalPodAutoscalerStatus{
		ObservedGeneration: copyInt64(in.Status.ObservedGeneration),
		LastScaleTime:      in.Status.LastScaleTime.DeepCopy(),
		CurrentReplicas:    in.Status.CurrentReplicas,
		DesiredReplicas:    in.Status.DesiredReplicas,
	}
	cur := firstCPUStatus(base.Status.CurrentMetrics)
	for _, m := range base.Status.CurrentMetrics {
		out.Status.CurrentMetrics = append(out.Status.CurrentMetrics, *m.DeepCopy())
	}
	if a, ok := in.Annotations[hpaCurrentMetricsAnnotation]; ok {
		var ann []autoscalingv1.MetricStatus
		if err := json.Unmarshal([]byte(a), &ann); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("annotation %s: %v", hpaCurrentMetricsAnnotation, err))
		}
		if !apiequality.Semantic.DeepEqual(emptyNil(ann), emptyNil(otherStatusV1(base.Status.CurrentMetrics, cur))) {
			out.Status.CurrentMetrics, cur = nil, -1
			for _, m := range ann {
				out.Status.CurrentMetrics = append(out.Status.CurrentMetrics, metricStatusFromV1(m))
			}
		}
	}
	switch c := in.Status.CurrentCPUUtilizationPercentage; {
	case c == nil && cur >= 0:
		out.Status.CurrentMetrics = append(out.Status.CurrentMetrics[:cur], out.Status.CurrentMetrics[cur+1:]...)
	case c != nil && cur >= 0:
		out.Status.CurrentMetrics[cur].Resource.Current.AverageUtilization = copyInt32(c)
	case c != nil:
		out.Status.CurrentMetrics = append([]autoscalingv2.MetricStatus{{
			Type:     autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: copyInt32(c)}},
		}}, out.Status.CurrentMetrics...)
	}
	if len(out.Status.CurrentMetrics) == 0 {
		out.Status.CurrentMetrics = nil
	}
	for _, c := range base.Status.Conditions {
		out.Status.Conditions = append(out.Status.Conditions, *c.DeepCopy())
	}
	for _, k := range []string{hpaMetricsAnnotation, hpaCurrentMetricsAnnotation, hpaConditionsAnnotation, hpaBehaviorAnnotation} {
		delete(out.Annotations, k)
	}
	if len(out.Annotations) == 0 {
		out.Annotations = nil
	}
	return out, nil
}

// firstCPUUtilization is the index of the metric autoscaling/v1's
// targetCPUUtilizationPercentage stands for, or -1.
func firstCPUUtilization(ms []autoscalingv2.MetricSpec) int {
	for i, m := range ms {
		if isCPUUtilization(m) {
			return i
		}
	}
	return -1
}

// firstCPUStatus is the index of the currentMetrics entry
// currentCPUUtilizationPercentage stands for, or -1.
func firstCPUStatus(ms []autoscalingv2.MetricStatus) int {
	for i, m := range ms {
		if isCPUStatus(m) && m.Resource.Current.AverageUtilization != nil {
			return i
		}
	}
	return -1
}

// otherMetricsV1 are the metrics but the one at skip, in v1's shape.
func otherMetricsV1(ms []autoscalingv2.MetricSpec, skip int) []autoscalingv1.MetricSpec {
	var out []autoscalingv1.MetricSpec
	for i, m := range ms {
		if i != skip {
			out = append(out, metricSpecToV1(m))
		}
	}
	return out
}

// otherStatusV1 are the current metrics but the one at skip, in v1's
// shape.
func otherStatusV1(ms []autoscalingv2.MetricStatus, skip int) []autoscalingv1.MetricStatus {
	var out []autoscalingv1.MetricStatus
	for i, m := range ms {
		if i != skip {
			out = append(out, metricStatusToV1(m))
		}
	}
	return out
}

// emptyNil makes an empty slice nil, so that "[]" equals "absent".
func emptyNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func copyInt32(p *int32) *int32 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func copyInt64(p *int64) *int64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
