package plugins

import (
	"context"
	"sort"

	v1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// Fit is NodeResourcesFit: it rejects nodes whose allocatable cpu, memory,
// ephemeral-storage, pod count or extended resources cannot hold the pod's
// effective request next to the pods already there, and scores nodes with
// the LeastAllocated strategy (cpu and memory, weight 1 each).
type Fit struct{ h framework.Handle }

func newFit(_ context.Context, h framework.Handle) (framework.Plugin, error) { return Fit{h: h}, nil }

// ignoredResourcer is implemented by handles (the framework) that know
// extended resources managed by an extender and ignored by Fit.
type ignoredResourcer interface {
	IgnoredResources() map[v1.ResourceName]struct{}
}

// Name implements framework.Plugin.
func (Fit) Name() string { return NodeResourcesFitName }

// Reasons reported by Fit.
const (
	ReasonTooManyPods = "Too many pods"
)

const (
	bitPods = 1 << iota
	bitCPU
	bitMemory
	bitEphemeral
	bitUnresolvable
)

// fitStatuses are the statuses for every combination of the four builtin
// resources, built once so the filter never allocates.
type fitStatuses [32]*framework.Status

func newFitStatuses() *fitStatuses {
	var s fitStatuses
	for mask := 1; mask < 32; mask++ {
		if mask&^bitUnresolvable == 0 {
			continue
		}
		var reasons []string
		if mask&bitPods != 0 {
			reasons = append(reasons, ReasonTooManyPods)
		}
		if mask&bitCPU != 0 {
			reasons = append(reasons, "Insufficient cpu")
		}
		if mask&bitMemory != 0 {
			reasons = append(reasons, "Insufficient memory")
		}
		if mask&bitEphemeral != 0 {
			reasons = append(reasons, "Insufficient ephemeral-storage")
		}
		code := framework.Unschedulable
		if mask&bitUnresolvable != 0 {
			code = framework.UnschedulableAndUnresolvable
		}
		s[mask] = framework.NewStatus(code, reasons...)
	}
	return &s
}

type fitState struct {
	statuses *fitStatuses
	scalars  []v1.ResourceName
}

func (s *fitState) Clone() framework.StateData { return s }

const fitKey framework.StateKey = "PreFilter" + NodeResourcesFitName

// PreFilter implements framework.PreFilterPlugin.
func (pl Fit) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	if len(pod.Requests.Scalar) == 0 {
		state.Write(fitKey, &noScalars) // shared and immutable
		return nil, nil
	}
	s := &fitState{statuses: statusTable}
	var ignored map[v1.ResourceName]struct{}
	if x, ok := pl.h.(ignoredResourcer); ok {
		ignored = x.IgnoredResources()
	}
	for name, v := range pod.Requests.Scalar {
		if _, skip := ignored[name]; skip {
			continue
		}
		if v > 0 {
			s.scalars = append(s.scalars, name)
		}
	}
	sort.Slice(s.scalars, func(i, j int) bool { return s.scalars[i] < s.scalars[j] })
	state.Write(fitKey, s)
	return nil, nil
}

// statusTable and noScalars are immutable after package initialisation.
var (
	statusTable = newFitStatuses()
	noScalars   = fitState{statuses: statusTable}
)

// PreFilterExtensions implements framework.PreFilterPlugin.
func (Fit) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// Filter implements framework.FilterPlugin.
func (Fit) Filter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	if len(pod.Requests.Scalar) == 0 {
		// No extended resources: the state (which lists them) is not
		// needed, so the filter looks nothing up per node.
		return fitsRequest(&noScalars, pod, node)
	}
	s, _ := state.Read(fitKey).(*fitState)
	if s == nil {
		s = &fitState{statuses: statusTable}
	}
	return fitsRequest(s, pod, node)
}

// fitsRequest checks pod's requests against node.
func fitsRequest(s *fitState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	req := &pod.Requests
	alloc := &node.Allocatable
	used := &node.Requested
	mask := 0
	if int64(len(node.Pods))+1 > alloc.AllowedPodNumber {
		mask |= bitPods
	}
	if req.MilliCPU > 0 && req.MilliCPU > alloc.MilliCPU-used.MilliCPU {
		mask |= bitCPU
		if req.MilliCPU > alloc.MilliCPU {
			mask |= bitUnresolvable
		}
	}
	if req.Memory > 0 && req.Memory > alloc.Memory-used.Memory {
		mask |= bitMemory
		if req.Memory > alloc.Memory {
			mask |= bitUnresolvable
		}
	}
	if req.EphemeralStorage > 0 && req.EphemeralStorage > alloc.EphemeralStorage-used.EphemeralStorage {
		mask |= bitEphemeral
		if req.EphemeralStorage > alloc.EphemeralStorage {
			mask |= bitUnresolvable
		}
	}
	var scalarReasons []string
	unresolvable := false
	for _, name := range s.scalars {
		r := req.Scalar[name]
		if r > alloc.Scalar[name]-used.Scalar[name] {
			scalarReasons = append(scalarReasons, "Insufficient "+string(name))
			if r > alloc.Scalar[name] {
				unresolvable = true
			}
		}
	}
	if scalarReasons == nil {
		if mask == 0 {
			return nil
		}
		return s.statuses[mask]
	}
	var reasons []string
	if mask&^bitUnresolvable != 0 {
		reasons = append(reasons, s.statuses[mask].Reasons()...)
	}
	reasons = append(reasons, scalarReasons...)
	code := framework.Unschedulable
	if unresolvable || mask&bitUnresolvable != 0 {
		code = framework.UnschedulableAndUnresolvable
	}
	return framework.NewStatus(code, reasons...)
}

// Score implements framework.ScorePlugin (LeastAllocated over cpu and
// memory, using the non-zero requests as upstream).
func (Fit) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	cpu := leastAllocated(node.NonZeroRequested.MilliCPU+pod.NonZeroCPU, node.Allocatable.MilliCPU)
	mem := leastAllocated(node.NonZeroRequested.Memory+pod.NonZeroMem, node.Allocatable.Memory)
	return (cpu + mem) / 2, nil
}

func leastAllocated(requested, capacity int64) int64 {
	if capacity == 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * framework.MaxNodeScore / capacity
}

// ScoreExtensions implements framework.ScorePlugin.
func (Fit) ScoreExtensions() framework.ScoreExtensions { return nil }

// EventsToRegister implements framework.EnqueueExtensions.
func (Fit) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.AssignedPodResource, ActionType: framework.Delete | framework.UpdatePodScaleDown},
		{Resource: framework.NodeResource, ActionType: framework.Add | framework.UpdateNodeAllocatable},
	}
}

// BalancedAllocation prefers nodes whose cpu and memory utilisation (with
// the pod) are close to each other.
type BalancedAllocation struct{}

func newBalancedAllocation(context.Context, framework.Handle) (framework.Plugin, error) {
	return BalancedAllocation{}, nil
}

// Name implements framework.Plugin.
func (BalancedAllocation) Name() string { return BalancedAllocationName }

// Score implements framework.ScorePlugin: (1 - std deviation of the
// fractions) * MaxNodeScore.
func (BalancedAllocation) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	cpuF := fraction(node.Requested.MilliCPU+pod.Requests.MilliCPU, node.Allocatable.MilliCPU)
	memF := fraction(node.Requested.Memory+pod.Requests.Memory, node.Allocatable.Memory)
	d := cpuF - memF
	if d < 0 {
		d = -d
	}
	std := d / 2
	return int64((1 - std) * float64(framework.MaxNodeScore)), nil
}

func fraction(req, alloc int64) float64 {
	if alloc == 0 {
		return 1
	}
	f := float64(req) / float64(alloc)
	if f > 1 {
		return 1
	}
	return f
}

// ScoreExtensions implements framework.ScorePlugin.
func (BalancedAllocation) ScoreExtensions() framework.ScoreExtensions { return nil }
