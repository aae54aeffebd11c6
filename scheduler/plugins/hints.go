package plugins

import (
	"fmt"
	"maps"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// Queueing hints of the default plugins, after upstream: each decides, for
// a pod the plugin rejected, whether one event may make it fit, so that an
// event about an unrelated node or pod does not wake every waiting pod.

// hintNodes returns the old and new node of a node event (nil when absent).
func hintNodes(oldObj, newObj any) (oldNode, newNode *v1.Node, err error) {
	if oldObj != nil {
		if oldNode, _ = oldObj.(*v1.Node); oldNode == nil {
			return nil, nil, fmt.Errorf("queueing hint: want *v1.Node, got %T", oldObj)
		}
	}
	if newObj != nil {
		if newNode, _ = newObj.(*v1.Node); newNode == nil {
			return nil, nil, fmt.Errorf("queueing hint: want *v1.Node, got %T", newObj)
		}
	}
	return oldNode, newNode, nil
}

// hintPods returns the old and new pod of a pod event (nil when absent).
func hintPods(oldObj, newObj any) (oldPod, newPod *v1.Pod, err error) {
	if oldObj != nil {
		if oldPod, _ = oldObj.(*v1.Pod); oldPod == nil {
			return nil, nil, fmt.Errorf("queueing hint: want *v1.Pod, got %T", oldObj)
		}
	}
	if newObj != nil {
		if newPod, _ = newObj.(*v1.Pod); newPod == nil {
			return nil, nil, fmt.Errorf("queueing hint: want *v1.Pod, got %T", newObj)
		}
	}
	return oldPod, newPod, nil
}

func queueIf(b bool) framework.QueueingHint {
	if b {
		return framework.Queue
	}
	return framework.QueueSkip
}

func nodeInfoOf(n *v1.Node) *framework.NodeInfo {
	ni := framework.NewNodeInfo()
	ni.SetNode(n)
	return ni
}

// EventsToRegisterWithHint implements framework.EnqueueExtensionsWithHint:
// a node that becomes schedulable (added schedulable, or uncordoned).
func (pl NodeUnschedulable) EventsToRegisterWithHint() []framework.ClusterEventWithHint {
	return withHint(pl.EventsToRegister(), func(pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
		oldNode, newNode, err := hintNodes(oldObj, newObj)
		if err != nil || newNode == nil {
			return framework.QueueSkip, err
		}
		fits := func(n *v1.Node) bool {
			return !n.Spec.Unschedulable || tolerates(pod.Spec.Tolerations, &unschedulableTaint)
		}
		return queueIf(fits(newNode) && (oldNode == nil || !fits(oldNode))), nil
	})
}

// EventsToRegisterWithHint implements framework.EnqueueExtensionsWithHint:
// only the node the pod names.
func (pl NodeName) EventsToRegisterWithHint() []framework.ClusterEventWithHint {
	return withHint(pl.EventsToRegister(), func(pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
		_, newNode, err := hintNodes(oldObj, newObj)
		if err != nil || newNode == nil {
			return framework.QueueSkip, err
		}
		return queueIf(pod.Spec.NodeName == "" || pod.Spec.NodeName == newNode.Name), nil
	})
}

// EventsToRegisterWithHint implements framework.EnqueueExtensionsWithHint:
// a deleted pod must have held a host port the pod wants; a new node
// always helps.
func (pl NodePorts) EventsToRegisterWithHint() []framework.ClusterEventWithHint {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.AssignedPodResource, ActionType: framework.Delete}, PodInfoQueueingHintFn: func(pi *framework.PodInfo, oldObj, newObj any) (framework.QueueingHint, error) {
			oldPod, _, err := hintPods(oldObj, newObj)
			if err != nil || oldPod == nil {
				return framework.QueueSkip, err
			}
			used := framework.NewNodeInfo(framework.NewPodInfo(oldPod))
			return queueIf(used.PortConflict(pi.HostPorts)), nil
		}},
		{Event: framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add}},
	}
}

// untolerated reports whether n has a NoSchedule or NoExecute taint the
// pod does not tolerate.
func untolerated(pod *v1.Pod, n *v1.Node) bool {
	for i := range n.Spec.Taints {
		t := &n.Spec.Taints[i]
		if (t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute) && !tolerates(pod.Spec.Tolerations, t) {
			return true
		}
	}
	return false
}

// EventsToRegisterWithHint implements framework.EnqueueExtensionsWithHint:
// a node whose taints the pod now tolerates.
func (pl TaintToleration) EventsToRegisterWithHint() []framework.ClusterEventWithHint {
	return withHint(pl.EventsToRegister(), func(pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
		oldNode, newNode, err := hintNodes(oldObj, newObj)
		if err != nil || newNode == nil {
			return framework.QueueSkip, err
		}
		return queueIf(!untolerated(pod, newNode) && (oldNode == nil || untolerated(pod, oldNode))), nil
	})
}

// EventsToRegisterWithHint implements framework.EnqueueExtensionsWithHint:
// a node that now matches the pod's nodeSelector and required node
// affinity.
func (pl NodeAffinity) EventsToRegisterWithHint() []framework.ClusterEventWithHint {
	return withHint(pl.EventsToRegister(), func(pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
		oldNode, newNode, err := hintNodes(oldObj, newObj)
		if err != nil || newNode == nil {
			return framework.QueueSkip, err
		}
		m := newNodeMatcher(pod)
		return queueIf(m.match(nodeInfoOf(newNode)) && (oldNode == nil || !m.match(nodeInfoOf(oldNode)))), nil
	})
}

// fitsEmpty reports whether pod's requests fit n's allocatable when
// nothing runs on it.
func fitsEmpty(pi *framework.PodInfo, n *v1.Node) bool {
	st := fitsRequest(&fitState{statuses: statusTable, scalars: scalarNames(pi)}, pi, nodeInfoOf(n))
	return st.IsSuccess()
}

func scalarNames(pi *framework.PodInfo) []v1.ResourceName {
	var out []v1.ResourceName
	for name, v := range pi.Requests.Scalar {
		if v > 0 {
			out = append(out, name)
		}
	}
	return out
}

// grewFor reports whether allocatable grew, from o to n, for a resource pi
// requests (or for the pod count).
func grewFor(pi *framework.PodInfo, o, n *framework.NodeInfo) bool {
	r, a, b := &pi.Requests, &o.Allocatable, &n.Allocatable
	if b.AllowedPodNumber > a.AllowedPodNumber ||
		r.MilliCPU > 0 && b.MilliCPU > a.MilliCPU ||
		r.Memory > 0 && b.Memory > a.Memory ||
		r.EphemeralStorage > 0 && b.EphemeralStorage > a.EphemeralStorage {
		return true
	}
	for name, v := range r.Scalar {
		if v > 0 && b.Get(name) > a.Get(name) {
			return true
		}
	}
	return false
}

// EventsToRegisterWithHint implements framework.EnqueueExtensionsWithHint:
// an assigned pod that goes away or shrinks in a resource the pod
// requests; a node (new, or with more allocatable of a requested resource)
// that can hold the pod when empty.
func (pl Fit) EventsToRegisterWithHint() []framework.ClusterEventWithHint {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.AssignedPodResource, ActionType: framework.Delete | framework.UpdatePodScaleDown}, PodInfoQueueingHintFn: func(pi *framework.PodInfo, oldObj, newObj any) (framework.QueueingHint, error) {
			oldPod, newPod, err := hintPods(oldObj, newObj)
			if err != nil || oldPod == nil {
				return framework.QueueSkip, err
			}
			if newPod == nil { // deleted
				return queueIf(oldPod.Spec.NodeName != ""), nil
			}
			o, n := framework.NewPodInfo(oldPod).Requests, framework.NewPodInfo(newPod).Requests
			r := &pi.Requests
			shrank := r.MilliCPU > 0 && n.MilliCPU < o.MilliCPU || r.Memory > 0 && n.Memory < o.Memory ||
				r.EphemeralStorage > 0 && n.EphemeralStorage < o.EphemeralStorage
			for name, v := range r.Scalar {
				shrank = shrank || v > 0 && n.Get(name) < o.Get(name)
			}
			return queueIf(shrank), nil
		}},
		{Event: framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add | framework.UpdateNodeAllocatable}, PodInfoQueueingHintFn: func(pi *framework.PodInfo, oldObj, newObj any) (framework.QueueingHint, error) {
			oldNode, newNode, err := hintNodes(oldObj, newObj)
			if err != nil || newNode == nil {
				return framework.QueueSkip, err
			}
			if !fitsEmpty(pi, newNode) {
				return framework.QueueSkip, nil
			}
			return queueIf(oldNode == nil || grewFor(pi, nodeInfoOf(oldNode), nodeInfoOf(newNode))), nil
		}},
	}
}

// EventsToRegisterWithHint implements framework.EnqueueExtensionsWithHint:
// an assigned pod that starts matching one of the pod's required affinity
// terms, or stops matching (goes away, changes labels) one of its required
// anti-affinity terms, or a deleted pod whose own anti-affinity excluded
// the pod; node events that add a node or change a topology label.
func (pl *InterPodAffinity) EventsToRegisterWithHint() []framework.ClusterEventWithHint {
	nsLabels := func(ns string) labels.Set {
		if pl.h == nil || pl.h.Cluster() == nil {
			return nil
		}
		return pl.h.Cluster().NamespaceLabels(ns)
	}
	anyMatch := func(terms []framework.AffinityTerm, p *v1.Pod) bool {
		if p == nil {
			return false
		}
		for i := range terms {
			if terms[i].Matches(p, nsLabels(p.Namespace)) {
				return true
			}
		}
		return false
	}
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.AssignedPodResource, ActionType: framework.All}, PodInfoQueueingHintFn: func(pi *framework.PodInfo, oldObj, newObj any) (framework.QueueingHint, error) {
			oldPod, newPod, err := hintPods(oldObj, newObj)
			if err != nil {
				return framework.QueueSkip, err
			}
			pod := pi.Pod
			if pi.ParseError != nil {
				return framework.QueueSkip, nil
			}
			if anyMatch(pi.RequiredAffinityTerms, newPod) && !anyMatch(pi.RequiredAffinityTerms, oldPod) {
				return framework.Queue, nil
			}
			if anyMatch(pi.RequiredAntiAffinityTerms, oldPod) && !anyMatch(pi.RequiredAntiAffinityTerms, newPod) {
				return framework.Queue, nil
			}
			if oldPod != nil && newPod == nil && hasRequiredAntiAffinity(oldPod) {
				// A pod whose own required anti-affinity kept this one away.
				if anyMatch(framework.NewPodInfo(oldPod).RequiredAntiAffinityTerms, pod) {
					return framework.Queue, nil
				}
			}
			return framework.QueueSkip, nil
		}},
		{Event: framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add | framework.UpdateNodeLabel}, PodInfoQueueingHintFn: func(pi *framework.PodInfo, oldObj, newObj any) (framework.QueueingHint, error) {
			oldNode, newNode, err := hintNodes(oldObj, newObj)
			if err != nil || newNode == nil {
				return framework.QueueSkip, err
			}
			if oldNode == nil {
				return framework.Queue, nil
			}
			if len(pi.RequiredAffinityTerms) == 0 && len(pi.RequiredAntiAffinityTerms) == 0 {
				// Rejected by existing pods' anti-affinity, whose
				// topology keys are not known here.
				return queueIf(!maps.Equal(oldNode.Labels, newNode.Labels)), nil
			}
			for _, terms := range [][]framework.AffinityTerm{pi.RequiredAffinityTerms, pi.RequiredAntiAffinityTerms} {
				for i := range terms {
					k := terms[i].TopologyKey
					ov, ook := oldNode.Labels[k]
					nv, nok := newNode.Labels[k]
					if ook != nok || ov != nv {
						return framework.Queue, nil
					}
				}
			}
			return framework.QueueSkip, nil
		}},
		{Event: framework.ClusterEvent{Resource: framework.NamespaceResource, ActionType: framework.All}},
	}
}

// EventsToRegisterWithHint implements framework.EnqueueExtensionsWithHint:
// an assigned pod in the pod's namespace that matches (or stops matching)
// one of its hard constraints' selectors; a node carrying the constraints'
// topology keys that is added, deleted, relabelled in a topology key, or
// re-tainted when a constraint honours taints.
func (pl *PodTopologySpread) EventsToRegisterWithHint() []framework.ClusterEventWithHint {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.AssignedPodResource, ActionType: framework.All}, QueueingHintFn: func(pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
			oldPod, newPod, err := hintPods(oldObj, newObj)
			if err != nil {
				return framework.QueueSkip, err
			}
			if (oldPod == nil || oldPod.Namespace != pod.Namespace) && (newPod == nil || newPod.Namespace != pod.Namespace) {
				return framework.QueueSkip, nil // constraints count pods of the pod's namespace only
			}
			cs, err := pl.buildConstraints(pod, v1.DoNotSchedule)
			if err != nil {
				return framework.Queue, err
			}
			matches := func(p *v1.Pod) []bool {
				out := make([]bool, len(cs))
				if p == nil || p.Namespace != pod.Namespace {
					return out
				}
				for i := range cs {
					out[i] = cs[i].term.Selector.Matches(labels.Set(p.Labels))
				}
				return out
			}
			o, n := matches(oldPod), matches(newPod)
			for i := range cs {
				if o[i] != n[i] || o[i] && oldPod.Spec.NodeName != newPod.Spec.NodeName {
					return framework.Queue, nil
				}
			}
			return framework.QueueSkip, nil
		}},
		{Event: framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add | framework.Delete | framework.UpdateNodeLabel | framework.UpdateNodeTaint}, QueueingHintFn: func(pod *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
			oldNode, newNode, err := hintNodes(oldObj, newObj)
			if err != nil {
				return framework.QueueSkip, err
			}
			cs, err := pl.buildConstraints(pod, v1.DoNotSchedule)
			if err != nil {
				return framework.Queue, err
			}
			hasKeys := func(n *v1.Node) bool {
				if n == nil {
					return false
				}
				for i := range cs {
					if _, ok := n.Labels[cs[i].term.TopologyKey]; !ok {
						return false
					}
				}
				return true
			}
			if oldNode == nil || newNode == nil { // added or deleted
				return queueIf(hasKeys(oldNode) || hasKeys(newNode)), nil
			}
			for i := range cs {
				k := cs[i].term.TopologyKey
				ov, ook := oldNode.Labels[k]
				nv, nok := newNode.Labels[k]
				if ook != nok || ov != nv {
					return framework.Queue, nil
				}
				if cs[i].honorTaints && !equalTaints(oldNode.Spec.Taints, newNode.Spec.Taints) {
					return framework.Queue, nil
				}
			}
			return framework.QueueSkip, nil
		}},
	}
}

func hasRequiredAntiAffinity(p *v1.Pod) bool {
	a := p.Spec.Affinity
	return a != nil && a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0
}

func equalTaints(a, b []v1.Taint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].MatchTaint(&b[i]) || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

// withHint attaches fn to every event.
func withHint(evs []framework.ClusterEvent, fn framework.QueueingHintFn) []framework.ClusterEventWithHint {
	out := make([]framework.ClusterEventWithHint, len(evs))
	for i, ev := range evs {
		out[i] = framework.ClusterEventWithHint{Event: ev, QueueingHintFn: fn}
	}
	return out
}
