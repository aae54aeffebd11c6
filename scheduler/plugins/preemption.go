package plugins

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// Candidate sampling, as upstream: at least 10% of the nodes and at least
// 100 nodes are examined for victims.
const (
	minCandidateNodesPercentage = 10
	minCandidateNodesAbsolute   = 100
)

// DefaultPreemption is the PostFilter that makes room for a pod by evicting
// lower-priority pods: on each candidate node it removes every
// lower-priority pod, checks that the pod then fits, and gives back as many
// victims as possible (highest priority first, pods protected by a
// PodDisruptionBudget before the others). It picks the node with the fewest
// budget violations, then the lowest highest victim priority, the smallest
// sum of priorities and the fewest victims; deletes the victims and
// nominates the node (status.nominatedNodeName).
type DefaultPreemption struct {
	h   framework.Handle
	rng *rand.Rand
}

func newDefaultPreemption(_ context.Context, h framework.Handle) (framework.Plugin, error) {
	return &DefaultPreemption{h: h, rng: rand.New(rand.NewPCG(1, 2))}, nil
}

// Name implements framework.Plugin.
func (*DefaultPreemption) Name() string { return DefaultPreemptionName }

type candidate struct {
	node          string
	victims       []*framework.PodInfo
	pdbViolations int
}

// PostFilter implements framework.PostFilterPlugin.
func (pl *DefaultPreemption) PostFilter(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, filtered framework.NodeToStatus) (*framework.PostFilterResult, *framework.Status) {
	if pod.Pod.Spec.PreemptionPolicy != nil && *pod.Pod.Spec.PreemptionPolicy == v1.PreemptNever {
		return nil, framework.NewStatus(framework.Unschedulable, "not eligible due to preemptionPolicy=Never.")
	}
	snap := pl.h.Snapshot()
	if nom := pod.Pod.Status.NominatedNodeName; nom != "" {
		// Victims of an earlier preemption are still terminating: wait.
		if ni := snap.Get(nom); ni != nil {
			if st := filtered[nom]; st == nil || st.Code() != framework.UnschedulableAndUnresolvable {
				for _, p := range ni.Pods {
					if p.Pod.DeletionTimestamp != nil && p.Priority < pod.Priority {
						return nil, framework.NewStatus(framework.Unschedulable, "not eligible due to a terminating pod on the nominated node.")
					}
				}
			}
		}
	}
	var potential []*framework.NodeInfo
	for _, ni := range snap.List() {
		st, ok := filtered[ni.Name()]
		if ok && st.Code() == framework.UnschedulableAndUnresolvable {
			continue
		}
		potential = append(potential, ni)
	}
	unhelpful := snap.NumNodes() - len(potential)
	if len(potential) == 0 {
		return nil, framework.NewStatus(framework.Unschedulable, preemptionMessage(snap.NumNodes(), unhelpful, 0))
	}
	want := max(len(potential)*minCandidateNodesPercentage/100, minCandidateNodesAbsolute)
	want = min(want, len(potential))
	pdbs := pl.pdbs()
	offset := pl.rng.IntN(len(potential))
	var cands []candidate
	for i := 0; i < len(potential) && len(cands) < want; i++ {
		if err := ctx.Err(); err != nil {
			return nil, framework.AsStatus(err)
		}
		ni := potential[(offset+i)%len(potential)]
		if c, ok := pl.selectVictims(ctx, state, pod, ni, pdbs); ok {
			cands = append(cands, c)
		}
	}
	if len(cands) > 0 {
		var st *framework.Status
		if cands, st = pl.callExtenders(ctx, pod.Pod, cands); st != nil {
			return nil, st
		}
	}
	if len(cands) == 0 {
		return nil, framework.NewStatus(framework.Unschedulable, preemptionMessage(snap.NumNodes(), unhelpful, snap.NumNodes()-unhelpful))
	}
	best := pickCandidate(cands)
	for _, v := range best.victims {
		if err := pl.h.Cluster().DeletePod(ctx, v.Pod, pod.Pod); err != nil {
			return nil, framework.AsStatus(fmt.Errorf("preempting %s/%s: %w", v.Pod.Namespace, v.Pod.Name, err))
		}
	}
	// Lower-priority pods nominated to the node lose their nomination.
	for _, np := range pl.h.Cluster().NominatedPods(best.node) {
		if np.Priority < pod.Priority && np.Pod.UID != pod.Pod.UID {
			pl.h.Cluster().ClearNomination(ctx, np.Pod)
		}
	}
	return &framework.PostFilterResult{NominatedNodeName: best.node}, nil
}

type pdbInfo struct {
	pdb      *policyv1.PodDisruptionBudget
	selector labels.Selector
	allowed  int32
}

func (pl *DefaultPreemption) pdbs() []pdbInfo {
	if pl.h.Cluster() == nil {
		return nil
	}
	var out []pdbInfo
	for _, p := range pl.h.Cluster().PodDisruptionBudgets("") {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || p.Spec.Selector == nil {
			continue
		}
		out = append(out, pdbInfo{pdb: p, selector: sel, allowed: p.Status.DisruptionsAllowed})
	}
	return out
}

// splitByPDB separates victims whose eviction would violate a budget.
func splitByPDB(victims []*framework.PodInfo, pdbs []pdbInfo) (violating, fine []*framework.PodInfo) {
	allowed := make([]int32, len(pdbs))
	for i := range pdbs {
		allowed[i] = pdbs[i].allowed
	}
	for _, v := range victims {
		violates := false
		for i := range pdbs {
			p := &pdbs[i]
			if p.pdb.Namespace != v.Pod.Namespace || !p.selector.Matches(labels.Set(v.Pod.Labels)) {
				continue
			}
			if _, disrupted := p.pdb.Status.DisruptedPods[v.Pod.Name]; disrupted {
				continue
			}
			allowed[i]--
			if allowed[i] < 0 {
				violates = true
			}
		}
		if violates {
			violating = append(violating, v)
		} else {
			fine = append(fine, v)
		}
	}
	return violating, fine
}

func (pl *DefaultPreemption) selectVictims(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo, pdbs []pdbInfo) (candidate, bool) {
	node := ni.Clone()
	st := state.Clone()
	var potential []*framework.PodInfo
	for _, p := range ni.Pods {
		if p.Priority < pod.Priority {
			potential = append(potential, p)
			if err := node.RemovePod(p.Pod); err != nil {
				return candidate{}, false
			}
			if s := pl.h.RunPreFilterExtensionRemovePod(ctx, st, pod, p, node); !s.IsSuccess() {
				return candidate{}, false
			}
		}
	}
	if len(potential) == 0 {
		return candidate{}, false
	}
	if s := pl.h.RunFilterPluginsWithNominatedPods(ctx, st, pod, node); !s.IsSuccess() {
		return candidate{}, false
	}
	// Most important first: higher priority, then older.
	sort.SliceStable(potential, func(i, j int) bool {
		a, b := potential[i], potential[j]
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return startTime(a.Pod).Before(startTime(b.Pod))
	})
	violating, fine := splitByPDB(potential, pdbs)
	c := candidate{node: ni.Name()}
	reprieve := func(p *framework.PodInfo) bool {
		node.AddPodInfo(p)
		if s := pl.h.RunPreFilterExtensionAddPod(ctx, st, pod, p, node); !s.IsSuccess() {
			return false
		}
		if s := pl.h.RunFilterPluginsWithNominatedPods(ctx, st, pod, node); s.IsSuccess() {
			return true
		}
		_ = node.RemovePod(p.Pod)
		pl.h.RunPreFilterExtensionRemovePod(ctx, st, pod, p, node)
		return false
	}
	for _, p := range violating {
		if !reprieve(p) {
			c.victims = append(c.victims, p)
			c.pdbViolations++
		}
	}
	for _, p := range fine {
		if !reprieve(p) {
			c.victims = append(c.victims, p)
		}
	}
	return c, len(c.victims) > 0
}

func startTime(p *v1.Pod) time.Time {
	if p.Status.StartTime != nil {
		return p.Status.StartTime.Time
	}
	return p.CreationTimestamp.Time
}

func pickCandidate(cands []candidate) candidate {
	better := func(a, b *candidate) bool {
		if a.pdbViolations != b.pdbViolations {
			return a.pdbViolations < b.pdbViolations
		}
		ha, hb := highest(a.victims), highest(b.victims)
		if ha != hb {
			return ha < hb
		}
		var sa, sb int64
		for _, v := range a.victims {
			sa += int64(v.Priority) + (1 << 31)
		}
		for _, v := range b.victims {
			sb += int64(v.Priority) + (1 << 31)
		}
		if sa != sb {
			return sa < sb
		}
		return len(a.victims) < len(b.victims)
	}
	best := 0
	for i := 1; i < len(cands); i++ {
		if better(&cands[i], &cands[best]) {
			best = i
		}
	}
	return cands[best]
}

// EventsToRegister implements framework.EnqueueExtensions.
func (*DefaultPreemption) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{{Resource: framework.AssignedPodResource, ActionType: framework.Delete}}
}

func highest(victims []*framework.PodInfo) int32 {
	h := victims[0].Priority
	for _, v := range victims[1:] {
		h = max(h, v.Priority)
	}
	return h
}

// preemptionMessage formats why preemption failed as upstream does, e.g.
// "0/5 nodes are available: 2 No preemption victims found for incoming
// pod, 3 Preemption is not helpful for scheduling."
func preemptionMessage(total, unhelpful, noVictims int) string {
	var parts []string
	if noVictims > 0 {
		parts = append(parts, fmt.Sprintf("%d No preemption victims found for incoming pod", noVictims))
	}
	if unhelpful > 0 {
		parts = append(parts, fmt.Sprintf("%d Preemption is not helpful for scheduling", unhelpful))
	}
	return fmt.Sprintf("0/%d nodes are available: %s.", total, strings.Join(parts, ", "))
}

// extenderHandle is implemented by handles (the framework) that carry
// scheduler extenders.
type extenderHandle interface {
	Extenders() []framework.Extender
}

// callExtenders lets each interested extender that supports preemption
// keep, drop or change the candidates' victims, as upstream.
func (pl *DefaultPreemption) callExtenders(ctx context.Context, pod *v1.Pod, cands []candidate) ([]candidate, *framework.Status) {
	x, ok := pl.h.(extenderHandle)
	if !ok {
		return cands, nil
	}
	snap := pl.h.Snapshot()
	for _, e := range x.Extenders() {
		if len(cands) == 0 {
			break
		}
		if !e.SupportsPreemption() || !e.IsInterested(pod) {
			continue
		}
		in := make(map[string]*framework.Victims, len(cands))
		for _, c := range cands {
			v := &framework.Victims{NumPDBViolations: int64(c.pdbViolations)}
			for _, p := range c.victims {
				v.Pods = append(v.Pods, p.Pod)
			}
			in[c.node] = v
		}
		out, err := e.ProcessPreemption(ctx, pod, in, snap)
		if err != nil {
			if e.IsIgnorable() {
				continue
			}
			return nil, framework.AsStatus(fmt.Errorf("preemption: %w", err))
		}
		kept := cands[:0:0]
		for _, c := range cands {
			v, ok := out[c.node]
			if !ok || v == nil || len(v.Pods) == 0 {
				continue
			}
			ni := snap.Get(c.node)
			if ni == nil {
				continue
			}
			nc := candidate{node: c.node, pdbViolations: int(v.NumPDBViolations)}
			for _, vp := range v.Pods {
				for _, p := range ni.Pods {
					if p.Pod.UID == vp.UID {
						nc.victims = append(nc.victims, p)
						break
					}
				}
			}
			if len(nc.victims) > 0 {
				kept = append(kept, nc)
			}
		}
		cands = kept
	}
	return cands, nil
}
