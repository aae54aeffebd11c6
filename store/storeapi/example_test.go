package storeapi_test

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/store"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// A component written against storeapi works with any store: here the
// embedded one (a test may link it; the component's own package does
// not), elsewhere the API server's client.
func Example() {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	countPods := func(ctx context.Context, s storeapi.Interface) int {
		pods, _, err := storeapi.ListOf[*corev1.Pod](ctx, s, "default", metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			panic(err)
		}
		return len(pods)
	}

	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.25"}}},
	}
	if _, err := storeapi.Create(ctx, s, p); err != nil {
		panic(err)
	}
	got, err := storeapi.Get[*corev1.Pod](ctx, s, "default", "web-0")
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Name, got.Status.Phase, got.Status.QOSClass)
	fmt.Println("pods:", countPods(ctx, s))
	// Output:
	// web-0 Pending BestEffort
	// pods: 1
}

// Decode reads a manifest strictly into its upstream Go type, as the node
// agent does with static pod files.
func ExampleDecode() {
	obj, err := storeapi.Decode(storeapi.DefaultRegistry(), []byte(`
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: nginx:1.25
    resources:
      requests: {cpu: 100m, memory: 64Mi}
      limits: {cpu: 100m, memory: 64Mi}
`))
	if err != nil {
		panic(err)
	}
	pod := obj.(*corev1.Pod)
	fmt.Println(pod.Name, storeapi.QOSClass(&pod.Spec))

	_, err = storeapi.Decode(storeapi.DefaultRegistry(), []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containerz: []}\n"))
	fmt.Println(err != nil)
	// Output:
	// web Guaranteed
	// true
}

// The registry resolves names the way kubectl does on its command line.
func ExampleRegistry_Lookup() {
	reg := storeapi.DefaultRegistry()
	for _, name := range []string{"deploy", "deployments.apps", "po", "nodes"} {
		k := reg.Lookup(name)
		fmt.Println(name, "->", k.GVK.Kind, k.GroupResource(), k.Namespaced)
	}
	// Output:
	// deploy -> Deployment deployments.apps true
	// deployments.apps -> Deployment deployments.apps true
	// po -> Pod pods true
	// nodes -> Node nodes false
}
