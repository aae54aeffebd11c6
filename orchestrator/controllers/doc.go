// Package controllers holds tugboat's reconcilers, built on package
// controller and reading and writing state only through [store.Interface]:
//
//   - [ReplicaSet]: exactly spec.replicas pods, adoption and release, the
//     upstream deletion ranking on scale-down.
//   - [Deployment]: one ReplicaSet per pod template (pod-template-hash),
//     RollingUpdate (maxSurge/maxUnavailable) and Recreate, rollover,
//     revisions, change-cause history, revisionHistoryLimit, rollback by
//     template (what kubectl rollout undo patches), pause/resume,
//     proportional scaling, progressDeadlineSeconds, kubectl-visible status.
//   - [StatefulSet], [DaemonSet], [Job] (with finished-Job TTL), [CronJob].
//   - [Endpoints] (Endpoints and EndpointSlices), [ServiceAllocation] with
//     [ServiceAllocator] (clusterIPs and nodePorts), [ServiceAccount].
//   - [NodeLifecycle] (heartbeats, unreachable taints, NoExecute eviction),
//     [Disruption] (PodDisruptionBudget status), [PersistentVolume]
//     (binding, local-path provisioning, reclaim), [HPA] (CPU utilization
//     from a [MetricsSource]).
//
// Namespace deletion, ownerReference garbage collection, finalizers and
// graceful pod deletion are done by the store itself.
//
// [Manager] starts any set of them over one shared informer factory,
// optionally only while it holds the leader Lease.
package controllers
