package framework

import (
	"maps"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// maxMemoEntries bounds the number of memoized match counts; beyond it the
// memo is dropped and rebuilt on demand.
const maxMemoEntries = 512

// Snapshot is the scheduler's view of the cluster for one scheduling cycle.
// The cache updates it incrementally between cycles (only nodes whose
// generation changed are copied) and maintains aggregates across all nodes
// so that plugins need not walk every pod for every pod they place:
//
//   - per image, the number of nodes holding it (ImageLocality);
//   - per required anti-affinity term of existing pods, the topology
//     domains holding such pods (InterPodAffinity);
//   - memoized per-domain counts of pods matching a selector
//     (InterPodAffinity, PodTopologySpread), created on first use and then
//     kept up to date as nodes change.
//
// A Snapshot is used by one scheduling goroutine at a time; Filter and Score
// may read it concurrently.
type Snapshot struct {
	nodes     map[string]*NodeInfo
	list      []*NodeInfo
	affinity  []*NodeInfo
	listDirty bool
	// Generation is the cache generation the snapshot reflects.
	Generation int64

	imageNodes map[string]int
	// unschedulable and tainted count the nodes that are cordoned and
	// those with a NoSchedule or NoExecute taint, so that plugins can
	// skip their filters when no node could fail them.
	unschedulable int
	tainted       int
	anti          map[string]*TermDomains
	memo          map[memoKey]*MatchCounts
	freeSlots     []int
	slots         int
	// labelGen counts, per slot, the changes of the labels (or of the
	// node) held there, and bySlot is the NodeInfo in each slot: they
	// keep the NodeMemos' verdicts valid.
	labelGen  []uint32
	bySlot    []*NodeInfo
	nodeMemos map[string]*NodeMemo

	// NamespaceLabels returns the labels of a namespace; nil means no
	// namespace has labels.
	NamespaceLabels func(ns string) labels.Set
}

// TermDomains records where pods with one required anti-affinity term are.
type TermDomains struct {
	// Term is the shared term.
	Term AffinityTerm
	// Counts maps a topology value to the number of pods with the term in
	// that domain.
	Counts map[string]int32
	total  int32
	perNode
}

// perNode keeps, for aggregates by a topology key, the count on each node
// (by NodeInfo.Index) and whether every domain is a single node (as with
// kubernetes.io/hostname), in which case a node's domain count is its own
// count and no map lookup is needed.
type perNode struct {
	byNode []int32
	// nodesPerDomain and multi track domains holding more than one node.
	nodesPerDomain map[string]int32
	multi          int
}

func (p *perNode) addNodeDomain(v string, d int32) {
	if p.nodesPerDomain == nil {
		p.nodesPerDomain = map[string]int32{}
	}
	old := p.nodesPerDomain[v]
	nw := old + d
	if nw <= 0 {
		delete(p.nodesPerDomain, v)
	} else {
		p.nodesPerDomain[v] = nw
	}
	if old > 1 && nw <= 1 {
		p.multi--
	} else if old <= 1 && nw > 1 {
		p.multi++
	}
}

func (p *perNode) addAt(idx int, d int32) {
	if idx >= len(p.byNode) {
		p.byNode = append(p.byNode, make([]int32, idx+1-len(p.byNode)+16)...)
	}
	p.byNode[idx] += d
}

// NodeCount returns the count of the node's domain when every domain is a
// single node (ok true); otherwise the caller looks the domain up by value.
func (p *perNode) NodeCount(ni *NodeInfo) (int32, bool) {
	if p.multi != 0 {
		return 0, false
	}
	if ni.Index < len(p.byNode) {
		return p.byNode[ni.Index], true
	}
	return 0, true
}

type memoKey struct {
	term            string
	skipTerminating bool
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{
		nodes:      map[string]*NodeInfo{},
		imageNodes: map[string]int{},
		anti:       map[string]*TermDomains{},
		memo:       map[memoKey]*MatchCounts{},
	}
}

// NewSnapshotFrom builds a snapshot from plain objects; pods with a
// spec.nodeName are placed on their nodes. It serves tests and tools.
func NewSnapshotFrom(nodes []*v1.Node, pods []*v1.Pod) *Snapshot {
	s := NewSnapshot()
	infos := map[string]*NodeInfo{}
	for _, n := range nodes {
		ni := NewNodeInfo()
		ni.SetNode(n)
		infos[n.Name] = ni
	}
	for _, p := range pods {
		if ni := infos[p.Spec.NodeName]; ni != nil {
			ni.AddPodInfo(NewPodInfo(p))
		}
	}
	for _, n := range nodes {
		s.Set(n.Name, infos[n.Name])
	}
	s.Commit(1)
	return s
}

// Get returns a node by name, or nil.
func (s *Snapshot) Get(name string) *NodeInfo {
	ni := s.nodes[name]
	if ni == nil || ni.node == nil {
		return nil
	}
	return ni
}

// List returns every node, in a stable order. Callers must not modify it.
func (s *Snapshot) List() []*NodeInfo { return s.list }

// NumNodes returns the number of nodes.
func (s *Snapshot) NumNodes() int { return len(s.list) }

// HavePodsWithAffinity lists the nodes holding pods with affinity terms
// that matter for scoring.
func (s *Snapshot) HavePodsWithAffinity() []*NodeInfo { return s.affinity }

// UnschedulableNodes returns how many nodes are cordoned
// (spec.unschedulable).
func (s *Snapshot) UnschedulableNodes() int { return s.unschedulable }

// TaintedNodes returns how many nodes carry at least one NoSchedule or
// NoExecute taint.
func (s *Snapshot) TaintedNodes() int { return s.tainted }

func hasHardTaint(taints []v1.Taint) bool {
	for i := range taints {
		if e := taints[i].Effect; e == v1.TaintEffectNoSchedule || e == v1.TaintEffectNoExecute {
			return true
		}
	}
	return false
}

// HasImages reports whether any node reports images.
func (s *Snapshot) HasImages() bool { return len(s.imageNodes) > 0 }

// ImageNodes returns how many nodes hold the (normalized) image.
func (s *Snapshot) ImageNodes(image string) int { return s.imageNodes[image] }

// AntiAffinityTerms returns the required anti-affinity terms of existing
// pods with the domains they occupy. Callers must not modify the result.
func (s *Snapshot) AntiAffinityTerms() map[string]*TermDomains { return s.anti }

// NamespaceLabelsOf returns a namespace's labels via NamespaceLabels.
func (s *Snapshot) NamespaceLabelsOf(ns string) labels.Set {
	if s.NamespaceLabels == nil {
		return nil
	}
	return s.NamespaceLabels(ns)
}

// Set installs the cache's current version of a node (a private copy the
// snapshot may keep); ni nil removes the node. The node's aggregates are
// moved from the old version to the new one.
func (s *Snapshot) Set(name string, ni *NodeInfo) {
	old := s.nodes[name]
	if old != nil && old.node != nil {
		s.aggregate(old, -1)
	}
	if ni == nil {
		if old != nil {
			delete(s.nodes, name)
			s.freeSlots = append(s.freeSlots, old.Index)
			s.touchSlot(old.Index, nil)
			s.listDirty = true
		}
		return
	}
	if old == nil {
		if n := len(s.freeSlots); n > 0 {
			ni.Index = s.freeSlots[n-1]
			s.freeSlots = s.freeSlots[:n-1]
		} else {
			ni.Index = s.slots
			s.slots++
		}
		s.nodes[name] = ni
		s.touchSlot(ni.Index, ni)
		s.listDirty = true
	} else {
		ni.Index = old.Index
		if (old.node == nil) != (ni.node == nil) || (len(old.PodsWithAffinity) > 0) != (len(ni.PodsWithAffinity) > 0) {
			s.listDirty = true
		}
		labelsChanged := old.name != ni.name || !maps.Equal(old.Labels, ni.Labels)
		*old = *ni // keep the pointer held by the lists
		ni = old
		if labelsChanged {
			s.touchSlot(ni.Index, ni)
		}
	}
	if ni.node != nil {
		s.aggregate(ni, 1)
	}
}

// Commit finishes a round of Set calls at cache generation gen.
func (s *Snapshot) Commit(gen int64) {
	s.Generation = gen
	if !s.listDirty {
		return
	}
	s.listDirty = false
	seen := make(map[string]bool, len(s.list))
	list := make([]*NodeInfo, 0, len(s.nodes))
	for _, ni := range s.list {
		if cur := s.nodes[ni.Name()]; cur == ni && ni.node != nil && !seen[ni.Name()] {
			list = append(list, ni)
			seen[ni.Name()] = true
		}
	}
	// New nodes go last, in name order for determinism.
	var added []*NodeInfo
	for name, ni := range s.nodes {
		if ni.node != nil && !seen[name] {
			added = append(added, ni)
		}
	}
	sortByName(added)
	list = append(list, added...)
	s.list = list
	s.affinity = s.affinity[:0]
	for _, ni := range list {
		if len(ni.PodsWithAffinity) > 0 {
			s.affinity = append(s.affinity, ni)
		}
	}
}

func sortByName(l []*NodeInfo) {
	sort.Slice(l, func(i, j int) bool { return l[i].Name() < l[j].Name() })
}

func (s *Snapshot) aggregate(ni *NodeInfo, sign int32) {
	if ni.Unschedulable {
		s.unschedulable += int(sign)
	}
	if hasHardTaint(ni.Taints) {
		s.tainted += int(sign)
	}
	for img := range ni.Images {
		s.imageNodes[img] += int(sign)
		if s.imageNodes[img] <= 0 {
			delete(s.imageNodes, img)
		}
	}
	nodeLabels := ni.Labels
	for _, e := range s.anti {
		if v, ok := nodeLabels[e.Term.TopologyKey]; ok {
			e.addNodeDomain(v, sign)
		}
	}
	for _, p := range ni.PodsWithRequiredAntiAffinity {
		for i := range p.RequiredAntiAffinityTerms {
			t := &p.RequiredAntiAffinityTerms[i]
			v, ok := nodeLabels[t.TopologyKey]
			if !ok {
				continue
			}
			e := s.anti[t.Key]
			if e == nil {
				if sign < 0 {
					continue
				}
				e = &TermDomains{Term: *t, Counts: map[string]int32{}}
				// A new term: learn the domains of every node (this one
				// is counted above for existing terms only).
				for _, other := range s.nodes {
					if other.node == nil || other == ni {
						continue
					}
					if ov, ok := other.Labels[t.TopologyKey]; ok {
						e.addNodeDomain(ov, 1)
					}
				}
				e.addNodeDomain(v, 1)
				s.anti[t.Key] = e
			}
			e.addAt(ni.Index, sign)
			e.Counts[v] += sign
			e.total += sign
			if e.Counts[v] <= 0 {
				delete(e.Counts, v)
			}
			if e.total <= 0 {
				delete(s.anti, t.Key)
			}
		}
	}
	for _, m := range s.memo {
		if sign > 0 {
			m.addNode(ni)
		} else {
			m.removeNode(ni)
		}
	}
}

// MatchCounts returns the per-domain counts of pods selected by term (by
// its namespaces and selector), over all nodes that have the term's
// topology key. skipTerminating leaves out pods being deleted, as
// PodTopologySpread does. The result is memoized in the snapshot and kept up
// to date across cycles; callers must treat it as read-only. Terms with a
// namespaceSelector are not memoized (nil is returned).
func (s *Snapshot) MatchCounts(term *AffinityTerm, skipTerminating bool) *MatchCounts {
	if term.NamespaceSelector != nil {
		return nil
	}
	k := memoKey{term: term.Key, skipTerminating: skipTerminating}
	if m := s.memo[k]; m != nil {
		return m
	}
	if len(s.memo) >= maxMemoEntries {
		clear(s.memo)
	}
	m := NewMatchCounts(*term, skipTerminating)
	m.snap = s
	for _, ni := range s.list {
		m.addNode(ni)
	}
	s.memo[k] = m
	return m
}

// MatchCounts counts, per value of a topology key, the nodes having that
// value and the pods on them selected by a term.
type MatchCounts struct {
	term            AffinityTerm
	skipTerminating bool
	// Counts maps a domain to its number of matching pods.
	Counts map[string]int32
	// DomainNodes maps a domain to its number of nodes.
	DomainNodes map[string]int32
	// NodesWithKey is the number of nodes that have the topology key.
	NodesWithKey int32
	// Total is the number of matching pods in all domains.
	Total int32
	hist  map[int32]int32 // matching-pod count -> number of domains
	min   int32
	perNode
	// For counts memoized in a snapshot (snap set): domain ids, so that
	// CountOn answers per node with two slice reads instead of a label
	// lookup and a count lookup by value. ids maps a domain value to its
	// id, slotDomain a node slot to its domain id plus one (0: the node
	// lacks the key), idCounts an id to the domain's count.
	snap       *Snapshot
	ids        map[string]int32
	slotDomain []int32
	idCounts   []int32
}

// CountOn returns the count of the node's domain and whether the node has
// the topology key, as Counts[node's value] would. ok is false when it
// cannot answer from its per-node table (counts not kept by a snapshot,
// or a NodeInfo that is not the snapshot's own, such as a clone); the
// caller then looks the domain up by value.
func (m *MatchCounts) CountOn(ni *NodeInfo) (count int32, hasKey, ok bool) {
	s := m.snap
	if s == nil {
		return 0, false, false
	}
	i := ni.Index
	if i < 0 || i >= len(s.bySlot) || s.bySlot[i] != ni {
		return 0, false, false
	}
	if i >= len(m.slotDomain) {
		return 0, false, true
	}
	d := m.slotDomain[i]
	if d == 0 {
		return 0, false, true
	}
	return m.idCounts[d-1], true, true
}

// setSlot records the domain of the node in slot i (with v its value;
// has false when the node lacks the key or leaves the slot).
func (m *MatchCounts) setSlot(i int, v string, has bool) {
	if m.snap == nil || i < 0 {
		return
	}
	if i >= len(m.slotDomain) {
		if !has {
			return
		}
		m.slotDomain = append(m.slotDomain, make([]int32, i+1-len(m.slotDomain)+16)...)
	}
	if !has {
		m.slotDomain[i] = 0
		return
	}
	m.slotDomain[i] = m.domainID(v) + 1
}

func (m *MatchCounts) domainID(v string) int32 {
	id, ok := m.ids[v]
	if !ok {
		if m.ids == nil {
			m.ids = map[string]int32{}
		}
		id = int32(len(m.idCounts))
		m.ids[v] = id
		m.idCounts = append(m.idCounts, m.Counts[v])
	}
	return id
}

// NewMatchCounts returns empty counts for a term; fill them with AddNode.
func NewMatchCounts(term AffinityTerm, skipTerminating bool) *MatchCounts {
	return &MatchCounts{
		term: term, skipTerminating: skipTerminating,
		Counts: map[string]int32{}, DomainNodes: map[string]int32{}, hist: map[int32]int32{},
	}
}

// AddNode counts a node and its matching pods.
func (m *MatchCounts) AddNode(ni *NodeInfo) { m.addNode(ni) }

// Min returns the smallest count over all domains (0 when none).
func (m *MatchCounts) Min() int32 { return m.min }

// Matches reports whether the term selects pod.
func (m *MatchCounts) Matches(p *v1.Pod) bool {
	if m.skipTerminating && p.DeletionTimestamp != nil {
		return false
	}
	if _, ok := m.term.Namespaces[p.Namespace]; !ok {
		return false
	}
	return m.term.Selector.Matches(labels.Set(p.Labels))
}

func (m *MatchCounts) matching(ni *NodeInfo) int32 {
	var c int32
	for _, p := range ni.Pods {
		if m.Matches(p.Pod) {
			c++
		}
	}
	return c
}

func (m *MatchCounts) addNode(ni *NodeInfo) {
	v, ok := ni.Labels[m.term.TopologyKey]
	if !ok {
		return
	}
	m.NodesWithKey++
	m.setSlot(ni.Index, v, true)
	m.addNodeDomain(v, 1)
	m.DomainNodes[v]++
	if m.DomainNodes[v] == 1 {
		c := m.Counts[v]
		m.hist[c]++
		if len(m.DomainNodes) == 1 || c < m.min {
			m.min = c
		}
	}
	if c := m.matching(ni); c > 0 {
		m.change(v, c)
		m.addAt(ni.Index, c)
	}
}

func (m *MatchCounts) removeNode(ni *NodeInfo) {
	v, ok := ni.Labels[m.term.TopologyKey]
	if !ok {
		return
	}
	if c := m.matching(ni); c > 0 {
		m.change(v, -c)
		m.addAt(ni.Index, -c)
	}
	m.addNodeDomain(v, -1)
	m.setSlot(ni.Index, "", false)
	m.NodesWithKey--
	m.DomainNodes[v]--
	if m.DomainNodes[v] <= 0 {
		delete(m.DomainNodes, v)
		c := m.Counts[v]
		m.hist[c]--
		if m.hist[c] <= 0 {
			delete(m.hist, c)
		}
		if c == 0 {
			delete(m.Counts, v)
		}
		m.recomputeMin()
	}
}

func (m *MatchCounts) change(v string, delta int32) {
	old := m.Counts[v]
	nw := old + delta
	if nw == 0 {
		delete(m.Counts, v)
	} else {
		m.Counts[v] = nw
	}
	m.Total += delta
	if m.snap != nil {
		m.idCounts[m.domainID(v)] = nw
	}
	if m.DomainNodes[v] == 0 {
		return
	}
	m.hist[old]--
	if m.hist[old] <= 0 {
		delete(m.hist, old)
	}
	m.hist[nw]++
	if nw < m.min {
		m.min = nw
	} else if old == m.min && m.hist[old] == 0 {
		m.recomputeMin()
	}
}

func (m *MatchCounts) recomputeMin() {
	first := true
	for c := range m.hist {
		if first || c < m.min {
			m.min = c
			first = false
		}
	}
	if first {
		m.min = 0
	}
}
