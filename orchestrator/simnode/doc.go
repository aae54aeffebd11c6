// Package simnode is a simulated node agent for tests and benchmarks: it
// registers simulated Nodes (named simulated in their labels and versions),
// renews their Leases, and moves the pods bound to them through their
// lifecycle — Pending, Running and Ready, Succeeded or Failed, graceful
// deletion finished — either on its own or on command (StartPod, SetReady,
// Succeed, Fail, Exit with any exit code, SetCondition, Silence). No
// processes run.
//
// Like a kubelet, it moves a deleted pod that finalizers keep (a Job's
// tracking finalizer) to phase Failed before finishing the deletion,
// finishes pending filesystem resizes of the claims its running pods mount
// (at pod start, or on ResizeFileSystems), and with Options.DualStack gives
// pods an IPv6 address besides the IPv4 one.
//
// With Options.TestBinder it also assigns unscheduled pods to its nodes
// round-robin. That binder is a test helper standing in for the real
// scheduler (package scheduler), not a scheduler: it ignores resources,
// taints and affinity except a pinned metadata.name node affinity.
package simnode
