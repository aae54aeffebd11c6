package scheduler

import "k8s.io/apimachinery/pkg/runtime"

// handler receives the changes of one resource from its informer
// (store/informer). old is nil on add; obj is the last known object on
// delete. The informer calls it from one goroutine.
type handler struct {
	add    func(obj runtime.Object)
	update func(old, obj runtime.Object)
	delete func(obj runtime.Object)
}
