package framework

// maxNodeMemos bounds the number of memoized per-node verdicts; beyond it
// the memos are dropped and rebuilt on demand.
const maxNodeMemos = 128

// NodeMemo memoizes a yes/no verdict per node that depends only on the
// node's name and labels (such as "the node matches this nodeSelector and
// required node affinity"). A verdict stays valid until the node's labels
// change or its slot is given to another node, which the snapshot tracks;
// so pods with the same selector, scheduled one after another, evaluate
// it once per node instead of once per pod and node.
//
// Get and Put may be called from several Filter goroutines at once for
// different nodes. They serve only the snapshot's own NodeInfos: for any
// other NodeInfo (a clone made for nominated pods or a preemption dry run)
// Get reports no verdict and Put does nothing.
type NodeMemo struct {
	snap *Snapshot
	// verdict holds, per slot, the label generation the verdict was
	// computed at (shifted left by one) and the verdict in bit 0; 0 means
	// none.
	verdict []uint32
	// Data is free for the memo's user: for example the parsed selector,
	// so that it is parsed once per memo instead of once per pod.
	Data any
}

// NodeMemo returns the memo named key (callers choose keys that identify
// what is decided, e.g. a canonical form of a selector), creating it when
// needed. Call it from the scheduling goroutine (PreFilter), not from
// Filter.
func (s *Snapshot) NodeMemo(key string) *NodeMemo {
	m := s.nodeMemos[key]
	if m == nil {
		if len(s.nodeMemos) >= maxNodeMemos {
			clear(s.nodeMemos)
		}
		if s.nodeMemos == nil {
			s.nodeMemos = map[string]*NodeMemo{}
		}
		m = &NodeMemo{snap: s}
		s.nodeMemos[key] = m
	}
	if n := len(s.labelGen); len(m.verdict) < n {
		m.verdict = append(m.verdict, make([]uint32, n-len(m.verdict))...)
	}
	return m
}

// current returns the slot's label generation when ni is the snapshot's
// own NodeInfo in that slot.
func (m *NodeMemo) current(ni *NodeInfo) (uint32, bool) {
	s := m.snap
	i := ni.Index
	if i < 0 || i >= len(s.bySlot) || i >= len(m.verdict) || s.bySlot[i] != ni {
		return 0, false
	}
	return s.labelGen[i], true
}

// Get returns the memoized verdict for the node; known is false when
// there is none (never computed, or the node's labels changed since).
func (m *NodeMemo) Get(ni *NodeInfo) (verdict, known bool) {
	gen, ok := m.current(ni)
	if !ok {
		return false, false
	}
	v := m.verdict[ni.Index]
	if v>>1 != gen {
		return false, false
	}
	return v&1 == 1, true
}

// Put records the verdict for the node.
func (m *NodeMemo) Put(ni *NodeInfo, verdict bool) {
	gen, ok := m.current(ni)
	if !ok {
		return
	}
	v := gen << 1
	if verdict {
		v |= 1
	}
	m.verdict[ni.Index] = v
}

// touchSlot records that slot i now holds ni with labels that may differ
// from what memos saw: verdicts computed before are void.
func (s *Snapshot) touchSlot(i int, ni *NodeInfo) {
	for i >= len(s.labelGen) { // slots are added one at a time
		s.labelGen = append(s.labelGen, 0)
		s.bySlot = append(s.bySlot, nil)
	}
	s.labelGen[i]++
	if s.labelGen[i] >= 1<<31 {
		// Generations are stored shifted by one bit: wrap around, and
		// forget every verdict, which may name the wrapped value.
		s.labelGen[i] = 1
		clear(s.nodeMemos)
	}
	s.bySlot[i] = ni
}
