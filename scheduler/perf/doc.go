// Package perf holds the upstream scheduler_perf workloads, shared by the
// scheduler's Go benchmarks and examples/scheduler: one copy of the node
// and pod builders, the constrained pods of the PodAntiAffinity,
// TopologySpreading and NodeAffinity workloads, the constraint checks of
// those workloads, and the placement verification every run ends with.
//
// The builders follow Kubernetes' test/integration/scheduler_perf
// templates: [Node] is a 4 cpu, 32Gi, 110 pod node; [Pod] requests 100m
// cpu and 500Mi memory; [AntiAffinityPod], [SpreadPod] and
// [NodeAffinityPod] add the constraint of their workload.
//
// After a run, [Verify] (or [VerifyPlacement] on lists already in hand)
// checks that every pod is bound by exactly one successful binding, that
// no node holds more cpu, memory or pods than it has allocatable, and the
// workload's own [Check] ([CheckAntiAffinity], [CheckSpread],
// [CheckNodeAffinity]). They return errors; tests turn them into t.Fatal.
//
// The package imports neither the scheduler nor anything above it, so the
// scheduler's own benchmarks can use it.
package perf
