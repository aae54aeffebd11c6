package cache_test

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/scheduler/cache"
	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// Example shows assume-then-bind: an assumed pod is visible to the next
// snapshot at once, and a failed binding is forgotten.
func Example() {
	c := cache.New(nil)
	c.AddNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: v1.NodeStatus{Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("4")}}})
	snap := framework.NewSnapshot()

	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "1"}, Spec: v1.PodSpec{NodeName: "n1", Containers: []v1.Container{{
		Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1500m")}},
	}}}}
	if err := c.AssumePod(framework.NewPodInfo(pod), "n1"); err != nil {
		panic(err)
	}
	c.UpdateSnapshot(snap)
	fmt.Println("requested after assume:", snap.Get("n1").Requested.MilliCPU)

	// The binding failed: undo it.
	if err := c.ForgetPod(pod); err != nil {
		panic(err)
	}
	c.UpdateSnapshot(snap)
	fmt.Println("requested after forget:", snap.Get("n1").Requested.MilliCPU)
	// Output:
	// requested after assume: 1500
	// requested after forget: 0
}
