package controllers

import (
	"fmt"
	"testing"
	"time"

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

func TestHPANormalizeBehavior(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pods := func(v, period int32) autoscalingv2.HPAScalingPolicy {
		return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PodsScalingPolicy, Value: v, PeriodSeconds: period}
	}
	pct := func(v, period int32) autoscalingv2.HPAScalingPolicy {
		return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: v, PeriodSeconds: period}
	}
	type step struct {
		at                time.Duration
		current, proposed int32
		want              int32
		limit, able       string
	}
	for _, tc := range []struct {
		name       string
		behavior   *autoscalingv2.HorizontalPodAutoscalerBehavior
		minR, maxR int32
		steps      []step
	}{
		{"default scale-up: max(+4, +100%) per 15 s", nil, 1, 100, []step{
			{0, 2, 20, 6, "ScaleUpLimit", hpaReadyForNewScale},
			{15 * time.Second, 6, 20, 12, "ScaleUpLimit", hpaReadyForNewScale},
		}},
		{"pods policy, 1 per minute", &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{
			Policies: []autoscalingv2.HPAScalingPolicy{pods(1, 60)}}}, 1, 100, []step{
			{0, 2, 5, 3, "ScaleUpLimit", hpaReadyForNewScale},
			{15 * time.Second, 3, 5, 3, "ScaleUpLimit", hpaReadyForNewScale},
			{61 * time.Second, 3, 5, 4, "ScaleUpLimit", hpaReadyForNewScale},
		}},
		{"selectPolicy Min picks the smaller rise", &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{
			SelectPolicy: ptr(autoscalingv2.MinChangePolicySelect), Policies: []autoscalingv2.HPAScalingPolicy{pods(4, 15), pct(100, 15)}}}, 1, 100, []step{
			{0, 10, 50, 14, "ScaleUpLimit", hpaReadyForNewScale},
		}},
		{"scale-down 50% per minute without window", &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr(int32(0)), Policies: []autoscalingv2.HPAScalingPolicy{pct(50, 60)}}}, 1, 100, []step{
			{0, 10, 1, 5, "ScaleDownLimit", hpaReadyForNewScale},
			{30 * time.Second, 5, 1, 5, "ScaleDownLimit", hpaReadyForNewScale},
			{61 * time.Second, 5, 1, 2, "ScaleDownLimit", hpaReadyForNewScale},
		}},
		{"scale-down disabled", &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr(int32(0)), SelectPolicy: ptr(autoscalingv2.DisabledPolicySelect)}}, 1, 100, []step{
			{0, 10, 1, 10, "ScaleDownLimit", hpaReadyForNewScale},
		}},
		{"scale-up stabilization window", &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr(int32(60))}}, 1, 100, []step{
			{0, 2, 2, 2, hpaDesiredWithinRange, hpaReadyForNewScale},
			{10 * time.Second, 2, 6, 2, hpaDesiredWithinRange, "ScaleUpStabilized"},
			{61 * time.Second, 2, 6, 6, hpaDesiredWithinRange, hpaReadyForNewScale},
		}},
		{"default scale-down window keeps the highest", nil, 1, 100, []step{
			{0, 4, 4, 4, hpaDesiredWithinRange, hpaReadyForNewScale},
			{60 * time.Second, 4, 1, 4, hpaDesiredWithinRange, hpaScaleDownStabilized},
			{301 * time.Second, 4, 1, 1, hpaDesiredWithinRange, hpaReadyForNewScale},
		}},
		{"bounds", nil, 3, 5, []step{
			{0, 4, 1, 3, hpaTooFewReplicas, hpaReadyForNewScale},
			{400 * time.Second, 3, 9, 5, hpaTooManyReplicas, hpaReadyForNewScale},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &HPA{recs: map[string][]timedRec{}, events: map[string][]scaleEvent{}}
			h := &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{Behavior: tc.behavior}}
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				got, able, _, limit, _ := r.normalize("k", h, s.current, s.proposed, tc.minR, tc.maxR, now)
				if got != s.want || limit != s.limit || able != s.able {
					t.Fatalf("step %d: got %d %s %s, want %d %s %s", i, got, limit, able, s.want, s.limit, s.able)
				}
				if got != s.current {
					r.recordScale("k", s.current, got, now)
				}
			}
		})
	}
}

func TestHPAMemoryAverageValueWithScaleUpPolicy(t *testing.T) {
	m := &StaticMetrics{}
	e := newEnv(t, simnode.Options{Nodes: 2}, withReplicaSet, withDeployment, func(c Config) runner { return NewHPA(c, m) })
	d := deployment("mem", 2, "app")
	d.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("200Mi")}
	mustCreate(e, d)
	e.waitRolledOut("mem")
	mustCreate(e, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "mem"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MinReplicas: ptr(int32(1)), MaxReplicas: 10,
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "mem"},
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(resource.MustParse("100Mi"))}}}},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{
				Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 60}}}}}})
	for _, p := range e.pods("default", "app=mem") {
		m.SetUsage("default", p.Name, corev1.ResourceMemory, resource.MustParse("300Mi")) // 3× the target: 6 wanted
	}
	replicas := func() int32 { return *e.getDeploy("mem").Spec.Replicas }
	e.waitFor("first step: 3", func() (bool, string) {
		e.clk.Step(HPASyncPeriod)
		return replicas() == 3, fmt.Sprint(replicas())
	})
	// The status is written after the rescale.
	e.waitFor("status: memory metric, ScaleUpLimit", func() (bool, string) {
		h, _ := store.Get[*autoscalingv2.HorizontalPodAutoscaler](e.ctx, e.s, "default", "mem")
		limited := false
		for _, c := range h.Status.Conditions {
			limited = limited || (c.Type == autoscalingv2.ScalingLimited && c.Status == corev1.ConditionTrue && c.Reason == "ScaleUpLimit")
		}
		ok := len(h.Status.CurrentMetrics) == 1 && h.Status.CurrentMetrics[0].Resource.Name == corev1.ResourceMemory &&
			h.Status.CurrentMetrics[0].Resource.Current.AverageValue.Cmp(resource.MustParse("300Mi")) == 0
		return ok && limited, fmt.Sprint(h.Status.CurrentMetrics, h.Status.Conditions)
	})
	e.waitRolledOut("mem")
	for _, p := range e.pods("default", "app=mem") {
		m.SetUsage("default", p.Name, corev1.ResourceMemory, resource.MustParse("300Mi"))
	}
	// Within the minute: no more than +1.
	e.clk.Step(HPASyncPeriod)
	if ok, desc := e.settle(func() (bool, string) { return replicas() == 3, fmt.Sprint(replicas()) }); !ok {
		t.Fatalf("faster than 1 pod per minute: %s", desc)
	}
	e.clk.Step(time.Minute)
	e.waitFor("second step: 4", func() (bool, string) {
		e.clk.Step(HPASyncPeriod)
		return replicas() >= 4, fmt.Sprint(replicas())
	})
}

func TestHPACustomMetricsNotServed(t *testing.T) {
	m := &StaticMetrics{}
	e := newEnv(t, simnode.Options{Nodes: 1}, withReplicaSet, withDeployment, func(c Config) runner { return NewHPA(c, m) })
	mustCreate(e, deployment("q", 1, "app"))
	mustCreate(e, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "q"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 3,
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "q"},
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: "queue_depth"}, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: ptr(resource.MustParse("10"))}}}}}})
	e.waitFor("ScalingActive=False FailedGetExternalMetric", func() (bool, string) {
		h, _ := store.Get[*autoscalingv2.HorizontalPodAutoscaler](e.ctx, e.s, "default", "q")
		for _, c := range h.Status.Conditions {
			if c.Type == autoscalingv2.ScalingActive && c.Status == corev1.ConditionFalse && c.Reason == "FailedGetExternalMetric" {
				return true, ""
			}
		}
		return false, fmt.Sprint(h.Status.Conditions)
	})
}
