package main

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	check func(nodes []*v1.Node, pods []*v1.Pod) error
}

// Labels and topology keys of the workloads.
const (
	// SimulatedLabel marks the nodes this program creates.
	SimulatedLabel = "tugboat.dev/simulated"
	// legacyZoneLabel is the (deprecated) zone label upstream's node
	// affinity workload selects on.
	legacyZoneLabel = "failure-domain.beta.kubernetes.io/zone"
)

// moonZones are the three zones of the topology spreading workload.
var moonZones = []string{"moon-1", "moon-2", "moon-3"}

// workloads are the workloads -workload selects, by name.
var workloads = map[string]workload{
	"basic": {
		name:  "basic",
		about: "SchedulingBasic: plain pods (100m cpu, 500Mi memory)",
		pods:  10000,
		node:  func(i int) *v1.Node { return simulatedNode(i, nil) },
		initPod: func(i int) *v1.Pod {
			return benchPod(fmt.Sprintf("init-%06d", i))
		},
		pod: func(i int) *v1.Pod { return benchPod(fmt.Sprintf("pod-%06d", i)) },
	},
	"anti-affinity": {
		name:    "anti-affinity",
		about:   "SchedulingPodAntiAffinity: every pod has required anti-affinity by hostname against pods of its label",
		pods:    4000,
		node:    func(i int) *v1.Node { return simulatedNode(i, nil) },
		initPod: func(i int) *v1.Pod { return antiAffinityPod(fmt.Sprintf("init-%06d", i)) },
		pod:     func(i int) *v1.Pod { return antiAffinityPod(fmt.Sprintf("pod-%06d", i)) },
		check:   checkAntiAffinity,
	},
	"spread": {
		name:  "spread",
		about: "SchedulingTopologySpreading: 3 zones, maxSkew 1, DoNotSchedule",
		pods:  5000,
		node: func(i int) *v1.Node {
			return simulatedNode(i, map[string]string{v1.LabelTopologyZone: moonZones[i%len(moonZones)]})
		},
		initPod: func(i int) *v1.Pod { return benchPod(fmt.Sprintf("init-%06d", i)) },
		pod:     func(i int) *v1.Pod { return spreadPod(fmt.Sprintf("pod-%06d", i)) },
		check:   checkSpread,
	},
	"node-affinity": {
		name:  "node-affinity",
		about: "SchedulingNodeAffinity: required node affinity to zone1, which 4/5 of the nodes are in",
		pods:  10000,
		node: func(i int) *v1.Node {
			z := "zone1"
			if i%5 == 4 {
				z = "zone2"
			}
			return simulatedNode(i, map[string]string{legacyZoneLabel: z})
		},
		initPod: func(i int) *v1.Pod { return benchPod(fmt.Sprintf("init-%06d", i)) },
		pod:     func(i int) *v1.Pod { return nodeAffinityPod(fmt.Sprintf("pod-%06d", i)) },
		check:   checkNodeAffinity,
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

// simulatedNode is an upstream scheduler_perf node: 4 cpu, 32Gi, 110 pods,
// labelled with its hostname, SimulatedLabel and extra.
func simulatedNode(i int, extra map[string]string) *v1.Node {
	name := fmt.Sprintf("sim-node-%05d", i)
	capacity := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse("4"),
		v1.ResourceMemory: resource.MustParse("32Gi"),
		v1.ResourcePods:   resource.MustParse("110"),
	}
	lbls := map[string]string{v1.LabelHostname: name, SimulatedLabel: "true"}
	for k, v := range extra {
		lbls[k] = v
	}
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Status: v1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			Conditions:  []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		},
	}
}

// benchPod is an upstream scheduler_perf pod: 100m cpu, 500Mi memory.
func benchPod(name string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "bench"}},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name:  "app",
			Image: "registry.k8s.io/pause:3.10",
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
				v1.ResourceCPU:    resource.MustParse("100m"),
				v1.ResourceMemory: resource.MustParse("500Mi"),
			}},
		}}},
	}
}

// antiAffinityPod carries required anti-affinity by hostname against the
// pods with its own label, as scheduler_perf's pod-with-pod-anti-affinity.
func antiAffinityPod(name string) *v1.Pod {
	p := benchPod(name)
	p.Labels = map[string]string{"color": "green"}
	p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"color": "green"}},
		TopologyKey:   v1.LabelHostname,
	}}}}
	return p
}

// spreadPod spreads over zones with maxSkew 1, DoNotSchedule, as
// scheduler_perf's pod-with-topology-spreading.
func spreadPod(name string) *v1.Pod {
	p := benchPod(name)
	p.Labels = map[string]string{"foo": "bar"}
	p.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: v1.LabelTopologyZone, WhenUnsatisfiable: v1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"foo": "bar"}},
	}}
	return p
}

// nodeAffinityPod requires zone1 by required node affinity, as
// scheduler_perf's pod-with-node-affinity.
func nodeAffinityPod(name string) *v1.Pod {
	p := benchPod(name)
	p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
		NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{
			Key: legacyZoneLabel, Operator: v1.NodeSelectorOpIn, Values: []string{"zone1"},
		}}}},
	}}}
	return p
}

// checkAntiAffinity reports two pods labelled color=green on one node.
func checkAntiAffinity(_ []*v1.Node, pods []*v1.Pod) error {
	seen := map[string]string{}
	for _, p := range pods {
		if p.Labels["color"] != "green" || p.Spec.NodeName == "" {
			continue
		}
		if other, ok := seen[p.Spec.NodeName]; ok {
			return fmt.Errorf("anti-affinity violated: %s and %s on %s", other, p.Name, p.Spec.NodeName)
		}
		seen[p.Spec.NodeName] = p.Name
	}
	return nil
}

// checkSpread reports a zone skew above 1 among the pods labelled foo=bar.
func checkSpread(nodes []*v1.Node, pods []*v1.Pod) error {
	zone := map[string]string{}
	for _, n := range nodes {
		zone[n.Name] = n.Labels[v1.LabelTopologyZone]
	}
	count := map[string]int{}
	for _, p := range pods {
		if p.Labels["foo"] == "bar" && p.Spec.NodeName != "" {
			count[zone[p.Spec.NodeName]]++
		}
	}
	lo, hi := -1, 0
	for _, z := range moonZones {
		if lo < 0 || count[z] < lo {
			lo = count[z]
		}
		hi = max(hi, count[z])
	}
	if hi-lo > 1 {
		return fmt.Errorf("topology spread violated: pods per zone %v", count)
	}
	return nil
}

// checkNodeAffinity reports a pod with node affinity on a node outside
// zone1.
func checkNodeAffinity(nodes []*v1.Node, pods []*v1.Pod) error {
	zone := map[string]string{}
	for _, n := range nodes {
		zone[n.Name] = n.Labels[legacyZoneLabel]
	}
	for _, p := range pods {
		if p.Spec.Affinity != nil && p.Spec.Affinity.NodeAffinity != nil && p.Spec.NodeName != "" && zone[p.Spec.NodeName] != "zone1" {
			return fmt.Errorf("node affinity violated: %s on %s (zone %q)", p.Name, p.Spec.NodeName, zone[p.Spec.NodeName])
		}
	}
	return nil
}
