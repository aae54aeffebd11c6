package framework

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
)

// Default requests used for scoring a container that requests no cpu or
// memory, as upstream (100 millicores and 200 MiB).
const (
	DefaultMilliCPURequest int64 = 100
	DefaultMemoryRequest   int64 = 200 * 1024 * 1024
)

// Resource is a set of resource amounts in the units the scheduler computes
// with: millicores, bytes and plain counts.
type Resource struct {
	// MilliCPU is cpu in millicores.
	MilliCPU int64
	// Memory is memory in bytes.
	Memory int64
	// EphemeralStorage is local ephemeral storage in bytes.
	EphemeralStorage int64
	// AllowedPodNumber is a pod count (allocatable "pods" on a node).
	AllowedPodNumber int64
	// Scalar holds extended resources such as nvidia.com/gpu and hugepages.
	Scalar map[v1.ResourceName]int64
}

// NewResource converts a resource list.
func NewResource(rl v1.ResourceList) Resource {
	var r Resource
	r.Add(rl)
	return r
}

// Add adds a resource list.
func (r *Resource) Add(rl v1.ResourceList) {
	for name, q := range rl {
		switch name {
		case v1.ResourceCPU:
			r.MilliCPU += q.MilliValue()
		case v1.ResourceMemory:
			r.Memory += q.Value()
		case v1.ResourceEphemeralStorage:
			r.EphemeralStorage += q.Value()
		case v1.ResourcePods:
			r.AllowedPodNumber += q.Value()
		default:
			if IsScalarResource(name) {
				r.AddScalar(name, q.Value())
			}
		}
	}
}

// AddScalar adds v of the extended resource name.
func (r *Resource) AddScalar(name v1.ResourceName, v int64) {
	if r.Scalar == nil {
		r.Scalar = make(map[v1.ResourceName]int64, 1)
	}
	r.Scalar[name] += v
}

// AddResource adds o to r (scale +1) or subtracts it (scale -1).
func (r *Resource) AddResource(o *Resource, scale int64) {
	r.MilliCPU += scale * o.MilliCPU
	r.Memory += scale * o.Memory
	r.EphemeralStorage += scale * o.EphemeralStorage
	r.AllowedPodNumber += scale * o.AllowedPodNumber
	for k, v := range o.Scalar {
		r.AddScalar(k, scale*v)
	}
}

// Clone returns a deep copy.
func (r Resource) Clone() Resource {
	if r.Scalar != nil {
		m := make(map[v1.ResourceName]int64, len(r.Scalar))
		for k, v := range r.Scalar {
			m[k] = v
		}
		r.Scalar = m
	}
	return r
}

// Get returns the amount of one resource in the scheduler's units.
func (r *Resource) Get(name v1.ResourceName) int64 {
	switch name {
	case v1.ResourceCPU:
		return r.MilliCPU
	case v1.ResourceMemory:
		return r.Memory
	case v1.ResourceEphemeralStorage:
		return r.EphemeralStorage
	case v1.ResourcePods:
		return r.AllowedPodNumber
	}
	return r.Scalar[name]
}

// IsScalarResource reports whether name is an extended, hugepages or
// attachable-volume resource, which the scheduler tracks as plain integers.
func IsScalarResource(name v1.ResourceName) bool {
	s := string(name)
	if strings.HasPrefix(s, v1.ResourceHugePagesPrefix) || strings.HasPrefix(s, "attachable-volumes-") {
		return true
	}
	// Extended resources are fully qualified names outside kubernetes.io.
	if !strings.Contains(s, "/") {
		return false
	}
	return !strings.HasPrefix(s, "kubernetes.io/") && !strings.Contains(s, ".kubernetes.io/") && !strings.HasPrefix(s, "requests.")
}

// AffinityTerm is a pod (anti-)affinity term with its selectors parsed once.
type AffinityTerm struct {
	// Namespaces is the set of namespaces the term selects from, already
	// defaulted to the pod's own namespace when both the list and the
	// namespaceSelector are empty.
	Namespaces map[string]struct{}
	// NamespaceSelector selects more namespaces by their labels; nil when the
	// term has none. An empty selector matches every namespace.
	NamespaceSelector labels.Selector
	// Selector selects pods by label.
	Selector labels.Selector
	// TopologyKey is the node label that defines the domain.
	TopologyKey string
	// Weight is the weight of a preferred term (0 for required terms).
	Weight int32
	// Key identifies terms that select the same pods in the same way.
	Key string
}

// MatchesNamespace reports whether a pod in namespace ns with the given
// namespace labels is selected by the term's namespaces.
func (t *AffinityTerm) MatchesNamespace(ns string, nsLabels labels.Set) bool {
	if _, ok := t.Namespaces[ns]; ok {
		return true
	}
	return t.NamespaceSelector != nil && t.NamespaceSelector.Matches(nsLabels)
}

// Matches reports whether pod (whose namespace has labels nsLabels) is
// selected by the term.
func (t *AffinityTerm) Matches(pod *v1.Pod, nsLabels labels.Set) bool {
	return t.MatchesNamespace(pod.Namespace, nsLabels) && t.Selector.Matches(labels.Set(pod.Labels))
}

func newAffinityTerm(pod *v1.Pod, term *v1.PodAffinityTerm, weight int32) (AffinityTerm, error) {
	sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if err != nil {
		return AffinityTerm{}, fmt.Errorf("labelSelector: %w", err)
	}
	if term.LabelSelector == nil {
		sel = labels.Nothing()
	}
	t := AffinityTerm{Selector: sel, TopologyKey: term.TopologyKey, Weight: weight, Namespaces: map[string]struct{}{}}
	for _, ns := range term.Namespaces {
		t.Namespaces[ns] = struct{}{}
	}
	if term.NamespaceSelector != nil {
		nsSel, err := metav1.LabelSelectorAsSelector(term.NamespaceSelector)
		if err != nil {
			return AffinityTerm{}, fmt.Errorf("namespaceSelector: %w", err)
		}
		t.NamespaceSelector = nsSel
	}
	if len(term.Namespaces) == 0 && term.NamespaceSelector == nil {
		t.Namespaces[pod.Namespace] = struct{}{}
	}
	nss := make([]string, 0, len(t.Namespaces))
	for ns := range t.Namespaces {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	nsSel := "-"
	if t.NamespaceSelector != nil {
		nsSel = t.NamespaceSelector.String()
	}
	t.Key = term.TopologyKey + "\x00" + strings.Join(nss, ",") + "\x00" + nsSel + "\x00" + sel.String()
	return t, nil
}

// HostPort is one host port a pod binds.
type HostPort struct {
	IP       string
	Protocol v1.Protocol
	Port     int32
}

// PodInfo is a pod with everything the plugins need precomputed once:
// effective requests, priority, parsed affinity terms and host ports.
type PodInfo struct {
	// Pod is the API object (shared, read-only).
	Pod *v1.Pod
	// Requests is the effective request: max(sum of app containers, largest
	// init container) plus overhead, counted as one pod.
	Requests Resource
	// NonZeroCPU and NonZeroMem are the requests used for scoring, with the
	// upstream defaults for containers that request nothing.
	NonZeroCPU, NonZeroMem int64
	// Priority is the pod's priority (spec.priority, 0 when unset).
	Priority int32
	// RequiredAffinityTerms and the others are the parsed affinity terms.
	RequiredAffinityTerms      []AffinityTerm
	RequiredAntiAffinityTerms  []AffinityTerm
	PreferredAffinityTerms     []AffinityTerm
	PreferredAntiAffinityTerms []AffinityTerm
	// HostPorts are the host ports of the pod's containers.
	HostPorts []HostPort
	// ParseError is set when an affinity term cannot be parsed; the pod is
	// then unschedulable and unresolvable.
	ParseError error
}

// NewPodInfo precomputes the scheduling facts of pod.
func NewPodInfo(pod *v1.Pod) *PodInfo {
	pi := &PodInfo{}
	pi.Update(pod)
	return pi
}

// Update recomputes the facts for a new version of the pod.
func (pi *PodInfo) Update(pod *v1.Pod) {
	*pi = PodInfo{Pod: pod, Priority: corev1helpers.PodPriority(pod)}
	pi.Requests = podRequests(pod)
	pi.Requests.AllowedPodNumber = 1
	pi.NonZeroCPU, pi.NonZeroMem = nonZeroRequests(pod)
	if a := pod.Spec.Affinity; a != nil {
		if pa := a.PodAffinity; pa != nil {
			for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
				pi.addTerm(&pi.RequiredAffinityTerms, &pa.RequiredDuringSchedulingIgnoredDuringExecution[i], 0)
			}
			for i := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
				w := &pa.PreferredDuringSchedulingIgnoredDuringExecution[i]
				pi.addTerm(&pi.PreferredAffinityTerms, &w.PodAffinityTerm, w.Weight)
			}
		}
		if pa := a.PodAntiAffinity; pa != nil {
			for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
				pi.addTerm(&pi.RequiredAntiAffinityTerms, &pa.RequiredDuringSchedulingIgnoredDuringExecution[i], 0)
			}
			for i := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
				w := &pa.PreferredDuringSchedulingIgnoredDuringExecution[i]
				pi.addTerm(&pi.PreferredAntiAffinityTerms, &w.PodAffinityTerm, w.Weight)
			}
		}
	}
	for i := range pod.Spec.Containers {
		for _, p := range pod.Spec.Containers[i].Ports {
			if p.HostPort <= 0 {
				continue
			}
			pi.HostPorts = append(pi.HostPorts, newHostPort(p))
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy == nil || *c.RestartPolicy != v1.ContainerRestartPolicyAlways {
			continue
		}
		for _, p := range c.Ports {
			if p.HostPort > 0 {
				pi.HostPorts = append(pi.HostPorts, newHostPort(p))
			}
		}
	}
}

// podRequests returns the pod's effective request. The common pod (app
// containers requesting only cpu, memory and ephemeral-storage, no init
// containers, no pod-level requests, no overhead) is summed directly,
// without the resource lists resourcehelper.PodRequests allocates; every
// other pod goes through resourcehelper, which implements the sidecar and
// pod-level rules. Both give the same amounts: quantities are summed
// before they are converted, as resourcehelper does.
func podRequests(pod *v1.Pod) Resource {
	if r, ok := simplePodRequests(pod); ok {
		return r
	}
	return NewResource(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
}

// simplePodRequests is podRequests' fast path; ok is false when the pod
// needs the general rules.
func simplePodRequests(pod *v1.Pod) (r Resource, ok bool) {
	if len(pod.Spec.InitContainers) > 0 || pod.Spec.Overhead != nil || pod.Spec.Resources != nil {
		return Resource{}, false
	}
	var cpu, mem, eph resource.Quantity
	for i := range pod.Spec.Containers {
		for name, q := range pod.Spec.Containers[i].Resources.Requests {
			switch name {
			case v1.ResourceCPU:
				cpu.Add(q)
			case v1.ResourceMemory:
				mem.Add(q)
			case v1.ResourceEphemeralStorage:
				eph.Add(q)
			default:
				return Resource{}, false
			}
		}
	}
	return Resource{MilliCPU: cpu.MilliValue(), Memory: mem.Value(), EphemeralStorage: eph.Value()}, true
}

func newHostPort(p v1.ContainerPort) HostPort {
	hp := HostPort{IP: p.HostIP, Protocol: p.Protocol, Port: p.HostPort}
	if hp.IP == "" {
		hp.IP = "0.0.0.0"
	}
	if hp.Protocol == "" {
		hp.Protocol = v1.ProtocolTCP
	}
	return hp
}

func (pi *PodInfo) addTerm(dst *[]AffinityTerm, term *v1.PodAffinityTerm, weight int32) {
	t, err := newAffinityTerm(pi.Pod, term, weight)
	if err != nil {
		if pi.ParseError == nil {
			pi.ParseError = err
		}
		return
	}
	*dst = append(*dst, t)
}

// HasAffinityForScoring reports whether the pod carries terms that the
// InterPodAffinity score of other pods must consider.
func (pi *PodInfo) HasAffinityForScoring() bool {
	return len(pi.RequiredAffinityTerms) > 0 || len(pi.PreferredAffinityTerms) > 0 || len(pi.PreferredAntiAffinityTerms) > 0
}

func nonZeroRequests(pod *v1.Pod) (cpu, mem int64) {
	one := func(rl v1.ResourceList) (int64, int64) {
		c, m := DefaultMilliCPURequest, DefaultMemoryRequest
		if q, ok := rl[v1.ResourceCPU]; ok {
			c = q.MilliValue()
		}
		if q, ok := rl[v1.ResourceMemory]; ok {
			m = q.Value()
		}
		return c, m
	}
	for i := range pod.Spec.Containers {
		c, m := one(pod.Spec.Containers[i].Resources.Requests)
		cpu += c
		mem += m
	}
	var initC, initM, sideC, sideM int64
	for i := range pod.Spec.InitContainers {
		ic := &pod.Spec.InitContainers[i]
		c, m := one(ic.Resources.Requests)
		if ic.RestartPolicy != nil && *ic.RestartPolicy == v1.ContainerRestartPolicyAlways {
			sideC += c
			sideM += m
			cpu += c
			mem += m
			continue
		}
		initC = max(initC, c+sideC)
		initM = max(initM, m+sideM)
	}
	cpu = max(cpu, initC)
	mem = max(mem, initM)
	if pod.Spec.Overhead != nil {
		if q, ok := pod.Spec.Overhead[v1.ResourceCPU]; ok {
			cpu += q.MilliValue()
		}
		if q, ok := pod.Spec.Overhead[v1.ResourceMemory]; ok {
			mem += q.Value()
		}
	}
	return cpu, mem
}

// NodeInfo is a node with the aggregates the plugins read: the pods on it,
// their summed requests and host ports. The snapshot hands NodeInfos to
// plugins read-only.
type NodeInfo struct {
	// The fields every Filter reads for every node come first, so that
	// the filter loop touches as few cache lines per node as possible:
	// resources and pod count (NodeResourcesFit), the slot (per-node
	// aggregates of InterPodAffinity and PodTopologySpread), labels and
	// name (NodeAffinity, topology keys). Score fields follow.

	// Allocatable is the node's allocatable resources.
	Allocatable Resource
	// Requested is the sum of the pods' effective requests.
	Requested Resource
	// Pods are the pods on the node, including assumed ones.
	Pods []*PodInfo
	// Index is the node's slot in its snapshot, stable while the node
	// exists; per-node arrays of snapshot aggregates are indexed by it.
	Index int
	// Unschedulable, Taints and Labels copy the node's fields so hot
	// filters read them without touching the node object.
	Labels        map[string]string
	name          string
	Unschedulable bool
	// NonZeroRequested is the cpu/memory sum used for scoring.
	NonZeroRequested Resource
	Taints           []v1.Taint

	node *v1.Node
	// PodsWithAffinity are the pods carrying affinity terms that matter for
	// scoring other pods.
	PodsWithAffinity []*PodInfo
	// PodsWithRequiredAntiAffinity are the pods with required anti-affinity.
	PodsWithRequiredAntiAffinity []*PodInfo
	// UsedPorts are the host ports in use.
	UsedPorts []HostPort
	// Images maps the node's image names to their sizes.
	Images map[string]int64
	// Generation is stamped by the cache on every change from its own
	// counter; the snapshot uses it to copy only what changed.
	Generation int64
}

// NewNodeInfo returns a NodeInfo holding pods (and no node yet).
func NewNodeInfo(pods ...*PodInfo) *NodeInfo {
	n := &NodeInfo{}
	for _, p := range pods {
		n.AddPodInfo(p)
	}
	return n
}

// Node returns the node object, nil when only pods are known.
func (n *NodeInfo) Node() *v1.Node { return n.node }

// Name returns the node name.
func (n *NodeInfo) Name() string { return n.name }

// SetNode sets the node object and recomputes allocatable and images.
func (n *NodeInfo) SetNode(node *v1.Node) {
	n.node = node
	n.name = node.Name
	n.Unschedulable = node.Spec.Unschedulable
	n.Taints = node.Spec.Taints
	n.Labels = node.Labels
	n.Allocatable = NewResource(node.Status.Allocatable)
	n.Images = make(map[string]int64, len(node.Status.Images))
	for _, img := range node.Status.Images {
		for _, name := range img.Names {
			n.Images[NormalizeImageName(name)] = img.SizeBytes
		}
	}
}

// RemoveNode clears the node object, keeping the pods.
func (n *NodeInfo) RemoveNode() { n.node = nil }

// NormalizeImageName adds the ":latest" tag to an untagged, undigested name.
func NormalizeImageName(name string) string {
	if strings.LastIndex(name, ":") <= strings.LastIndex(name, "/") && !strings.Contains(name, "@") {
		return name + ":latest"
	}
	return name
}

// AddPodInfo adds a pod to the node.
func (n *NodeInfo) AddPodInfo(pi *PodInfo) {
	n.Pods = append(n.Pods, pi)
	if pi.HasAffinityForScoring() {
		n.PodsWithAffinity = append(n.PodsWithAffinity, pi)
	}
	if len(pi.RequiredAntiAffinityTerms) > 0 {
		n.PodsWithRequiredAntiAffinity = append(n.PodsWithRequiredAntiAffinity, pi)
	}
	n.update(pi, 1)
}

func (n *NodeInfo) update(pi *PodInfo, sign int64) {
	n.Requested.AddResource(&pi.Requests, sign)
	n.NonZeroRequested.MilliCPU += sign * pi.NonZeroCPU
	n.NonZeroRequested.Memory += sign * pi.NonZeroMem
	n.NonZeroRequested.AllowedPodNumber += sign
	if sign > 0 {
		n.UsedPorts = append(n.UsedPorts, pi.HostPorts...)
	} else if len(pi.HostPorts) > 0 {
		n.UsedPorts = n.UsedPorts[:0:0]
		for _, p := range n.Pods {
			n.UsedPorts = append(n.UsedPorts, p.HostPorts...)
		}
	}
}

// RemovePod removes the pod with pod's UID from the node.
func (n *NodeInfo) RemovePod(pod *v1.Pod) error {
	idx := -1
	for i, p := range n.Pods {
		if p.Pod.UID == pod.UID {
			idx = i
			break
		}
	}
	if idx < 0 {
		return fmt.Errorf("pod %s/%s not found on node %q", pod.Namespace, pod.Name, n.Name())
	}
	pi := n.Pods[idx]
	n.Pods = removeAt(n.Pods, idx)
	n.PodsWithAffinity = removeUID(n.PodsWithAffinity, pod)
	n.PodsWithRequiredAntiAffinity = removeUID(n.PodsWithRequiredAntiAffinity, pod)
	n.update(pi, -1)
	return nil
}

func removeAt(s []*PodInfo, i int) []*PodInfo {
	out := make([]*PodInfo, 0, len(s)-1)
	out = append(out, s[:i]...)
	return append(out, s[i+1:]...)
}

func removeUID(s []*PodInfo, pod *v1.Pod) []*PodInfo {
	for i, p := range s {
		if p.Pod.UID == pod.UID {
			return removeAt(s, i)
		}
	}
	return s
}

// Clone returns a copy that shares the immutable PodInfos but not the
// slices, so later changes to either do not affect the other.
func (n *NodeInfo) Clone() *NodeInfo {
	c := *n
	c.Pods = append([]*PodInfo(nil), n.Pods...)
	c.PodsWithAffinity = append([]*PodInfo(nil), n.PodsWithAffinity...)
	c.PodsWithRequiredAntiAffinity = append([]*PodInfo(nil), n.PodsWithRequiredAntiAffinity...)
	c.UsedPorts = append([]HostPort(nil), n.UsedPorts...)
	c.Requested = n.Requested.Clone()
	c.NonZeroRequested = n.NonZeroRequested.Clone()
	return &c
}

// PortConflict reports whether any of ports conflicts with a used host
// port: same protocol and port, and the same IP or either IP is 0.0.0.0.
func (n *NodeInfo) PortConflict(ports []HostPort) bool {
	for _, want := range ports {
		for _, used := range n.UsedPorts {
			if want.Port == used.Port && want.Protocol == used.Protocol &&
				(want.IP == used.IP || want.IP == "0.0.0.0" || used.IP == "0.0.0.0") {
				return true
			}
		}
	}
	return false
}
