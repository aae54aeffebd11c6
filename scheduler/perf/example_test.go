package perf_test

import (
	"fmt"

	v1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/scheduler/perf"
)

// Example builds two nodes of the node affinity workload and two of its
// pods, places them as a scheduler would (one of them wrongly) and verifies
// the placement with the workload's check.
func Example() {
	var nodes []*v1.Node
	for i := range 5 {
		name := fmt.Sprintf("node-%d", i)
		nodes = append(nodes, perf.Node(name, map[string]string{perf.LegacyZoneLabel: perf.NodeAffinityZone(i)}))
	}
	good, bad := perf.NodeAffinityPod("good"), perf.NodeAffinityPod("bad")
	good.Spec.NodeName = "node-0" // zone1
	bad.Spec.NodeName = "node-4"  // zone2
	binds := map[string]int{perf.BindKey("default", "good"): 1, perf.BindKey("default", "bad"): 1}

	fmt.Println(perf.VerifyPlacement(nodes, []*v1.Pod{good}, binds, perf.CheckNodeAffinity))
	fmt.Println(perf.VerifyPlacement(nodes, []*v1.Pod{good, bad}, binds, perf.CheckNodeAffinity))
	// Output:
	// <nil>
	// node affinity violated: bad on node-4 (zone "zone2")
}
