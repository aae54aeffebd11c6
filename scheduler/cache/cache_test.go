package cache

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

func testNode(name string) *v1.Node {
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi"), v1.ResourcePods: resource.MustParse("110")}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1.NodeStatus{Allocatable: rl}}
}

func testPod(name, node string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name)},
		Spec: v1.PodSpec{NodeName: node, Containers: []v1.Container{{Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1")},
		}}}},
	}
}

func requested(s *framework.Snapshot) map[string]int64 {
	out := map[string]int64{}
	for _, n := range s.List() {
		out[n.Name()] = n.Requested.MilliCPU
	}
	return out
}

func TestAssumeThenBind(t *testing.T) {
	c := New(nil)
	c.AddNode(testNode("a"))
	c.AddNode(testNode("b"))
	snap := framework.NewSnapshot()
	c.UpdateSnapshot(snap)

	p := testPod("p", "")
	assumed := *p
	assumed.Spec.NodeName = "a"
	if err := c.AssumePod(framework.NewPodInfo(&assumed), "a"); err != nil {
		t.Fatal(err)
	}
	c.UpdateSnapshot(snap)
	if d := cmp.Diff(map[string]int64{"a": 1000, "b": 0}, requested(snap)); d != "" {
		t.Errorf("the next cycle must see the assumed pod:\n%s", d)
	}
	if !c.IsAssumed(p) {
		t.Error("not assumed")
	}
	if err := c.AssumePod(framework.NewPodInfo(&assumed), "a"); err == nil {
		t.Error("assumed twice")
	}
	// The store confirms the binding.
	c.FinishBinding(&assumed)
	c.AddPod(&assumed)
	if c.IsAssumed(p) {
		t.Error("still assumed after confirmation")
	}
	if err := c.ForgetPod(p); err == nil {
		t.Error("forgot a confirmed pod")
	}
	c.UpdateSnapshot(snap)
	if d := cmp.Diff(map[string]int64{"a": 1000, "b": 0}, requested(snap)); d != "" {
		t.Errorf("after confirmation:\n%s", d)
	}
	c.RemovePod(&assumed)
	c.UpdateSnapshot(snap)
	if d := cmp.Diff(map[string]int64{"a": 0, "b": 0}, requested(snap)); d != "" {
		t.Errorf("after delete:\n%s", d)
	}
}

func TestForgetFailedBinding(t *testing.T) {
	c := New(nil)
	c.AddNode(testNode("a"))
	snap := framework.NewSnapshot()
	p := testPod("p", "a")
	if err := c.AssumePod(framework.NewPodInfo(p), "a"); err != nil {
		t.Fatal(err)
	}
	c.UpdateSnapshot(snap)
	if err := c.ForgetPod(p); err != nil {
		t.Fatal(err)
	}
	c.UpdateSnapshot(snap)
	if got := snap.Get("a").Requested.MilliCPU; got != 0 {
		t.Errorf("requested after forget = %d", got)
	}
	if c.PodCount() != 0 {
		t.Errorf("pods = %d", c.PodCount())
	}
}

func TestSnapshotCopiesOnlyChangedNodes(t *testing.T) {
	c := New(nil)
	for _, n := range []string{"a", "b", "c"} {
		c.AddNode(testNode(n))
	}
	snap := framework.NewSnapshot()
	c.UpdateSnapshot(snap)
	before := map[string]*framework.NodeInfo{}
	for _, n := range snap.List() {
		before[n.Name()] = n
	}
	gens := map[string]int64{}
	for _, n := range snap.List() {
		gens[n.Name()] = n.Generation
	}
	c.AddPod(testPod("p", "b"))
	c.UpdateSnapshot(snap)
	for _, n := range snap.List() {
		if before[n.Name()] != n {
			t.Errorf("node %s: list entry replaced instead of updated in place", n.Name())
		}
		changed := n.Generation != gens[n.Name()]
		if changed != (n.Name() == "b") {
			t.Errorf("node %s: generation changed = %v", n.Name(), changed)
		}
	}
}

func TestRemoveNodeKeepsPodsUntilDeleted(t *testing.T) {
	c := New(nil)
	c.AddNode(testNode("a"))
	p := testPod("p", "a")
	c.AddPod(p)
	c.RemoveNode("a")
	snap := framework.NewSnapshot()
	c.UpdateSnapshot(snap)
	if snap.NumNodes() != 0 || c.NodeCount() != 0 {
		t.Errorf("removed node still offered")
	}
	c.RemovePod(p)
	c.AddNode(testNode("a"))
	c.UpdateSnapshot(snap)
	if snap.NumNodes() != 1 || snap.Get("a").Requested.MilliCPU != 0 {
		t.Errorf("re-added node wrong: %+v", snap.Get("a"))
	}
}

func TestPodOnUnknownNode(t *testing.T) {
	c := New(nil)
	c.AddPod(testPod("p", "later"))
	snap := framework.NewSnapshot()
	c.UpdateSnapshot(snap)
	if snap.NumNodes() != 0 {
		t.Fatal("node without object listed")
	}
	c.AddNode(testNode("later"))
	c.UpdateSnapshot(snap)
	if got := snap.Get("later").Requested.MilliCPU; got != 1000 {
		t.Errorf("pod that arrived before its node not counted: %d", got)
	}
}
