package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/internal/kubectltest"
)

func cpuMetric(pct int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &pct}}}
}

func memMetric() autoscalingv2.MetricSpec {
	q := resource.MustParse("100Mi")
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &q}}}
}

func podsMetric() autoscalingv2.MetricSpec {
	q := resource.MustParse("1k")
	return autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: "packets-per-second"},
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &q}}}
}

func allKindsOfMetrics() []autoscalingv2.MetricSpec {
	q := func(s string) *resource.Quantity { v := resource.MustParse(s); return &v }
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"queue": "jobs"}}
	return []autoscalingv2.MetricSpec{
		{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "main"},
			Metric:          autoscalingv2.MetricIdentifier{Name: "requests-per-second", Selector: sel},
			Target:          autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: q("2k")}}},
		{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference{Kind: "Service", Name: "web"},
			Metric:          autoscalingv2.MetricIdentifier{Name: "rps"},
			Target:          autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: q("10")}}},
		podsMetric(),
		memMetric(),
		{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{
			Name: corev1.ResourceCPU, Container: "app", Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptrTo(int32(50))}}},
		{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: "queue_messages_ready", Selector: sel},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: q("30")}}},
		{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: "lag"},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: q("5")}}},
	}
}

func allKindsOfStatus() []autoscalingv2.MetricStatus {
	q := func(s string) *resource.Quantity { v := resource.MustParse(s); return &v }
	return []autoscalingv2.MetricStatus{
		{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricStatus{
			DescribedObject: autoscalingv2.CrossVersionObjectReference{Kind: "Ingress", Name: "main"},
			Metric:          autoscalingv2.MetricIdentifier{Name: "requests-per-second"}, Current: autoscalingv2.MetricValueStatus{Value: q("1500")}}},
		{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricStatus{
			Metric: autoscalingv2.MetricIdentifier{Name: "packets-per-second"}, Current: autoscalingv2.MetricValueStatus{AverageValue: q("800")}}},
		{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
			Name: corev1.ResourceMemory, Current: autoscalingv2.MetricValueStatus{AverageValue: q("50Mi")}}},
		{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricStatus{
			Name: corev1.ResourceCPU, Container: "app", Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptrTo(int32(20)), AverageValue: q("100m")}}},
		{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricStatus{
			Metric: autoscalingv2.MetricIdentifier{Name: "lag"}, Current: autoscalingv2.MetricValueStatus{AverageValue: q("3")}}},
	}
}

func cpuStatus(pct int32) autoscalingv2.MetricStatus {
	return autoscalingv2.MetricStatus{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
		Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: &pct}}}
}

func hpaV2(name string, metrics ...autoscalingv2.MetricSpec) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"a": "b"}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptrTo(int32(2)), MaxReplicas: 5, Metrics: metrics,
		},
	}
}

var hpaCmpOpts = []cmp.Option{cmpopts.EquateEmpty(), cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })}

// TestHPAConversionRoundTrip converts stored v2 objects to v1 and back
// onto themselves (a v1 read-modify-write with no change) and v1 objects
// to v2 and back: nothing may be lost either way.
func TestHPAConversionRoundTrip(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	withStatus := hpaV2("status", cpuMetric(70), memMetric())
	withStatus.Status = autoscalingv2.HorizontalPodAutoscalerStatus{
		ObservedGeneration: ptrTo(int64(3)), LastScaleTime: &now, CurrentReplicas: 3, DesiredReplicas: 4,
		CurrentMetrics: []autoscalingv2.MetricStatus{cpuStatus(55), {Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
			Name: corev1.ResourceMemory, Current: autoscalingv2.MetricValueStatus{AverageValue: ptrTo(resource.MustParse("50Mi"))}}}},
		Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue, LastTransitionTime: now, Reason: "ReadyForNewScale", Message: "ok"}},
	}
	withBehavior := hpaV2("behavior", podsMetric(), cpuMetric(60))
	withBehavior.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: ptrTo(int32(60)),
		Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 30}},
	}}
	withBehavior.Annotations = map[string]string{"keep": "me"}
	everything := hpaV2("everything", append(allKindsOfMetrics(), cpuMetric(75))...)
	everything.Status.CurrentMetrics = append([]autoscalingv2.MetricStatus{cpuStatus(30)}, allKindsOfStatus()...)
	for _, tc := range []struct {
		name   string
		in     *autoscalingv2.HorizontalPodAutoscaler
		target *int32
	}{
		{"cpu only", hpaV2("cpu", cpuMetric(80)), ptrTo(int32(80))},
		{"no metrics", hpaV2("none"), nil},
		{"memory only", hpaV2("mem", memMetric()), nil},
		{"status and conditions", withStatus, ptrTo(int32(70))},
		{"behavior and pods metric", withBehavior, ptrTo(int32(60))},
		{"every metric type", everything, ptrTo(int32(75))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := tc.in.DeepCopy()
			v1, err := hpaToV1(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(orig, tc.in, hpaCmpOpts...); diff != "" {
				t.Fatalf("hpaToV1 modified its input (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.target, v1.Spec.TargetCPUUtilizationPercentage); diff != "" {
				t.Errorf("targetCPUUtilizationPercentage (-want +got):\n%s", diff)
			}
			if v1.Spec.ScaleTargetRef.Name != "web" || v1.Spec.MaxReplicas != 5 || *v1.Spec.MinReplicas != 2 {
				t.Errorf("spec not converted: %+v", v1.Spec)
			}
			if (tc.in.Spec.Behavior != nil) != (v1.Annotations[hpaBehaviorAnnotation] != "") {
				t.Errorf("behavior annotation %q for behavior %v", v1.Annotations[hpaBehaviorAnnotation], tc.in.Spec.Behavior)
			}
			if (len(tc.in.Status.Conditions) > 0) != (v1.Annotations[hpaConditionsAnnotation] != "") {
				t.Errorf("conditions annotation %q", v1.Annotations[hpaConditionsAnnotation])
			}
			others := len(tc.in.Spec.Metrics)
			if tc.target != nil {
				others--
			}
			var ann []autoscalingv1.MetricSpec
			if a, ok := v1.Annotations[hpaMetricsAnnotation]; ok {
				if err := json.Unmarshal([]byte(a), &ann); err != nil {
					t.Fatal(err)
				}
			}
			if len(ann) != others {
				t.Errorf("metrics annotation holds %d metrics, want %d: %s", len(ann), others, v1.Annotations[hpaMetricsAnnotation])
			}
			back, err := hpaFromV1(v1, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(orig, back, hpaCmpOpts...); diff != "" {
				t.Errorf("v2 -> v1 -> v2 (-want +got):\n%s", diff)
			}
			// Without the stored object (a v1 manifest applied
			// elsewhere) the annotations alone carry the v2 fields:
			// everything but the metrics' order comes back.
			fresh, err := hpaFromV1(v1, nil)
			if err != nil {
				t.Fatal(err)
			}
			sortOpt := cmpopts.SortSlices(func(a, b autoscalingv2.MetricSpec) bool { return fmt.Sprint(a) < fmt.Sprint(b) })
			sortSt := cmpopts.SortSlices(func(a, b autoscalingv2.MetricStatus) bool { return fmt.Sprint(a) < fmt.Sprint(b) })
			wantFresh := orig.DeepCopy()
			wantFresh.Status.Conditions = nil // status conditions are the controller's
			if diff := cmp.Diff(wantFresh, fresh, append(hpaCmpOpts, sortOpt, sortSt)...); diff != "" {
				t.Errorf("v2 -> v1 -> v2 without the stored object (-want +got):\n%s", diff)
			}
			// The same v1 object converts back to itself.
			again, err := hpaToV1(back)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(v1, again, hpaCmpOpts...); diff != "" {
				t.Errorf("v1 -> v2 -> v1 (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHPAFromV1Changes checks what a v1 write changes on the stored v2
// object: the cpu target is set, replaced or removed; other metrics and
// the status beyond cpu stay.
func TestHPAFromV1Changes(t *testing.T) {
	base := hpaV2("web", memMetric(), cpuMetric(80), podsMetric())
	base.Status.CurrentMetrics = []autoscalingv2.MetricStatus{cpuStatus(40)}
	for _, tc := range []struct {
		name        string
		target      *int32
		current     *int32
		wantMetrics []autoscalingv2.MetricSpec
		wantStatus  []autoscalingv2.MetricStatus
	}{
		{"replace", ptrTo(int32(50)), ptrTo(int32(45)), []autoscalingv2.MetricSpec{memMetric(), cpuMetric(50), podsMetric()}, []autoscalingv2.MetricStatus{cpuStatus(45)}},
		{"remove", nil, nil, []autoscalingv2.MetricSpec{memMetric(), podsMetric()}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v1, err := hpaToV1(base)
			if err != nil {
				t.Fatal(err)
			}
			v1.Spec.TargetCPUUtilizationPercentage = tc.target
			v1.Status.CurrentCPUUtilizationPercentage = tc.current
			got, err := hpaFromV1(v1, base)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantMetrics, got.Spec.Metrics, hpaCmpOpts...); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantStatus, got.Status.CurrentMetrics, hpaCmpOpts...); diff != "" {
				t.Errorf("currentMetrics (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("create adds cpu in front", func(t *testing.T) {
		v1 := &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "x", Annotations: map[string]string{
			hpaBehaviorAnnotation: `{"scaleUp":{"selectPolicy":"Max"}}`, hpaMetricsAnnotation: "[]"}},
			Spec: autoscalingv1.HorizontalPodAutoscalerSpec{MaxReplicas: 3, TargetCPUUtilizationPercentage: ptrTo(int32(10)),
				ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "d"}}}
		got, err := hpaFromV1(v1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]autoscalingv2.MetricSpec{cpuMetric(10)}, got.Spec.Metrics, hpaCmpOpts...); diff != "" {
			t.Errorf("metrics (-want +got):\n%s", diff)
		}
		max := autoscalingv2.MaxChangePolicySelect
		if diff := cmp.Diff(&autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{SelectPolicy: &max}}, got.Spec.Behavior); diff != "" {
			t.Errorf("behavior (-want +got):\n%s", diff)
		}
		if len(got.Annotations) != 0 {
			t.Errorf("conversion annotations stored: %v", got.Annotations)
		}
	})
	t.Run("edited metrics annotation wins", func(t *testing.T) {
		v1, err := hpaToV1(base)
		if err != nil {
			t.Fatal(err)
		}
		v1.Annotations[hpaMetricsAnnotation] = `[{"type":"Pods","pods":{"metricName":"packets-per-second","targetAverageValue":"1k"}}]`
		got, err := hpaFromV1(v1, base)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]autoscalingv2.MetricSpec{cpuMetric(80), podsMetric()}, got.Spec.Metrics, hpaCmpOpts...); diff != "" {
			t.Errorf("metrics (-want +got):\n%s", diff)
		}
	})
	t.Run("bad behavior annotation", func(t *testing.T) {
		v1 := &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "x", Annotations: map[string]string{hpaBehaviorAnnotation: "{"}}}
		if _, err := hpaFromV1(v1, nil); err == nil {
			t.Error("malformed behavior annotation accepted")
		}
	})
}

// FuzzHPAFromV1 feeds arbitrary behavior annotations and cpu figures to
// the v1 -> v2 conversion: it must not panic, and what it accepts must
// convert back to the same cpu target.
func FuzzHPAFromV1(f *testing.F) {
	f.Add(`{"scaleUp":{"selectPolicy":"Max"}}`, `[{"type":"Pods","pods":{"metricName":"p","targetAverageValue":"1k"}}]`, `[]`, int32(80), int32(10))
	f.Add(`{`, `[{"type":"Resource","resource":{"name":"cpu","targetAverageUtilization":5}}]`, `[{"type":"External","external":{"metricName":"m","currentValue":"0"}}]`, int32(0), int32(-1))
	f.Add(`null`, `null`, `[{"type":"Object"}]`, int32(-5), int32(100))
	f.Fuzz(func(t *testing.T, behavior, metrics, current_ string, target, current int32) {
		v1 := &autoscalingv1.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: "x", Annotations: map[string]string{hpaBehaviorAnnotation: behavior,
				hpaMetricsAnnotation: metrics, hpaCurrentMetricsAnnotation: current_}},
			Spec:   autoscalingv1.HorizontalPodAutoscalerSpec{MaxReplicas: 3, TargetCPUUtilizationPercentage: &target},
			Status: autoscalingv1.HorizontalPodAutoscalerStatus{CurrentCPUUtilizationPercentage: &current},
		}
		v2, err := hpaFromV1(v1, hpaV2("x", memMetric(), cpuMetric(5)))
		if err != nil {
			return
		}
		back, err := hpaToV1(v2)
		if err != nil {
			t.Fatal(err)
		}
		if back.Spec.TargetCPUUtilizationPercentage == nil || back.Status.CurrentCPUUtilizationPercentage == nil {
			return // the annotations named a cpu Utilization metric first
		}
		if *back.Spec.TargetCPUUtilizationPercentage != target || *back.Status.CurrentCPUUtilizationPercentage != current {
			t.Fatalf("cpu %d/%d came back as %d/%d", target, current, *back.Spec.TargetCPUUtilizationPercentage, *back.Status.CurrentCPUUtilizationPercentage)
		}
	})
}

// TestHPAv1ClientGo drives autoscaling/v1 with client-go (JSON and
// protobuf): create, get, list, watch, update, patch, status, delete,
// and checks the v2 view of the same objects.
func TestHPAv1ClientGo(t *testing.T) {
	ts := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, proto := range []bool{false, true} {
		name := "json"
		if proto {
			name = "protobuf"
		}
		t.Run(name, func(t *testing.T) {
			cs := clientset(t, ts.rest, proto)
			ns := "hpa-" + name
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			hpas := cs.AutoscalingV1().HorizontalPodAutoscalers(ns)
			w, err := hpas.Watch(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			created, err := hpas.Create(ctx, &autoscalingv1.HorizontalPodAutoscaler{
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
					ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
					MinReplicas:    ptrTo(int32(2)), MaxReplicas: 5, TargetCPUUtilizationPercentage: ptrTo(int32(80)),
				},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if created.UID == "" || *created.Spec.TargetCPUUtilizationPercentage != 80 {
				t.Fatalf("created: %+v", created)
			}
			select {
			case ev := <-w.ResultChan():
				h, ok := ev.Object.(*autoscalingv1.HorizontalPodAutoscaler)
				if ev.Type != watch.Added || !ok || h.Name != "web" || *h.Spec.TargetCPUUtilizationPercentage != 80 {
					t.Fatalf("watch event %s %T %+v", ev.Type, ev.Object, ev.Object)
				}
			case <-ctx.Done():
				t.Fatal("no watch event")
			}
			// The v2 view: one cpu Utilization metric.
			v2, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]autoscalingv2.MetricSpec{cpuMetric(80)}, v2.Spec.Metrics, hpaCmpOpts...); diff != "" {
				t.Fatalf("v2 metrics (-want +got):\n%s", diff)
			}
			// A v2 client adds a memory metric; a v1 update keeps it.
			v2.Spec.Metrics = append(v2.Spec.Metrics, memMetric())
			if _, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Update(ctx, v2, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			got, err := hpas.Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got.Spec.TargetCPUUtilizationPercentage = ptrTo(int32(60))
			got.Spec.MaxReplicas = 7
			if _, err := hpas.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			v2, err = cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]autoscalingv2.MetricSpec{cpuMetric(60), memMetric()}, v2.Spec.Metrics, hpaCmpOpts...); diff != "" || v2.Spec.MaxReplicas != 7 {
				t.Fatalf("after v1 update: max %d, metrics (-want +got):\n%s", v2.Spec.MaxReplicas, diff)
			}
			// A stale v1 update conflicts.
			if _, err := hpas.Update(ctx, got, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "modified") {
				t.Errorf("stale update: %v", err)
			}
			// Merge patch through v1.
			patched, err := hpas.Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"targetCPUUtilizationPercentage":90}}`), metav1.PatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if *patched.Spec.TargetCPUUtilizationPercentage != 90 || patched.Spec.MaxReplicas != 7 {
				t.Errorf("patched: %+v", patched.Spec)
			}
			// Strategic merge patch of status through v1.
			st, err := hpas.Patch(ctx, "web", types.StrategicMergePatchType,
				[]byte(`{"status":{"currentReplicas":3,"desiredReplicas":4,"currentCPUUtilizationPercentage":42}}`), metav1.PatchOptions{}, "status")
			if err != nil {
				t.Fatal(err)
			}
			if st.Status.CurrentReplicas != 3 || st.Status.DesiredReplicas != 4 || *st.Status.CurrentCPUUtilizationPercentage != 42 {
				t.Errorf("status: %+v", st.Status)
			}
			st.Status.DesiredReplicas = 5
			st, err = hpas.UpdateStatus(ctx, st, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if st.Status.DesiredReplicas != 5 || *st.Status.CurrentCPUUtilizationPercentage != 42 {
				t.Errorf("updated status: %+v", st.Status)
			}
			v2, err = cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]autoscalingv2.MetricStatus{cpuStatus(42)}, v2.Status.CurrentMetrics, hpaCmpOpts...); diff != "" {
				t.Errorf("v2 currentMetrics (-want +got):\n%s", diff)
			}
			list, err := hpas.List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 1 || list.Items[0].Name != "web" || *list.Items[0].Spec.TargetCPUUtilizationPercentage != 90 || list.ResourceVersion == "" {
				t.Fatalf("list: %+v", list)
			}
			if err := hpas.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := hpas.Get(ctx, "web", metav1.GetOptions{}); err == nil {
				t.Error("get after delete succeeded")
			}
			// The remaining events all carry v1 objects.
			for {
				select {
				case ev := <-w.ResultChan():
					if _, ok := ev.Object.(*autoscalingv1.HorizontalPodAutoscaler); !ok {
						t.Fatalf("watch event %s carries %T", ev.Type, ev.Object)
					}
					if ev.Type == watch.Deleted {
						return
					}
				case <-ctx.Done():
					t.Fatal("no delete event")
				}
			}
		})
	}
}

// TestHPAv1Discovery checks that autoscaling lists v2 (preferred) and v1,
// in the legacy and the aggregated documents.
func TestHPAv1Discovery(t *testing.T) {
	ts := startServer(t)
	cs := clientset(t, ts.rest, false)
	groups, err := cs.Discovery().ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range groups.Groups {
		if g.Name != "autoscaling" {
			continue
		}
		found = true
		var vs []string
		for _, v := range g.Versions {
			vs = append(vs, v.Version)
		}
		if diff := cmp.Diff([]string{"v2", "v1"}, vs); diff != "" || g.PreferredVersion.Version != "v2" {
			t.Errorf("autoscaling versions (-want +got):\n%s\npreferred %q", diff, g.PreferredVersion.Version)
		}
	}
	if !found {
		t.Fatal("no autoscaling group")
	}
	rl, err := cs.Discovery().ServerResourcesForGroupVersion("autoscaling/v1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rl.APIResources {
		names = append(names, r.Name+":"+r.Kind)
	}
	if diff := cmp.Diff([]string{"horizontalpodautoscalers:HorizontalPodAutoscaler", "horizontalpodautoscalers/status:HorizontalPodAutoscaler"}, names); diff != "" {
		t.Errorf("autoscaling/v1 resources (-want +got):\n%s", diff)
	}

	req, _ := http.NewRequest("GET", ts.url+"/apis", nil)
	req.Header.Set("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
	resp, err := ts.httpClient(true).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l apidiscoveryv2.APIGroupDiscoveryList
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range l.Items {
		if g.Name != "autoscaling" {
			continue
		}
		for _, v := range g.Versions {
			for _, r := range v.Resources {
				var subs []string
				for _, s := range r.Subresources {
					subs = append(subs, s.Subresource)
				}
				got = append(got, v.Version+"/"+r.Resource+"/"+r.ResponseKind.Version+"/"+strings.Join(subs, ",")+"/"+strings.Join(r.ShortNames, ","))
			}
		}
	}
	want := []string{"v2/horizontalpodautoscalers/v2/status/hpa", "v1/horizontalpodautoscalers/v1/status/hpa"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("aggregated autoscaling (-want +got):\n%s", diff)
	}
}

func hpaV1Manifest(max int) string {
	return fmt.Sprintf(`apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: api
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: api
  minReplicas: 1
  maxReplicas: %d
  targetCPUUtilizationPercentage: 65
`, max)
}

// TestKubectlAutoscale runs the seeds' kubectl autoscale walk-through
// with /usr/bin/kubectl (v1.32) and the newest kubectl.
func TestKubectlAutoscale(t *testing.T) {
	for _, kb := range kubectltest.Binaries(t) {
		t.Run(kb.Name, func(t *testing.T) {
			ts := startServer(t)
			ts.kubectlPath = kb.Path
			contains(t, ts.mustKubectl(t, "", "create", "deployment", "web", "--image=nginx:1.25", "--replicas=1"), "deployment.apps/web created")
			contains(t, ts.mustKubectl(t, "", "autoscale", "deployment/web", "--min=2", "--max=5", "--cpu-percent=80"),
				"horizontalpodautoscaler.autoscaling/web autoscaled")
			out := ts.mustKubectl(t, "", "get", "hpa", "web", "-o",
				`jsonpath={.spec.scaleTargetRef.kind}/{.spec.scaleTargetRef.name} {.spec.minReplicas}-{.spec.maxReplicas} {.spec.metrics[0].resource.target.averageUtilization}`)
			if out != "Deployment/web 2-5 80" {
				t.Errorf("kubectl get hpa web -o jsonpath: %q", out)
			}
			// kubectl expands a short name to group and resource only
			// (client-go restmapper), so "hpa.v1.autoscaling" reads the
			// preferred version, as against kube-apiserver; the full
			// resource name reaches autoscaling/v1.
			const v1 = "horizontalpodautoscalers.v1.autoscaling"
			out = ts.mustKubectl(t, "", "get", v1, "web", "-o",
				`jsonpath={.apiVersion} {.spec.targetCPUUtilizationPercentage} {.spec.minReplicas}-{.spec.maxReplicas}`)
			if out != "autoscaling/v1 80 2-5" {
				t.Errorf("kubectl get %s web -o jsonpath: %q", v1, out)
			}
			for _, res := range []string{"hpa.v1.autoscaling", v1} {
				out = ts.mustKubectl(t, "", "get", res)
				if re := `NAME\s+REFERENCE\s+TARGETS\s+MINPODS\s+MAXPODS\s+REPLICAS\s+AGE\nweb\s+Deployment/web\s+cpu: <unknown>/80%\s+2\s+5\s+0\s+`; !regexp.MustCompile(re).MatchString(out) {
					t.Errorf("kubectl get %s:\n%s\nwant match %s", res, out, re)
				}
			}
			contains(t, ts.mustKubectl(t, "", "patch", v1, "web", "-p", `{"spec":{"maxReplicas":15}}`),
				"horizontalpodautoscaler.autoscaling/web patched")
			out = ts.mustKubectl(t, "", "get", v1, "web", "-o", "yaml")
			contains(t, out, "apiVersion: autoscaling/v1", "maxReplicas: 15", "targetCPUUtilizationPercentage: 80")
			out = ts.mustKubectl(t, "", "get", "hpa", "web", "-o", "jsonpath={.apiVersion} {.spec.maxReplicas}")
			if out != "autoscaling/v2 15" {
				t.Errorf("kubectl get hpa web after the v1 patch: %q", out)
			}
			contains(t, ts.mustKubectl(t, "", "delete", v1, "web"), `horizontalpodautoscaler.autoscaling "web" deleted`)

			// The seeds' form (kubectl v1.32 posts autoscaling/v1).
			ts.mustKubectl(t, "", "create", "deployment", "nginx-deployment", "--image=nginx:1.25")
			contains(t, ts.mustKubectl(t, "", "autoscale", "deployment.v1.apps/nginx-deployment", "--min=10", "--max=15", "--cpu-percent=80"),
				"horizontalpodautoscaler.autoscaling/nginx-deployment autoscaled")
			out = ts.mustKubectl(t, "", "get", v1, "nginx-deployment", "-o",
				`jsonpath={.spec.scaleTargetRef.name} {.spec.minReplicas}-{.spec.maxReplicas} {.spec.targetCPUUtilizationPercentage}`)
			if out != "nginx-deployment 10-15 80" {
				t.Errorf("seed HPA: %q", out)
			}

			// A v1 manifest, applied twice (client-side apply patches
			// through autoscaling/v1 with the v1 OpenAPI schema).
			contains(t, ts.mustKubectl(t, hpaV1Manifest(7), "apply", "-f", "-"), "horizontalpodautoscaler.autoscaling/api created")
			contains(t, ts.mustKubectl(t, hpaV1Manifest(9), "apply", "-f", "-"), "horizontalpodautoscaler.autoscaling/api configured")
			out = ts.mustKubectl(t, "", "get", "hpa", "api", "-o", `jsonpath={.spec.maxReplicas} {.spec.metrics[0].resource.target.averageUtilization}`)
			if out != "9 65" {
				t.Errorf("applied v1 manifest reads through v2 as %q", out)
			}

			// Server-side apply through autoscaling/v1, after a v2
			// client's update (managedFields in both versions).
			contains(t, ts.mustKubectl(t, "", "patch", "hpa", "api", "--type=json", "-p",
				`[{"op":"add","path":"/spec/metrics/-","value":{"type":"Resource","resource":{"name":"memory","target":{"type":"AverageValue","averageValue":"100Mi"}}}}]`),
				"horizontalpodautoscaler.autoscaling/api patched")
			contains(t, ts.mustKubectl(t, strings.Replace(hpaV1Manifest(11), "name: api\n", "name: ssa\n", 1), "apply", "--server-side", "-f", "-"),
				"horizontalpodautoscaler.autoscaling/ssa serverside-applied")
			contains(t, ts.mustKubectl(t, hpaV1Manifest(12), "apply", "--server-side", "--force-conflicts", "-f", "-"),
				"horizontalpodautoscaler.autoscaling/api serverside-applied")
			out = ts.mustKubectl(t, "", "get", "hpa", "-o", `jsonpath={range .items[*]}{.metadata.name} {.spec.maxReplicas} {.spec.metrics[*].resource.name};{end}`)
			if out != "api 12 cpu memory;nginx-deployment 15 cpu;ssa 11 cpu;" {
				t.Errorf("after server-side apply: %q", out)
			}
			out = ts.mustKubectl(t, "", "get", "hpa", "api", "-o", `jsonpath={range .metadata.managedFields[*]}{.manager}:{.operation}:{.apiVersion};{end}`)
			contains(t, out, "kubectl:Apply:autoscaling/v1")
			out = ts.mustKubectl(t, "", "get", "hpa", "nginx-deployment", "-o", `jsonpath={range .metadata.managedFields[*]}{.manager}:{.operation}:{.apiVersion};{end}`)
			if kb.Name == "installed" && out != "kubectl-autoscale:Update:autoscaling/v1;" {
				t.Errorf("managedFields of the HPA kubectl v1.32 created: %q", out)
			}
		})
	}
}

// TestHPAManagedFieldsAcrossVersions writes through v1 then v2: each
// write is recorded in its own version, and the v2 update takes over the
// field it changed from the v1 manager.
func TestHPAManagedFieldsAcrossVersions(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	cs := clientset(t, ts.rest, false)
	_, err := cs.AutoscalingV1().HorizontalPodAutoscalers("default").Create(ctx, &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
			MaxReplicas: 5, TargetCPUUtilizationPercentage: ptrTo(int32(80))},
	}, metav1.CreateOptions{FieldManager: "a"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := cs.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.Spec.MaxReplicas = 6
	h, err = cs.AutoscalingV2().HorizontalPodAutoscalers("default").Update(ctx, h, metav1.UpdateOptions{FieldManager: "b"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range h.ManagedFields {
		got = append(got, fmt.Sprintf("%s %s %s %s", m.Manager, m.Operation, m.APIVersion, m.FieldsV1.Raw))
	}
	want := []string{
		`a Update autoscaling/v1 {"f:spec":{"f:scaleTargetRef":{"f:kind":{},"f:name":{}},"f:targetCPUUtilizationPercentage":{}}}`,
		`b Update autoscaling/v2 {"f:spec":{"f:maxReplicas":{}}}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("managedFields (-want +got):\n%s", diff)
	}
}
