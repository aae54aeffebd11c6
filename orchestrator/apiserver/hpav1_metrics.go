package apiserver

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Conversions of the metrics that autoscaling/v1 carries in the
// autoscaling.alpha.kubernetes.io/metrics and .../current-metrics
// annotations, in autoscaling/v1's own MetricSpec and MetricStatus shapes
// (those of autoscaling/v2beta1), as kube-apiserver writes them.

func quantityOrZero(q *resource.Quantity) resource.Quantity {
	if q == nil {
		return resource.Quantity{}
	}
	return q.DeepCopy()
}

func copyQuantity(q *resource.Quantity) *resource.Quantity {
	if q == nil {
		return nil
	}
	c := q.DeepCopy()
	return &c
}

// nonZero is q, or nil when q is zero (v1 has no "unset" for these).
func nonZero(q resource.Quantity) *resource.Quantity {
	if q.IsZero() {
		return nil
	}
	c := q.DeepCopy()
	return &c
}

func metricSpecToV1(in autoscalingv2.MetricSpec) autoscalingv1.MetricSpec {
	out := autoscalingv1.MetricSpec{Type: autoscalingv1.MetricSourceType(in.Type)}
	switch {
	case in.Object != nil:
		o := in.Object
		out.Object = &autoscalingv1.ObjectMetricSource{
			Target:      autoscalingv1.CrossVersionObjectReference{Kind: o.DescribedObject.Kind, Name: o.DescribedObject.Name, APIVersion: o.DescribedObject.APIVersion},
			MetricName:  o.Metric.Name,
			Selector:    o.Metric.Selector.DeepCopy(),
			TargetValue: quantityOrZero(o.Target.Value), AverageValue: copyQuantity(o.Target.AverageValue),
		}
	case in.Pods != nil:
		p := in.Pods
		out.Pods = &autoscalingv1.PodsMetricSource{MetricName: p.Metric.Name, Selector: p.Metric.Selector.DeepCopy(), TargetAverageValue: quantityOrZero(p.Target.AverageValue)}
	case in.Resource != nil:
		r := in.Resource
		out.Resource = &autoscalingv1.ResourceMetricSource{Name: r.Name, TargetAverageUtilization: copyInt32(r.Target.AverageUtilization), TargetAverageValue: copyQuantity(r.Target.AverageValue)}
	case in.ContainerResource != nil:
		r := in.ContainerResource
		out.ContainerResource = &autoscalingv1.ContainerResourceMetricSource{Name: r.Name, Container: r.Container,
			TargetAverageUtilization: copyInt32(r.Target.AverageUtilization), TargetAverageValue: copyQuantity(r.Target.AverageValue)}
	case in.External != nil:
		e := in.External
		out.External = &autoscalingv1.ExternalMetricSource{MetricName: e.Metric.Name, MetricSelector: e.Metric.Selector.DeepCopy(),
			TargetValue: copyQuantity(e.Target.Value), TargetAverageValue: copyQuantity(e.Target.AverageValue)}
	}
	return out
}

func metricSpecFromV1(in autoscalingv1.MetricSpec) autoscalingv2.MetricSpec {
	out := autoscalingv2.MetricSpec{Type: autoscalingv2.MetricSourceType(in.Type)}
	switch {
	case in.Object != nil:
		o := in.Object
		t := autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: nonZero(o.TargetValue)}
		if o.AverageValue != nil {
			t = autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, Value: nonZero(o.TargetValue), AverageValue: copyQuantity(o.AverageValue)}
		}
		out.Object = &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference{Kind: o.Target.Kind, Name: o.Target.Name, APIVersion: o.Target.APIVersion},
			Metric:          autoscalingv2.MetricIdentifier{Name: o.MetricName, Selector: o.Selector.DeepCopy()},
			Target:          t,
		}
	case in.Pods != nil:
		p := in.Pods
		out.Pods = &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: p.MetricName, Selector: p.Selector.DeepCopy()},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: nonZero(p.TargetAverageValue)}}
	case in.Resource != nil:
		r := in.Resource
		out.Resource = &autoscalingv2.ResourceMetricSource{Name: r.Name, Target: resourceTarget(r.TargetAverageUtilization, r.TargetAverageValue)}
	case in.ContainerResource != nil:
		r := in.ContainerResource
		out.ContainerResource = &autoscalingv2.ContainerResourceMetricSource{Name: r.Name, Container: r.Container,
			Target: resourceTarget(r.TargetAverageUtilization, r.TargetAverageValue)}
	case in.External != nil:
		e := in.External
		t := autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: copyQuantity(e.TargetAverageValue)}
		if e.TargetValue != nil {
			t = autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: copyQuantity(e.TargetValue), AverageValue: copyQuantity(e.TargetAverageValue)}
		}
		out.External = &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: e.MetricName, Selector: e.MetricSelector.DeepCopy()}, Target: t}
	}
	return out
}

func resourceTarget(util *int32, avg *resource.Quantity) autoscalingv2.MetricTarget {
	if util != nil {
		return autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: copyInt32(util), AverageValue: copyQuantity(avg)}
	}
	return autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: copyQuantity(avg)}
}

func metricStatusToV1(in autoscalingv2.MetricStatus) autoscalingv1.MetricStatus {
	out := autoscalingv1.MetricStatus{Type: autoscalingv1.MetricSourceType(in.Type)}
	switch {
	case in.Object != nil:
		o := in.Object
		out.Object = &autoscalingv1.ObjectMetricStatus{
			Target:     autoscalingv1.CrossVersionObjectReference{Kind: o.DescribedObject.Kind, Name: o.DescribedObject.Name, APIVersion: o.DescribedObject.APIVersion},
			MetricName: o.Metric.Name, Selector: o.Metric.Selector.DeepCopy(),
			CurrentValue: quantityOrZero(o.Current.Value), AverageValue: copyQuantity(o.Current.AverageValue),
		}
	case in.Pods != nil:
		p := in.Pods
		out.Pods = &autoscalingv1.PodsMetricStatus{MetricName: p.Metric.Name, Selector: p.Metric.Selector.DeepCopy(), CurrentAverageValue: quantityOrZero(p.Current.AverageValue)}
	case in.Resource != nil:
		r := in.Resource
		out.Resource = &autoscalingv1.ResourceMetricStatus{Name: r.Name, CurrentAverageUtilization: copyInt32(r.Current.AverageUtilization), CurrentAverageValue: quantityOrZero(r.Current.AverageValue)}
	case in.ContainerResource != nil:
		r := in.ContainerResource
		out.ContainerResource = &autoscalingv1.ContainerResourceMetricStatus{Name: r.Name, Container: r.Container,
			CurrentAverageUtilization: copyInt32(r.Current.AverageUtilization), CurrentAverageValue: quantityOrZero(r.Current.AverageValue)}
	case in.External != nil:
		e := in.External
		out.External = &autoscalingv1.ExternalMetricStatus{MetricName: e.Metric.Name, MetricSelector: e.Metric.Selector.DeepCopy(),
			CurrentValue: quantityOrZero(e.Current.Value), CurrentAverageValue: copyQuantity(e.Current.AverageValue)}
	}
	return out
}

func metricStatusFromV1(in autoscalingv1.MetricStatus) autoscalingv2.MetricStatus {
	out := autoscalingv2.MetricStatus{Type: autoscalingv2.MetricSourceType(in.Type)}
	switch {
	case in.Object != nil:
		o := in.Object
		out.Object = &autoscalingv2.ObjectMetricStatus{
			DescribedObject: autoscalingv2.CrossVersionObjectReference{Kind: o.Target.Kind, Name: o.Target.Name, APIVersion: o.Target.APIVersion},
			Metric:          autoscalingv2.MetricIdentifier{Name: o.MetricName, Selector: o.Selector.DeepCopy()},
			Current:         autoscalingv2.MetricValueStatus{Value: nonZero(o.CurrentValue), AverageValue: copyQuantity(o.AverageValue)},
		}
	case in.Pods != nil:
		p := in.Pods
		out.Pods = &autoscalingv2.PodsMetricStatus{Metric: autoscalingv2.MetricIdentifier{Name: p.MetricName, Selector: p.Selector.DeepCopy()},
			Current: autoscalingv2.MetricValueStatus{AverageValue: nonZero(p.CurrentAverageValue)}}
	case in.Resource != nil:
		r := in.Resource
		out.Resource = &autoscalingv2.ResourceMetricStatus{Name: r.Name,
			Current: autoscalingv2.MetricValueStatus{AverageUtilization: copyInt32(r.CurrentAverageUtilization), AverageValue: nonZero(r.CurrentAverageValue)}}
	case in.ContainerResource != nil:
		r := in.ContainerResource
		out.ContainerResource = &autoscalingv2.ContainerResourceMetricStatus{Name: r.Name, Container: r.Container,
			Current: autoscalingv2.MetricValueStatus{AverageUtilization: copyInt32(r.CurrentAverageUtilization), AverageValue: nonZero(r.CurrentAverageValue)}}
	case in.External != nil:
		e := in.External
		out.External = &autoscalingv2.ExternalMetricStatus{Metric: autoscalingv2.MetricIdentifier{Name: e.MetricName, Selector: e.MetricSelector.DeepCopy()},
			Current: autoscalingv2.MetricValueStatus{Value: nonZero(e.CurrentValue), AverageValue: copyQuantity(e.CurrentAverageValue)}}
	}
	return out
}
