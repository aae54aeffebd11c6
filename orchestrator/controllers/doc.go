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
//   - [StatefulSet] (OrderedReady/Parallel, partition, maxUnavailable,
//     minReadySeconds, PVC retention policy), [DaemonSet] (maxSurge,
//     maxUnavailable, OnDelete), [Job] (pod finalizer tracking,
//     podFailurePolicy, successPolicy, backoffLimitPerIndex, the v1.31
//     conditions, finished-Job TTL), [CronJob] (time zones, the controller's
//     own zone when none is given).
//   - [Endpoints] (Endpoints and EndpointSlices, per IP family, zones and
//     topology hints), [ServiceRepair] (upstream's
//     clusterIP and nodePort repair checks; the store allocates both), [ServiceAccount], [RootCAPublisher]
//     (kube-root-ca.crt in every namespace).
//   - [NodeLifecycle] (heartbeats, unreachable taints, NoExecute eviction
//     rate-limited per zone), [Disruption] (PodDisruptionBudget status),
//     [PersistentVolume] (binding, local-path provisioning, reclaim, volume
//     expansion), [HPA] (cpu and memory, utilization or average value,
//     spec.behavior, from a [MetricsSource]).
//
// Namespace deletion, ownerReference garbage collection, finalizers and
// graceful pod deletion are done by the store itself.
//
// [Manager] starts any set of them over one shared informer factory,
// optionally only while it holds the leader Lease.
package controllers
