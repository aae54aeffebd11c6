package perf

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and topology keys of the workloads.
const (
	// LegacyZoneLabel is the (deprecated) zone label upstream's node
	// affinity workload selects on.
	LegacyZoneLabel = "failure-domain.beta.kubernetes.io/zone"
	// AffinityZone is the LegacyZoneLabel value [NodeAffinityPod] requires.
	AffinityZone = "zone1"
	// OtherZone is the LegacyZoneLabel value of the nodes outside
	// AffinityZone in the node affinity workload.
	OtherZone = "zone2"
)

// SpreadZones returns the three zones (label [v1.LabelTopologyZone]) of the
// topology spreading workload, a new slice on every call.
func SpreadZones() []string {
	return []string{"moon-1", "moon-2", "moon-3"}
}

// SpreadZone returns the zone of the i-th node of the topology spreading
// workload: the nodes take the [SpreadZones] in turn.
func SpreadZone(i int) string {
	z := SpreadZones()
	return z[i%len(z)]
}

// NodeAffinityZone returns the LegacyZoneLabel value of the i-th node of
// the node affinity workload: four nodes in five are in [AffinityZone],
// the fifth in [OtherZone].
func NodeAffinityZone(i int) string {
	if i%5 == 4 {
		return OtherZone
	}
	return AffinityZone
}

// Node is the scheduler_perf node: 4 cpu, 32Gi memory and 110 pods of
// capacity and allocatable, Ready, labelled with its hostname and with
// labels (copied; nil for none).
func Node(name string, labels map[string]string) *v1.Node {
	capacity := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse("4"),
		v1.ResourceMemory: resource.MustParse("32Gi"),
		v1.ResourcePods:   resource.MustParse("110"),
	}
	lbls := make(map[string]string, len(labels)+1)
	lbls[v1.LabelHostname] = name
	for k, v := range labels {
		lbls[k] = v
	}
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Status: v1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity.DeepCopy(),
			Conditions:  []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		},
	}
}

// Pod is the scheduler_perf pod in namespace default: one container
// requesting 100m cpu and 500Mi memory, labelled app=perf.
func Pod(name string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "perf"}},
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

// AntiAffinityPod is a [Pod] labelled color=green with required
// anti-affinity by hostname against the pods of that label, as
// scheduler_perf's pod-with-pod-anti-affinity.
func AntiAffinityPod(name string) *v1.Pod {
	p := Pod(name)
	p.Labels = map[string]string{"color": "green"}
	p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"color": "green"}},
		TopologyKey:   v1.LabelHostname,
	}}}}
	return p
}

// SpreadPod is a [Pod] labelled foo=bar that spreads the pods of that
// label over zones with maxSkew 1, DoNotSchedule, as scheduler_perf's
// pod-with-topology-spreading.
func SpreadPod(name string) *v1.Pod {
	p := Pod(name)
	p.Labels = map[string]string{"foo": "bar"}
	p.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: v1.LabelTopologyZone, WhenUnsatisfiable: v1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"foo": "bar"}},
	}}
	return p
}

// NodeAffinityPod is a [Pod] that requires [AffinityZone] (label
// [LegacyZoneLabel]) by required node affinity, as scheduler_perf's
// pod-with-node-affinity.
func NodeAffinityPod(name string) *v1.Pod {
	p := Pod(name)
	p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
		NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{
			Key: LegacyZoneLabel, Operator: v1.NodeSelectorOpIn, Values: []string{AffinityZone},
		}}}},
	}}}
	return p
}
