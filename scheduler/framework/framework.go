package framework

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PluginSpec enables one plugin in a profile.
type PluginSpec struct {
	// Name is the plugin's registry name.
	Name string
	// Weight multiplies the plugin's normalized score (default 1).
	Weight int64
}

// Framework runs the enabled plugins of one scheduler profile at each
// extension point. One goroutine runs the scheduling cycles; Filter and
// Score plugins may run on several goroutines.
type Framework struct {
	preFilter  []PreFilterPlugin
	filter     []FilterPlugin
	postFilter []PostFilterPlugin
	preScore   []PreScorePlugin
	score      []ScorePlugin
	weights    []int64
	reserve    []ReservePlugin
	permit     []PermitPlugin
	bind       []BindPlugin
	plugins    []Plugin
	events     map[string][]ClusterEvent
	hints      map[string][]ClusterEventWithHint
	extenders  []Extender
	ignored    map[v1.ResourceName]struct{}

	snapshot *Snapshot
	cluster  Cluster

	mu      sync.Mutex
	waiting map[types.UID]*waitingPod

	scratch [][]int64
}

// New builds a framework: each spec'd plugin is made by its factory from
// registry and wired to every extension point it implements, in spec order.
func New(ctx context.Context, registry Registry, specs []PluginSpec, cluster Cluster) (*Framework, error) {
	f := &Framework{cluster: cluster, waiting: map[types.UID]*waitingPod{}, events: map[string][]ClusterEvent{}, hints: map[string][]ClusterEventWithHint{}, snapshot: NewSnapshot()}
	seen := map[string]bool{}
	for _, spec := range specs {
		if seen[spec.Name] {
			return nil, fmt.Errorf("framework: plugin %q enabled twice", spec.Name)
		}
		seen[spec.Name] = true
		factory, ok := registry[spec.Name]
		if !ok {
			return nil, fmt.Errorf("framework: plugin %q is not registered", spec.Name)
		}
		p, err := factory(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("framework: plugin %q: %w", spec.Name, err)
		}
		if p.Name() != spec.Name {
			return nil, fmt.Errorf("framework: plugin registered as %q names itself %q", spec.Name, p.Name())
		}
		f.plugins = append(f.plugins, p)
		if x, ok := p.(PreFilterPlugin); ok {
			f.preFilter = append(f.preFilter, x)
		}
		if x, ok := p.(FilterPlugin); ok {
			f.filter = append(f.filter, x)
		}
		if x, ok := p.(PostFilterPlugin); ok {
			f.postFilter = append(f.postFilter, x)
		}
		if x, ok := p.(PreScorePlugin); ok {
			f.preScore = append(f.preScore, x)
		}
		if x, ok := p.(ScorePlugin); ok {
			w := spec.Weight
			if w == 0 {
				w = 1
			}
			if w < 0 {
				return nil, fmt.Errorf("framework: plugin %q: negative weight %d", spec.Name, w)
			}
			f.score = append(f.score, x)
			f.weights = append(f.weights, w)
		}
		if x, ok := p.(ReservePlugin); ok {
			f.reserve = append(f.reserve, x)
		}
		if x, ok := p.(PermitPlugin); ok {
			f.permit = append(f.permit, x)
		}
		if x, ok := p.(BindPlugin); ok {
			f.bind = append(f.bind, x)
		}
		hints := registeredEvents(p)
		f.hints[p.Name()] = hints
		evs := make([]ClusterEvent, len(hints))
		for i, h := range hints {
			evs[i] = h.Event
		}
		f.events[p.Name()] = evs
	}
	if len(f.bind) == 0 {
		return nil, fmt.Errorf("framework: no bind plugin enabled")
	}
	f.scratch = make([][]int64, len(f.score))
	return f, nil
}

// Plugins returns the enabled plugins in order.
func (f *Framework) Plugins() []Plugin { return f.plugins }

// Snapshot implements Handle.
func (f *Framework) Snapshot() *Snapshot { return f.snapshot }

// SetSnapshot installs the snapshot of the next cycle.
func (f *Framework) SetSnapshot(s *Snapshot) { f.snapshot = s }

// Cluster implements Handle.
func (f *Framework) Cluster() Cluster { return f.cluster }

// HasFilterPlugins reports whether any Filter plugin is enabled.
func (f *Framework) HasFilterPlugins() bool { return len(f.filter) > 0 }

// HasScorePlugins reports whether any Score plugin is enabled.
func (f *Framework) HasScorePlugins() bool { return len(f.score) > 0 }

// HasPostFilterPlugins reports whether any PostFilter plugin is enabled.
func (f *Framework) HasPostFilterPlugins() bool { return len(f.postFilter) > 0 }

// Interested reports whether a pod rejected by the named plugins may fit
// after ev. An empty set of plugins (pod failed for another reason) is
// always interested.
func (f *Framework) Interested(plugins map[string]struct{}, ev ClusterEvent) bool {
	if len(plugins) == 0 {
		return true
	}
	for name := range plugins {
		evs, ok := f.events[name]
		if !ok {
			return true
		}
		for _, r := range evs {
			if r.Match(ev) {
				return true
			}
		}
	}
	return false
}

// RunPreFilterPlugins runs PreFilter; the first rejection is returned
// naming its plugin. Results narrowing the nodes are intersected. It also
// fixes the list of Filter plugins that run in this cycle.
func (f *Framework) RunPreFilterPlugins(ctx context.Context, state *CycleState, pod *PodInfo) (*PreFilterResult, *Status) {
	defer f.setActiveFilters(state)
	var result *PreFilterResult
	for _, p := range f.preFilter {
		r, st := p.PreFilter(ctx, state, pod)
		if st.IsSkip() {
			if state.SkipFilterPlugins == nil {
				state.SkipFilterPlugins = map[string]struct{}{}
			}
			state.SkipFilterPlugins[p.Name()] = struct{}{}
			continue
		}
		if !st.IsSuccess() {
			return nil, st.WithPlugin(p.Name())
		}
		if r != nil && r.NodeNames != nil {
			if result == nil {
				result = &PreFilterResult{NodeNames: r.NodeNames}
			} else {
				both := map[string]struct{}{}
				for n := range result.NodeNames {
					if _, ok := r.NodeNames[n]; ok {
						both[n] = struct{}{}
					}
				}
				result.NodeNames = both
			}
			if len(result.NodeNames) == 0 {
				return result, NewStatus(UnschedulableAndUnresolvable, "node(s) didn't satisfy plugin(s) "+p.Name()).WithPlugin(p.Name())
			}
		}
	}
	return result, nil
}

// RunPreFilterExtensionAddPod implements Handle.
func (f *Framework) RunPreFilterExtensionAddPod(ctx context.Context, state *CycleState, pod, podToAdd *PodInfo, node *NodeInfo) *Status {
	for _, p := range f.preFilter {
		if _, skip := state.SkipFilterPlugins[p.Name()]; skip {
			continue
		}
		if ext := p.PreFilterExtensions(); ext != nil {
			if st := ext.AddPod(ctx, state, pod, podToAdd, node); !st.IsSuccess() {
				return st.WithPlugin(p.Name())
			}
		}
	}
	return nil
}

// RunPreFilterExtensionRemovePod implements Handle.
func (f *Framework) RunPreFilterExtensionRemovePod(ctx context.Context, state *CycleState, pod, podToRemove *PodInfo, node *NodeInfo) *Status {
	for _, p := range f.preFilter {
		if _, skip := state.SkipFilterPlugins[p.Name()]; skip {
			continue
		}
		if ext := p.PreFilterExtensions(); ext != nil {
			if st := ext.RemovePod(ctx, state, pod, podToRemove, node); !st.IsSuccess() {
				return st.WithPlugin(p.Name())
			}
		}
	}
	return nil
}

// RunFilterPlugins implements Handle. The returned status of a rejection
// is the plugin's own (shared) status; FilterPluginName tells which plugin.
func (f *Framework) RunFilterPlugins(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) *Status {
	st, _ := f.RunFilter(ctx, state, pod, node)
	return st
}

func (f *Framework) setActiveFilters(state *CycleState) {
	state.filters = state.filters[:0]
	for _, p := range f.filter {
		if _, skip := state.SkipFilterPlugins[p.Name()]; !skip {
			state.filters = append(state.filters, p)
		}
	}
	state.nominated = nil
	if f.cluster != nil {
		state.nominated = f.cluster.NominatedPodsByNode()
	}
}

// RunFilter runs the filters on one node and returns the first rejection
// with the name of the plugin that made it. It does not allocate.
func (f *Framework) RunFilter(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) (*Status, string) {
	filters := state.filters
	if filters == nil {
		f.setActiveFilters(state)
		filters = state.filters
	}
	for _, p := range filters {
		if st := p.Filter(ctx, state, pod, node); !st.IsSuccess() {
			return st, p.Name()
		}
	}
	return nil, ""
}

// RunFilterPluginsWithNominatedPods implements Handle: when pods of at
// least the pod's priority are nominated to the node, the filters must pass
// both with them added and without them, as upstream.
func (f *Framework) RunFilterPluginsWithNominatedPods(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) *Status {
	st, _ := f.RunFilterWithNominatedPods(ctx, state, pod, node)
	return st
}

// RunFilterWithNominatedPods is RunFilterPluginsWithNominatedPods that also
// names the rejecting plugin.
func (f *Framework) RunFilterWithNominatedPods(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) (*Status, string) {
	if state.nominated != nil {
		if nominated := state.nominated[node.Name()]; len(nominated) > 0 {
			var add []*PodInfo
			for _, np := range nominated {
				if np.Pod.UID != pod.Pod.UID && np.Priority >= pod.Priority {
					add = append(add, np)
				}
			}
			if len(add) > 0 {
				s2 := state.Clone()
				n2 := node.Clone()
				for _, np := range add {
					n2.AddPodInfo(np)
					if st := f.RunPreFilterExtensionAddPod(ctx, s2, pod, np, n2); !st.IsSuccess() {
						return st, st.Plugin()
					}
				}
				if st, name := f.RunFilter(ctx, s2, pod, n2); !st.IsSuccess() {
					return st, name
				}
			}
		}
	}
	return f.RunFilter(ctx, state, pod, node)
}

// RunPostFilterPlugins runs PostFilter until one succeeds.
func (f *Framework) RunPostFilterPlugins(ctx context.Context, state *CycleState, pod *PodInfo, filtered NodeToStatus) (*PostFilterResult, *Status) {
	var last *Status = NewStatus(Unschedulable, "no postfilter plugin")
	for _, p := range f.postFilter {
		r, st := p.PostFilter(ctx, state, pod, filtered)
		if st.IsSuccess() {
			return r, nil
		}
		if st.Code() == Error {
			return nil, st.WithPlugin(p.Name())
		}
		last = st.WithPlugin(p.Name())
	}
	return nil, last
}

// RunPreScorePlugins runs PreScore.
func (f *Framework) RunPreScorePlugins(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo) *Status {
	for _, p := range f.preScore {
		st := p.PreScore(ctx, state, pod, nodes)
		if st.IsSkip() {
			if state.SkipScorePlugins == nil {
				state.SkipScorePlugins = map[string]struct{}{}
			}
			state.SkipScorePlugins[p.Name()] = struct{}{}
			continue
		}
		if !st.IsSuccess() {
			return st.WithPlugin(p.Name())
		}
	}
	return nil
}

// RunScorePlugins scores nodes and adds the weighted, normalized scores of
// every plugin into totals (len(totals) == len(nodes)).
func (f *Framework) RunScorePlugins(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo, totals []int64) *Status {
	clear(totals)
	for i, p := range f.score {
		if _, skip := state.SkipScorePlugins[p.Name()]; skip {
			continue
		}
		buf := f.scratch[i]
		if cap(buf) < len(nodes) {
			buf = make([]int64, len(nodes))
			f.scratch[i] = buf
		}
		buf = buf[:len(nodes)]
		for j, n := range nodes {
			s, st := p.Score(ctx, state, pod, n)
			if !st.IsSuccess() {
				return st.WithPlugin(p.Name())
			}
			buf[j] = s
		}
		if ext := p.ScoreExtensions(); ext != nil {
			if st := ext.NormalizeScore(ctx, state, pod, nodes, buf); !st.IsSuccess() {
				return st.WithPlugin(p.Name())
			}
		}
		w := f.weights[i]
		for j, s := range buf {
			if s < MinNodeScore || s > MaxNodeScore {
				return NewStatus(Error, fmt.Sprintf("plugin %q returned score %d outside [%d, %d]", p.Name(), s, MinNodeScore, MaxNodeScore)).WithPlugin(p.Name())
			}
			totals[j] += s * w
		}
	}
	return nil
}

// RunReservePluginsReserve runs Reserve; on failure the caller must run
// RunReservePluginsUnreserve.
func (f *Framework) RunReservePluginsReserve(ctx context.Context, state *CycleState, pod *PodInfo, node string) *Status {
	for _, p := range f.reserve {
		if st := p.Reserve(ctx, state, pod, node); !st.IsSuccess() {
			return st.WithPlugin(p.Name())
		}
	}
	return nil
}

// RunReservePluginsUnreserve runs Unreserve in reverse order.
func (f *Framework) RunReservePluginsUnreserve(ctx context.Context, state *CycleState, pod *PodInfo, node string) {
	for i := len(f.reserve) - 1; i >= 0; i-- {
		f.reserve[i].Unreserve(ctx, state, pod, node)
	}
}

// RunPermitPlugins runs Permit. When a plugin asks to wait, the pod is
// registered as waiting and Wait is returned; WaitOnPermit then blocks.
func (f *Framework) RunPermitPlugins(ctx context.Context, state *CycleState, pod *PodInfo, node string) *Status {
	var waitFor map[string]time.Duration
	for _, p := range f.permit {
		st, timeout := p.Permit(ctx, state, pod, node)
		switch {
		case st.IsSuccess():
		case st.Code() == Wait:
			if waitFor == nil {
				waitFor = map[string]time.Duration{}
			}
			waitFor[p.Name()] = min(timeout, 15*time.Minute)
		default:
			return st.WithPlugin(p.Name())
		}
	}
	if len(waitFor) == 0 {
		return nil
	}
	wp := newWaitingPod(pod.Pod, waitFor)
	f.mu.Lock()
	f.waiting[pod.Pod.UID] = wp
	f.mu.Unlock()
	return NewStatus(Wait, "waiting on permit")
}

// WaitOnPermit blocks until a waiting pod is allowed, rejected or timed out.
func (f *Framework) WaitOnPermit(ctx context.Context, pod *v1.Pod) *Status {
	f.mu.Lock()
	wp := f.waiting[pod.UID]
	f.mu.Unlock()
	if wp == nil {
		return nil
	}
	defer func() {
		f.mu.Lock()
		delete(f.waiting, pod.UID)
		f.mu.Unlock()
		wp.stop()
	}()
	select {
	case st := <-wp.done:
		return st
	case <-ctx.Done():
		return AsStatus(ctx.Err())
	}
}

// GetWaitingPod implements Handle.
func (f *Framework) GetWaitingPod(uid types.UID) WaitingPod {
	f.mu.Lock()
	defer f.mu.Unlock()
	if wp := f.waiting[uid]; wp != nil {
		return wp
	}
	return nil
}

// RejectWaitingPod rejects a waiting pod (for example when it is deleted).
func (f *Framework) RejectWaitingPod(uid types.UID, msg string) bool {
	f.mu.Lock()
	wp := f.waiting[uid]
	f.mu.Unlock()
	if wp == nil {
		return false
	}
	wp.Reject("", msg)
	return true
}

// RunBindPlugins runs Bind plugins until one does not Skip.
func (f *Framework) RunBindPlugins(ctx context.Context, state *CycleState, pod *PodInfo, node string) *Status {
	for _, p := range f.bind {
		st := p.Bind(ctx, state, pod, node)
		if st.IsSkip() {
			continue
		}
		if !st.IsSuccess() {
			return st.WithPlugin(p.Name())
		}
		return nil
	}
	return NewStatus(Error, "all bind plugins skipped")
}

type waitingPod struct {
	pod     *v1.Pod
	mu      sync.Mutex
	pending map[string]*time.Timer
	done    chan *Status
	closed  bool
}

func newWaitingPod(pod *v1.Pod, waitFor map[string]time.Duration) *waitingPod {
	wp := &waitingPod{pod: pod, pending: map[string]*time.Timer{}, done: make(chan *Status, 1)}
	wp.mu.Lock()
	defer wp.mu.Unlock()
	for name, d := range waitFor {
		wp.pending[name] = time.AfterFunc(d, func() {
			wp.Reject(name, "rejected due to timeout after waiting "+d.String()+" at plugin "+name)
		})
	}
	return wp
}

func (w *waitingPod) Pod() *v1.Pod { return w.pod }

func (w *waitingPod) Allow(plugin string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t, ok := w.pending[plugin]; ok {
		t.Stop()
		delete(w.pending, plugin)
	}
	if len(w.pending) == 0 && !w.closed {
		w.closed = true
		w.done <- nil
	}
}

func (w *waitingPod) Reject(plugin, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	w.done <- NewStatus(Unschedulable, msg).WithPlugin(plugin)
}

func (w *waitingPod) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range w.pending {
		t.Stop()
	}
	w.closed = true
}

// PluginNames returns the names of the enabled plugins.
func (f *Framework) PluginNames() []string {
	out := make([]string, 0, len(f.plugins))
	for _, p := range f.plugins {
		out = append(out, p.Name())
	}
	return slices.Clip(out)
}
