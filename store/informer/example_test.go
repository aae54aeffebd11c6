package informer_test

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tugboatdev/tugboat/store"
	"github.com/tugboatdev/tugboat/store/informer"
)

// An informer keeps a local cache of pods, indexed by node, and tells a
// handler about every change.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, _ := store.Open(ctx, store.Config{})
	defer s.Close()

	pods := informer.New(s, schema.GroupResource{Resource: "pods"}, nil)
	pods.AddIndex("node", func(o runtime.Object) []string { return []string{o.(*corev1.Pod).Spec.NodeName} })
	added := make(chan string)
	pods.AddHandler(informer.Handler{OnAdd: func(o runtime.Object) { added <- informer.KeyOf(o) }})
	go pods.Run(ctx)

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}
	if _, err := store.Create(ctx, s, pod); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("added", <-added)
	fmt.Println("on node-1:", len(pods.ByIndex("node", "node-1")))
	// Output:
	// added default/web
	// on node-1: 1
}
