package framework

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// MaxNodeScore and MinNodeScore bound the normalized score of one plugin.
const (
	MaxNodeScore int64 = 100
	MinNodeScore int64 = 0
)

// Plugin is the parent of all plugin interfaces.
type Plugin interface {
	// Name is the plugin's unique name.
	Name() string
}

// PreFilterResult narrows the nodes to evaluate. A nil NodeNames means all.
type PreFilterResult struct {
	NodeNames map[string]struct{}
}

// PreFilterPlugin runs once per scheduling cycle before filtering; it
// usually computes state that Filter reads. Returning Skip skips the
// plugin's Filter for this pod.
type PreFilterPlugin interface {
	Plugin
	PreFilter(ctx context.Context, state *CycleState, pod *PodInfo) (*PreFilterResult, *Status)
	// PreFilterExtensions returns the AddPod/RemovePod hooks used when the
	// scheduler evaluates "what if" pods were added to or removed from a
	// node (nominated pods, preemption), or nil.
	PreFilterExtensions() PreFilterExtensions
}

// PreFilterExtensions update PreFilter state incrementally.
type PreFilterExtensions interface {
	AddPod(ctx context.Context, state *CycleState, pod, podToAdd *PodInfo, node *NodeInfo) *Status
	RemovePod(ctx context.Context, state *CycleState, pod, podToRemove *PodInfo, node *NodeInfo) *Status
}

// FilterPlugin decides whether pod may run on node. It must not allocate
// on the success path: it runs for thousands of nodes per pod.
type FilterPlugin interface {
	Plugin
	Filter(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) *Status
}

// NodeToStatus maps node names to the status that rejected them.
type NodeToStatus map[string]*Status

// PostFilterResult is the outcome of PostFilter (preemption).
type PostFilterResult struct {
	// NominatedNodeName is where the pod is expected to fit once victims go.
	NominatedNodeName string
}

// PostFilterPlugin runs when no node fits; DefaultPreemption is one.
type PostFilterPlugin interface {
	Plugin
	PostFilter(ctx context.Context, state *CycleState, pod *PodInfo, filtered NodeToStatus) (*PostFilterResult, *Status)
}

// PreScorePlugin runs once before scoring with the feasible nodes.
// Returning Skip skips the plugin's Score.
type PreScorePlugin interface {
	Plugin
	PreScore(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo) *Status
}

// ScorePlugin ranks feasible nodes.
type ScorePlugin interface {
	Plugin
	Score(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) (int64, *Status)
	// ScoreExtensions returns the NormalizeScore hook, or nil.
	ScoreExtensions() ScoreExtensions
}

// ScoreExtensions normalizes the raw scores of a plugin into
// [MinNodeScore, MaxNodeScore]. scores[i] belongs to nodes[i].
type ScoreExtensions interface {
	NormalizeScore(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo, scores []int64) *Status
}

// ReservePlugin is told when a node is reserved for the pod (the pod is
// assumed in the cache) and when that reservation is undone.
type ReservePlugin interface {
	Plugin
	Reserve(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) *Status
	Unreserve(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string)
}

// PermitPlugin approves, rejects or holds (Wait, up to the returned
// timeout) a reserved pod before it is bound.
type PermitPlugin interface {
	Plugin
	Permit(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) (*Status, time.Duration)
}

// BindPlugin binds a pod to a node. Returning Skip passes to the next
// bind plugin.
type BindPlugin interface {
	Plugin
	Bind(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) *Status
}

// EnqueueExtensions is implemented by plugins that can reject pods; it names
// the cluster events after which a pod they rejected may now fit. Pods
// rejected by a plugin that does not implement it are retried on any event.
type EnqueueExtensions interface {
	EventsToRegister() []ClusterEvent
}

// EventResource is the kind of object an event is about.
type EventResource string

// The event resources.
const (
	NodeResource        EventResource = "Node"
	AssignedPodResource EventResource = "AssignedPod"
	PendingPodResource  EventResource = "PendingPod"
	NamespaceResource   EventResource = "Namespace"
	PDBResource         EventResource = "PodDisruptionBudget"
	WildCardResource    EventResource = "*"
)

// ActionType is a bit set of changes.
type ActionType int64

// The actions.
const (
	Add ActionType = 1 << iota
	Delete
	UpdateNodeAllocatable
	UpdateNodeLabel
	UpdateNodeTaint
	UpdateNodeCondition
	UpdatePodLabel
	UpdatePodScaleDown
	UpdateOther

	// Update is any update.
	Update = UpdateNodeAllocatable | UpdateNodeLabel | UpdateNodeTaint | UpdateNodeCondition | UpdatePodLabel | UpdatePodScaleDown | UpdateOther
	// All is every action.
	All = Add | Delete | Update
)

// ClusterEvent is a change in the cluster that may make pods schedulable.
type ClusterEvent struct {
	Resource   EventResource
	ActionType ActionType
	// Label names the event in logs and metrics.
	Label string
}

// Match reports whether the registered event ev covers the event got.
func (ev ClusterEvent) Match(got ClusterEvent) bool {
	return (ev.Resource == WildCardResource || ev.Resource == got.Resource) && ev.ActionType&got.ActionType != 0
}

// WaitingPod is a pod held by a Permit plugin.
type WaitingPod interface {
	// Pod returns the pod.
	Pod() *v1.Pod
	// Allow lets the pod proceed on behalf of the named plugin; the pod is
	// bound once every waiting plugin allowed it.
	Allow(plugin string)
	// Reject rejects the pod.
	Reject(plugin, msg string)
}

// Cluster is what plugins may ask of the cluster beyond the snapshot:
// namespace labels, disruption budgets and the writes preemption makes.
// The scheduler implements it over the store.
type Cluster interface {
	// NamespaceLabels returns the labels of a namespace (nil when unknown).
	NamespaceLabels(ns string) labels.Set
	// PodDisruptionBudgets lists the budgets in a namespace ("" for all).
	PodDisruptionBudgets(ns string) []*policyv1.PodDisruptionBudget
	// DeletePod deletes a preemption victim, recording why.
	DeletePod(ctx context.Context, victim, preemptor *v1.Pod) error
	// NominatedPods returns the pods nominated to a node.
	NominatedPods(node string) []*PodInfo
	// NominatedPodsByNode returns a copy of all nominations by node, nil
	// when there are none; the framework reads it once per cycle.
	NominatedPodsByNode() map[string][]*PodInfo
	// ClearNomination removes the nomination of a pod (preemption takes
	// nominations away from lower-priority pods).
	ClearNomination(ctx context.Context, pod *v1.Pod)
	// DefaultSpreadSelector returns the selector of the Services,
	// ReplicaSets, StatefulSets and ReplicationControllers that select pod,
	// or nil when none does (default topology spreading).
	DefaultSpreadSelector(pod *v1.Pod) labels.Selector
	// Bind writes the binding of pod to node.
	Bind(ctx context.Context, pod *v1.Pod, node string) error
}

// Handle gives plugins access to the framework and the cluster.
type Handle interface {
	// Snapshot is the cluster view of the current scheduling cycle.
	Snapshot() *Snapshot
	// Cluster reaches the cluster beyond the snapshot.
	Cluster() Cluster
	// GetWaitingPod returns a pod held by Permit, or nil.
	GetWaitingPod(uid types.UID) WaitingPod
	// RunPreFilterExtensionAddPod calls every AddPod hook.
	RunPreFilterExtensionAddPod(ctx context.Context, state *CycleState, pod, podToAdd *PodInfo, node *NodeInfo) *Status
	// RunPreFilterExtensionRemovePod calls every RemovePod hook.
	RunPreFilterExtensionRemovePod(ctx context.Context, state *CycleState, pod, podToRemove *PodInfo, node *NodeInfo) *Status
	// RunFilterPlugins runs the filters on one node.
	RunFilterPlugins(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) *Status
	// RunFilterPluginsWithNominatedPods runs the filters on one node as if
	// the pods nominated there with at least the pod's priority were placed.
	RunFilterPluginsWithNominatedPods(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) *Status
}

// PluginFactory builds a plugin for a framework.
type PluginFactory func(ctx context.Context, h Handle) (Plugin, error)

// Registry maps plugin names to factories.
type Registry map[string]PluginFactory
