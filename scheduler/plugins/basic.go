package plugins

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// Rejection reasons, worded as upstream so messages read the same.
const (
	ReasonNodeUnschedulable   = "node(s) were unschedulable"
	ReasonNodeName            = "node(s) didn't match the requested node name"
	ReasonNodePorts           = "node(s) didn't have free ports for the requested pod ports"
	ReasonNodeAffinity        = "node(s) didn't match Pod's node affinity/selector"
	ReasonUntoleratedTaintFmt = "node(s) had untolerated taint {%s: %s}"
)

var (
	statusUnschedulableNode = framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonNodeUnschedulable)
	statusNodeName          = framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonNodeName)
	statusNodePorts         = framework.NewStatus(framework.Unschedulable, ReasonNodePorts)
	statusNodeAffinity      = framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonNodeAffinity)
	statusSkip              = framework.NewStatus(framework.Skip)
)

var (
	nodeEvents = []framework.ClusterEvent{{Resource: framework.NodeResource, ActionType: framework.Add | framework.UpdateNodeTaint | framework.UpdateNodeLabel | framework.UpdateNodeAllocatable}}
)

// NodeUnschedulable rejects cordoned nodes (spec.unschedulable) unless the
// pod tolerates the node.kubernetes.io/unschedulable:NoSchedule taint.
type NodeUnschedulable struct{ h framework.Handle }

func newNodeUnschedulable(_ context.Context, h framework.Handle) (framework.Plugin, error) {
	return NodeUnschedulable{h: h}, nil
}

// Name implements framework.Plugin.
func (NodeUnschedulable) Name() string { return NodeUnschedulableName }

var unschedulableTaint = v1.Taint{Key: v1.TaintNodeUnschedulable, Effect: v1.TaintEffectNoSchedule}

// PreFilter implements framework.PreFilterPlugin: the filter is skipped
// when it could reject no node, because no node in the snapshot is
// cordoned or the pod tolerates cordoned nodes.
func (pl NodeUnschedulable) PreFilter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	if snap := snapshotOf(pl.h); snap != nil && snap.NumNodes() > 0 && snap.UnschedulableNodes() == 0 {
		return nil, statusSkip
	}
	if tolerates(pod.Pod.Spec.Tolerations, &unschedulableTaint) {
		return nil, statusSkip
	}
	return nil, nil
}

// PreFilterExtensions implements framework.PreFilterPlugin.
func (NodeUnschedulable) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// snapshotOf returns the handle's snapshot, nil without a handle.
func snapshotOf(h framework.Handle) *framework.Snapshot {
	if h == nil {
		return nil
	}
	return h.Snapshot()
}

// Filter implements framework.FilterPlugin.
func (NodeUnschedulable) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	if !node.Unschedulable {
		return nil
	}
	if tolerates(pod.Pod.Spec.Tolerations, &unschedulableTaint) {
		return nil
	}
	return statusUnschedulableNode
}

// EventsToRegister implements framework.EnqueueExtensions.
func (NodeUnschedulable) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{{Resource: framework.NodeResource, ActionType: framework.Add | framework.UpdateNodeTaint}}
}

func tolerates(tols []v1.Toleration, taint *v1.Taint) bool {
	for i := range tols {
		if tols[i].ToleratesTaint(logr.Discard(), taint, false) {
			return true
		}
	}
	return false
}

// NodeName rejects every node but the one named in spec.nodeName.
type NodeName struct{}

func newNodeName(context.Context, framework.Handle) (framework.Plugin, error) { return NodeName{}, nil }

// Name implements framework.Plugin.
func (NodeName) Name() string { return NodeNameName }

// PreFilter implements framework.PreFilterPlugin: pods that name no node
// skip the filter.
func (NodeName) PreFilter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	if pod.Pod.Spec.NodeName == "" {
		return nil, statusSkip
	}
	return &framework.PreFilterResult{NodeNames: map[string]struct{}{pod.Pod.Spec.NodeName: {}}}, nil
}

// PreFilterExtensions implements framework.PreFilterPlugin.
func (NodeName) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// Filter implements framework.FilterPlugin.
func (NodeName) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	if pod.Pod.Spec.NodeName != "" && pod.Pod.Spec.NodeName != node.Name() {
		return statusNodeName
	}
	return nil
}

// EventsToRegister implements framework.EnqueueExtensions.
func (NodeName) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{{Resource: framework.NodeResource, ActionType: framework.Add}}
}

// NodePorts rejects nodes where a requested hostPort is taken.
type NodePorts struct{}

func newNodePorts(context.Context, framework.Handle) (framework.Plugin, error) {
	return NodePorts{}, nil
}

// Name implements framework.Plugin.
func (NodePorts) Name() string { return NodePortsName }

// PreFilter implements framework.PreFilterPlugin: pods without host ports
// skip the filter.
func (NodePorts) PreFilter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	if len(pod.HostPorts) == 0 {
		return nil, statusSkip
	}
	return nil, nil
}

// PreFilterExtensions implements framework.PreFilterPlugin.
func (NodePorts) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// Filter implements framework.FilterPlugin.
func (NodePorts) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	if node.PortConflict(pod.HostPorts) {
		return statusNodePorts
	}
	return nil
}

// EventsToRegister implements framework.EnqueueExtensions.
func (NodePorts) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.AssignedPodResource, ActionType: framework.Delete},
		{Resource: framework.NodeResource, ActionType: framework.Add | framework.Update},
	}
}

// TaintToleration filters out nodes with NoSchedule/NoExecute taints the
// pod does not tolerate and prefers nodes with fewer untolerated
// PreferNoSchedule taints.
type TaintToleration struct{ h framework.Handle }

func newTaintToleration(_ context.Context, h framework.Handle) (framework.Plugin, error) {
	return TaintToleration{h: h}, nil
}

// Name implements framework.Plugin.
func (TaintToleration) Name() string { return TaintTolerationName }

// PreFilter implements framework.PreFilterPlugin: the filter is skipped
// when no node in the snapshot has a NoSchedule or NoExecute taint, since
// it could reject none.
func (pl TaintToleration) PreFilter(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	if snap := snapshotOf(pl.h); snap != nil && snap.NumNodes() > 0 && snap.TaintedNodes() == 0 {
		return nil, statusSkip
	}
	return nil, nil
}

// PreFilterExtensions implements framework.PreFilterPlugin.
func (TaintToleration) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// Filter implements framework.FilterPlugin.
func (TaintToleration) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	taints := node.Taints
	for i := range taints {
		t := &taints[i]
		if t.Effect != v1.TaintEffectNoSchedule && t.Effect != v1.TaintEffectNoExecute {
			continue
		}
		if !tolerates(pod.Pod.Spec.Tolerations, t) {
			return framework.NewStatus(framework.UnschedulableAndUnresolvable, fmt.Sprintf(ReasonUntoleratedTaintFmt, t.Key, t.Value))
		}
	}
	return nil
}

type taintState struct{ tols []v1.Toleration }

func (s *taintState) Clone() framework.StateData { return s }

const taintKey framework.StateKey = "PreScore" + TaintTolerationName

// PreScore implements framework.PreScorePlugin.
func (TaintToleration) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, nodes []*framework.NodeInfo) *framework.Status {
	var tols []v1.Toleration
	for _, t := range pod.Pod.Spec.Tolerations {
		if t.Effect == "" || t.Effect == v1.TaintEffectPreferNoSchedule {
			tols = append(tols, t)
		}
	}
	any := false
	for _, n := range nodes {
		if len(n.Taints) > 0 {
			any = true
			break
		}
	}
	if !any {
		return statusSkip
	}
	state.Write(taintKey, &taintState{tols: tols})
	return nil
}

// Score implements framework.ScorePlugin: the count of untolerated
// PreferNoSchedule taints (inverted by NormalizeScore).
func (TaintToleration) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	s, _ := state.Read(taintKey).(*taintState)
	if s == nil {
		return 0, nil
	}
	var n int64
	for i := range node.Taints {
		t := &node.Taints[i]
		if t.Effect == v1.TaintEffectPreferNoSchedule && !tolerates(s.tols, t) {
			n++
		}
	}
	return n, nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (TaintToleration) ScoreExtensions() framework.ScoreExtensions { return reverseNormalizer{} }

// EventsToRegister implements framework.EnqueueExtensions.
func (TaintToleration) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{{Resource: framework.NodeResource, ActionType: framework.Add | framework.UpdateNodeTaint}}
}

// defaultNormalizer scales scores so the highest becomes MaxNodeScore.
type defaultNormalizer struct{}

func (defaultNormalizer) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, _ []*framework.NodeInfo, scores []int64) *framework.Status {
	normalize(scores, false)
	return nil
}

// reverseNormalizer scales and inverts: the lowest raw score becomes
// MaxNodeScore.
type reverseNormalizer struct{}

func (reverseNormalizer) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, _ []*framework.NodeInfo, scores []int64) *framework.Status {
	normalize(scores, true)
	return nil
}

func normalize(scores []int64, reverse bool) {
	var maxS int64
	for _, s := range scores {
		maxS = max(maxS, s)
	}
	if maxS == 0 {
		if reverse {
			for i := range scores {
				scores[i] = framework.MaxNodeScore
			}
		}
		return
	}
	for i, s := range scores {
		s = framework.MaxNodeScore * s / maxS
		if reverse {
			s = framework.MaxNodeScore - s
		}
		scores[i] = s
	}
}

// NodeAffinity filters by nodeSelector and required node affinity and
// scores preferred node affinity terms.
//
// A node's verdict depends only on its name and labels, so the verdicts
// are memoized in the snapshot per selector ([framework.NodeMemo]): the
// pods of one workload, which share their selector, evaluate it once per
// node, not once per pod and node.
type NodeAffinity struct{ h framework.Handle }

func newNodeAffinity(_ context.Context, h framework.Handle) (framework.Plugin, error) {
	return NodeAffinity{h: h}, nil
}

// Name implements framework.Plugin.
func (NodeAffinity) Name() string { return NodeAffinityName }

type nodeAffinityState struct {
	required *nodeMatcher
	// memo holds the verdicts of required per node (nil without a
	// snapshot).
	memo *framework.NodeMemo
	// preferred is set in PreScore.
	preferred *preferredTerms
}

func (s *nodeAffinityState) Clone() framework.StateData { return s }

const (
	nodeAffinityFilterKey framework.StateKey = "PreFilter" + NodeAffinityName
	nodeAffinityScoreKey  framework.StateKey = "PreScore" + NodeAffinityName
)

// PreFilter implements framework.PreFilterPlugin. Pods without a
// nodeSelector or required node affinity skip the filter; a required term
// that names nodes by metadata.name narrows the nodes to those names.
func (pl NodeAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	spec := &pod.Pod.Spec
	var req *v1.NodeSelector
	if spec.Affinity != nil && spec.Affinity.NodeAffinity != nil {
		req = spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	}
	if len(spec.NodeSelector) == 0 && req == nil {
		return nil, statusSkip
	}
	st := &nodeAffinityState{}
	if snap := snapshotOf(pl.h); snap != nil {
		st.memo = snap.NodeMemo(nodeSelectorKey(spec.NodeSelector, req))
		st.required, _ = st.memo.Data.(*nodeMatcher)
		if st.required == nil {
			st.required = newNodeMatcher(pod.Pod)
			st.memo.Data = st.required
		}
	} else {
		st.required = newNodeMatcher(pod.Pod)
	}
	state.Write(nodeAffinityFilterKey, st)
	if req == nil {
		return nil, nil
	}
	// Every term must name nodes by metadata.name for the names to bound
	// the candidates (terms are ORed).
	names := map[string]struct{}{}
	for _, t := range req.NodeSelectorTerms {
		found := false
		for _, f := range t.MatchFields {
			if f.Key == "metadata.name" && f.Operator == v1.NodeSelectorOpIn {
				for _, v := range f.Values {
					names[v] = struct{}{}
				}
				found = true
			}
		}
		if !found {
			return nil, nil
		}
	}
	return &framework.PreFilterResult{NodeNames: names}, nil
}

// PreFilterExtensions implements framework.PreFilterPlugin.
func (NodeAffinity) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// Filter implements framework.FilterPlugin.
func (NodeAffinity) Filter(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	s, _ := state.Read(nodeAffinityFilterKey).(*nodeAffinityState)
	if s == nil {
		return nil
	}
	ok, known := false, false
	if s.memo != nil {
		ok, known = s.memo.Get(node)
	}
	if !known {
		ok = s.required.match(node)
		if s.memo != nil {
			s.memo.Put(node, ok)
		}
	}
	if !ok {
		return statusNodeAffinity
	}
	return nil
}

// nodeSelectorKey is a canonical form of a nodeSelector and required node
// affinity: equal keys select the same nodes. Every string is prefixed
// with its length, so no two different inputs give the same key.
func nodeSelectorKey(sel map[string]string, req *v1.NodeSelector) string {
	b := make([]byte, 0, 128)
	str := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, 's')
	for _, k := range keys {
		str(k)
		str(sel[k])
	}
	if req == nil {
		return string(b)
	}
	reqs := func(tag byte, rs []v1.NodeSelectorRequirement) {
		b = append(b, tag)
		b = strconv.AppendInt(b, int64(len(rs)), 10)
		for _, r := range rs {
			str(r.Key)
			str(string(r.Operator))
			b = strconv.AppendInt(b, int64(len(r.Values)), 10)
			for _, v := range r.Values {
				str(v)
			}
		}
	}
	b = append(b, 'r')
	b = strconv.AppendInt(b, int64(len(req.NodeSelectorTerms)), 10)
	for i := range req.NodeSelectorTerms {
		reqs('e', req.NodeSelectorTerms[i].MatchExpressions)
		reqs('f', req.NodeSelectorTerms[i].MatchFields)
	}
	return string(b)
}

// PreScore implements framework.PreScorePlugin.
func (NodeAffinity) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) *framework.Status {
	a := pod.Pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		return statusSkip
	}
	state.Write(nodeAffinityScoreKey, &nodeAffinityState{preferred: newPreferredTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)})
	return nil
}

// Score implements framework.ScorePlugin: the sum of the weights of the
// preferred terms the node matches.
func (NodeAffinity) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	s, _ := state.Read(nodeAffinityScoreKey).(*nodeAffinityState)
	if s == nil || s.preferred == nil {
		return 0, nil
	}
	return s.preferred.score(node), nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (NodeAffinity) ScoreExtensions() framework.ScoreExtensions { return defaultNormalizer{} }

// EventsToRegister implements framework.EnqueueExtensions.
func (NodeAffinity) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{{Resource: framework.NodeResource, ActionType: framework.Add | framework.UpdateNodeLabel}}
}

// DefaultBinder binds through the cluster (the store).
type DefaultBinder struct{ h framework.Handle }

func newDefaultBinder(_ context.Context, h framework.Handle) (framework.Plugin, error) {
	return &DefaultBinder{h: h}, nil
}

// Name implements framework.Plugin.
func (*DefaultBinder) Name() string { return DefaultBinderName }

// Bind implements framework.BindPlugin.
func (b *DefaultBinder) Bind(ctx context.Context, _ *framework.CycleState, pod *framework.PodInfo, node string) *framework.Status {
	if b.h.Cluster() == nil {
		return framework.NewStatus(framework.Error, "no cluster to bind through")
	}
	if err := b.h.Cluster().Bind(ctx, pod.Pod, node); err != nil {
		return framework.AsStatus(err)
	}
	return nil
}

// ImageLocality prefers nodes that already hold the pod's images, weighted
// by how widely each image is spread over the cluster.
type ImageLocality struct{ h framework.Handle }

func newImageLocality(_ context.Context, h framework.Handle) (framework.Plugin, error) {
	return &ImageLocality{h: h}, nil
}

// Name implements framework.Plugin.
func (*ImageLocality) Name() string { return ImageLocalityName }

const (
	mb                    int64 = 1024 * 1024
	imageMinThreshold           = 23 * mb
	imageMaxContainerThre       = 1000 * mb
	imageLocalityKey            = framework.StateKey("PreScore" + ImageLocalityName)
)

type imageState struct {
	images     []string
	spread     []float64
	containers int
}

func (s *imageState) Clone() framework.StateData { return s }

// PreScore implements framework.PreScorePlugin: pods whose images no node
// holds skip scoring.
func (p *ImageLocality) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) *framework.Status {
	snap := p.h.Snapshot()
	total := snap.NumNodes()
	if total == 0 || !snap.HasImages() {
		return statusSkip // no node reports images: nothing to prefer
	}
	s := &imageState{}
	add := func(cs []v1.Container) {
		for i := range cs {
			s.containers++
			name := framework.NormalizeImageName(cs[i].Image)
			if n := snap.ImageNodes(name); n > 0 {
				s.images = append(s.images, name)
				s.spread = append(s.spread, float64(n)/float64(total))
			}
		}
	}
	add(pod.Pod.Spec.InitContainers)
	add(pod.Pod.Spec.Containers)
	if len(s.images) == 0 {
		return statusSkip
	}
	state.Write(imageLocalityKey, s)
	return nil
}

// Score implements framework.ScorePlugin.
func (p *ImageLocality) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	s, _ := state.Read(imageLocalityKey).(*imageState)
	if s == nil {
		return 0, nil
	}
	var sum int64
	for i, img := range s.images {
		if size, ok := node.Images[img]; ok {
			sum += int64(float64(size) * s.spread[i])
		}
	}
	maxT := imageMaxContainerThre * int64(s.containers)
	switch {
	case sum < imageMinThreshold:
		return 0, nil
	case sum > maxT:
		return framework.MaxNodeScore, nil
	}
	return framework.MaxNodeScore * (sum - imageMinThreshold) / (maxT - imageMinThreshold), nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (*ImageLocality) ScoreExtensions() framework.ScoreExtensions { return nil }
