package framework

// StateKey names one plugin's data in a CycleState.
type StateKey string

// StateData is plugin data kept for one scheduling cycle. Clone must
// return a copy that can change independently (preemption dry-runs clone
// the state per candidate node).
type StateData interface {
	Clone() StateData
}

type stateEntry struct {
	key  StateKey
	data StateData
}

// CycleState carries plugin data through one scheduling cycle.
//
// It is written only by the scheduling goroutine (PreFilter, PreScore,
// Reserve, Permit) and read by Filter and Score, which may run on several
// goroutines started after the writes; so reads take no lock. Plugins
// must not Write from Filter or Score.
type CycleState struct {
	entries []stateEntry
	// SkipFilterPlugins and SkipScorePlugins name plugins whose PreFilter
	// or PreScore returned Skip.
	SkipFilterPlugins map[string]struct{}
	SkipScorePlugins  map[string]struct{}

	filters   []FilterPlugin
	nominated map[string][]*PodInfo
}

// NewCycleState returns an empty state.
func NewCycleState() *CycleState {
	return &CycleState{entries: make([]stateEntry, 0, 8)}
}

// Read returns the data stored under key, or nil.
func (c *CycleState) Read(key StateKey) StateData {
	for i := range c.entries {
		if c.entries[i].key == key {
			return c.entries[i].data
		}
	}
	return nil
}

// Write stores data under key.
func (c *CycleState) Write(key StateKey, d StateData) {
	for i := range c.entries {
		if c.entries[i].key == key {
			c.entries[i].data = d
			return
		}
	}
	c.entries = append(c.entries, stateEntry{key, d})
}

// Delete removes key.
func (c *CycleState) Delete(key StateKey) {
	for i := range c.entries {
		if c.entries[i].key == key {
			c.entries = append(c.entries[:i], c.entries[i+1:]...)
			return
		}
	}
}

// Clone deep-copies the state.
func (c *CycleState) Clone() *CycleState {
	if c == nil {
		return nil
	}
	n := &CycleState{entries: make([]stateEntry, len(c.entries))}
	for i, e := range c.entries {
		n.entries[i] = stateEntry{e.key, e.data.Clone()}
	}
	n.SkipFilterPlugins = c.SkipFilterPlugins
	n.SkipScorePlugins = c.SkipScorePlugins
	n.filters = c.filters
	n.nominated = c.nominated
	return n
}
