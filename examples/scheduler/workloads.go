package main

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/scheduler/perf"
)

// workload is one of upstream scheduler_perf's workloads: the nodes, the
// initial pods (scheduled before the measurement), the measured pods and
// the constraint every placement must satisfy.
type workload struct {
	// name is the -workload flag value.
	name string
	// about describes the workload in -help.
	about string
	// pods is the default number of measured pods.
	pods int
	// node, initPod and pod build the i-th node, initial pod and measured
	// pod.
	node    func(i int) *v1.Node
	initPod func(i int) *v1.Pod
	pod     func(i int) *v1.Pod
	// check reports a violated constraint of the workload (nil: none).
	check perf.Check
}

// SimulatedLabel marks the nodes this program creates.
const SimulatedLabel = "tugboat.dev/simulated"

// workloads are the workloads -workload selects, by name.
var workloads = map[string]workload{
	"basic": {
		name:  "basic",
		about: "SchedulingBasic: plain pods (100m cpu, 500Mi memory)",
		pods:  10000,
		node:  func(i int) *v1.Node { return simulatedNode(i, nil) },
		initPod: func(i int) *v1.Pod {
			return perf.Pod(fmt.Sprintf("init-%06d", i))
		},
		pod: func(i int) *v1.Pod { return perf.Pod(fmt.Sprintf("pod-%06d", i)) },
	},
	"anti-affinity": {
		name:    "anti-affinity",
		about:   "SchedulingPodAntiAffinity: every pod has required anti-affinity by hostname against pods of its label",
		pods:    4000,
		node:    func(i int) *v1.Node { return simulatedNode(i, nil) },
		initPod: func(i int) *v1.Pod { return perf.AntiAffinityPod(fmt.Sprintf("init-%06d", i)) },
		pod:     func(i int) *v1.Pod { return perf.AntiAffinityPod(fmt.Sprintf("pod-%06d", i)) },
		check:   perf.CheckAntiAffinity,
	},
	"spread": {
		name:  "spread",
		about: "SchedulingTopologySpreading: 3 zones, maxSkew 1, DoNotSchedule",
		pods:  5000,
		node: func(i int) *v1.Node {
			return simulatedNode(i, map[string]string{v1.LabelTopologyZone: perf.SpreadZone(i)})
		},
		initPod: func(i int) *v1.Pod { return perf.Pod(fmt.Sprintf("init-%06d", i)) },
		pod:     func(i int) *v1.Pod { return perf.SpreadPod(fmt.Sprintf("pod-%06d", i)) },
		check:   perf.CheckSpread,
	},
	"node-affinity": {
		name:  "node-affinity",
		about: "SchedulingNodeAffinity: required node affinity to zone1, which 4/5 of the nodes are in",
		pods:  10000,
		node: func(i int) *v1.Node {
			return simulatedNode(i, map[string]string{perf.LegacyZoneLabel: perf.NodeAffinityZone(i)})
		},
		initPod: func(i int) *v1.Pod { return perf.Pod(fmt.Sprintf("init-%06d", i)) },
		pod:     func(i int) *v1.Pod { return perf.NodeAffinityPod(fmt.Sprintf("pod-%06d", i)) },
		check:   perf.CheckNodeAffinity,
	},
}

// workloadNames returns the workload names, sorted.
func workloadNames() []string {
	names := make([]string, 0, len(workloads))
	for n := range workloads {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// workloadHelp describes every workload, one per line.
func workloadHelp() string {
	var b strings.Builder
	for _, n := range workloadNames() {
		fmt.Fprintf(&b, "\n  %s: %s (default %d pods)", n, workloads[n].about, workloads[n].pods)
	}
	return b.String()
}

// simulatedNode is an upstream scheduler_perf node ([perf.Node]) named
// sim-node-NNNNN, labelled with SimulatedLabel and extra.
func simulatedNode(i int, extra map[string]string) *v1.Node {
	lbls := map[string]string{SimulatedLabel: "true"}
	for k, v := range extra {
		lbls[k] = v
	}
	return perf.Node(fmt.Sprintf("sim-node-%05d", i), lbls)
}
