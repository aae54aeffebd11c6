package store_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/store"
)

var (
	podsGR    = schema.GroupResource{Resource: "pods"}
	cmGR      = schema.GroupResource{Resource: "configmaps"}
	nsGR      = schema.GroupResource{Resource: "namespaces"}
	deployGR  = schema.GroupResource{Group: "apps", Resource: "deployments"}
	rsGR      = schema.GroupResource{Group: "apps", Resource: "replicasets"}
	quietLogs = slog.New(slog.NewTextHandler(io.Discard, nil))
)

func openMem(t testing.TB) *store.Store {
	t.Helper()
	return openDir(t, "")
}

func openDir(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{Dir: dir, Logger: quietLogs})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pod(ns, name string, lbls map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}},
	}
}

func cm(ns, name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string]string{"k": "v"}}
}

func TestCreateGetMetadataAndDefaults(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	p, err := store.Create(ctx, s, pod("default", "web", nil))
	if err != nil {
		t.Fatal(err)
	}
	if p.UID == "" || p.ResourceVersion == "" || p.CreationTimestamp.IsZero() {
		t.Fatalf("server fields not set: uid=%q rv=%q ts=%v", p.UID, p.ResourceVersion, p.CreationTimestamp)
	}
	if p.Generation != 1 {
		t.Errorf("generation = %d, want 1", p.Generation)
	}
	c := p.Spec.Containers[0]
	if got := []any{p.Spec.RestartPolicy, *p.Spec.TerminationGracePeriodSeconds, p.Spec.DNSPolicy, p.Spec.SchedulerName, c.ImagePullPolicy, c.TerminationMessagePath, p.Status.Phase, p.Status.QOSClass, p.Spec.ServiceAccountName}; !cmp.Equal(got, []any{
		corev1.RestartPolicyAlways, int64(30), corev1.DNSClusterFirst, "default-scheduler", corev1.PullIfNotPresent, "/dev/termination-log", corev1.PodPending, corev1.PodQOSBestEffort, "default",
	}) {
		t.Errorf("defaults: %v", got)
	}
	got, err := store.Get[*corev1.Pod](ctx, s, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("Get differs from Create (-create +get):\n%s", diff)
	}
	if _, err := store.Create(ctx, s, pod("default", "web", nil)); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
	if _, err := store.Get[*corev1.Pod](ctx, s, "default", "nope"); !apierrors.IsNotFound(err) {
		t.Errorf("get missing: %v, want NotFound", err)
	}
}

func TestImagePullPolicyFromTag(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	for i, tc := range []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"nginx", corev1.PullAlways},
		{"nginx:latest", corev1.PullAlways},
		{"nginx:1.25", corev1.PullIfNotPresent},
		{"127.0.0.1:5000/web", corev1.PullAlways},
		{"127.0.0.1:5000/web:v2", corev1.PullIfNotPresent},
		{"web@sha256:" + strings.Repeat("a", 64), corev1.PullIfNotPresent},
	} {
		p := pod("default", fmt.Sprintf("p%d", i), nil)
		p.Spec.Containers[0].Image = tc.image
		out, err := store.Create(ctx, s, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := out.Spec.Containers[0].ImagePullPolicy; got != tc.want {
			t.Errorf("%s: pull policy %s, want %s", tc.image, got, tc.want)
		}
	}
}

func TestGenerateName(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		c := cm("default", "")
		c.GenerateName = "gen-"
		out, err := store.Create(ctx, s, c)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out.Name, "gen-") || len(out.Name) != len("gen-")+5 || seen[out.Name] {
			t.Fatalf("generated name %q", out.Name)
		}
		seen[out.Name] = true
	}
}

func TestResourceVersionMonotonicAndConflict(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	a, _ := store.Create(ctx, s, cm("default", "a"))
	b, _ := store.Create(ctx, s, cm("default", "b"))
	if a.ResourceVersion >= b.ResourceVersion && len(a.ResourceVersion) == len(b.ResourceVersion) {
		t.Fatalf("revisions not increasing: %s then %s", a.ResourceVersion, b.ResourceVersion)
	}
	a1 := a.DeepCopy()
	a1.Data["k"] = "v2"
	if _, err := store.Update(ctx, s, a1); err != nil {
		t.Fatal(err)
	}
	stale := a.DeepCopy()
	stale.Data["k"] = "v3"
	if _, err := store.Update(ctx, s, stale); !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v, want Conflict", err)
	}
	// A patch that names a stale resourceVersion conflicts too.
	patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"data":{"k":"v4"}}`, a.ResourceVersion)
	if _, err := store.Patch[*corev1.ConfigMap](ctx, s, "default", "a", types.MergePatchType, []byte(patch)); !apierrors.IsConflict(err) {
		t.Fatalf("stale patch: %v, want Conflict", err)
	}
	// Without a resourceVersion the update is unconditional.
	uncond := a.DeepCopy()
	uncond.ResourceVersion = ""
	uncond.Data["k"] = "v5"
	if out, err := store.Update(ctx, s, uncond); err != nil || out.Data["k"] != "v5" {
		t.Fatalf("unconditional update: %v %v", out, err)
	}
}

func TestGenerationOnlyOnSpecChange(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	d, err := store.Create(ctx, s, deployment("default", "web", 3))
	if err != nil {
		t.Fatal(err)
	}
	d.Labels = map[string]string{"x": "y"}
	d, _ = store.Update(ctx, s, d)
	if d.Generation != 1 {
		t.Errorf("metadata change bumped generation to %d", d.Generation)
	}
	d.Status.Replicas = 3
	d, _ = store.UpdateStatus(ctx, s, d)
	if d.Generation != 1 || d.Status.Replicas != 3 {
		t.Errorf("status write: generation %d replicas %d", d.Generation, d.Status.Replicas)
	}
	d.Spec.Replicas = ptr(int32(5))
	d, _ = store.Update(ctx, s, d)
	if d.Generation != 2 {
		t.Errorf("spec change: generation %d, want 2", d.Generation)
	}
}

func TestStatusAndSpecAreSeparate(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	d, _ := store.Create(ctx, s, deployment("default", "web", 3))
	// A status write cannot change spec.
	w := d.DeepCopy()
	w.Spec.Replicas = ptr(int32(9))
	w.Status.ReadyReplicas = 2
	out, err := store.UpdateStatus(ctx, s, w)
	if err != nil {
		t.Fatal(err)
	}
	if *out.Spec.Replicas != 3 || out.Status.ReadyReplicas != 2 {
		t.Errorf("status write: replicas %d ready %d", *out.Spec.Replicas, out.Status.ReadyReplicas)
	}
	// A spec write cannot change status.
	w = out.DeepCopy()
	w.Spec.Replicas = ptr(int32(4))
	w.Status.ReadyReplicas = 7
	out, err = store.Update(ctx, s, w)
	if err != nil {
		t.Fatal(err)
	}
	if *out.Spec.Replicas != 4 || out.Status.ReadyReplicas != 2 {
		t.Errorf("spec write: replicas %d ready %d", *out.Spec.Replicas, out.Status.ReadyReplicas)
	}
	// Status patch touches only status.
	out2, err := store.Patch[*appsv1.Deployment](ctx, s, "default", "web", types.MergePatchType, []byte(`{"spec":{"replicas":1},"status":{"readyReplicas":4}}`), "status")
	if err != nil {
		t.Fatal(err)
	}
	if *out2.Spec.Replicas != 4 || out2.Status.ReadyReplicas != 4 {
		t.Errorf("status patch: replicas %d ready %d", *out2.Spec.Replicas, out2.Status.ReadyReplicas)
	}
	// Kinds without status refuse status writes.
	c, _ := store.Create(ctx, s, cm("default", "c"))
	if _, err := store.UpdateStatus(ctx, s, c); !apierrors.IsMethodNotSupported(err) {
		t.Errorf("configmap status: %v", err)
	}
}

func TestPatchTypes(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	if _, err := store.Create(ctx, s, deployment("default", "web", 2)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pt   types.PatchType
		data string
		want func(*appsv1.Deployment) bool
	}{
		{"json merge", types.MergePatchType, `{"spec":{"replicas":4}}`, func(d *appsv1.Deployment) bool { return *d.Spec.Replicas == 4 }},
		{"json patch", types.JSONPatchType, `[{"op":"replace","path":"/spec/replicas","value":6}]`, func(d *appsv1.Deployment) bool { return *d.Spec.Replicas == 6 }},
		{"strategic merge keeps other containers", types.StrategicMergePatchType,
			`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1"}]}}}}`,
			func(d *appsv1.Deployment) bool { return len(d.Spec.Template.Spec.Containers) == 2 }},
		{"strategic merge by name", types.StrategicMergePatchType,
			`{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.26"}]}}}}`,
			func(d *appsv1.Deployment) bool {
				for _, c := range d.Spec.Template.Spec.Containers {
					if c.Name == "nginx" {
						return len(d.Spec.Template.Spec.Containers) == 2 && c.Image == "nginx:1.26"
					}
				}
				return false
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := store.Patch[*appsv1.Deployment](ctx, s, "default", "web", tc.pt, []byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(out) {
				t.Errorf("patch result wrong: %+v", out.Spec)
			}
		})
	}
	if _, err := store.Patch[*appsv1.Deployment](ctx, s, "default", "web", types.JSONPatchType, []byte(`[{"op":"bogus"}]`)); !apierrors.IsBadRequest(err) {
		t.Errorf("bad json patch: %v", err)
	}
	if _, err := store.Patch[*appsv1.Deployment](ctx, s, "default", "web", types.MergePatchType, []byte(`{"spec":{"replicas":-1}}`)); !apierrors.IsInvalid(err) {
		t.Errorf("invalid result: %v", err)
	}
}

func deployment(ns, name string, replicas int32) *appsv1.Deployment {
	lbl := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.25"}}},
			},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func TestDeploymentDefaults(t *testing.T) {
	s := openMem(t)
	d, err := store.Create(context.Background(), s, deployment("default", "web", 3))
	if err != nil {
		t.Fatal(err)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru.MaxSurge.String() != "25%" || ru.MaxUnavailable.String() != "25%" ||
		*d.Spec.RevisionHistoryLimit != 10 || *d.Spec.ProgressDeadlineSeconds != 600 {
		t.Errorf("deployment defaults: %+v", d.Spec)
	}
}

func TestNamespaces(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	for _, ns := range []string{"default", "kube-system", "kube-public"} {
		n, err := store.Get[*corev1.Namespace](ctx, s, "", ns)
		if err != nil {
			t.Fatalf("namespace %s: %v", ns, err)
		}
		if n.Status.Phase != corev1.NamespaceActive {
			t.Errorf("%s phase %s", ns, n.Status.Phase)
		}
	}
	if _, err := store.Create(ctx, s, cm("missing", "a")); !apierrors.IsNotFound(err) {
		t.Errorf("create in missing namespace: %v, want NotFound", err)
	}
	if _, err := store.Create(ctx, s, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dev"}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := store.Create(ctx, s, cm("dev", fmt.Sprintf("c%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	blocker := cm("dev", "blocker")
	blocker.Finalizers = []string{"example.com/hold"}
	if _, err := store.Create(ctx, s, blocker); err != nil {
		t.Fatal(err)
	}
	ns, err := s.Delete(ctx, nsGR, "", "dev", metav1.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.(*corev1.Namespace).Status.Phase != corev1.NamespaceTerminating {
		t.Errorf("deleted namespace phase %s, want Terminating", ns.(*corev1.Namespace).Status.Phase)
	}
	if _, err := store.Create(ctx, s, cm("dev", "late")); !apierrors.IsForbidden(err) {
		t.Errorf("create in terminating namespace: %v, want Forbidden", err)
	}
	waitFor(t, "contents deleted but blocker", func() bool {
		l, _, _ := store.ListOf[*corev1.ConfigMap](ctx, s, "dev", metav1.ListOptions{})
		return len(l) == 1
	})
	if _, err := store.Get[*corev1.Namespace](ctx, s, "", "dev"); err != nil {
		t.Fatalf("namespace went before its contents: %v", err)
	}
	waitFor(t, "blocker marked for deletion", func() bool {
		b, err := store.Get[*corev1.ConfigMap](ctx, s, "dev", "blocker")
		return err == nil && b.DeletionTimestamp != nil
	})
	if _, err := store.Patch[*corev1.ConfigMap](ctx, s, "dev", "blocker", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "namespace gone", func() bool {
		_, err := store.Get[*corev1.Namespace](ctx, s, "", "dev")
		return apierrors.IsNotFound(err)
	})
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestValidationErrors(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	bigAnn := strings.Repeat("x", 256*1024+1)
	for _, tc := range []struct {
		name  string
		obj   func() any
		field string
	}{
		{"bad pod name", func() any { return pod("default", "Bad_Name", nil) }, "metadata.name"},
		{"bad service name", func() any {
			return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "1svc"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		}, "metadata.name"},
		{"bad label key", func() any { return pod("default", "p", map[string]string{"bad key": "v"}) }, "metadata.labels"},
		{"label value too long", func() any { return pod("default", "p", map[string]string{"k": strings.Repeat("v", 64)}) }, "metadata.labels"},
		{"label prefix too long", func() any { return pod("default", "p", map[string]string{strings.Repeat("a", 254) + "/k": "v"}) }, "metadata.labels"},
		{"annotations too big", func() any {
			p := pod("default", "p", nil)
			p.Annotations = map[string]string{"a": bigAnn}
			return p
		}, "metadata.annotations"},
		{"configmap too big", func() any {
			c := cm("default", "big")
			c.Data = map[string]string{"k": strings.Repeat("x", 1024*1024+1)}
			return c
		}, "data"},
		{"secret too big", func() any {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "s"}, Data: map[string][]byte{"k": make([]byte, 1024*1024+1)}}
		}, "data"},
		{"missing name", func() any { return pod("default", "", nil) }, "metadata.name"},
		{"clusterIP outside CIDR", func() any {
			return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "svc"}, Spec: corev1.ServiceSpec{ClusterIP: "192.168.1.1", Ports: []corev1.ServicePort{{Port: 80}}}}
		}, "spec.clusterIP"},
		{"no containers", func() any {
			p := pod("default", "p", nil)
			p.Spec.Containers = nil
			return p
		}, "spec.containers"},
		{"selector mismatch", func() any {
			d := deployment("default", "d", 1)
			d.Spec.Template.Labels = map[string]string{"app": "other"}
			return d
		}, "spec.template.metadata.labels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			switch o := tc.obj().(type) {
			case *corev1.Pod:
				_, err = store.Create(ctx, s, o)
			case *corev1.Service:
				_, err = store.Create(ctx, s, o)
			case *corev1.ConfigMap:
				_, err = store.Create(ctx, s, o)
			case *corev1.Secret:
				_, err = store.Create(ctx, s, o)
			case *appsv1.Deployment:
				_, err = store.Create(ctx, s, o)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("got %v, want Invalid", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
		})
	}
	// Nothing of the refused writes was stored.
	l, _ := s.List(ctx, podsGR, "default", metav1.ListOptions{})
	if len(l.Items) != 0 {
		t.Errorf("invalid pods were stored: %d", len(l.Items))
	}
}

func TestSelectorsAndIndexes(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	envs := []string{"prod", "qa", "dev"}
	for i := 0; i < 30; i++ {
		p := pod("default", fmt.Sprintf("p%02d", i), map[string]string{"env": envs[i%3], "tier": fmt.Sprint(i % 2)})
		p.Spec.NodeName = fmt.Sprintf("node-%d", i%5)
		if _, err := store.Create(ctx, s, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		label, field string
		want         int
	}{
		{"env=prod", "", 10},
		{"env==prod", "", 10},
		{"env!=prod", "", 20},
		{"env in (prod,qa)", "", 20},
		{"env notin (prod,qa)", "", 10},
		{"env", "", 30},
		{"!env", "", 0},
		{"env=prod,tier=0", "", 5},
		{"", "spec.nodeName=node-1", 6},
		{"env=qa", "spec.nodeName=node-1", 2},
		{"", "metadata.name=p03", 1},
		{"", "status.phase=Pending", 30},
		{"", "status.phase!=Pending", 0},
		{"", "spec.restartPolicy=Always,spec.schedulerName=default-scheduler", 30},
	} {
		l, err := s.List(ctx, podsGR, "default", metav1.ListOptions{LabelSelector: tc.label, FieldSelector: tc.field})
		if err != nil {
			t.Fatalf("%q %q: %v", tc.label, tc.field, err)
		}
		if len(l.Items) != tc.want {
			t.Errorf("label %q field %q: %d items, want %d", tc.label, tc.field, len(l.Items), tc.want)
		}
	}
	if _, err := s.List(ctx, podsGR, "", metav1.ListOptions{FieldSelector: "spec.bogus=1"}); !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "field label not supported: spec.bogus") {
		t.Errorf("unsupported field: %v", err)
	}
	if _, err := s.List(ctx, podsGR, "", metav1.ListOptions{LabelSelector: "env in (prod"}); !apierrors.IsBadRequest(err) {
		t.Errorf("bad label selector: %v", err)
	}
	// Paging returns every item once, in order, at one revision.
	var names []string
	opts := metav1.ListOptions{Limit: 7}
	var rv string
	for {
		l, err := s.List(ctx, podsGR, "default", opts)
		if err != nil {
			t.Fatal(err)
		}
		if rv == "" {
			rv = l.ResourceVersion
			store.Create(ctx, s, pod("default", "p99", nil)) // a write between pages is not seen
		} else if l.ResourceVersion != rv {
			t.Errorf("page at rv %s, first page at %s", l.ResourceVersion, rv)
		}
		for _, o := range l.Items {
			names = append(names, o.(*corev1.Pod).Name)
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	if len(names) != 30 || names[0] != "p00" || names[29] != "p29" {
		t.Errorf("paged list: %d names %v", len(names), names)
	}
}

func TestClusterScoped(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: "ignored"},
		Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}}}
	out, err := store.Create(ctx, s, n)
	if err != nil {
		t.Fatal(err)
	}
	if out.Namespace != "" {
		t.Errorf("node namespace %q", out.Namespace)
	}
	if q := out.Status.Capacity[corev1.ResourceCPU]; q.String() != "4" {
		t.Errorf("node status not kept on create: %v", out.Status.Capacity)
	}
	if _, err := s.Get(ctx, schema.GroupResource{Resource: "nodes"}, "default", "n1", metav1.GetOptions{}); !apierrors.IsBadRequest(err) {
		t.Errorf("namespaced get of a node: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	reg := store.DefaultRegistry()
	var cluster []string
	for _, k := range reg.Kinds() {
		if !k.Namespaced {
			cluster = append(cluster, k.Resource)
		}
	}
	want := []string{"namespaces", "nodes", "persistentvolumes", "clusterrolebindings", "clusterroles", "priorityclasses", "storageclasses"}
	if diff := cmp.Diff(want, cluster); diff != "" {
		t.Errorf("cluster-scoped kinds (-want +got):\n%s", diff)
	}
	for name, res := range map[string]string{"po": "pods", "deploy": "deployments", "svc": "services", "ns": "namespaces", "pvc": "persistentvolumeclaims",
		"cj": "cronjobs", "pdb": "poddisruptionbudgets", "sts": "statefulsets", "ds": "daemonsets", "rs": "replicasets", "Deployment": "deployments", "deployments.apps": "deployments"} {
		if k := reg.Lookup(name); k == nil || k.Resource != res {
			t.Errorf("Lookup(%q) = %v, want %s", name, k, res)
		}
	}
	if len(reg.Kinds()) < 29 {
		t.Errorf("only %d kinds registered", len(reg.Kinds()))
	}
	if err := reg.Register(store.Kind{GVK: reg.Lookup("pods").GVK, Resource: "pods2", New: reg.Lookup("pods").New, NewList: reg.Lookup("pods").NewList}); err == nil {
		t.Error("registering a kind twice succeeded")
	}
}

func TestProtectedNamespacesAndPriority(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	for _, ns := range []string{"default", "kube-system", "kube-public"} {
		if _, err := s.Delete(ctx, nsGR, "", ns, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("delete namespace %s: %v, want Forbidden", ns, err)
		}
	}
	p := pod("kube-system", "critical", nil)
	p.Spec.PriorityClassName = "system-node-critical"
	out, err := store.Create(ctx, s, p)
	if err != nil {
		t.Fatal(err)
	}
	if *out.Spec.Priority != store.SystemNodeCritical {
		t.Errorf("priority %d", *out.Spec.Priority)
	}
	p = pod("default", "unknown-class", nil)
	p.Spec.PriorityClassName = "gold"
	if _, err := store.Create(ctx, s, p); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "no PriorityClass with name gold") {
		t.Errorf("unknown class: %v", err)
	}
	store.Create(ctx, s, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "default-prio"}, Value: 100, GlobalDefault: true})
	out, _ = store.Create(ctx, s, pod("default", "plain", nil))
	if *out.Spec.Priority != 100 || out.Spec.PriorityClassName != "default-prio" {
		t.Errorf("global default: %d %q", *out.Spec.Priority, out.Spec.PriorityClassName)
	}
}

func TestAdmissionDefaults(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	p, _ := store.Create(ctx, s, pod("default", "tol", nil))
	var keys []string
	for _, tol := range p.Spec.Tolerations {
		if tol.Effect == corev1.TaintEffectNoExecute && *tol.TolerationSeconds == store.DefaultTolerationSeconds {
			keys = append(keys, tol.Key)
		}
	}
	if diff := cmp.Diff([]string{"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}, keys); diff != "" {
		t.Errorf("default tolerations (-want +got):\n%s", diff)
	}
	// A StatefulSet's containers may mount its volumeClaimTemplates.
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db:1",
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}}}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}},
		},
	}
	if _, err := store.Create(ctx, s, sts); err != nil {
		t.Errorf("statefulset mounting its claim template: %v", err)
	}
}

// TestWriteAfterCloseFails checks that a write racing with Close (such as
// the garbage collector's) fails instead of waiting for a log that is no
// longer written.
func TestWriteAfterCloseFails(t *testing.T) {
	s, err := store.Open(context.Background(), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := store.Create(context.Background(), s, cm("default", "late"))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "store closed") {
			t.Errorf("create after Close: %v, want a store-closed error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a create after Close hangs")
	}
}
