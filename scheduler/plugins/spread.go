package plugins

import (
	"context"
	"maps"
	"math"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// Reasons reported by PodTopologySpread, as upstream.
const (
	ReasonSpreadConstraints  = "node(s) didn't match pod topology spread constraints"
	ReasonSpreadMissingLabel = "node(s) didn't match pod topology spread constraints (missing required label)"
)

var (
	statusSpread             = framework.NewStatus(framework.Unschedulable, ReasonSpreadConstraints)
	statusSpreadMissingLabel = framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonSpreadMissingLabel)
)

// Default constraints applied to pods without their own when a Service,
// ReplicaSet, StatefulSet or ReplicationController selects them (upstream
// "system default" spreading).
var defaultConstraints = []v1.TopologySpreadConstraint{
	{MaxSkew: 3, TopologyKey: v1.LabelHostname, WhenUnsatisfiable: v1.ScheduleAnyway},
	{MaxSkew: 5, TopologyKey: v1.LabelTopologyZone, WhenUnsatisfiable: v1.ScheduleAnyway},
}

// PodTopologySpread implements topologySpreadConstraints (maxSkew,
// whenUnsatisfiable, minDomains, matchLabelKeys, node inclusion policies)
// and the default spreading of pods of one Service/ReplicaSet.
type PodTopologySpread struct{ h framework.Handle }

func newPodTopologySpread(_ context.Context, h framework.Handle) (framework.Plugin, error) {
	return &PodTopologySpread{h: h}, nil
}

// Name implements framework.Plugin.
func (*PodTopologySpread) Name() string { return PodTopologySpreadName }

type spreadConstraint struct {
	maxSkew      int32
	minDomains   int32
	term         framework.AffinityTerm
	honorNodeAff bool
	honorTaints  bool
	selfMatch    int32
}

// buildConstraints converts the pod's constraints with the given
// whenUnsatisfiable (explicit ones, or defaults for soft ones).
func (pl *PodTopologySpread) buildConstraints(pod *v1.Pod, when v1.UnsatisfiableConstraintAction) ([]spreadConstraint, error) {
	var out []spreadConstraint
	if len(pod.Spec.TopologySpreadConstraints) > 0 {
		for i := range pod.Spec.TopologySpreadConstraints {
			c := &pod.Spec.TopologySpreadConstraints[i]
			if c.WhenUnsatisfiable != when {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
			if err != nil {
				return nil, err
			}
			if c.LabelSelector == nil {
				sel = labels.Nothing()
			}
			for _, k := range c.MatchLabelKeys {
				if v, ok := pod.Labels[k]; ok {
					r, err := labels.NewRequirement(k, selection.Equals, []string{v})
					if err != nil {
						return nil, err
					}
					sel = sel.Add(*r)
				}
			}
			sc := spreadConstraint{maxSkew: c.MaxSkew, minDomains: 1, honorNodeAff: true}
			if c.MinDomains != nil {
				sc.minDomains = *c.MinDomains
			}
			if c.NodeAffinityPolicy != nil && *c.NodeAffinityPolicy == v1.NodeInclusionPolicyIgnore {
				sc.honorNodeAff = false
			}
			if c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == v1.NodeInclusionPolicyHonor {
				sc.honorTaints = true
			}
			sc.term = spreadTerm(pod.Namespace, c.TopologyKey, sel)
			if sel.Matches(labels.Set(pod.Labels)) {
				sc.selfMatch = 1
			}
			out = append(out, sc)
		}
		return out, nil
	}
	if when != v1.ScheduleAnyway || pl.h.Cluster() == nil {
		return nil, nil
	}
	sel := pl.h.Cluster().DefaultSpreadSelector(pod)
	if sel == nil || sel.Empty() {
		return nil, nil
	}
	for _, c := range defaultConstraints {
		sc := spreadConstraint{maxSkew: c.MaxSkew, minDomains: 1, honorNodeAff: true, term: spreadTerm(pod.Namespace, c.TopologyKey, sel)}
		if sel.Matches(labels.Set(pod.Labels)) {
			sc.selfMatch = 1
		}
		out = append(out, sc)
	}
	return out, nil
}

func spreadTerm(ns, key string, sel labels.Selector) framework.AffinityTerm {
	return framework.AffinityTerm{
		Namespaces:  map[string]struct{}{ns: {}},
		Selector:    sel,
		TopologyKey: key,
		Key:         key + "\x00" + ns + "\x00-\x00" + sel.String(),
	}
}

// eligibleFunc returns whether a node takes part in counting for the
// constraints, or nil when every node with the keys does.
func eligibleFunc(pod *v1.Pod, cs []spreadConstraint) func(*framework.NodeInfo) bool {
	honorAff, honorTaints := false, false
	for _, c := range cs {
		honorAff = honorAff || c.honorNodeAff
		honorTaints = honorTaints || c.honorTaints
	}
	hasAff := len(pod.Spec.NodeSelector) > 0 || (pod.Spec.Affinity != nil && pod.Spec.Affinity.NodeAffinity != nil &&
		pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil)
	if (!honorAff || !hasAff) && !honorTaints {
		return nil
	}
	req := newNodeMatcher(pod)
	return func(ni *framework.NodeInfo) bool {
		for _, c := range cs {
			if c.honorNodeAff && hasAff && !req.match(ni) {
				return false
			}
			if c.honorTaints {
				for i := range ni.Taints {
					t := &ni.Taints[i]
					if (t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute) && !tolerates(pod.Spec.Tolerations, t) {
						return false
					}
				}
			}
		}
		return true
	}
}

func hasAllKeys(ni *framework.NodeInfo, cs []spreadConstraint) bool {
	for i := range cs {
		if _, ok := ni.Labels[cs[i].term.TopologyKey]; !ok {
			return false
		}
	}
	return true
}

// countConstraints returns, per constraint, the domain counts: shared with
// the snapshot memo when every node counts, else computed over the
// eligible nodes.
//
// With requireAll (explicit constraints) only nodes having every
// constraint's key count, as upstream; the system default constraints
// count each key on its own.
func countConstraints(snap *framework.Snapshot, pod *v1.Pod, cs []spreadConstraint, requireAll bool) []*framework.MatchCounts {
	out := make([]*framework.MatchCounts, len(cs))
	eligible := eligibleFunc(pod, cs)
	fast := eligible == nil
	if fast {
		for i := range cs {
			m := snap.MatchCounts(&cs[i].term, true)
			if m == nil || (requireAll && len(cs) > 1 && int(m.NodesWithKey) != snap.NumNodes()) {
				fast = false
				break
			}
			out[i] = m
		}
	}
	if fast {
		return out
	}
	for i := range cs {
		out[i] = framework.NewMatchCounts(cs[i].term, true)
	}
	for _, ni := range snap.List() {
		if (requireAll && !hasAllKeys(ni, cs)) || (eligible != nil && !eligible(ni)) {
			continue
		}
		for i := range out {
			out[i].AddNode(ni)
		}
	}
	return out
}

type spreadCounts struct {
	m     *framework.MatchCounts
	delta map[string]int32
}

func (c *spreadCounts) count(v string) int32 {
	n := c.m.Counts[v]
	if c.delta != nil {
		n += c.delta[v]
	}
	return n
}

// countOn is count of the node's domain read from the snapshot's
// per-node table when there is no private delta; ok is false when the
// caller must look the domain up by value.
func (c *spreadCounts) countOn(ni *framework.NodeInfo) (n int32, hasKey, ok bool) {
	if c.delta != nil {
		return 0, false, false
	}
	return c.m.CountOn(ni)
}

func (c *spreadCounts) minMatch(minDomains int32) int32 {
	if int32(len(c.m.DomainNodes)) < minDomains {
		return 0
	}
	if c.delta == nil {
		return c.m.Min()
	}
	first := true
	var lo int32
	for v := range c.m.DomainNodes {
		if n := c.count(v); first || n < lo {
			lo, first = n, false
		}
	}
	return lo
}

type spreadFilterState struct {
	constraints []spreadConstraint
	counts      []spreadCounts
}

func (s *spreadFilterState) Clone() framework.StateData {
	c := &spreadFilterState{constraints: s.constraints, counts: make([]spreadCounts, len(s.counts))}
	for i, sc := range s.counts {
		c.counts[i] = spreadCounts{m: sc.m, delta: maps.Clone(sc.delta)}
	}
	return c
}

const (
	spreadFilterKey framework.StateKey = "PreFilter" + PodTopologySpreadName
	spreadScoreKey  framework.StateKey = "PreScore" + PodTopologySpreadName
)

// PreFilter implements framework.PreFilterPlugin.
func (pl *PodTopologySpread) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	cs, err := pl.buildConstraints(pod.Pod, v1.DoNotSchedule)
	if err != nil {
		return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, "invalid topology spread constraint: "+err.Error())
	}
	if len(cs) == 0 {
		return nil, statusSkip
	}
	ms := countConstraints(pl.h.Snapshot(), pod.Pod, cs, true)
	s := &spreadFilterState{constraints: cs, counts: make([]spreadCounts, len(cs))}
	for i, m := range ms {
		s.counts[i] = spreadCounts{m: m}
	}
	state.Write(spreadFilterKey, s)
	return nil, nil
}

// PreFilterExtensions implements framework.PreFilterPlugin.
func (pl *PodTopologySpread) PreFilterExtensions() framework.PreFilterExtensions { return pl }

// AddPod implements framework.PreFilterExtensions.
func (pl *PodTopologySpread) AddPod(_ context.Context, state *framework.CycleState, _, podToAdd *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	pl.update(state, podToAdd, node, 1)
	return nil
}

// RemovePod implements framework.PreFilterExtensions.
func (pl *PodTopologySpread) RemovePod(_ context.Context, state *framework.CycleState, _, podToRemove *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	pl.update(state, podToRemove, node, -1)
	return nil
}

func (pl *PodTopologySpread) update(state *framework.CycleState, other *framework.PodInfo, node *framework.NodeInfo, d int32) {
	s, _ := state.Read(spreadFilterKey).(*spreadFilterState)
	if s == nil {
		return
	}
	for i := range s.counts {
		c := &s.counts[i]
		v, ok := node.Labels[s.constraints[i].term.TopologyKey]
		if !ok || c.m.DomainNodes[v] == 0 || !c.m.Matches(other.Pod) {
			continue
		}
		if c.delta == nil {
			c.delta = map[string]int32{}
		}
		c.delta[v] += d
	}
}

// Filter implements framework.FilterPlugin.
func (pl *PodTopologySpread) Filter(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	s, _ := state.Read(spreadFilterKey).(*spreadFilterState)
	if s == nil {
		return nil
	}
	nodeLabels := node.Labels
	for i := range s.constraints {
		c := &s.constraints[i]
		sc := &s.counts[i]
		var n int32
		if cnt, has, ok := sc.countOn(node); ok {
			if !has {
				return statusSpreadMissingLabel
			}
			n = cnt
		} else {
			v, ok := nodeLabels[c.term.TopologyKey]
			if !ok {
				return statusSpreadMissingLabel
			}
			n = sc.count(v)
		}
		skew := n + c.selfMatch - sc.minMatch(c.minDomains)
		if skew > c.maxSkew {
			return statusSpread
		}
	}
	return nil
}

type spreadScoreState struct {
	constraints []spreadConstraint
	requireAll  bool
	counts      []*framework.MatchCounts
	weights     []float64
}

func (s *spreadScoreState) Clone() framework.StateData { return s }

// ignored reports nodes that scoring leaves out: with explicit
// constraints, nodes missing one of their keys.
func (s *spreadScoreState) ignored(n *framework.NodeInfo) bool {
	return s.requireAll && !hasAllKeys(n, s.constraints)
}

// PreScore implements framework.PreScorePlugin.
func (pl *PodTopologySpread) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, nodes []*framework.NodeInfo) *framework.Status {
	cs, err := pl.buildConstraints(pod.Pod, v1.ScheduleAnyway)
	if err != nil {
		return framework.AsStatus(err)
	}
	if len(cs) == 0 {
		return statusSkip
	}
	requireAll := len(pod.Pod.Spec.TopologySpreadConstraints) > 0
	s := &spreadScoreState{constraints: cs, requireAll: requireAll, counts: countConstraints(pl.h.Snapshot(), pod.Pod, cs, requireAll), weights: make([]float64, len(cs))}
	for i := range cs {
		key := cs[i].term.TopologyKey
		domains := map[string]struct{}{}
		n := 0
		for _, ni := range nodes {
			if requireAll && !hasAllKeys(ni, cs) {
				continue
			}
			v, ok := ni.Labels[key]
			if !ok {
				continue
			}
			n++
			if key != v1.LabelHostname {
				domains[v] = struct{}{}
			}
		}
		size := len(domains)
		if key == v1.LabelHostname {
			size = n
		}
		s.weights[i] = math.Log(float64(size + 2))
	}
	state.Write(spreadScoreKey, s)
	return nil
}

// Score implements framework.ScorePlugin: the weighted number of matching
// pods in the node's domains (fewer is better; NormalizeScore inverts).
func (pl *PodTopologySpread) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	s, _ := state.Read(spreadScoreKey).(*spreadScoreState)
	if s == nil || s.ignored(node) {
		return 0, nil
	}
	var score float64
	for i := range s.constraints {
		c := &s.constraints[i]
		v, ok := node.Labels[c.term.TopologyKey]
		if !ok {
			continue
		}
		var cnt int32
		if c.term.TopologyKey == v1.LabelHostname {
			for _, p := range node.Pods {
				if s.counts[i].Matches(p.Pod) {
					cnt++
				}
			}
		} else {
			cnt = s.counts[i].Counts[v]
		}
		score += float64(cnt)*s.weights[i] + float64(c.maxSkew-1)
	}
	return int64(math.Round(score)), nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (pl *PodTopologySpread) ScoreExtensions() framework.ScoreExtensions { return pl }

// NormalizeScore implements framework.ScoreExtensions: nodes missing a
// key score 0; the others are inverted so the least crowded scores highest.
func (pl *PodTopologySpread) NormalizeScore(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, nodes []*framework.NodeInfo, scores []int64) *framework.Status {
	s, _ := state.Read(spreadScoreKey).(*spreadScoreState)
	if s == nil {
		return nil
	}
	var lo, hi int64 = math.MaxInt64, math.MinInt64
	for i, n := range nodes {
		if s.ignored(n) {
			continue
		}
		lo, hi = min(lo, scores[i]), max(hi, scores[i])
	}
	for i, n := range nodes {
		switch {
		case s.ignored(n):
			scores[i] = 0
		case hi == 0:
			scores[i] = framework.MaxNodeScore
		default:
			scores[i] = framework.MaxNodeScore * (hi + lo - scores[i]) / hi
		}
	}
	return nil
}

// EventsToRegister implements framework.EnqueueExtensions.
func (pl *PodTopologySpread) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.AssignedPodResource, ActionType: framework.All},
		{Resource: framework.NodeResource, ActionType: framework.Add | framework.Delete | framework.UpdateNodeLabel | framework.UpdateNodeTaint},
	}
}
