// Package scheduler places pending pods on nodes, as kube-scheduler does,
// through the state interface of package store.
//
// A [Scheduler] watches nodes, pods, namespaces, PriorityClasses,
// PodDisruptionBudgets and the workloads that select pods (Services,
// ReplicaSets, StatefulSets, ReplicationControllers) through
// [store.Interface]. Pending pods whose spec.schedulerName names it (by
// default "default-scheduler") go into a scheduling queue
// (package scheduler/queue); nodes and the pods on them go into a cache
// (package scheduler/cache) that keeps an incremental snapshot with
// precomputed aggregates.
//
// One goroutine runs the scheduling cycles. Each cycle pops the pod with the
// highest priority (then the oldest), brings the snapshot up to date
// (copying only changed nodes), runs the PreFilter and Filter plugins over
// the nodes from a rotating start until percentageOfNodesToScore feasible
// nodes are found (adaptive as upstream: 50% minus 1% per 125 nodes, at least
// 5%, never fewer than 100 nodes), runs PreScore, Score and NormalizeScore,
// and picks the best node (ties broken at random). The pod is then assumed in
// the cache so the next cycle already sees it, Reserve and Permit plugins
// run, and a small pool of binders writes spec.nodeName through the store.
// A binding that fails is forgotten in the cache and the pod requeued.
//
// A pod that fits nowhere runs the PostFilter plugins (DefaultPreemption,
// which may evict lower-priority pods and set status.nominatedNodeName),
// gets the condition PodScheduled=False with reason Unschedulable and an
// upstream-style message such as
//
//	0/5 nodes are available: 2 node(s) had untolerated taint {key: value}, 3 Insufficient cpu.
//
// plus a FailedScheduling Event, and waits in the queue until a cluster event
// that could help (node added or changed, pod deleted, taint removed) moves
// it back, with backoff; nothing polls.
//
// The plugin framework (package scheduler/framework) has the extension
// points PreFilter, Filter, PostFilter, PreScore, Score, NormalizeScore,
// Reserve, Permit and Bind. The default plugins (package scheduler/plugins)
// follow upstream semantics: NodeUnschedulable, NodeName, NodePorts,
// NodeResourcesFit (LeastAllocated), NodeResourcesBalancedAllocation,
// NodeAffinity, TaintToleration, InterPodAffinity, PodTopologySpread (with
// the default spreading of pods of one Service or ReplicaSet), ImageLocality,
// DefaultPreemption and DefaultBinder. Register your own plugins in
// [Config.Registry] and enable them in [Config.Plugins]; see the example.
//
// Repeated FailedScheduling events for one pod and reason are aggregated
// into one Event with a count. A pod that was marked unschedulable gets
// PodScheduled=True once bound. Pods with scheduling gates wait, marked
// PodScheduled=False with reason SchedulingGated, until the gates are gone.
//
// Several schedulers with different names can run side by side on one
// store.
//
// Performance figures, with the commands that produce them, are in
// BENCHMARKS.md next to this file.
package scheduler
