package apiserver

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/store"
)

// livePod is a pod with the kinds of fields patches reach: maps, merge-key
// lists, quantities, int-or-strings, timestamps and managed fields.
func livePod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u1", ResourceVersion: "7",
			Labels: map[string]string{"app": "x", "tier": "web"}, Annotations: map[string]string{"a": "1"},
			Finalizers:        []string{"f1", "f2"},
			CreationTimestamp: metav1.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
				Time: &metav1.Time{Time: time0}, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{"f:app":{}}}}`)}}}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{
				{Name: "a", Image: "busybox", Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
					Env:            []corev1.EnvVar{{Name: "X", Value: "1"}, {Name: "Y", Value: "2"}},
					Resources:      corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}}},
				{Name: "b", Image: "nginx"},
			},
			Tolerations: []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	}
}

var time0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestPatchObjectMatchesJSONPath checks that the unstructured patch path
// gives what the JSON round trip (store.ApplyPatch) gives, for merge and
// strategic merge patches with directives, deletions, merge keys and
// type changes.
func TestPatchObjectMatchesJSONPath(t *testing.T) {
	tests := patchCases()
	// Patches the in-place path hands to the whole-object path.
	givesUp := map[string]bool{"smp apiVersion and kind": true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := store.ApplyPatch(tt.kind, tt.live, tt.pt, []byte(tt.patch))
			if err != nil {
				t.Fatalf("reference: %v", err)
			}
			before := tt.live.DeepCopyObject()
			p := &patchRequest{pt: tt.pt, body: []byte(tt.patch), validation: validationStrict}
			if p.patchMap, p.strict, err = decodePatchMap(p.body, p.validation); err != nil {
				t.Fatal(err)
			}
			if _, ok := (&structFields{}).patch(tt.live, p); ok == givesUp[tt.name] {
				t.Errorf("patchInPlace succeeded: %v, want %v", ok, !givesUp[tt.name])
			}
			for _, fields := range []*structFields{nil, {}} {
				for try := 0; try < 2; try++ { // a conflict retry reuses the decoded patch
					got, warnings, err := patchObject(tt.kind, tt.live, p, fields)
					if err != nil {
						t.Fatalf("in place %v, try %d: %v", fields != nil, try, err)
					}
					if len(warnings) != 0 {
						t.Errorf("warnings: %q", warnings)
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("in place %v, try %d: differs from the JSON round trip (-json +got):\n%s", fields != nil, try, diff)
					}
				}
			}
			if diff := cmp.Diff(before, tt.live); diff != "" {
				t.Errorf("live object modified:\n%s", diff)
			}
		})
	}
}

// patchCase is one merge or strategic merge patch of a live object.
type patchCase struct {
	name  string
	kind  *store.Kind
	live  runtime.Object
	pt    types.PatchType
	patch string
}

// patchCases are patches with directives, deletions, merge keys, nested
// pointers and type changes, of a pod and a deployment.
func patchCases() []patchCase {
	reg := store.DefaultRegistry()
	pods := reg.Lookup("pods")
	deploys := reg.Lookup("deployments")
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "default", Labels: map[string]string{"app": "d"}},
		Spec: appsv1.DeploymentSpec{Replicas: ptrTo(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "d"}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ptrTo(intstr.FromString("25%"))}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "d"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.14"}}}}},
	}
	return []patchCase{
		{"smp labels", pods, livePod(), types.StrategicMergePatchType, `{"metadata":{"labels":{"n":"1","tier":null}}}`},
		{"smp container by merge key", pods, livePod(), types.StrategicMergePatchType, `{"spec":{"containers":[{"name":"b","image":"nginx:2"}]}}`},
		{"smp delete container", pods, livePod(), types.StrategicMergePatchType, `{"spec":{"containers":[{"name":"a","$patch":"delete"}]}}`},
		{"smp replace env", pods, livePod(), types.StrategicMergePatchType, `{"spec":{"containers":[{"name":"a","env":[{"name":"Z","value":"3"}],"$patch":"replace"}]}}`},
		{"smp set element order", pods, livePod(), types.StrategicMergePatchType, `{"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],"containers":[{"name":"b","image":"x"}]}}`},
		{"smp delete from primitive list", pods, livePod(), types.StrategicMergePatchType, `{"metadata":{"$deleteFromPrimitiveList/finalizers":["f1"]}}`},
		{"smp quantity and int-or-string", pods, livePod(), types.StrategicMergePatchType, `{"spec":{"containers":[{"name":"a","resources":{"limits":{"memory":"64Mi","cpu":2}},"readinessProbe":{"httpGet":{"port":8080}}}]}}`},
		{"smp retain keys", deploys, deploy, types.StrategicMergePatchType, `{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}`},
		{"smp replicas and image", deploys, deploy, types.StrategicMergePatchType, `{"spec":{"replicas":5,"template":{"spec":{"containers":[{"name":"c","image":"nginx:1.16"}]}}}}`},
		{"smp status", pods, livePod(), types.StrategicMergePatchType, `{"status":{"conditions":[{"type":"Ready","status":"True"}]}}`},
		{"merge labels", pods, livePod(), types.MergePatchType, `{"metadata":{"labels":{"tier":null,"new":"v"}}}`},
		{"merge replaces lists", pods, livePod(), types.MergePatchType, `{"spec":{"containers":[{"name":"only","image":"i"}]}}`},
		{"merge new object drops nulls", pods, livePod(), types.MergePatchType, `{"spec":{"securityContext":{"runAsUser":1,"runAsGroup":null}}}`},
		{"merge remove field", deploys, deploy, types.MergePatchType, `{"spec":{"replicas":null,"strategy":{"rollingUpdate":null}}}`},
		{"merge scalar over object", deploys, deploy, types.MergePatchType, `{"metadata":{"annotations":{"x":"y"}}}`},
		{"smp nested pointer struct", deploys, deploy, types.StrategicMergePatchType, `{"spec":{"strategy":{"rollingUpdate":{"maxSurge":3,"maxUnavailable":"10%"}}}}`},
		{"smp null struct", pods, livePod(), types.StrategicMergePatchType, `{"spec":{"securityContext":null,"tolerations":null},"status":null}`},
		{"smp timestamp and managed fields", pods, livePod(), types.StrategicMergePatchType, `{"metadata":{"creationTimestamp":"2026-02-03T04:05:06Z","managedFields":null}}`},
		{"smp replace template spec", deploys, deploy, types.StrategicMergePatchType, `{"spec":{"template":{"spec":{"$patch":"replace","containers":[{"name":"z","image":"z"}]}}}}`},
		{"smp delete nested map", deploys, deploy, types.StrategicMergePatchType, `{"spec":{"strategy":{"$patch":"delete"}}}`},
		{"smp volumes retain keys", pods, livePod(), types.StrategicMergePatchType, `{"spec":{"volumes":[{"name":"v","emptyDir":{}}]}}`},
		{"smp apiVersion and kind", pods, livePod(), types.StrategicMergePatchType, `{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"x":"y"}}}`},
		{"merge new pointer struct", deploys, deploy, types.MergePatchType, `{"spec":{"template":{"spec":{"securityContext":{"fsGroup":5}}}},"status":{"replicas":1}}`},
		{"merge empty object", pods, livePod(), types.MergePatchType, `{}`},
	}
}

// TestPatchObjectValidation checks unknown and duplicate fields in a patch
// under each fieldValidation mode, and the errors of bad patches.
func TestPatchObjectValidation(t *testing.T) {
	pods := store.DefaultRegistry().Lookup("pods")
	tests := []struct {
		name, patch, validation string
		pt                      types.PatchType
		wantWarn                []string
		wantErr                 string
	}{
		{"unknown strict", `{"spec":{"bogus":1}}`, validationStrict, types.StrategicMergePatchType, nil, `strict decoding error: unknown field "spec.bogus"`},
		{"unknown warn", `{"spec":{"containers":[{"name":"a","imagex":"i"}]}}`, validationWarn, types.StrategicMergePatchType, []string{`unknown field "spec.containers[0].imagex"`}, ""},
		{"unknown ignore", `{"spec":{"bogus":1}}`, validationIgnore, types.MergePatchType, nil, ""},
		{"duplicate strict", `{"metadata":{"labels":{"a":"1","a":"2"}}}`, validationStrict, types.MergePatchType, nil, `strict decoding error: duplicate field "metadata.labels.a"`},
		{"duplicate warn", `{"metadata":{"labels":{"a":"1","a":"2"}}}`, validationWarn, types.MergePatchType, []string{`duplicate field "metadata.labels.a"`}, ""},
		{"directives are not unknown", `{"metadata":{"$deleteFromPrimitiveList/finalizers":["f1"]}}`, validationStrict, types.StrategicMergePatchType, nil, ""},
		{"not an object", `[1]`, validationIgnore, types.MergePatchType, nil, "patch body must be a JSON object"},
		{"wrong type", `{"spec":{"containers":"x"}}`, validationStrict, types.MergePatchType, nil, "the patched object is not a valid Pod"},
		{"bad directive", `{"spec":{"containers":[{"name":"a","$patch":"explode"}]}}`, validationStrict, types.StrategicMergePatchType, nil, "the patch could not be applied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &patchRequest{pt: tt.pt, body: []byte(tt.patch), validation: tt.validation}
			var err error
			p.patchMap, p.strict, err = decodePatchMap(p.body, p.validation)
			var warnings []string
			if err == nil {
				_, warnings, err = patchObject(pods, livePod(), p, &structFields{})
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantWarn, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzApplyPatch applies arbitrary merge and strategic merge patches to a
// pod: no panic, no change to the live object, and a result of the pod
// type whenever there is no error.
func FuzzApplyPatch(f *testing.F) {
	pods := store.DefaultRegistry().Lookup("pods")
	f.Add([]byte(`{"metadata":{"labels":{"n":"1"}}}`), true, "Strict")
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","$patch":"delete"}]}}`), true, "Warn")
	f.Add([]byte(`{"spec":{"$setElementOrder/containers":[{"name":"b"}],"containers":null}}`), true, "Ignore")
	f.Add([]byte(`{"spec":{"containers":[{"name":"x"}]},"status":null}`), false, "Strict")
	f.Add([]byte(`{"metadata":{"$retainKeys":["name"]},"a":{"a":1,"a":2}}`), false, "Warn")
	live := livePod()
	fields := &structFields{}
	f.Fuzz(func(t *testing.T, body []byte, strategic bool, validation string) {
		v, err := fieldValidation(validation)
		if err != nil {
			v = validationStrict
		}
		p := &patchRequest{pt: types.MergePatchType, body: body, validation: v}
		if strategic {
			p.pt = types.StrategicMergePatchType
		}
		if p.patchMap, p.strict, err = decodePatchMap(body, v); err != nil {
			return
		}
		out, _, err := patchObject(pods, live, p, fields)
		if err == nil {
			if _, ok := out.(*corev1.Pod); !ok {
				t.Fatalf("patched object is %T", out)
			}
		}
		// Where the in-place path succeeds, it agrees with the
		// whole-object path.
		if fast, ok := fields.patch(live, p); ok {
			whole, _, err := patchObject(pods, live, p, nil)
			if err != nil {
				t.Fatalf("in place succeeded, whole object failed: %v", err)
			}
			if diff := cmp.Diff(whole, fast); diff != "" {
				t.Fatalf("in place differs from whole object (-whole +in place):\n%s", diff)
			}
		}
		if diff := cmp.Diff(livePod(), live); diff != "" {
			t.Fatalf("live object modified:\n%s", diff)
		}
	})
}

// BenchmarkApplyPatch compares, side by side, one strategic merge patch
// of a pod's labels applied through the JSON round trip
// (store.ApplyPatch: encode, merge bytes, decode) and through the
// unstructured map (patchObject, as kube-apiserver applies it).
func BenchmarkApplyPatch(b *testing.B) {
	pods := store.DefaultRegistry().Lookup("pods")
	live := livePod()
	body := []byte(`{"metadata":{"labels":{"n":"1"}}}`)
	b.Run("json-roundtrip", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := store.ApplyPatch(pods, live, types.StrategicMergePatchType, body); err != nil {
				b.Fatal(err)
			}
		}
	})
	fields := &structFields{}
	b.Run("in-place", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p := &patchRequest{pt: types.StrategicMergePatchType, body: body, validation: validationWarn}
			var err error
			if p.patchMap, p.strict, err = decodePatchMap(body, p.validation); err != nil {
				b.Fatal(err)
			}
			if _, _, err := patchObject(pods, live, p, fields); err != nil {
				b.Fatal(err)
			}
		}
	})
}
