package apiserver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

func TestManagedFieldsOnWrites(t *testing.T) {
	ts := startServer(t)
	ts.mustKubectl(t, "", "create", "configmap", "mf", "--from-literal=a=1")
	out := ts.mustKubectl(t, "", "get", "cm", "mf", "-o", "yaml", "--show-managed-fields")
	contains(t, out, "manager: kubectl-create", "operation: Update", "f:a: {}")
	// A server-side apply that changes a field kubectl-create set conflicts.
	ssa := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mf\n  namespace: default\ndata:\n  a: \"2\"\n"
	out, err := ts.kubectl(t, ssa, "apply", "--server-side", "-f", "-")
	if err == nil || !strings.Contains(out, `conflict with "kubectl-create"`) {
		t.Errorf("want a conflict naming kubectl-create: %v\n%s", err, out)
	}
	out = ts.mustKubectl(t, ssa, "apply", "--server-side", "--force-conflicts", "-f", "-")
	contains(t, out, "configmap/mf serverside-applied")
	contains(t, ts.mustKubectl(t, "", "get", "cm", "mf", "-o", "jsonpath={.data.a}"), "2")
	// A replace (PUT) keeps earlier managers and takes over what it changed.
	yaml := ts.mustKubectl(t, "", "get", "cm", "mf", "-o", "yaml")
	ts.mustKubectl(t, strings.Replace(yaml, `a: "2"`, `a: "3"`, 1), "replace", "-f", "-")
	out = ts.mustKubectl(t, "", "get", "cm", "mf", "-o", "yaml", "--show-managed-fields")
	// The applier owned only data.a, which the replace took over.
	contains(t, out, "manager: kubectl-replace", "manager: kubectl-create")
	if strings.Contains(out, "operation: Apply") {
		t.Errorf("the applier still owns fields after losing data.a:\n%s", out)
	}
}

// TestManagedFieldsOnPatch checks every non-apply patch type records an
// Update entry for its manager, as kube-apiserver does.
func TestManagedFieldsOnPatch(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(ts.rest)
	tests := []struct {
		pt        types.PatchType
		patch     string
		wantField string
	}{
		{types.StrategicMergePatchType, `{"data":{"s":"1"}}`, "f:s"},
		{types.MergePatchType, `{"data":{"m":"1"}}`, "f:m"},
		{types.JSONPatchType, `[{"op":"add","path":"/data/j","value":"1"}]`, "f:j"},
	}
	for _, tt := range tests {
		t.Run(string(tt.pt), func(t *testing.T) {
			name := "p-" + strings.ToLower(tt.wantField[2:])
			if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name},
				Data: map[string]string{"base": "0"}}, metav1.CreateOptions{FieldManager: "creator"}); err != nil {
				t.Fatal(err)
			}
			got, err := cs.CoreV1().ConfigMaps("default").Patch(ctx, name, tt.pt, []byte(tt.patch), metav1.PatchOptions{FieldManager: "patcher"})
			if err != nil {
				t.Fatal(err)
			}
			var managers []string
			var patcherFields string
			for _, e := range got.ManagedFields {
				managers = append(managers, e.Manager+"/"+string(e.Operation))
				if e.Manager == "patcher" && e.FieldsV1 != nil {
					patcherFields = string(e.FieldsV1.Raw)
				}
			}
			if d := cmp.Diff([]string{"creator/Update", "patcher/Update"}, managers); d != "" {
				t.Errorf("managers (-want +got):\n%s", d)
			}
			if !strings.Contains(patcherFields, tt.wantField) || strings.Contains(patcherFields, "f:base") {
				t.Errorf("patcher owns %s, want only %s", patcherFields, tt.wantField)
			}
		})
	}
	// A patch naming a stale resourceVersion conflicts; it is not retried.
	if _, err := cs.CoreV1().ConfigMaps("default").Patch(ctx, "p-s", types.MergePatchType,
		[]byte(`{"metadata":{"resourceVersion":"1"},"data":{"x":"1"}}`), metav1.PatchOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale resourceVersion: %v, want 409", err)
	}
	// kubectl patch and label record their managers too.
	ts.mustKubectl(t, "", "label", "cm", "p-m", "tier=web")
	out := ts.mustKubectl(t, "", "get", "cm", "p-m", "-o", "yaml", "--show-managed-fields")
	contains(t, out, "manager: kubectl-label", "f:tier: {}")
}

// TestConcurrentPatches checks patches without preconditions all land
// under contention (the conflict retry).
func TestConcurrentPatches(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(ts.rest)
	// (An object created without fields has no managedFields, and then,
	// as upstream, updates are not tracked either.)
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "busy"},
		Data: map[string]string{"base": "0"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := cs.CoreV1().ConfigMaps("default").Patch(ctx, "busy", types.MergePatchType,
				[]byte(fmt.Sprintf(`{"data":{"k%d":"v"}}`, i)), metav1.PatchOptions{FieldManager: fmt.Sprintf("m%d", i)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	got, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "busy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Upstream keeps at most 10 Update managers, folding the oldest into
	// "ancient-changes".
	ancient := false
	for _, e := range got.ManagedFields {
		ancient = ancient || e.Manager == "ancient-changes"
	}
	if len(got.Data) != 21 || len(got.ManagedFields) != 10 || !ancient {
		t.Errorf("%d keys and %d managers (ancient-changes: %v), want 21 and 10 (true)", len(got.Data), len(got.ManagedFields), ancient)
	}
}

// TestUpdateCreates checks PUT on a missing object creates it only for
// the kinds upstream allows.
func TestUpdateCreates(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(ts.rest)
	tests := []struct {
		name    string
		put     func() error
		created bool
	}{
		{"service", func() error {
			_, err := cs.CoreV1().Services("default").Update(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc"},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.UpdateOptions{})
			return err
		}, true},
		{"endpoints", func() error {
			_, err := cs.CoreV1().Endpoints("default").Update(ctx, &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "svc"}}, metav1.UpdateOptions{})
			return err
		}, true},
		{"lease", func() error {
			_, err := cs.CoordinationV1().Leases("default").Update(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l"}}, metav1.UpdateOptions{})
			return err
		}, true},
		{"limitrange", func() error {
			_, err := cs.CoreV1().LimitRanges("default").Update(ctx, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "lr"}}, metav1.UpdateOptions{})
			return err
		}, true},
		{"configmap", func() error {
			_, err := cs.CoreV1().ConfigMaps("default").Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.UpdateOptions{})
			return err
		}, false},
		{"secret", func() error {
			_, err := cs.CoreV1().Secrets("default").Update(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.UpdateOptions{})
			return err
		}, false},
		{"namespace", func() error {
			_, err := cs.CoreV1().Namespaces().Update(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns-put"}}, metav1.UpdateOptions{})
			return err
		}, false},
		{"service with resourceVersion", func() error {
			_, err := cs.CoreV1().Services("default").Update(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc2", ResourceVersion: "5"},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.UpdateOptions{})
			return err
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.put()
			if tt.created && err != nil {
				t.Fatalf("PUT of a missing object: %v, want it created", err)
			}
			if !tt.created && !apierrors.IsNotFound(err) {
				t.Fatalf("PUT of a missing object: %v, want 404", err)
			}
		})
	}
	// The created object is a normal one: a second PUT updates it.
	svc, err := cs.CoreV1().Services("default").Get(ctx, "svc", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Labels = map[string]string{"a": "b"}
	if _, err := cs.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
