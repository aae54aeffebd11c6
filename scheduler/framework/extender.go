package framework

import (
	"context"

	v1 "k8s.io/api/core/v1"
)

// Victims are the pods preemption would evict on one node.
type Victims struct {
	// Pods are the victims.
	Pods []*v1.Pod
	// NumPDBViolations counts victims whose eviction violates a
	// PodDisruptionBudget.
	NumPDBViolations int64
}

// Extender is a scheduler extender, as upstream: an outside service that
// filters and scores the nodes the plugins found feasible, may bind pods,
// and may veto or change preemption victims. The scheduler's HTTP
// extender implements it.
type Extender interface {
	// Name identifies the extender in logs and messages.
	Name() string
	// IsInterested reports whether the extender cares about the pod (for
	// an extender with managed resources: whether the pod requests one).
	IsInterested(pod *v1.Pod) bool
	// IsIgnorable reports whether the extender's errors are ignored (the
	// scheduler then goes on as if it were not configured).
	IsIgnorable() bool

	// SupportsFilter reports whether Filter does anything.
	SupportsFilter() bool
	// Filter narrows the nodes: it returns the feasible ones and, by node
	// name, the reasons of the others (resolvable by preemption or not).
	Filter(ctx context.Context, pod *v1.Pod, nodes []*NodeInfo) (feasible []*NodeInfo, failed, failedAndUnresolvable map[string]string, err error)

	// SupportsPrioritize reports whether Prioritize does anything.
	SupportsPrioritize() bool
	// Prioritize scores the nodes, 0 to MaxExtenderPriority (10) per node
	// by name; the scheduler multiplies by Weight and by
	// MaxNodeScore/MaxExtenderPriority before adding to the plugins' total.
	Prioritize(ctx context.Context, pod *v1.Pod, nodes []*NodeInfo) (map[string]int64, error)
	// Weight is the multiplier of the extender's scores.
	Weight() int64

	// IsBinder reports whether the extender binds pods (instead of the
	// Bind plugins) that it is interested in.
	IsBinder() bool
	// Bind binds the pod to the node.
	Bind(ctx context.Context, pod *v1.Pod, node string) error

	// SupportsPreemption reports whether ProcessPreemption does anything.
	SupportsPreemption() bool
	// ProcessPreemption gets the candidate nodes with their victims and
	// returns the ones the extender accepts, possibly with other victims
	// (pods running on that node in snap).
	ProcessPreemption(ctx context.Context, pod *v1.Pod, candidates map[string]*Victims, snap *Snapshot) (map[string]*Victims, error)
}

// MaxExtenderPriority is the highest score an extender gives a node.
const MaxExtenderPriority int64 = 10

// SetExtenders installs the extenders that preemption consults.
func (f *Framework) SetExtenders(extenders []Extender) { f.extenders = extenders }

// Extenders returns the extenders installed with SetExtenders.
func (f *Framework) Extenders() []Extender { return f.extenders }

// SetIgnoredResources names extended resources that NodeResourcesFit does
// not check (managed by an extender with ignoredByScheduler).
func (f *Framework) SetIgnoredResources(names map[v1.ResourceName]struct{}) { f.ignored = names }

// IgnoredResources returns the resources set with SetIgnoredResources.
func (f *Framework) IgnoredResources() map[v1.ResourceName]struct{} { return f.ignored }
