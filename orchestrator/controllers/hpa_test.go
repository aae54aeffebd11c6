package controllers

import (
	"fmt"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func TestHPAScalesOnCPUWithDownscaleStabilization(t *testing.T) {
	m := &StaticMetrics{}
	e := newEnv(t, simnode.Options{Nodes: 2}, withReplicaSet, withDeployment, func(c Config) runner { return NewHPA(c, m) })
	d := deployment("web", 2, "nginx")
	d.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
	mustCreate(e, d)
	e.waitRolledOut("web")
	mustCreate(e, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MinReplicas: ptr(int32(1)), MaxReplicas: 10,
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(50))}}}}}})
	e.waitFor("no metrics yet: ScalingActive=False", func() (bool, string) {
		h, _ := store.Get[*autoscalingv2.HorizontalPodAutoscaler](e.ctx, e.s, "default", "web")
		for _, c := range h.Status.Conditions {
			if c.Type == autoscalingv2.ScalingActive && c.Status == corev1.ConditionFalse {
				return true, ""
			}
		}
		return false, fmt.Sprint(h.Status.Conditions)
	})
	setAll := func(milli int64) {
		for _, p := range e.pods("default", "app=web") {
			m.Set("default", p.Name, milli)
		}
	}
	replicas := func() int32 { return *e.getDeploy("web").Spec.Replicas }
	setAll(100) // 100 % of request, target 50 % → 4
	// Each poll lets one sync period pass: the HPA's requeue may be armed
	// just after a step.
	e.waitFor("scaled to 4", func() (bool, string) {
		e.clk.Step(HPASyncPeriod)
		return replicas() == 4, fmt.Sprint(replicas())
	})
	e.waitRolledOut("web")
	setAll(10) // 10 % → 1, but not before the 5 minute window
	for range 4 {
		e.clk.Step(HPASyncPeriod)
	}
	if ok, desc := e.settle(func() (bool, string) { return replicas() == 4, fmt.Sprint(replicas()) }); !ok {
		t.Fatalf("scaled down inside the stabilization window: %s", desc)
	}
	e.clk.Step(HPADownscaleWindow)
	e.waitFor("scaled to the minimum", func() (bool, string) {
		e.clk.Step(HPASyncPeriod)
		return replicas() == 1, fmt.Sprint(replicas())
	})
	h, _ := store.Get[*autoscalingv2.HorizontalPodAutoscaler](e.ctx, e.s, "default", "web")
	if h.Status.LastScaleTime == nil || len(h.Status.CurrentMetrics) != 1 || *h.Status.CurrentMetrics[0].Resource.Current.AverageUtilization != 10 {
		t.Errorf("status %+v", h.Status)
	}
}
