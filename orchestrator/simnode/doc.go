// Package simnode is a simulated node agent for tests and benchmarks: it
// registers simulated Nodes (named simulated in their labels and versions),
// renews their Leases, and moves the pods bound to them through their
// lifecycle — Pending, Running and Ready, Succeeded or Failed, graceful
// deletion finished — either on its own or on command (StartPod, SetReady,
// Succeed, Fail, Silence). No processes run.
//
// With Options.TestBinder it also assigns unscheduled pods to its nodes
// round-robin. That binder is a test helper standing in for the real
// scheduler (package scheduler), not a scheduler: it ignores resources,
// taints and affinity except a pinned metadata.name node affinity.
package simnode
