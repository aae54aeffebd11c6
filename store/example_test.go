package store_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/store"
)

// The first step of the tutorial: open a store, write objects with the
// upstream Kubernetes types, read them back by name and by label.
func Example() {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{Logger: quietLogs}) // in memory; set Dir to keep state on disk
	if err != nil {
		panic(err)
	}
	defer s.Close()

	for i, env := range []string{"prod", "qa", "dev"} {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("web-%d", i), Labels: map[string]string{"env": env}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.25"}}},
		}
		if _, err := store.Create(ctx, s, p); err != nil {
			panic(err)
		}
	}
	p, _ := store.Get[*corev1.Pod](ctx, s, "default", "web-0")
	fmt.Println(p.Name, p.Status.Phase, p.Spec.RestartPolicy, p.Spec.Containers[0].ImagePullPolicy)

	pods, _, _ := store.ListOf[*corev1.Pod](ctx, s, "default", metav1.ListOptions{LabelSelector: "env in (prod,qa)"})
	for _, p := range pods {
		fmt.Println(p.Name, p.Labels["env"])
	}
	// Output:
	// web-0 Pending Always IfNotPresent
	// web-0 prod
	// web-1 qa
}

// Watch a resource: every change after a resourceVersion arrives in commit
// order; an object that stops matching the selector arrives as DELETED.
func ExampleStore_Watch() {
	ctx := context.Background()
	s, _ := store.Open(ctx, store.Config{Logger: quietLogs})
	defer s.Close()

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "settings", Labels: map[string]string{"watched": "yes"}}}
	created, _ := store.Create(ctx, s, cm)
	w, _ := store.WatchOf[*corev1.ConfigMap](ctx, s, "default", metav1.ListOptions{
		ResourceVersion: created.ResourceVersion, LabelSelector: "watched=yes",
	})
	defer w.Stop()

	store.Patch[*corev1.ConfigMap](ctx, s, "default", "settings", types.MergePatchType, []byte(`{"data":{"color":"blue"}}`))
	store.Patch[*corev1.ConfigMap](ctx, s, "default", "settings", types.MergePatchType, []byte(`{"metadata":{"labels":{"watched":"no"}}}`))
	for _, want := range []watch.EventType{watch.Modified, watch.Deleted} {
		e := <-w.ResultChan()
		fmt.Println(e.Type == want, e.Type, e.Object.(*corev1.ConfigMap).Data["color"])
	}
	// Output:
	// true MODIFIED blue
	// true DELETED blue
}

// Decode manifests strictly, as kubectl apply sends them, and create them.
func ExampleDecodeAll() {
	ctx := context.Background()
	s, _ := store.Open(ctx, store.Config{Logger: quietLogs})
	defer s.Close()
	manifest := `
apiVersion: apps/v1
kind: Deployment
metadata: {name: nginx, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec: {containers: [{name: nginx, image: "nginx:1.14.2"}]}
`
	objs, err := store.DecodeAll(s.Registry(), strings.NewReader(manifest))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	out, _ := s.Create(ctx, objs[0], metav1.CreateOptions{})
	d := out.(*appsv1.Deployment)
	fmt.Println(d.Name, *d.Spec.Replicas, d.Spec.Strategy.Type, d.Spec.Strategy.RollingUpdate.MaxSurge, d.Generation)

	_, err = store.Decode(s.Registry(), []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containerz: []}\n"))
	fmt.Println(err)
	// Output:
	// nginx 3 RollingUpdate 25% 1
	// Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containerz"
}

// Create many objects cheaply: a controller that builds a fresh pod for
// every create hands it over with CreateOwned. The store keeps that very
// object (no copy in, no copy out) and returns it read-only; copy it
// before changing it.
func ExampleCreateOwned() {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{Logger: quietLogs})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	template := corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.25"}}}
	for i := 0; i < 3; i++ {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: "web-", Labels: map[string]string{"app": "web"}},
			Spec:       *template.DeepCopy(), // the pod must share nothing with the template
		}
		stored, err := store.CreateOwned(ctx, s, p)
		if err != nil {
			panic(err)
		}
		fmt.Println(stored == p, stored.Status.Phase, len(stored.Name))
	}
	// Output:
	// true Pending 9
	// true Pending 9
	// true Pending 9
}
