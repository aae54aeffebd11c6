// Package tugboat is Kubernetes as a Go library: the object store,
// scheduler, controllers, container runtime adapter and service proxy are
// packages a Go program imports and composes into a working cluster that
// real kubectl and client-go drive unchanged.
//
// Read the packages in this order; each one's Example functions form a
// step of the tutorial:
//
//   - [github.com/tugboatdev/tugboat/store]: cluster state, the one state
//     interface every component reads and writes through, watch, garbage
//     collection and a durable log;
//   - [github.com/tugboatdev/tugboat/scheduler]: places pods on nodes
//     through a plugin framework;
//   - [github.com/tugboatdev/tugboat/runtime]: runs pods on one node
//     (containerd, CNI networking, images; a simulated runtime for scale);
//   - [github.com/tugboatdev/tugboat/netproxy]: the service data plane
//     (eBPF socket load balancing, a userspace fallback) and cluster DNS;
//   - [github.com/tugboatdev/tugboat/orchestrator/controllers] and
//     [github.com/tugboatdev/tugboat/orchestrator/agent]: the reconcilers
//     (Deployments, Jobs, Services, ...) and the node agent (kubelet);
//   - [github.com/tugboatdev/tugboat/orchestrator/cluster]: everything
//     composed into a cluster that kubectl drives. Its Examples are the
//     tutorial path from start to end: step 1 opens a store, step 2
//     schedules a pod, step 3 composes a control plane and a node agent by
//     hand, step 4 runs a whole cluster on containerd.
//
// Runnable programs live under examples/: examples/cluster (a whole
// single-machine cluster), examples/quickstart (the composition of step 3
// as a program), examples/multinode (three nodes in their own network
// namespaces), examples/simulation (thousands of simulated nodes) and
// examples/manifests (the seeds' manifests for kubectl). The seeds'
// kubectl walk-throughs run end to end in internal/e2e.
//
// The layering is strict: examples → orchestrator → scheduler, runtime,
// netproxy → store; runtime knows nothing of store.
package tugboat
