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
// it back, with backoff; nothing polls. Which events help is decided per
// pod and per object by the queueing hints of the plugins that rejected it
// ([framework.QueueingHintFn], as upstream): a pod that needs an ssd node
// is not woken by a new hdd node, a pod that needs a free host port not by
// the deletion of a pod that held another port.
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
// One scheduler can serve several profiles ([Config.Profiles]): each has
// its own schedulerName and its own plugins and weights, and all share one
// cache and one queue, as upstream. Pods naming no profile are left alone,
// so several schedulers can also run side by side on one store.
//
// HTTP scheduler extenders ([Config.Extenders], the JSON of
// k8s.io/kube-scheduler/extender/v1) filter and score the nodes the plugins
// found feasible, may bind the pods they are interested in and may veto or
// change preemption victims; managedResources, nodeCacheCapable, weight and
// ignorable work as upstream.
//
// "Scheduled" Events are written by their own goroutine, rate-limited as
// upstream's event broadcaster is by its client (50 per second, burst 100,
// a queue of 1000 beyond which they are dropped), so that a burst of
// bindings does not cost as many extra store writes; see
// [Config.ScheduledEventQPS].
//
// Performance figures, with the commands that produce them, are in
// BENCHMARKS.md next to this file.
package scheduler
