package plugins

import (
	"context"
	"maps"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// Reasons reported by InterPodAffinity, as upstream.
const (
	ReasonExistingAntiAffinity = "node(s) didn't satisfy existing pods anti-affinity rules"
	ReasonAffinityRules        = "node(s) didn't match pod affinity rules"
	ReasonAntiAffinityRules    = "node(s) didn't match pod anti-affinity rules"
)

var (
	statusExistingAnti = framework.NewStatus(framework.Unschedulable, ReasonExistingAntiAffinity)
	statusAffinity     = framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonAffinityRules)
	statusAnti         = framework.NewStatus(framework.Unschedulable, ReasonAntiAffinityRules)
)

// hardPodAffinityWeight is the score weight of an existing pod's required
// affinity term that the incoming pod matches (upstream default 1).
const hardPodAffinityWeight = 1

// InterPodAffinity implements required and preferred pod affinity and
// anti-affinity with topologyKey, namespaces and namespaceSelector. It
// reads per-domain counts the snapshot keeps up to date instead of walking
// every pod for every pod it places.
type InterPodAffinity struct{ h framework.Handle }

func newInterPodAffinity(_ context.Context, h framework.Handle) (framework.Plugin, error) {
	return &InterPodAffinity{h: h}, nil
}

// Name implements framework.Plugin.
func (*InterPodAffinity) Name() string { return InterPodAffinityName }

// termCounts are the per-domain counts of pods matching one term, either
// shared with the snapshot (read-only) or private, plus a private delta
// applied by AddPod/RemovePod.
type termCounts struct {
	term   *framework.AffinityTerm
	counts map[string]int32
	total  int32
	delta  map[string]int32
	// byNode answers per node without a map lookup when every domain is
	// a single node (hostname topology); nil for private counts.
	byNode nodeCounter
}

type nodeCounter interface {
	NodeCount(ni *framework.NodeInfo) (int32, bool)
}

func (t *termCounts) count(v string) int32 {
	c := t.counts[v]
	if t.delta != nil {
		c += t.delta[v]
	}
	return c
}

// countOn returns the count of the node's domain; ok is false when the
// node lacks the topology key.
func (t *termCounts) countOn(ni *framework.NodeInfo) (int32, bool) {
	if t.delta == nil && t.byNode != nil {
		if c, ok := t.byNode.NodeCount(ni); ok {
			if c > 0 {
				return c, true
			}
			_, has := ni.Labels[t.term.TopologyKey]
			return 0, has
		}
	}
	v, ok := ni.Labels[t.term.TopologyKey]
	if !ok {
		return 0, false
	}
	return t.count(v), true
}

// occupied reports whether the node's domain holds a matching pod. It is
// countOn for callers that only ask "more than zero": with per-node
// counts it needs no label lookup.
func (t *termCounts) occupied(ni *framework.NodeInfo) bool {
	if t.delta == nil && t.byNode != nil {
		if c, ok := t.byNode.NodeCount(ni); ok {
			return c > 0
		}
	}
	v, ok := ni.Labels[t.term.TopologyKey]
	return ok && t.count(v) > 0
}

func (t *termCounts) add(v string, d int32) {
	if t.delta == nil {
		t.delta = map[string]int32{}
	}
	t.delta[v] += d
	t.total += d
}

func (t termCounts) clone() termCounts {
	if t.delta != nil {
		t.delta = maps.Clone(t.delta)
	}
	return t
}

type ipaFilterState struct {
	pod          *framework.PodInfo
	nsLabels     labels.Set
	existingAnti []termCounts
	affinity     []termCounts
	anti         []termCounts
	matchesSelf  bool
}

func (s *ipaFilterState) Clone() framework.StateData {
	c := *s
	c.existingAnti = cloneTerms(s.existingAnti)
	c.affinity = cloneTerms(s.affinity)
	c.anti = cloneTerms(s.anti)
	return &c
}

func cloneTerms(in []termCounts) []termCounts {
	out := make([]termCounts, len(in))
	for i := range in {
		out[i] = in[i].clone()
	}
	return out
}

const (
	ipaFilterKey framework.StateKey = "PreFilter" + InterPodAffinityName
	ipaScoreKey  framework.StateKey = "PreScore" + InterPodAffinityName
)

// countsFor returns the counts of pods matching term over the snapshot.
func countsFor(snap *framework.Snapshot, term *framework.AffinityTerm, skipTerminating bool) termCounts {
	if m := snap.MatchCounts(term, skipTerminating); m != nil {
		return termCounts{term: term, counts: m.Counts, total: m.Total, byNode: m}
	}
	tc := termCounts{term: term, counts: map[string]int32{}}
	for _, ni := range snap.List() {
		v, ok := ni.Labels[term.TopologyKey]
		if !ok {
			continue
		}
		for _, p := range ni.Pods {
			if skipTerminating && p.Pod.DeletionTimestamp != nil {
				continue
			}
			if term.Matches(p.Pod, snap.NamespaceLabelsOf(p.Pod.Namespace)) {
				tc.counts[v]++
				tc.total++
			}
		}
	}
	return tc
}

// PreFilter implements framework.PreFilterPlugin.
func (pl *InterPodAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	if pod.ParseError != nil {
		return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, "invalid affinity: "+pod.ParseError.Error())
	}
	snap := pl.h.Snapshot()
	if len(pod.RequiredAffinityTerms) == 0 && len(pod.RequiredAntiAffinityTerms) == 0 && len(snap.AntiAffinityTerms()) == 0 {
		// Nothing to check: neither the pod nor any existing pod has a
		// required term.
		return nil, statusSkip
	}
	s := &ipaFilterState{pod: pod, nsLabels: snap.NamespaceLabelsOf(pod.Pod.Namespace)}
	for _, e := range snap.AntiAffinityTerms() {
		if e.Term.Matches(pod.Pod, s.nsLabels) {
			s.existingAnti = append(s.existingAnti, termCounts{term: &e.Term, counts: e.Counts, total: 1, byNode: e})
		}
	}
	s.matchesSelf = true
	for i := range pod.RequiredAffinityTerms {
		t := &pod.RequiredAffinityTerms[i]
		s.affinity = append(s.affinity, countsFor(snap, t, false))
		if !t.Matches(pod.Pod, s.nsLabels) {
			s.matchesSelf = false
		}
	}
	for i := range pod.RequiredAntiAffinityTerms {
		s.anti = append(s.anti, countsFor(snap, &pod.RequiredAntiAffinityTerms[i], false))
	}
	if len(s.existingAnti) == 0 && len(s.affinity) == 0 && len(s.anti) == 0 {
		return nil, statusSkip
	}
	state.Write(ipaFilterKey, s)
	return nil, nil
}

// PreFilterExtensions implements framework.PreFilterPlugin.
func (pl *InterPodAffinity) PreFilterExtensions() framework.PreFilterExtensions { return pl }

// AddPod implements framework.PreFilterExtensions.
func (pl *InterPodAffinity) AddPod(_ context.Context, state *framework.CycleState, pod, podToAdd *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	return pl.update(state, podToAdd, node, 1)
}

// RemovePod implements framework.PreFilterExtensions.
func (pl *InterPodAffinity) RemovePod(_ context.Context, state *framework.CycleState, pod, podToRemove *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	return pl.update(state, podToRemove, node, -1)
}

func (pl *InterPodAffinity) update(state *framework.CycleState, other *framework.PodInfo, node *framework.NodeInfo, d int32) *framework.Status {
	s, _ := state.Read(ipaFilterKey).(*ipaFilterState)
	if s == nil {
		return nil
	}
	snap := pl.h.Snapshot()
	nodeLabels := node.Labels
	// The other pod's anti-affinity against the incoming pod.
	for i := range other.RequiredAntiAffinityTerms {
		t := &other.RequiredAntiAffinityTerms[i]
		v, ok := nodeLabels[t.TopologyKey]
		if !ok || !t.Matches(s.pod.Pod, s.nsLabels) {
			continue
		}
		found := false
		for j := range s.existingAnti {
			if s.existingAnti[j].term.Key == t.Key {
				s.existingAnti[j].add(v, d)
				found = true
				break
			}
		}
		if !found {
			tc := termCounts{term: t}
			tc.add(v, d)
			s.existingAnti = append(s.existingAnti, tc)
		}
	}
	otherNS := snap.NamespaceLabelsOf(other.Pod.Namespace)
	for _, list := range [][]termCounts{s.affinity, s.anti} {
		for i := range list {
			tc := &list[i]
			v, ok := nodeLabels[tc.term.TopologyKey]
			if ok && tc.term.Matches(other.Pod, otherNS) {
				tc.add(v, d)
			}
		}
	}
	return nil
}

// Filter implements framework.FilterPlugin.
func (pl *InterPodAffinity) Filter(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	s, _ := state.Read(ipaFilterKey).(*ipaFilterState)
	if s == nil {
		return nil
	}
	for i := range s.existingAnti {
		if s.existingAnti[i].occupied(node) {
			return statusExistingAnti
		}
	}
	if len(s.affinity) > 0 {
		podsExist := true
		anyMatch := false
		for i := range s.affinity {
			tc := &s.affinity[i]
			c, ok := tc.countOn(node)
			if !ok {
				return statusAffinity
			}
			if c <= 0 {
				podsExist = false
			}
			if tc.total > 0 {
				anyMatch = true
			}
		}
		if !podsExist && (anyMatch || !s.matchesSelf) {
			return statusAffinity
		}
	}
	for i := range s.anti {
		if s.anti[i].occupied(node) {
			return statusAnti
		}
	}
	return nil
}

type ipaScoreState struct {
	scores map[string]map[string]int64
}

func (s *ipaScoreState) Clone() framework.StateData { return s }

// PreScore implements framework.PreScorePlugin.
func (pl *InterPodAffinity) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) *framework.Status {
	snap := pl.h.Snapshot()
	withAffinity := snap.HavePodsWithAffinity()
	if len(pod.PreferredAffinityTerms) == 0 && len(pod.PreferredAntiAffinityTerms) == 0 && len(withAffinity) == 0 {
		return statusSkip
	}
	if pod.ParseError != nil {
		return framework.AsStatus(pod.ParseError)
	}
	scores := map[string]map[string]int64{}
	add := func(key, v string, w int64) {
		if w == 0 {
			return
		}
		m := scores[key]
		if m == nil {
			m = map[string]int64{}
			scores[key] = m
		}
		m[v] += w
	}
	for _, terms := range []struct {
		list []framework.AffinityTerm
		sign int64
	}{{pod.PreferredAffinityTerms, 1}, {pod.PreferredAntiAffinityTerms, -1}} {
		for i := range terms.list {
			t := &terms.list[i]
			tc := countsFor(snap, t, false)
			for v, c := range tc.counts {
				add(t.TopologyKey, v, terms.sign*int64(t.Weight)*int64(c))
			}
		}
	}
	nsLabels := snap.NamespaceLabelsOf(pod.Pod.Namespace)
	for _, ni := range withAffinity {
		nodeLabels := ni.Labels
		for _, ep := range ni.PodsWithAffinity {
			for i := range ep.RequiredAffinityTerms {
				t := &ep.RequiredAffinityTerms[i]
				if v, ok := nodeLabels[t.TopologyKey]; ok && t.Matches(pod.Pod, nsLabels) {
					add(t.TopologyKey, v, hardPodAffinityWeight)
				}
			}
			for i := range ep.PreferredAffinityTerms {
				t := &ep.PreferredAffinityTerms[i]
				if v, ok := nodeLabels[t.TopologyKey]; ok && t.Matches(pod.Pod, nsLabels) {
					add(t.TopologyKey, v, int64(t.Weight))
				}
			}
			for i := range ep.PreferredAntiAffinityTerms {
				t := &ep.PreferredAntiAffinityTerms[i]
				if v, ok := nodeLabels[t.TopologyKey]; ok && t.Matches(pod.Pod, nsLabels) {
					add(t.TopologyKey, v, -int64(t.Weight))
				}
			}
		}
	}
	if len(scores) == 0 {
		return statusSkip
	}
	state.Write(ipaScoreKey, &ipaScoreState{scores: scores})
	return nil
}

// Score implements framework.ScorePlugin.
func (pl *InterPodAffinity) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	s, _ := state.Read(ipaScoreKey).(*ipaScoreState)
	if s == nil {
		return 0, nil
	}
	var sum int64
	for key, m := range s.scores {
		if v, ok := node.Labels[key]; ok {
			sum += m[v]
		}
	}
	return sum, nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (pl *InterPodAffinity) ScoreExtensions() framework.ScoreExtensions { return pl }

// NormalizeScore implements framework.ScoreExtensions (min-max scaling,
// as upstream).
func (pl *InterPodAffinity) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, _ []*framework.NodeInfo, scores []int64) *framework.Status {
	if len(scores) == 0 {
		return nil
	}
	lo, hi := scores[0], scores[0]
	for _, s := range scores {
		lo, hi = min(lo, s), max(hi, s)
	}
	for i, s := range scores {
		if hi > lo {
			scores[i] = int64(float64(framework.MaxNodeScore) * float64(s-lo) / float64(hi-lo))
		} else {
			scores[i] = 0
		}
	}
	return nil
}

// EventsToRegister implements framework.EnqueueExtensions.
func (pl *InterPodAffinity) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.AssignedPodResource, ActionType: framework.All},
		{Resource: framework.NodeResource, ActionType: framework.Add | framework.UpdateNodeLabel},
		{Resource: framework.NamespaceResource, ActionType: framework.All},
	}
}
