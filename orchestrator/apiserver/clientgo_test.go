package apiserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/tugboatdev/tugboat/store"
)

func clientset(t testing.TB, cfg *rest.Config, proto bool) *kubernetes.Clientset {
	t.Helper()
	c := rest.CopyConfig(cfg)
	if proto {
		c.ContentType = "application/vnd.kubernetes.protobuf"
		c.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	}
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func testPod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func TestClientGoCRUD(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	for _, proto := range []bool{true, false} {
		t.Run(fmt.Sprintf("protobuf=%v", proto), func(t *testing.T) {
			cs := clientset(t, ts.rest, proto)
			ns := fmt.Sprintf("crud-%v", proto)
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			p, err := cs.CoreV1().Pods(ns).Create(ctx, testPod(ns, "p", map[string]string{"a": "1"}), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p.UID == "" || p.ResourceVersion == "" || p.Spec.Containers[0].Image != "busybox" {
				t.Fatalf("created pod: %+v", p)
			}
			got, err := cs.CoreV1().Pods(ns).Get(ctx, "p", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(p.Spec, got.Spec); diff != "" {
				t.Errorf("get differs (-created +got):\n%s", diff)
			}
			got.Labels["b"] = "2"
			upd, err := cs.CoreV1().Pods(ns).Update(ctx, got, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cs.CoreV1().Pods(ns).Update(ctx, got, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
				t.Errorf("stale update: want 409 Conflict, got %v", err)
			}
			upd.Status.Phase = corev1.PodRunning
			if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			pt, err := cs.CoreV1().Pods(ns).Patch(ctx, "p", types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"c":"3"}}}`), metav1.PatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]string{"a": "1", "b": "2", "c": "3"}, pt.Labels); diff != "" {
				t.Errorf("labels after patch:\n%s", diff)
			}
			if pt.Status.Phase != corev1.PodRunning {
				t.Errorf("status lost: %q", pt.Status.Phase)
			}
			if _, err := cs.CoreV1().Pods(ns).Patch(ctx, "p", types.JSONPatchType, []byte(`[{"op":"replace","path":"/metadata/labels/c","value":"4"}]`), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "c=4"})
			if err != nil || len(l.Items) != 1 {
				t.Fatalf("list c=4: %v %v", l, err)
			}
			// binding and eviction.
			if err := cs.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			err = cs.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n2"}}, metav1.CreateOptions{})
			if !apierrors.IsConflict(err) {
				t.Errorf("second binding: want 409, got %v", err)
			}
			bound, _ := cs.CoreV1().Pods(ns).Get(ctx, "p", metav1.GetOptions{})
			if bound.Spec.NodeName != "n1" {
				t.Errorf("nodeName %q", bound.Spec.NodeName)
			}
			one := intstr.FromInt32(1)
			pdb, err := cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
				ObjectMeta: metav1.ObjectMeta{Name: "pdb"},
				Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "1"}}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			evict := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns}}
			if err := cs.PolicyV1().Evictions(ns).Evict(ctx, evict); !apierrors.IsTooManyRequests(err) {
				t.Errorf("eviction with 0 disruptions allowed: want 429, got %v", err)
			}
			pdb.Status = policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1, ObservedGeneration: pdb.Generation, CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 1}
			if _, err := cs.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := cs.PolicyV1().Evictions(ns).Evict(ctx, evict); err != nil {
				t.Errorf("eviction: %v", err)
			}
			if p, err := cs.CoreV1().Pods(ns).Get(ctx, "p", metav1.GetOptions{}); err == nil && p.DeletionTimestamp == nil {
				t.Errorf("evicted pod not deleted")
			}
			// Deployments and scale.
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "d"}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "d"}}, Spec: testPod("", "", nil).Spec},
			}}
			if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			sc, err := cs.AppsV1().Deployments(ns).GetScale(ctx, "d", metav1.GetOptions{})
			if err != nil || sc.Spec.Replicas != 1 || sc.Status.Selector != "app=d" {
				t.Fatalf("scale: %+v %v", sc, err)
			}
			sc.Spec.Replicas = 4
			if _, err := cs.AppsV1().Deployments(ns).UpdateScale(ctx, "d", sc, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			if d, _ := cs.AppsV1().Deployments(ns).Get(ctx, "d", metav1.GetOptions{}); *d.Spec.Replicas != 4 {
				t.Errorf("replicas %d", *d.Spec.Replicas)
			}
			// dryRun and generateName.
			gp := testPod(ns, "", nil)
			gp.GenerateName = "gen-"
			dry, err := cs.CoreV1().Pods(ns).Create(ctx, gp, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err != nil || len(dry.Name) <= len("gen-") {
				t.Fatalf("dry run: %v %v", dry, err)
			}
			if _, err := cs.CoreV1().Pods(ns).Get(ctx, dry.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("dry-run pod persisted: %v", err)
			}
			// Delete with precondition, deletecollection.
			stale := metav1.Preconditions{UID: ptrTo(types.UID("nope"))}
			if err := cs.AppsV1().Deployments(ns).Delete(ctx, "d", metav1.DeleteOptions{Preconditions: &stale}); !apierrors.IsConflict(err) {
				t.Errorf("delete with wrong UID precondition: want 409, got %v", err)
			}
			if err := cs.AppsV1().Deployments(ns).Delete(ctx, "d", metav1.DeleteOptions{PropagationPolicy: ptrTo(metav1.DeletePropagationBackground)}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm%d", i), Labels: map[string]string{"grp": "x"}}}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := cs.CoreV1().ConfigMaps(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "grp=x"}); err != nil {
				t.Fatal(err)
			}
			if l, _ := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: "grp=x"}); len(l.Items) != 0 {
				t.Errorf("deletecollection left %d", len(l.Items))
			}
			// Paging.
			for i := 0; i < 5; i++ {
				cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pg%d", i)}}, metav1.CreateOptions{})
			}
			var names []string
			opts := metav1.ListOptions{Limit: 2}
			for {
				l, err := cs.CoreV1().ConfigMaps(ns).List(ctx, opts)
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range l.Items {
					names = append(names, it.Name)
				}
				if l.Continue == "" {
					break
				}
				opts.Continue = l.Continue
			}
			if diff := cmp.Diff([]string{"pg0", "pg1", "pg2", "pg3", "pg4"}, names); diff != "" {
				t.Errorf("paged names:\n%s", diff)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestInformerWatchList(t *testing.T) {
	ts := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := clientset(t, ts.rest, true)
	cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "inf"}}, metav1.CreateOptions{})
	for i := 0; i < 20; i++ {
		if _, err := cs.CoreV1().Pods("inf").Create(ctx, testPod("inf", fmt.Sprintf("p%02d", i), nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().Pods().Informer()
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	if n := len(inf.GetStore().List()); n != 20 {
		t.Errorf("informer has %d pods, want 20", n)
	}
	cs.CoreV1().Pods("inf").Create(ctx, testPod("inf", "late", nil), metav1.CreateOptions{})
	deadline := time.Now().Add(10 * time.Second)
	for len(inf.GetStore().List()) != 21 {
		if time.Now().After(deadline) {
			t.Fatal("informer did not see the new pod")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The watch-list stream itself: ADDED events then the initial-events-end bookmark.
	w, err := cs.CoreV1().Pods("inf").Watch(ctx, metav1.ListOptions{SendInitialEvents: ptrTo(true), AllowWatchBookmarks: true,
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	added := 0
	for ev := range w.ResultChan() {
		if ev.Type == watch.Added {
			added++
			continue
		}
		if ev.Type != watch.Bookmark {
			t.Fatalf("unexpected event %v", ev.Type)
		}
		p := ev.Object.(*corev1.Pod)
		if p.Annotations[store.InitialEventsEndAnnotation] != "true" {
			t.Errorf("bookmark lacks %s", store.InitialEventsEndAnnotation)
		}
		break
	}
	if added != 21 {
		t.Errorf("watch-list sent %d ADDED events, want 21", added)
	}
}
