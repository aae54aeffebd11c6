// Package framework is the scheduler's plugin framework: the plugin
// interfaces for each extension point (PreFilter, Filter, PostFilter,
// PreScore, Score with NormalizeScore, Reserve, Permit, Bind), the
// [Framework] that runs the enabled plugins of a profile in order with their
// score weights, the per-cycle [CycleState], and the data plugins read:
// [PodInfo] (a pod with its effective requests, priority and parsed
// affinity terms computed once), [NodeInfo] (a node with the pods on it and
// their summed requests and host ports) and [Snapshot].
//
// The Snapshot is updated incrementally by the cache between cycles and
// keeps aggregates across all nodes (image spread, the domains of existing
// pods' required anti-affinity terms, memoized per-domain counts of pods
// matching a selector) so that InterPodAffinity and PodTopologySpread do
// not walk every pod for every pod they place. Memoized counts also answer
// per node from a table ([MatchCounts.CountOn]), and [NodeMemo] keeps a
// per-node verdict that depends only on a node's labels (NodeAffinity's
// selector match) until the labels change, so the pods of one workload
// evaluate it once per node rather than once per pod and node.
//
// Filter and Score run for thousands of nodes per pod: they must not
// allocate on their success path, and plugins return shared, immutable
// [Status] values for their common rejections.
//
// Plugins that can reject pods name the cluster events after which such a
// pod may fit ([EnqueueExtensions]), optionally with a [QueueingHintFn]
// per event ([EnqueueExtensionsWithHint]) that looks at the changed object
// and the pod and says [Queue] or [QueueSkip]; [Framework.QueueingHint]
// combines them for the queue. [Extender] is an outside scheduler
// extender, consulted by the scheduler and by preemption.
package framework
